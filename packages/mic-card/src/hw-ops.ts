/**
 * The card's implementations of the bus hardware ops on the x100 model: `VopHwOps` and
 * `ScifHwOps` (card doorbells, the host's device page and host memory through the SMPT) and
 * `MbusHwOps` (DMA channel interrupts).
 *
 * @see drivers/misc/mic/card/mic_device.c (`vop_hw_ops`, `scif_hw_ops`, `mbus_hw_ops`)
 * @see drivers/misc/mic/card/mic_x100.c (`mic_send_intr`, `mic_send_p2p_intr`, `mic_card_map`)
 */
import { type IrqHandler, type MicIrq, NO_DOORBELL } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import type { Memory } from '@mic/memory';
import type { MbusHwOps } from '@mic/mic-bus';
import type { MicMw, ScifHwOps } from '@mic/scif-bus';
import type { VopHwOps } from '@mic/vop-bus';
import {
  X100_APICICR_SEND,
  X100_CARD_NUM_DOORBELLS,
  X100_INTR,
  X100_MMIO_SIZE,
  type X100CardView,
  apicIcrReg,
  rdmasrReg,
} from '@mic/x100';
import { CARD_INTR, type CardIrqTable } from './irq.js';

/** What the card's hw ops share. */
export interface CardOpsContext {
  readonly card: X100CardView;
  readonly irqs: CardIrqTable;
}

function checkRange(pa: number, len: number): void {
  if (!Number.isSafeInteger(len) || len <= 0) {
    throw new MicError('EINVAL', `remap length ${String(len)} is not a positive integer`, {
      details: { len },
    });
  }
  if (!Number.isSafeInteger(pa) || pa < 0) {
    throw new MicError('EINVAL', `remap address ${String(pa)} is not a non-negative integer`, {
      details: { pa },
    });
  }
}

/**
 * The doorbell-link ops the card's SCIF and VOP devices share: the least used of the first 8
 * card doorbells, handlers on the card interrupt line, host doorbells rung through `SDBIC`, and
 * host memory reached through the SMPT window (`mic_card_map`).
 */
class CardLinkOps {
  protected readonly ctx: CardOpsContext;
  readonly #mappings = new Set<Memory>();

  constructor(ctx: CardOpsContext) {
    this.ctx = ctx;
  }

  /** `mic_next_card_db`: the least used of doorbells 0–7, the lowest on a tie. */
  nextDb(): number {
    return this.ctx.irqs.doorbells.next();
  }

  /**
   * `mic_request_card_irq` on doorbell `db` (0–15).
   * @throws MicError EINVAL for another doorbell or a missing handler, ENODEV after a reset
   */
  requestIrq<D>(func: IrqHandler<D>, name: string, data: D, db: number): MicIrq {
    if (typeof func !== 'function')
      throw new MicError('EINVAL', `interrupt request '${name}' has no handler`);
    return this.ctx.irqs.request(CARD_INTR.DB, func, null, name, data, db);
  }

  /** `mic_free_card_irq`. @throws MicError EINVAL for a cookie that is not live */
  freeIrq<D>(cookie: MicIrq, data: D): void {
    this.ctx.irqs.free(cookie, data);
  }

  /** `mic_ack_interrupt`: nothing to do on the card. */
  ackInterrupt(_num: number): void {
    this.ctx.card.ackInterrupt();
  }

  /**
   * Rings host doorbell `db` (`mic_send_intr`: DBREQ to `SDBIC0 + 4 * db`).
   * @throws MicError EINVAL for -1 ("no doorbell") or a doorbell outside 0–3, ENODEV after a reset
   */
  sendIntr(db: number): void {
    if (db === NO_DOORBELL) {
      throw new MicError('EINVAL', `host doorbell ${String(db)} is "no doorbell": nothing to ring`, {
        details: { db },
      });
    }
    this.ctx.card.sendIntr(db);
  }

  /**
   * Host memory at card address `pa` in the SMPT window (`mic_card_map`).
   * @throws MicError EINVAL for a bad length or address, EFAULT when no mapped SMPT entry
   * covers the range
   */
  remap(pa: number, len: number): Memory {
    checkRange(pa, len);
    const va = this.ctx.card.cardMap(pa, len);
    this.#mappings.add(va);
    return va;
  }

