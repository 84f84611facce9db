/**
 * Memory pieces for mock hardware: DMA map ops over a memory pool, and a `remap` that maps bus
 * addresses onto pools.
 */
import { MicError, formatAddr } from '@mic/errors';
import type { BufferMemory, Memory } from '@mic/memory';
import type { DmaBuffer, DmaMapOps } from './hw.js';
import { DmaMappingCounts } from './dma-mappings.js';
import { MemoryPool } from './range-allocator.js';

const isSize = (v: number): boolean => Number.isSafeInteger(v) && v > 0;

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
  readonly #pool: MemoryPool;
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
    this.#pool = new MemoryPool(options.pool, { reserve, name: this.#name });
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
    const piece = this.#pool.alloc(size, size >= 4096 ? 4096 : 64);
    const buf: DmaBuffer = Object.freeze({ va: piece.mem, dmaAddr: this.base + piece.offset, size });
    this.#buffers.set(buf.dmaAddr, buf);
    return buf;
  }

  free(buf: DmaBuffer): void {
    if (!buf || this.#buffers.get(buf.dmaAddr) !== buf) {
      throw new MicError('EINVAL', `${this.#name}: buffer at ${formatAddr(buf?.dmaAddr)} is not live`);
    }
    this.#buffers.delete(buf.dmaAddr);
    this.#pool.free(buf.dmaAddr - this.base);
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
