/**
 * The card's DMA map ops: card memory is mapped directly, the DMA address is the card physical
 * address, which the host reaches through its aperture at the same offset. The kernel registers
 * the card's devices with `NULL` ops (direct mapping through the page allocator); a TypeScript
 * program has no global page allocator, so the ops are where drivers get memory the host can
 * reach, as the bus-core mocks do.
 *
 * @see drivers/misc/mic/card/mic_device.c (`vop_register_device(..., NULL, ...)`)
 */
import { MicError, formatAddr } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { DmaMappingCounts } from '@mic/bus-core';
import type { DmaBuffer, DmaMapOps } from '@mic/vop-bus';
import type { X100CardView } from '@mic/x100';
import { cardPages } from './card-pages.js';

const isSize = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/**
 * {@link DmaMapOps} of the card over an x100 card view: `alloc` takes zeroed card memory
 * (page-aligned from 4096 bytes up, 64-byte aligned below); `mapSingle` accepts any view of card
 * memory.
 *
 * @example
 * const ops = new CardDmaMapOps(card);
 * const ring = ops.alloc(8192); // the host remaps ring.dmaAddr through its aperture
 */
export class CardDmaMapOps implements DmaMapOps {
  readonly #card: X100CardView;
  readonly #name: string;
  readonly #buffers = new Map<number, DmaBuffer>();
  readonly #mappings: DmaMappingCounts;

  /**
   * @param card - the card's view of the hardware
   * @param name - what errors call these ops (default `mic card dma`)
   */
  constructor(card: X100CardView, name = 'mic card dma') {
    this.#card = card;
    this.#name = name;
    this.#mappings = new DmaMappingCounts(name);
  }

  /** Buffers from {@link alloc} not freed yet. */
  get liveBuffers(): number {
    return this.#buffers.size;
  }

  /** Mappings from {@link mapSingle} not unmapped yet. */
  get liveMappings(): number {
    return this.#mappings.live;
  }

  /**
   * Allocates zeroed card memory (`__get_free_pages`); its DMA address is its card address.
   * @throws MicError EINVAL for a size that is not a positive integer, ENOMEM when card memory is
   * exhausted, ENODEV after a card reset
   */
  alloc(size: number): DmaBuffer {
    if (!isSize(size)) {
      throw new MicError(
        'EINVAL',
        `${this.#name}: allocation size ${String(size)} is not a positive integer`,
        {
          details: { size },
        },
      );
    }
    const pages = cardPages(this.#card).alloc(size, size >= 4096 ? 4096 : 64);
    const buf: DmaBuffer = Object.freeze({ va: pages.mem, dmaAddr: pages.offset, size });
    this.#buffers.set(buf.dmaAddr, buf);
    return buf;
  }

  /** Frees a buffer from {@link alloc}. @throws MicError EINVAL when it is not live */
  free(buf: DmaBuffer): void {
    const dmaAddr = (buf as { dmaAddr?: unknown } | null)?.dmaAddr;
    if (typeof dmaAddr !== 'number' || this.#buffers.get(dmaAddr) !== buf) {
      throw new MicError('EINVAL', `${this.#name}: buffer at ${formatAddr(dmaAddr)} is not live`, {
        details: { dmaAddr },
      });
    }
    this.#buffers.delete(dmaAddr);
    cardPages(this.#card).free(dmaAddr);
  }

  /**
   * The card address of a view of card memory (`dma_map_single` without translation).
   * @throws MicError EINVAL for memory that is not card memory, or an empty view
   */
  mapSingle(va: Memory): number {
    let dmaAddr: number;
    try {
      dmaAddr = this.#card.physAddrOf(va);
    } catch (err) {
      throw new MicError('EINVAL', `${this.#name}: memory to map is not card memory`, { cause: err });
    }
    const len = va.byteLength;
    if (!isSize(len)) throw new MicError('EINVAL', `${this.#name}: cannot map an empty view`);
    this.#mappings.add(dmaAddr, len);
    return dmaAddr;
  }

  /** Undoes one {@link mapSingle}. @throws MicError EINVAL when no such mapping is live */
  unmapSingle(dmaAddr: number, size: number): void {
    this.#mappings.release(dmaAddr, size);
  }
}
