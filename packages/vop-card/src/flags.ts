/**
 * Byte flags of the device page (`mic_device_ctrl` flags, `h2c_config_db`, doorbell numbers) read
 * and written the way the kernel's `ioread8`/`iowrite8` order them on the PCIe link: each access
 * is one atomic byte operation when the page is shared with another thread, so a flag written
 * after the data it announces (`used_address` before `used_address_updated`) is seen after it,
 * and a flag the peer sets is read fresh on every poll.
 *
 * @see drivers/misc/mic/vop/vop_main.c (`ioread8`/`iowrite8` on `mic_device_ctrl`)
 */
import type { Memory } from '@mic/memory';

/** Reads the u8 at `offset` (an atomic load on shared memory). */
export function loadU8(mem: Memory, offset: number): number {
  const b = mem.bytes(offset, 1);
  return mem.shared ? Atomics.load(b, 0) : b[0]!;
}

/** Writes the u8 `value & 0xff` at `offset` (an atomic store on shared memory). */
export function storeU8(mem: Memory, offset: number, value: number): void {
  const b = mem.bytes(offset, 1);
  if (mem.shared) Atomics.store(b, 0, value & 0xff);
  else b[0] = value & 0xff;
}

/** Reads the `__s8` at `offset` (doorbell numbers: -1 is none). */
export function loadS8(mem: Memory, offset: number): number {
  return (loadU8(mem, offset) << 24) >> 24;
}
