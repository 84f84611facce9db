/**
 * The host's implementations of the bus hardware ops on the x100 model: `VopHwOps` and
 * `ScifHwOps` (doorbells, device page, the aperture as remote memory) and `MbusHwOps` (DMA
 * channel interrupts).
 *
 * @see drivers/misc/mic/host/mic_boot.c (`vop_hw_ops`, `scif_hw_ops`, `mbus_hw_ops`)
 * @see drivers/misc/mic/host/mic_x100.c (`mic_x100_send_intr`, `mic_x100_intr_workarounds`)
 */
import { DoorbellLinkOps, type HostDoorbellAllocator, ThreadedIrqOps } from '@mic/bus-core';
import type { Memory } from '@mic/memory';
import type { MbusHwOps } from '@mic/mic-bus';
import type { ScifHwOps } from '@mic/scif-bus';
import type { VopHwOps } from '@mic/vop-bus';
import type { X100HostView } from '@mic/x100';
import { MIC_INTR, type HostIrqTable, type MicIntrType } from './irq.js';

/** What the host's hw ops share: one per card. */
export interface HostOpsContext {
  readonly host: X100HostView;
  readonly irqs: HostIrqTable;
  /** `mic_next_db`: round robin over the 4 host doorbells, shared by SCIF and VOP. */
  readonly doorbells: HostDoorbellAllocator;
}

/**
 * The doorbell-link ops the host's SCIF and VOP devices share: doorbells 0–3 round robin,
 * handlers on the host interrupt line (acknowledged with `mic_x100_intr_workarounds`), card
 * doorbells rung through `APICICR`/`RDMASR` (`mic_x100_send_intr`), and card memory reached
 * through the aperture (`aper.va + pa`). The rest is `DoorbellLinkOps` (`@mic/bus-core`), shared
 * with the card.
 */
class HostLinkOps extends DoorbellLinkOps<MicIntrType> {
  protected readonly ctx: HostOpsContext;

  constructor(ctx: HostOpsContext) {
    super({ side: 'host', irqs: ctx.irqs, doorbellKind: MIC_INTR.DB, doorbells: ctx.doorbells });
    this.ctx = ctx;
  }

  protected ring(db: number): void {
    this.ctx.host.sendIntr(db);
  }

  protected ack(): void {
    this.ctx.host.ackInterrupt();
  }

  protected window(pa: number, len: number): Memory {
    return this.ctx.host.apertureWindow(pa, len);
  }
}

/**
 * The host's `VopHwOps`: its own device page, no remote page.
 * @see drivers/misc/mic/host/mic_boot.c (`vop_hw_ops`)
 */
export class HostVopHwOps extends HostLinkOps implements VopHwOps {
  readonly #dp: Memory;

  /** @param dp - the host's device page (`mdev->dp`) */
  constructor(ctx: HostOpsContext, dp: Memory) {
    super(ctx);
    this.#dp = dp;
  }

  /** The host has no remote device page (`NULL`). */
  getRemoteDp(): Memory | null {
    return null;
  }

  /** The host's device page. */
  getDp(): Memory | null {
    return this.#dp;
  }
}

/**
 * The host's `ScifHwOps` (no `sendP2pIntr`: only cards ring peers).
 * @see drivers/misc/mic/host/mic_boot.c (`scif_hw_ops`)
 */
export class HostScifHwOps extends HostLinkOps implements ScifHwOps {}

/**
 * The host's `MbusHwOps` for the DMA device: channel interrupts at host source 8 + channel,
 * acknowledged with `mic_x100_intr_workarounds`.
 * @see drivers/misc/mic/host/mic_boot.c (`mbus_hw_ops`)
 */
export class HostMbusHwOps extends ThreadedIrqOps<MicIntrType> implements MbusHwOps {
  readonly #host: X100HostView;

  constructor(ctx: HostOpsContext) {
    super(ctx.irqs, MIC_INTR.DMA);
    this.#host = ctx.host;
  }

  protected ack(): void {
    this.#host.ackInterrupt();
  }
}
