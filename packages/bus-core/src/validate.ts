/**
 * Checks the buses run on registration parameters, so a wrong argument fails at registration with
 * `EINVAL` naming it, not later inside a driver.
 */
import { MicError } from '@mic/errors';

/** Throws `EINVAL` unless `ops` is an object with a function for each name in `required`. */
export function checkOps(what: string, ops: unknown, required: readonly string[]): void {
  if (typeof ops !== 'object' || ops === null) {
    throw new MicError('EINVAL', `${what} is not an object`);
  }
  const missing = required.filter((name) => typeof (ops as Record<string, unknown>)[name] !== 'function');
  if (missing.length > 0) {
    throw new MicError('EINVAL', `${what} lacks ${missing.join(', ')}`, { details: { missing } });
  }
}

/**
 * Throws `EINVAL` unless `mw` is a memory window `{pa, va, len}` with a non-negative integer `pa`,
 * and a view `va` of exactly `len` bytes (`len` > 0).
 */
export function checkWindow(what: string, mw: unknown): void {
  const w = mw as { pa?: unknown; va?: { byteLength?: unknown } | null; len?: unknown } | null;
  if (
    typeof w !== 'object' ||
    w === null ||
    !Number.isSafeInteger(w.pa) ||
    (w.pa as number) < 0 ||
    !Number.isSafeInteger(w.len) ||
    (w.len as number) <= 0 ||
    typeof w.va !== 'object' ||
    w.va === null ||
    w.va.byteLength !== w.len
  ) {
    throw new MicError('EINVAL', `${what} is not a window {pa, va, len} with va.byteLength === len > 0`);
  }
}

/**
 * Throws `EINVAL` unless `table` is an array of `{device, vendor}` u32 pairs: the check the id-table
 * buses run on a driver before adding it.
 */
export function checkIdTable(what: string, table: unknown): void {
  const isU32 = (v: unknown): boolean =>
    Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
  if (
    !Array.isArray(table) ||
    !table.every((e: unknown) => {
      const id = e as { device?: unknown; vendor?: unknown } | null;
      return typeof id === 'object' && id !== null && isU32(id.device) && isU32(id.vendor);
    })
  ) {
    throw new MicError('EINVAL', `${what} is not an array of {device, vendor} u32 pairs`);
  }
}
