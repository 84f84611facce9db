/**
 * The card's DMA map ops: card memory is mapped directly, the DMA address is the card physical
 * address, which the host reaches through its aperture at the same offset. The kernel registers
 * the card's devices with `NULL` ops (direct mapping through the page allocator); a TypeScript
 * program has no global page allocator, so the ops are where drivers get memory the host can
 * reach, as the bus-core mocks do.
 *
 * @see drivers/misc/mic/card/mic_device.c (`vop_register_device(..., NULL, ...)`)
 */
import { type DmaAllocation, DmaMapOpsBase } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import type { Memory } from '@mic/memory';
import type { X100CardView } from '@mic/x100';
import { cardPages } from './card-pages.js';

/**
 * `DmaMapOps` of the card over an x100 card view: `alloc` takes zeroed card pages from
 * {@link cardPages} (page-aligned from 4096 bytes up, 64-byte aligned below); `mapSingle` accepts
 * any view of card memory. The bookkeeping is `DmaMapOpsBase` (`@mic/bus-core`), shared with the
 * host's and the mocks' ops.
 *
 * @example
 * const ops = new CardDmaMapOps(card);
 * const ring = ops.alloc(8192); // the host remaps ring.dmaAddr through its aperture
 */
export class CardDmaMapOps extends DmaMapOpsBase {
  readonly #card: X100CardView;

  /**
   * @param card - the card's view of the hardware
   * @param name - what errors call these ops (default `mic card dma`)
   */
  constructor(card: X100CardView, name = 'mic card dma') {
    super(name);
    this.#card = card;
  }

  /**
   * Zeroed card pages (`__get_free_pages`); their DMA address is their card address.
   * @throws MicError ENOMEM when card memory is exhausted, ENODEV after a card reset
   */
  protected allocMapped(size: number, align: number): DmaAllocation {
    const pages = cardPages(this.#card);
    const piece = pages.alloc(size, align);
    return { va: piece.mem, dmaAddr: piece.offset, release: () => pages.free(piece.offset) };
  }

  /** The card address of a view of card memory. @throws MicError EINVAL for other memory */
  protected addrOf(va: Memory): number {
    try {
      return this.#card.physAddrOf(va);
    } catch (err) {
      throw new MicError('EINVAL', `${this.name}: memory to map is not card memory`, { cause: err });
    }
  }
}
