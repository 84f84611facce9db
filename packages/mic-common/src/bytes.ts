/**
 * Signed-byte helpers: `__s8` fields hold device types and doorbell numbers (-1 = none).
 *
 * @see include/uapi/linux/mic_common.h
 */
import { checkInt } from '@mic/errors';
import type { Memory } from '@mic/memory';

/** Sign-extends the low byte of `v` (`(__s8)v`). */
export function toS8(v: number): number {
  return ((v & 0xff) << 24) >> 24;
}

/**
 * Reads an `__s8` field, e.g. `mic_device_desc.type` or a doorbell number (-1 = none), with one
 * `loadU8` (`ioread8`: atomic when the memory is shared), so a field the peer writes is read
 * fresh and once.
 *
 * @see include/uapi/linux/mic_common.h
 */
export function readS8(mem: Memory, offset: number): number {
  return toS8(mem.loadU8(offset));
}

/**
 * Writes an `__s8` field with one `storeU8` (`iowrite8`). Throws `EINVAL` unless `value` is an integer in [-128, 127].
 *
 * @see include/uapi/linux/mic_common.h
 */
export function writeS8(mem: Memory, offset: number, value: number): void {
  checkInt('s8 value', value, -128, 127);
  mem.storeU8(offset, value & 0xff);
}
