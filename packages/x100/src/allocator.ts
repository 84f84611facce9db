/**
 * A first-fit range allocator with alignment and coalescing free extents. The host view uses
 * one over host RAM for DMA-able buffers (the device page, vrings, bounce buffers: what the
 * kernel gets from `kzalloc` + `dma_map_single` or `dma_alloc_coherent`), the card view one
 * over card memory (`__get_free_pages` on the card).
 *
 * @see drivers/misc/mic/host/mic_boot.c
 */
import { MicError, checkInt } from '@mic/errors';
import type { Memory } from '@mic/memory';

interface Extent {
  start: number;
  end: number;
}

const isPowerOfTwo = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;

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
   * @param end - end of the range (exclusive)
   * @param what - name used in error messages (`host RAM`, `card memory`)
   */
  constructor(start: number, end: number, what: string) {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new MicError('EINVAL', `${what}: range [${String(start)}, ${String(end)}) is not valid`);
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
   * Allocates `size` bytes aligned to `align` (a power of two).
   * @returns the start address
   * @throws MicError EINVAL for a bad size or alignment, ENOMEM when no free extent fits
   */
  alloc(size: number, align = 64): number {
    checkInt('allocation size', size, 1, Number.MAX_SAFE_INTEGER);
    if (!isPowerOfTwo(align)) {
      throw new MicError('EINVAL', `alignment ${String(align)} is not a power of two`, {
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
      `${this.#what}: no free range of ${size} bytes aligned to ${align} (${this.freeBytes} bytes free)`,
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
      throw new MicError('EINVAL', `${this.#what}: 0x${addr.toString(16)} is not an allocated address`, {
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

/** Where `mem` starts in `buffer`. @throws MicError EINVAL when it is not a view of `buffer` */
export function viewOffset(mem: Memory, buffer: SharedArrayBuffer, what: string): number {
  const view = mem as { readonly buffer?: unknown; readonly byteOffset?: unknown };
  if (view.buffer !== buffer || typeof view.byteOffset !== 'number') {
    throw new MicError('EINVAL', `memory is not a view of ${what}`);
  }
  return view.byteOffset;
}
