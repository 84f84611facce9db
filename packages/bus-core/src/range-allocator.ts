/**
 * The one address-range allocator of the stack: first fit with alignment over `[start, end)`,
 * free extents kept sorted and coalesced. The drivers allocate with it what the kernel gets from
 * its page allocator (host RAM in `@mic/mic-host`, card pages in `@mic/mic-card`), and the mocks
 * their pools; {@link MemoryPool} puts it over a `Memory`.
 *
 * @see drivers/misc/mic/host/mic_boot.c (the host's `__get_free_pages` + `dma_map_single`)
 */
import { MicError, checkObject, checkSize, formatAddr, formatValue } from '@mic/errors';
import { type Memory, checkMemory } from '@mic/memory';

interface Extent {
  start: number;
  end: number;
}

/** A power of two that is a safe integer (2^53 at most). */
const isPowerOfTwo = (n: number): boolean =>
  Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;

/**
 * Hands out non-overlapping, aligned ranges of `[start, end)`.
 *
 * @example
 * const a = new RangeAllocator(4096, 1 << 20, 'host RAM');
 * const addr = a.alloc(4096, 4096); // 4096
 * a.free(addr);
 */
export class RangeAllocator {
  /** First address managed. */
  readonly start: number;
  /** End (exclusive) of the managed range. */
  readonly end: number;
  readonly #what: string;
  /** Free extents, sorted by start, never adjacent (always coalesced). */
  #free: Extent[];
  readonly #used = new Map<number, number>();
  #usedBytes = 0;

  /**
   * @param start - first address managed (a safe integer ≥ 0)
   * @param end - end of the range (exclusive, ≥ start)
   * @param what - what error messages call the range (`host RAM`, `card memory`)
   * @throws MicError EINVAL for a range that is not valid
   */
  constructor(start: number, end: number, what = 'address range') {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new MicError(
        'EINVAL',
        `${what}: range [${formatValue(start)}, ${formatValue(end)}) is not valid`,
        {
          details: { start, end },
        },
      );
    }
    this.start = start;
    this.end = end;
    this.#what = what;
    this.#free = end > start ? [{ start, end }] : [];
  }

  /** Bytes currently allocated. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Bytes currently free (possibly fragmented). */
  get freeBytes(): number {
    return this.end - this.start - this.#usedBytes;
  }

  /** Number of live allocations. */
  get count(): number {
    return this.#used.size;
  }

  /**
   * Allocates `size` bytes at an address that is a multiple of `align`.
   * @param align - a power of two (default 1)
   * @returns the start address
   * @throws MicError EINVAL for a size that is not a positive integer or an alignment that is not
   * a power of two, ENOMEM when no free extent fits
   */
  alloc(size: number, align = 1): number {
    checkSize('allocation size', size);
    if (!isPowerOfTwo(align)) {
      throw new MicError('EINVAL', `alignment ${formatValue(align)} is not a power of two`, {
        details: { align },
      });
    }
    const free = this.#free;
    for (let i = 0; i < free.length; i++) {
      const ext = free[i]!;
      const at = Math.ceil(ext.start / align) * align;
      if (at + size > ext.end) continue;
      const pieces: Extent[] = [];
      if (at > ext.start) pieces.push({ start: ext.start, end: at });
      if (at + size < ext.end) pieces.push({ start: at + size, end: ext.end });
      free.splice(i, 1, ...pieces);
      this.#used.set(at, size);
      this.#usedBytes += size;
      return at;
    }
    throw new MicError(
      'ENOMEM',
      `${this.#what}: no free range of ${size} bytes aligned to ${align} in [${formatAddr(this.start)}, ${formatAddr(this.end)}) (${this.freeBytes} bytes free)`,
      { details: { size, align, freeBytes: this.freeBytes } },
    );
  }

  /**
   * Frees the allocation that starts at `addr`.
   * @throws MicError EINVAL when `addr` is not the start of a live allocation
   */
  free(addr: number): void {
    const size = this.#used.get(addr);
    if (size === undefined) {
      throw new MicError('EINVAL', `${this.#what}: ${formatAddr(addr)} is not an allocated address`, {
        details: { addr },
      });
    }
    this.#used.delete(addr);
    this.#usedBytes -= size;
    const free = this.#free;
    let lo = 0;
    let hi = free.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (free[mid]!.start < addr) lo = mid + 1;
      else hi = mid;
    }
    const ext: Extent = { start: addr, end: addr + size };
    const prev = free[lo - 1];
    const next = free[lo];
    if (prev && prev.end === ext.start) {
      prev.end = ext.end;
      if (next && next.start === prev.end) {
        prev.end = next.end;
        free.splice(lo, 1);
      }
    } else if (next && next.start === ext.end) {
      next.start = ext.start;
    } else {
      free.splice(lo, 0, ext);
    }
  }

  /** Size of the live allocation starting at `addr`, or undefined. */
  sizeOf(addr: number): number | undefined {
    return this.#used.get(addr);
  }

  /** Frees every allocation. */
  reset(): void {
    this.#used.clear();
    this.#usedBytes = 0;
    this.#free = this.end > this.start ? [{ start: this.start, end: this.end }] : [];
  }
}

