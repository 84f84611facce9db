/**
 * Bookkeeping shared by every `DmaMapOps`: the live `mapSingle` mappings, counted per
 * (address, length), so that `unmapSingle` refuses a mapping that is not live (the kernel's
 * DMA-debug check) and tests can see leaks.
 *
 * @see include/linux/dma-mapping.h (`dma_map_single`, `dma_unmap_single`)
 */
import { MicError, checkAddr, checkFunction, checkSize, formatAddr } from '@mic/errors';

/** Live `mapSingle` mappings, counted per address and length. */
export class DmaMappingCounts {
  readonly #name: string;
  readonly #counts = new Map<string, number>();

  /** @param name - what errors call the ops these mappings belong to */
  constructor(name: string) {
    this.#name = name;
  }

  /** Mappings added and not released yet. */
  get live(): number {
    let n = 0;
    for (const c of this.#counts.values()) n += c;
    return n;
  }

  /**
   * Records one mapping of `len` bytes at `dmaAddr`.
   * @throws MicError EINVAL for an address or length that is not a non-negative (positive) integer
   */
  add(dmaAddr: number, len: number): void {
    this.#check(dmaAddr, len);
    const key = `${dmaAddr}/${len}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  /**
   * Releases one mapping of `size` bytes at `dmaAddr`: checks that it is live, runs `undo` (the
   * hardware side of the unmap; if it throws, the mapping stays live), then forgets it.
   * @throws MicError EINVAL when no such mapping is live, or for arguments that cannot name one
   */
  release(dmaAddr: number, size: number, undo?: () => void): void {
    this.#check(dmaAddr, size);
    if (undo !== undefined && typeof undo !== 'function') checkFunction(`${this.#name}: unmap undo`, undo);
    const key = `${dmaAddr}/${size}`;
    const n = this.#counts.get(key);
    if (!n) {
      throw new MicError(
        'EINVAL',
        `${this.#name}: no mapping of ${size} bytes at DMA address ${formatAddr(dmaAddr)}`,
        {
          details: { dmaAddr, size },
        },
      );
    }
    undo?.();
    if (n === 1) this.#counts.delete(key);
    else this.#counts.set(key, n - 1);
  }

  #check(dmaAddr: number, len: number): void {
    // Cheap tests first: this runs on every map and unmap.
    if (!(Number.isSafeInteger(dmaAddr) && dmaAddr >= 0)) checkAddr(`${this.#name}: DMA address`, dmaAddr);
    if (!(Number.isSafeInteger(len) && len > 0)) checkSize(`${this.#name}: mapping size`, len);
  }
}
