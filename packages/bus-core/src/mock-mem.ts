/**
 * Memory pieces for mock hardware: an address-range allocator, DMA map ops over a memory pool, and
 * a `remap` that maps bus addresses onto pools.
 */
import { MicError, formatAddr } from '@mic/errors';
import type { BufferMemory, Memory } from '@mic/memory';
import type { DmaBuffer, DmaMapOps } from './hw.js';
import { DmaMappingCounts } from './dma-mappings.js';

const isSize = (v: number): boolean => Number.isSafeInteger(v) && v > 0;

/** First-fit allocator of byte ranges in `[start, end)`. */
export class RangeAllocator {
  readonly start: number;
  readonly end: number;
  /** Free ranges, sorted by offset, never adjacent. */
  #free: { off: number; len: number }[];
  readonly #live = new Map<number, number>();

  constructor(start: number, end: number) {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new MicError('EINVAL', `range [${String(start)}, ${String(end)}) is not a valid address range`);
    }
    this.start = start;
    this.end = end;
    this.#free = end > start ? [{ off: start, len: end - start }] : [];
  }

  /** Bytes handed out. */
  get used(): number {
    let sum = 0;
    for (const len of this.#live.values()) sum += len;
    return sum;
  }

  /** Live allocations. */
  get live(): number {
    return this.#live.size;
  }

  /**
   * Takes `size` bytes at an offset that is a multiple of `align` (a power of two). Throws `EINVAL`
   * for a bad size or alignment and `ENOMEM` when no free range fits.
   */
  alloc(size: number, align = 1): number {
    if (!isSize(size))
      throw new MicError('EINVAL', `allocation size ${String(size)} is not a positive integer`);
    if (!isSize(align) || (align & (align - 1)) !== 0 || align > 2 ** 30) {
      throw new MicError('EINVAL', `alignment ${String(align)} is not a power of two`);
    }
    for (let i = 0; i < this.#free.length; i++) {
      const r = this.#free[i]!;
      const off = Math.ceil(r.off / align) * align;
      if (off + size > r.off + r.len) continue;
      const pieces: { off: number; len: number }[] = [];
      if (off > r.off) pieces.push({ off: r.off, len: off - r.off });
      if (off + size < r.off + r.len) pieces.push({ off: off + size, len: r.off + r.len - off - size });
      this.#free.splice(i, 1, ...pieces);
      this.#live.set(off, size);
      return off;
    }
    throw new MicError(
      'ENOMEM',
      `no free range of ${size} bytes (alignment ${align}) in [${this.start}, ${this.end})`,
      {
        details: { size, align, used: this.used },
      },
    );
  }

  /** Size of the live allocation at `off`, if any. */
  sizeAt(off: number): number | undefined {
    return this.#live.get(off);
  }

  /** Gives back the allocation at `off`. Throws `EINVAL` when none is live there. */
  free(off: number): void {
    const len = this.#live.get(off);
    if (len === undefined) throw new MicError('EINVAL', `no live allocation at offset ${String(off)}`);
    this.#live.delete(off);
    let i = this.#free.findIndex((r) => r.off > off);
    if (i < 0) i = this.#free.length;
    this.#free.splice(i, 0, { off, len });
    // Merge with the neighbours.
    const next = this.#free[i + 1];
    if (next && off + len === next.off) {
      this.#free[i]!.len += next.len;
      this.#free.splice(i + 1, 1);
    }
    const prev = this.#free[i - 1];
    if (prev && prev.off + prev.len === off) {
      prev.len += this.#free[i]!.len;
      this.#free.splice(i, 1);
    }
  }
}

/** Options of {@link MockDmaMapOps}. */
export interface MockDmaMapOpsOptions {
  /**
   * The memory that buffers come from (host RAM, card RAM): a `BufferMemory`, whose buffer and
   * offset let `mapSingle` recognise views of it.
   */
  readonly pool: BufferMemory;
  /** DMA address of the pool's first byte (host: the SMPT window base; card: 0). */
  readonly base: number;
  /** Bytes at the start of the pool never handed out (default 4096, so no DMA address is `base`). */
  readonly reserve?: number;
  /** Name for errors, e.g. `host dma`. */
  readonly name?: string;
}

/**
 * {@link DmaMapOps} over a pool: `alloc` hands out zeroed, aligned ranges of the pool (page-aligned
 * from 4096 bytes up, 64-byte aligned below), and the DMA address of pool offset `o` is
 * `base + o`. `mapSingle` accepts any view of the pool.
 */
