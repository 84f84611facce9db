/**
 * Byte flags of the device page (`mic_device_ctrl` flags, `h2c_config_db`, doorbell numbers) are
 * read and written with the memory seam's `loadU8`/`storeU8`, the kernel's `ioread8`/`iowrite8`:
 * one atomic byte access when the page is shared with another thread, so a flag written after
 * the data it announces (`used_address` before `used_address_updated`) is seen after it, and a
 * flag the peer sets is read fresh on every poll. This file adds the signed form.
 *
 * @see drivers/misc/mic/vop/vop_main.c (`ioread8`/`iowrite8` on `mic_device_ctrl`)
 */
import type { Memory } from '@mic/memory';

/** Reads the `__s8` at `offset` (doorbell numbers: -1 is none), atomically when shared. */
export function loadS8(mem: Memory, offset: number): number {
  return (mem.loadU8(offset) << 24) >> 24;
}
