/**
 * The card's interrupt requests on the x100 card interrupt line, as `mic_request_card_irq` and
 * `mic_free_card_irq` hand them out: doorbells 0–15 for SCIF and VOP (with the usage count
 * `mic_next_card_db` reads, over the first 8), and DMA channels 0–7 for the mbus DMA device.
 *
 * A handler runs when its source is delivered; when it returns `IRQ_RETURN.WAKE_THREAD` (or when
 * the request has no handler) the thread function runs in a later task. A request freed before
 * delivery, or before its thread function ran, is not called.
 *
 * @see drivers/misc/mic/card/mic_device.c (`mic_request_card_irq`, `mic_free_card_irq`,
 * `mic_next_card_db`)
 * @see drivers/misc/mic/card/mic_x100.c (`mic_db_to_irq`)
 */
import { IRQ_RETURN, type IrqHandler, type MicIrq } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import type { Logger } from '@mic/logger';
import {
  CardDoorbellAllocator,
  X100_CARD_ALLOC_DOORBELLS,
  X100_CARD_NUM_DOORBELLS,
  X100_DMA,
  cardDmaSrc,
  type IrqCookie,
  type X100CardView,
} from '@mic/x100';

/** Which kind of source a request is for. */
export const CARD_INTR = {
  /** A doorbell the host (or a peer card) rings (0–15). */
  DB: 'doorbell',
  /** A DMA channel's completion interrupt (channel 0–7, card source 16 + channel). */
  DMA: 'dma',
} as const;

/** One of {@link CARD_INTR}. */
export type CardIntrType = (typeof CARD_INTR)[keyof typeof CARD_INTR];

class CardIrqCookie implements MicIrq {
  readonly intrSrc: number;
  readonly name: string;
  constructor(intrSrc: number, name: string) {
    this.intrSrc = intrSrc;
    this.name = name;
  }
}

interface Request {
  readonly type: CardIntrType;
  readonly x100: IrqCookie;
  readonly data: unknown;
  live: boolean;
}

/** The interrupt requests of the card (`struct mic_irq_info` on the card). */
export class CardIrqTable {
  readonly #card: X100CardView;
  readonly #logger: Logger;
  readonly #requests = new Map<MicIrq, Request>();
  /** `irq_usage_count` of the doorbells `mic_next_card_db` chooses from. */
  readonly doorbells = new CardDoorbellAllocator(X100_CARD_ALLOC_DOORBELLS);

  constructor(card: X100CardView, logger: Logger) {
    this.#card = card;
    this.#logger = logger;
  }

  /** Requests not freed yet. */
  get live(): number {
    return this.#requests.size;
  }

  /**
   * Installs `handler` and/or `threadFn` on doorbell or DMA channel `num`. Both are called with
   * `num` and `data`.
   * @throws MicError EINVAL when `num` is not a source of that kind or both functions are absent,
   * ENODEV after a card reset
   */
  request<D>(
    type: CardIntrType,
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    num: number,
  ): MicIrq {
    const max = type === CARD_INTR.DB ? X100_CARD_NUM_DOORBELLS - 1 : X100_DMA.MAX_NUM_CHAN - 1;
    if (!Number.isInteger(num) || num < 0 || num > max) {
      throw new MicError('EINVAL', `card ${type} ${String(num)} is not an integer in [0, ${max}]`, {
        details: { type, num },
      });
    }
    if (typeof handler !== 'function' && typeof threadFn !== 'function') {
      throw new MicError(
        'EINVAL',
        `interrupt request '${name}' on card ${type} ${num} has neither handler nor thread fn`,
      );
    }
    const src = type === CARD_INTR.DB ? num : cardDmaSrc(num);
    const cookie = new CardIrqCookie(num, String(name));
    const primary = typeof handler === 'function' ? handler : null;
    const thread = typeof threadFn === 'function' ? threadFn : null;
    const req: Request = {
      type,
      x100: this.#card.requestIrq(
        src,
        () => {
          if (!req.live) return;
          const ret = primary ? primary(num, data) : IRQ_RETURN.WAKE_THREAD;
          if (ret === IRQ_RETURN.WAKE_THREAD && thread) {
            setImmediate(() => {
              if (!req.live) return;
              try {
                thread(num, data);
              } catch (err) {
                this.#logger.error('interrupt thread fn threw', {
                  type,
                  num,
                  name: cookie.name,
                  error: err instanceof Error ? err.message : String(err),
                });
              }
            });
          }
        },
        cookie.name,
      ),
      data,
      live: true,
    };
    if (type === CARD_INTR.DB && num < X100_CARD_ALLOC_DOORBELLS) this.doorbells.use(num);
    this.#requests.set(cookie, req);
    return cookie;
  }

  /**
   * Removes a request; neither of its functions runs afterwards.
   * @throws MicError EINVAL for a cookie that is not live here, or other data than requested with
   */
  free(cookie: MicIrq, data: unknown): void {
    const req = this.#requests.get(cookie);
    if (!req) throw new MicError('EINVAL', `card interrupt cookie ${describe(cookie)} is not live`);
    if (req.data !== data) {
      throw new MicError(
        'EINVAL',
        `free of card interrupt ${describe(cookie)} with other data than requested`,
      );
    }
    req.live = false;
    this.#requests.delete(cookie);
    this.#card.freeIrq(req.x100);
    if (req.type === CARD_INTR.DB && cookie.intrSrc < X100_CARD_ALLOC_DOORBELLS) {
      this.doorbells.release(cookie.intrSrc);
    }
  }
}

function describe(cookie: unknown): string {
  if (cookie instanceof CardIrqCookie) return `'${cookie.name}' (${cookie.intrSrc})`;
  return String(cookie);
}