  /** `mic_card_unmap`. @throws MicError EINVAL for memory that is not a live remap */
  unmap(va: Memory): void {
    if (!this.#mappings.delete(va)) {
      throw new MicError('EINVAL', 'unmap of memory that is not a live remap of this card device');
    }
  }

  /** Mappings from {@link remap} not unmapped yet. */
  get liveMappings(): number {
    return this.#mappings.size;
  }
}

/**
 * The card's `VopHwOps`: the host's device page as the remote page, no page of its own.
 * @see drivers/misc/mic/card/mic_device.c (`vop_hw_ops`)
 */
export class CardVopHwOps extends CardLinkOps implements VopHwOps {
  readonly #rdp: Memory;

  /** @param rdp - the host's device page as the card mapped it */
  constructor(ctx: CardOpsContext, rdp: Memory) {
    super(ctx);
    this.#rdp = rdp;
  }

  /** The host's device page, mapped through the SMPT. */
  getRemoteDp(): Memory | null {
    return this.#rdp;
  }

  /** The card has no device page of its own (the kernel leaves the op unset). */
  getDp(): Memory | null {
    return null;
  }
}

/**
 * The card's `ScifHwOps`, with `sendP2pIntr` to ring another card.
 * @see drivers/misc/mic/card/mic_device.c (`scif_hw_ops`)
 */
export class CardScifHwOps extends CardLinkOps implements ScifHwOps {
  /**
   * Rings doorbell `db` of a peer card through that card's MMIO window `mw`
   * (`mic_send_p2p_intr`): doorbells 0–7 set the send bit of the peer's `APICICR0 + 8 * db`,
   * 8–15 write 0 to the `RDMASR` register that rings them in the x100 model (`RDMASR[17 + db - 8]`,
   * the register the host rings them through; the kernel writes `RDMASR[db - 8]` here).
   * @throws MicError EINVAL when `mw` is not an MMIO window or `db` not a card doorbell
   */
  sendP2pIntr(db: number, mw: MicMw): void {
    const w = mw as Partial<MicMw> | null;
    if (
      typeof w !== 'object' ||
      w === null ||
      typeof w.va !== 'object' ||
      w.va === null ||
      w.len !== X100_MMIO_SIZE ||
      w.va.byteLength !== X100_MMIO_SIZE
    ) {
      throw new MicError('EINVAL', `p2p window is not a ${X100_MMIO_SIZE}-byte MMIO window of a card`);
    }
    if (!Number.isInteger(db) || db < 0 || db >= X100_CARD_NUM_DOORBELLS) {
      throw new MicError('EINVAL', `peer card doorbell ${String(db)} is not an integer in [0, 15]`, {
        details: { db },
      });
    }
    const va = w.va;
    if (db < X100_INTR.CARD_NUM_SBOX_DB) {
      const reg = apicIcrReg(db);
      va.storeU32(reg, va.loadU32(reg) | X100_APICICR_SEND);
    } else {
      va.storeU32(rdmasrReg(db - X100_INTR.CARD_NUM_SBOX_DB + X100_INTR.RDMASR_IRQ_BASE), 0);
    }
  }
}

/**
 * The card's `MbusHwOps` for its DMA device: channel interrupts at card source 16 + channel.
 * @see drivers/misc/mic/card/mic_device.c (`mbus_hw_ops`)
 */
export class CardMbusHwOps implements MbusHwOps {
  readonly #ctx: CardOpsContext;

  constructor(ctx: CardOpsContext) {
    this.#ctx = ctx;
  }

  /**
   * `request_threaded_irq` on DMA channel `intrSrc` (0–7).
   * @throws MicError EINVAL for another channel or when both functions are null
   */
  requestThreadedIrq<D>(
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    intrSrc: number,
  ): MicIrq {
    return this.#ctx.irqs.request(CARD_INTR.DMA, handler, threadFn, name, data, intrSrc);
  }

  /** `free_irq`. @throws MicError EINVAL for a cookie that is not live */
  freeIrq<D>(cookie: MicIrq, data: D): void {
    this.#ctx.irqs.free(cookie, data);
  }

  /** `mic_ack_interrupt`: nothing to do on the card. */
  ackInterrupt(_num: number): void {
    this.#ctx.card.ackInterrupt();
  }
}