/** A piece of a {@link MemoryPool}. */
export interface PoolBuffer {
  /** Where it starts in the pool's memory. */
  readonly offset: number;
  /** Bytes. */
  readonly size: number;
  /** The bytes, bounds-checked to the piece. */
  readonly mem: Memory;
}

/** Options of a {@link MemoryPool}. */
export interface MemoryPoolOptions {
  /**
   * Bytes at the start never handed out (default 4096): offset 0 means "no address" in several
   * device page fields, so no buffer starts there.
   */
  readonly reserve?: number;
  /** What error messages call the pool (default `memory pool`). */
  readonly name?: string;
}

/**
 * A {@link RangeAllocator} over a `Memory`: `alloc` hands out zeroed, bounds-checked windows of it.
 *
 * @example
 * const pool = new MemoryPool(BufferMemory.allocate(1 << 20), { name: 'host RAM' });
 * const buf = pool.alloc(8192, 4096); // { offset: 4096, size: 8192, mem }
 * pool.free(buf.offset);
 */
export class MemoryPool {
  /** The memory pieces come from. */
  readonly memory: Memory;
  readonly #ranges: RangeAllocator;

  /** @throws MicError EINVAL for a reserve that is not a non-negative integer */
  constructor(memory: Memory, options: MemoryPoolOptions = {}) {
    checkMemory('pool memory', memory);
    checkObject('memory pool options', options);
    const reserve = options.reserve ?? 4096;
    const name = options.name ?? 'memory pool';
    if (!Number.isSafeInteger(reserve) || reserve < 0) {
      throw new MicError('EINVAL', `${name}: reserve ${formatValue(reserve)} is not a non-negative integer`);
    }
    this.memory = memory;
    this.#ranges = new RangeAllocator(Math.min(reserve, memory.byteLength), memory.byteLength, name);
  }

  /** Bytes handed out and not freed. */
  get usedBytes(): number {
    return this.#ranges.usedBytes;
  }

  /** Live pieces. */
  get count(): number {
    return this.#ranges.count;
  }

  /**
   * A zeroed piece of `size` bytes at an offset that is a multiple of `align`.
   * @throws MicError EINVAL for a bad size or alignment, ENOMEM when nothing fits
   */
  alloc(size: number, align = 1): PoolBuffer {
    const offset = this.#ranges.alloc(size, align);
    const mem = this.memory.window(offset, size);
    mem.fill(0, size, 0);
    return { offset, size, mem };
  }

  /** Gives back the piece at `offset`. @throws MicError EINVAL when none is live there */
  free(offset: number): void {
    this.#ranges.free(offset);
  }

  /** Size of the live piece at `offset`, or undefined. */
  sizeOf(offset: number): number | undefined {
    return this.#ranges.sizeOf(offset);
  }
}
