/**
 * Memory pieces for mock hardware: DMA map ops over a memory pool, and a `remap` that maps bus
 * addresses onto pools.
 */
import { MicError, checkAddr, checkObject, formatAddr, formatValue } from '@mic/errors';
import { type BufferMemory, type Memory, checkMemory } from '@mic/memory';
import { type DmaAllocation, DmaMapOpsBase } from './dma-map-ops.js';
import { RemapBook } from './link-ops.js';
import { MemoryPool } from './range-allocator.js';

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
 * `base + o`. `mapSingle` accepts any view of the pool. The bookkeeping is {@link DmaMapOpsBase},
 * as in the host and card drivers' ops.
 */
export class MockDmaMapOps extends DmaMapOpsBase {
  readonly pool: BufferMemory;
  readonly base: number;
  readonly #pool: MemoryPool;

  constructor(options: MockDmaMapOpsOptions) {
    super(nameOf(options));
    checkMemory(`${this.name}: DMA pool`, options.pool);
    checkAddr(`${this.name}: DMA base`, options.base);
    this.pool = options.pool;
    this.base = options.base;
    this.#pool = new MemoryPool(options.pool, { reserve: options.reserve ?? 4096, name: this.name });
  }

  protected allocMapped(size: number, align: number): DmaAllocation {
    const piece = this.#pool.alloc(size, align);
    return { va: piece.mem, dmaAddr: this.base + piece.offset, release: () => this.#pool.free(piece.offset) };
  }

  protected addrOf(va: Memory): number {
    const v = va as Partial<BufferMemory> | null;
    const off = v && v.buffer === this.pool.buffer ? (v.byteOffset ?? -1) - this.pool.byteOffset : -1;
    if (off < 0 || off + (v?.byteLength ?? 0) > this.pool.byteLength) {
      throw new MicError('EINVAL', `${this.name}: memory to map is not in this device's DMA-reachable pool`);
    }
    return this.base + off;
  }
}

/** The name of the ops (checking that `options` is an object first). */
function nameOf(options: MockDmaMapOpsOptions): string {
  checkObject('mock DMA options', options);
  return options.name ?? 'mock dma';
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
  readonly #book: RemapBook;

  /** @throws MicError EINVAL for regions that are not an array of `{base, pool}` */
  constructor(regions: readonly MockRemapRegion[], name = 'mock remap') {
    if (!Array.isArray(regions)) {
      throw new MicError('EINVAL', `${name}: regions ${formatValue(regions)} are not an array`);
    }
    for (const r of regions as unknown[]) {
      checkObject(`${name}: region`, r);
      checkAddr(`${name}: region base`, (r as Partial<MockRemapRegion>).base as number);
      checkMemory(`${name}: region pool`, (r as Partial<MockRemapRegion>).pool);
    }
    this.#regions = [...regions];
    this.#name = name;
    this.#book = new RemapBook(name);
  }

  /** Mappings not unmapped yet. */
  get live(): number {
    return this.#book.live;
  }

  remap(pa: number, len: number): Memory {
    return this.#book.map(pa, len, () => {
      for (const r of this.#regions) {
        if (pa >= r.base && pa + len <= r.base + r.pool.byteLength) return r.pool.window(pa - r.base, len);
      }
      throw new MicError(
        'EFAULT',
        `${this.#name}: bus address range [${formatAddr(pa)}, +${len}) is not reachable`,
        {
          details: { pa, len },
        },
      );
    });
  }

  unmap(va: Memory): void {
    this.#book.unmap(va);
  }
}
