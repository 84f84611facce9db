/**
 * The card's interrupt requests on the x100 card interrupt line, as `mic_request_card_irq` and
 * `mic_free_card_irq` hand them out: doorbells 0–15 for SCIF and VOP (with the usage count
 * `mic_next_card_db` reads, over the first 8), and DMA channels 0–7 for the mbus DMA device.
 *
 * How requests are checked, called and freed is `ThreadedIrqTable` (`@mic/bus-core`), which the
 * host driver shares.
 *
 * @see drivers/misc/mic/card/mic_device.c (`mic_request_card_irq`, `mic_free_card_irq`,
 * `mic_next_card_db`)
 * @see drivers/misc/mic/card/mic_x100.c (`mic_db_to_irq`)
 */
import { CardDoorbellAllocator, type IrqHandler, type MicIrq, ThreadedIrqTable } from '@mic/bus-core';
import type { Logger } from '@mic/logger';
import { MIC_X100_MAX_DOORBELL_IDX } from './constants.js';
import { X100_CARD_NUM_DOORBELLS, X100_DMA, cardDmaSrc, type IrqCookie, type X100CardView } from '@mic/x100';

/** Which kind of source a request is for. */
export const CARD_INTR = {
  /** A doorbell the host (or a peer card) rings (0–15). */
  DB: 'doorbell',
  /** A DMA channel's completion interrupt (channel 0–7, card source 16 + channel). */
  DMA: 'dma',
} as const;

/** One of {@link CARD_INTR}. */
export type CardIntrType = (typeof CARD_INTR)[keyof typeof CARD_INTR];

/**
 * The interrupt requests of the card (`struct mic_irq_info` on the card), on the card view's
 * interrupt line, with the doorbell usage counts `mic_next_card_db` reads.
 */
export class CardIrqTable extends ThreadedIrqTable<CardIntrType, IrqCookie> {
  /** `irq_usage_count` of the doorbells `mic_next_card_db` chooses from. */
  readonly doorbells = new CardDoorbellAllocator(MIC_X100_MAX_DOORBELL_IDX);

  constructor(card: X100CardView, logger: Logger) {
    super({
      side: 'card',
      hw: card,
      kinds: {
        [CARD_INTR.DB]: { count: X100_CARD_NUM_DOORBELLS, src: (num) => num },
        [CARD_INTR.DMA]: { count: X100_DMA.MAX_NUM_CHAN, src: cardDmaSrc },
      },
      logger,
    });
  }

  /**
   * `mic_request_card_irq`: see {@link ThreadedIrqTable.request}; a doorbell request counts as a
   * use of that doorbell.
   * @throws MicError also ENODEV after a card reset
   */
  override request<D>(
    type: CardIntrType,
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    num: number,
  ): MicIrq {
    const cookie = super.request(type, handler, threadFn, name, data, num);
    if (type === CARD_INTR.DB && num < MIC_X100_MAX_DOORBELL_IDX) this.doorbells.use(num);
    return cookie;
  }

  /** `mic_free_card_irq`: see {@link ThreadedIrqTable.free}; releases the doorbell's use. */
  override free(cookie: MicIrq, data: unknown): { readonly type: CardIntrType; readonly num: number } {
    const freed = super.free(cookie, data);
    if (freed.type === CARD_INTR.DB && freed.num < MIC_X100_MAX_DOORBELL_IDX) {
      this.doorbells.release(freed.num);
    }
    return freed;
  }
}
