/**
 * How SCIF reaches memory on one link (`scif_map_single`, `scif_ioremap`, `scif_iounmap` of
 * `scif_map.h`): memory the peer can reach (`alloc`, `mapSingle`) and the peer's memory mapped
 * for the CPU (`remap`). Over a SCIF hardware device this is the device's DMA map ops and hw ops;
 * for the loopback node (a node talking to itself) it is a table of local memory under made-up,
 * page-aligned addresses, as the kernel's loopback uses physical addresses of its own memory.
 *
 * @see drivers/misc/mic/scif/scif_map.h
 */
import type { DmaBuffer } from '@mic/bus-core';
import { MicError, formatAddr } from '@mic/errors';
import { BufferMemory, type Memory } from '@mic/memory';
import type { ScifHwDev } from '@mic/scif-bus';
import { PAGE_SIZE } from './constants.js';

/** Memory operations of one link. */
export interface ScifMemOps {
  /** True for the loopback node: every address is this node's own memory. */
  readonly loopback: boolean;
  /** Zeroed memory the peer reaches at `dmaAddr` (`kzalloc` + `scif_map_single`). */
  alloc(size: number): DmaBuffer;
  free(buf: DmaBuffer): void;
  /** The address at which the peer (and the DMA engine) reaches `mem`. @throws MicError EFAULT */
  mapSingle(mem: Memory): number;
  unmapSingle(addr: number, size: number): void;
  /** The peer's memory at `pa` for the CPU (`scif_ioremap`). @throws MicError EFAULT */
  remap(pa: number, len: number): Memory;
  /** Undoes a {@link remap}. */
  unmap(mem: Memory): void;
}

function efault(what: string, err: unknown): MicError {
  if (err instanceof MicError && err.code === 'EFAULT') return err;
  return new MicError('EFAULT', `${what}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

/**
 * Memory operations over a SCIF hardware device: its `dmaOps` and `hwOps.remap`. `base` is added to
 * every local address handed to the peer (the peer-to-peer aperture base, `scifdev->base_addr`).
 */
export class HwMemOps implements ScifMemOps {
  readonly loopback = false;
  readonly #sdev: ScifHwDev;
  readonly #base: number;
  /** Peer-to-peer buffers (address moved by `base`) and the device's buffers they came from. */
  readonly #moved = new WeakMap<DmaBuffer, DmaBuffer>();

  constructor(sdev: ScifHwDev, base = 0) {
    this.#sdev = sdev;
    this.#base = base;
  }

  alloc(size: number): DmaBuffer {
    const b = this.#sdev.dmaOps.alloc(size);
    if (this.#base === 0) return b;
    const moved: DmaBuffer = { va: b.va, dmaAddr: b.dmaAddr + this.#base, size: b.size };
    this.#moved.set(moved, b);
    return moved;
  }

  free(buf: DmaBuffer): void {
    this.#sdev.dmaOps.free(this.#moved.get(buf) ?? buf);
  }

  mapSingle(mem: Memory): number {
    try {
      return this.#sdev.dmaOps.mapSingle(mem) + this.#base;
    } catch (err) {
      throw efault('memory is not reachable by the peer', err);
    }
  }

  unmapSingle(addr: number, size: number): void {
    this.#sdev.dmaOps.unmapSingle(addr - this.#base, size);
  }

  remap(pa: number, len: number): Memory {
    try {
      return this.#sdev.hwOps.remap(pa, len);
    } catch (err) {
      throw efault(`peer memory [${formatAddr(pa)}, +${String(len)}) cannot be mapped`, err);
    }
  }

  unmap(mem: Memory): void {
    this.#sdev.hwOps.unmap(mem);
  }
}

interface Range {
  readonly base: number;
  readonly len: number;
  readonly mem: Memory;
}

/** First made-up address of the loopback table (never 0, which means "no address"). */
const LOOPBACK_BASE = 0x1_0000_0000;

/**
 * The loopback node's memory operations: `mapSingle` enters any memory into a table under a fresh
 * page-aligned address; `remap` finds it again. Addresses are never reused while mapped.
 */
export class LoopbackMemOps implements ScifMemOps {
  readonly loopback = true;
  readonly #ranges: Range[] = [];
  #next = LOOPBACK_BASE;

  /** Live table entries (for leak checks). */
  get live(): number {
    return this.#ranges.length;
  }

  alloc(size: number): DmaBuffer {
    const va = BufferMemory.allocate(size, { shared: true });
    return { va, dmaAddr: this.mapSingle(va), size };
  }

  free(buf: DmaBuffer): void {
    this.unmapSingle(buf.dmaAddr, buf.size);
  }

  mapSingle(mem: Memory): number {
    const len = mem.byteLength;
    if (!Number.isSafeInteger(len) || len <= 0) throw new MicError('EFAULT', 'cannot map an empty view');
    const base = this.#next;
    this.#next += Math.ceil(len / PAGE_SIZE) * PAGE_SIZE + PAGE_SIZE;
    this.#ranges.push({ base, len, mem });
    return base;
  }

  unmapSingle(addr: number, _size: number): void {
    const i = this.#find(addr);
    if (i < 0 || this.#ranges[i]!.base !== addr) {
      throw new MicError('EINVAL', `loopback address ${formatAddr(addr)} is not mapped`);
    }
    this.#ranges.splice(i, 1);
  }

  remap(pa: number, len: number): Memory {
    const i = this.#find(pa);
    const r = i < 0 ? undefined : this.#ranges[i];
    if (!r || !Number.isSafeInteger(len) || len <= 0 || pa - r.base + len > r.len) {
      throw new MicError('EFAULT', `loopback [${formatAddr(pa)}, +${String(len)}) is not mapped memory`);
    }
    return r.mem.window(pa - r.base, len);
  }

  unmap(_mem: Memory): void {}

  /** The entry holding `addr` (ranges are sorted by base: addresses only grow). */
  #find(addr: number): number {
    const rs = this.#ranges;
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = rs[mid]!;
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.base + r.len) lo = mid + 1;
      else return mid;
    }
    return -1;
  }
}
