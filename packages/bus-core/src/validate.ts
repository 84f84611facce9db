/**
 * Checks the buses run on registration parameters, so a wrong argument fails at registration with
 * `EINVAL` naming it, not later inside a driver.
 */
import { MicError, checkObject, formatValue } from '@mic/errors';

/**
 * Throws `EINVAL` unless `ops` is an object with a function for each name in `required`; the
 * message names the first one that is not a function.
 */
export function checkOps(what: string, ops: unknown, required: readonly string[]): void {
  if (!Array.isArray(required) || !required.every((name) => typeof name === 'string')) {
    throw new MicError(
      'EINVAL',
      `${what}: required names ${formatValue(required)} are not an array of strings`,
    );
  }
  checkObject(what, ops);
  const missing = required.filter((name) => typeof (ops as Record<string, unknown>)[name] !== 'function');
  if (missing.length > 0) {
    const first = (ops as Record<string, unknown>)[missing[0]!];
    throw new MicError(
      'EINVAL',
      `${what} lacks ${missing.join(', ')} (${missing[0]} is ${formatValue(first)}, not a function)`,
      { details: { missing } },
    );
  }
}

/**
 * Throws `EINVAL` unless `mw` is a memory window `{pa, va, len}` with a non-negative integer `pa`,
 * and a view `va` of exactly `len` bytes (`len` > 0). The message names the field that is wrong.
 */
export function checkWindow(what: string, mw: unknown): void {
  checkObject(what, mw);
  const { pa, va, len } = mw as { pa?: unknown; va?: { byteLength?: unknown } | null; len?: unknown };
  let why: string | undefined;
  if (!Number.isSafeInteger(pa) || (pa as number) < 0)
    why = `pa ${formatValue(pa)} is not a non-negative integer`;
  else if (!Number.isSafeInteger(len) || (len as number) <= 0)
    why = `len ${formatValue(len)} is not a positive integer`;
  else if (typeof va !== 'object' || va === null) why = `va ${formatValue(va)} is not a memory`;
  else if (va.byteLength !== len)
    why = `va has ${formatValue(va.byteLength)} bytes, len says ${formatValue(len)}`;
  if (why !== undefined) {
    throw new MicError(
      'EINVAL',
      `${what} is not a window {pa, va, len} with va.byteLength === len > 0: ${why}`,
    );
  }
}