export class MockDmaMapOps implements DmaMapOps {
  readonly pool: BufferMemory;
  readonly base: number;
  readonly #alloc: RangeAllocator;
  readonly #name: string;
  readonly #buffers = new Map<number, DmaBuffer>();
  readonly #mappings: DmaMappingCounts;

  constructor(options: MockDmaMapOpsOptions) {
    const reserve = options.reserve ?? 4096;
    if (!Number.isSafeInteger(options.base) || options.base < 0) {
      throw new MicError('EINVAL', `DMA base ${String(options.base)} is not a non-negative integer`);
    }
    this.pool = options.pool;
    this.base = options.base;
    this.#name = options.name ?? 'mock dma';
    this.#mappings = new DmaMappingCounts(this.#name);
    this.#alloc = new RangeAllocator(Math.min(reserve, options.pool.byteLength), options.pool.byteLength);
  }

  /** Live buffers from {@link alloc}. */
  get liveBuffers(): number {
    return this.#buffers.size;
  }

  /** Live mappings from {@link mapSingle}. */
  get liveMappings(): number {
    return this.#mappings.live;
  }

  alloc(size: number): DmaBuffer {
    if (!isSize(size)) {
      throw new MicError(
        'EINVAL',
        `${this.#name}: allocation size ${String(size)} is not a positive integer`,
      );
    }
    const off = this.#alloc.alloc(size, size >= 4096 ? 4096 : 64);
    this.pool.fill(off, size, 0);
    const buf: DmaBuffer = Object.freeze({
      va: this.pool.window(off, size),
      dmaAddr: this.base + off,
      size,
    });
    this.#buffers.set(buf.dmaAddr, buf);
    return buf;
  }

  free(buf: DmaBuffer): void {
    if (!buf || this.#buffers.get(buf.dmaAddr) !== buf) {
      throw new MicError('EINVAL', `${this.#name}: buffer at ${formatAddr(buf?.dmaAddr)} is not live`);
    }
    this.#buffers.delete(buf.dmaAddr);
    this.#alloc.free(buf.dmaAddr - this.base);
  }

  mapSingle(va: Memory): number {
    const v = va as Partial<BufferMemory> | null;
    const off = v && v.buffer === this.pool.buffer ? (v.byteOffset ?? -1) - this.pool.byteOffset : -1;
    const len = v?.byteLength ?? 0;
    if (off < 0 || off + len > this.pool.byteLength) {
      throw new MicError('EINVAL', `${this.#name}: memory to map is not in this device's DMA-reachable pool`);
    }
    const dmaAddr = this.base + off;
    this.#mappings.add(dmaAddr, len);
    return dmaAddr;
  }

  unmapSingle(dmaAddr: number, size: number): void {
    this.#mappings.release(dmaAddr, size);
  }
}

/** One range of bus addresses a {@link MockRemapper} reaches: `[base, base + pool.byteLength)`. */
export interface MockRemapRegion {
  readonly base: number;
  readonly pool: Memory;
}

/**
 * `remap`/`unmap` over fixed regions: `remap(pa, len)` is a window of the region holding
 * `[pa, pa + len)`. Throws `EINVAL` for a length that is not a positive integer or an address that
 * is not a non-negative integer, `EFAULT` when no region holds the range; `unmap` throws `EINVAL`
 * for a view it did not return or already unmapped.
 */
export class MockRemapper {
  readonly #regions: MockRemapRegion[];
  readonly #name: string;
  readonly #live = new Set<Memory>();

  constructor(regions: readonly MockRemapRegion[], name = 'mock remap') {
    this.#regions = [...regions];
    this.#name = name;
  }

  /** Mappings not unmapped yet. */
  get live(): number {
    return this.#live.size;
  }

  remap(pa: number, len: number): Memory {
    if (!isSize(len))
      throw new MicError('EINVAL', `${this.#name}: length ${String(len)} is not a positive integer`);
    if (!Number.isSafeInteger(pa) || pa < 0) {
      throw new MicError('EINVAL', `${this.#name}: address ${String(pa)} is not a non-negative integer`);
    }
    for (const r of this.#regions) {
      if (pa >= r.base && pa + len <= r.base + r.pool.byteLength) {
        const va = r.pool.window(pa - r.base, len);
        this.#live.add(va);
        return va;
      }
    }
    throw new MicError('EFAULT', `${this.#name}: [${formatAddr(pa)}, +${len}) is not reachable`, {
      details: { pa, len },
    });
  }

  unmap(va: Memory): void {
    if (!this.#live.delete(va))
      throw new MicError('EINVAL', `${this.#name}: unmap of a view that is not mapped`);
  }
}
