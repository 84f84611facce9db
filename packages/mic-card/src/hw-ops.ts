/**
 * The card's implementations of the bus hardware ops on the x100 model: `VopHwOps` and
 * `ScifHwOps` (card doorbells, the host's device page and host memory through the SMPT) and
 * `MbusHwOps` (DMA channel interrupts).
 *
 * @see drivers/misc/mic/card/mic_device.c (`vop_hw_ops`, `scif_hw_ops`, `mbus_hw_ops`)
 * @see drivers/misc/mic/card/mic_x100.c (`mic_send_intr`, `mic_send_p2p_intr`, `mic_card_map`)
 */
import { DoorbellLinkOps, ThreadedIrqOps } from '@mic/bus-core';
import { MicError, checkInt } from '@mic/errors';
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
import { CARD_INTR, type CardIntrType, type CardIrqTable } from './irq.js';

/** What the card's hw ops share. */
export interface CardOpsContext {
  readonly card: X100CardView;
  readonly irqs: CardIrqTable;
}

/**
 * The doorbell-link ops the card's SCIF and VOP devices share: the least used of the first 8
 * card doorbells, handlers on the card interrupt line (`mic_ack_interrupt` does nothing), host
 * doorbells rung through `SDBIC` (`mic_send_intr`), and host memory reached through the SMPT
 * window (`mic_card_map`). The rest is `DoorbellLinkOps` (`@mic/bus-core`), shared with the host.
 */
class CardLinkOps extends DoorbellLinkOps<CardIntrType> {
  protected readonly ctx: CardOpsContext;

  constructor(ctx: CardOpsContext) {
    super({ side: 'card', irqs: ctx.irqs, doorbellKind: CARD_INTR.DB, doorbells: ctx.irqs.doorbells });
    this.ctx = ctx;
  }

  protected ring(db: number): void {
    this.ctx.card.sendIntr(db);
  }

  protected ack(): void {
    this.ctx.card.ackInterrupt();
  }

  protected window(pa: number, len: number): Memory {
    return this.ctx.card.cardMap(pa, len);
  }

  /** `mic_card_unmap`: the host's IOMMU may take the range back now. */
  protected override unwindow(va: Memory): void {
    this.ctx.card.cardUnmap(va);
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
    checkInt('peer card doorbell', db, 0, X100_CARD_NUM_DOORBELLS - 1);
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
export class CardMbusHwOps extends ThreadedIrqOps<CardIntrType> implements MbusHwOps {
  readonly #card: X100CardView;

  constructor(ctx: CardOpsContext) {
    super(ctx.irqs, CARD_INTR.DMA);
    this.#card = ctx.card;
  }

  /** `mic_ack_interrupt`: nothing to do on the card. */
  protected ack(): void {
    this.#card.ackInterrupt();
  }
}
