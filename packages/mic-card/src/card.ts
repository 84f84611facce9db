/**
 * The card-side MIC driver's state (`struct mic_driver`): probe and remove on the x100 model.
 *
 * {@link MicCard.probe} (`mic_driver_init`), in the seed order: DMA device on the mic bus
 * (`MBUS_DEV_DMA_MIC`, index 0, the card's own MMIO) → the host's device page (address from
 * `SPAD14/15`, mapped through the SMPT, `mic_bootparam` magic checked: `EIO` otherwise) → DMA
 * channels → VOP device (`dnode` 0, no aperture, the first DMA channel) → SCIF device (`dnode` 0,
 * `snode` = `bootparam.node_id`, the host's page as `rdp`). A failure unwinds in reverse;
 * {@link MicCard.remove} (`mic_driver_uninit`) undoes everything in reverse.
 *
 * @see drivers/misc/mic/card/mic_device.c (`mic_driver_init`, `mic_driver_uninit`)
 * @see drivers/misc/mic/card/mic_x100.c
 */
import { type DmaChannel, type UndoStep, unwind } from '@mic/bus-core';
import { MicError, errorMessage } from '@mic/errors';
import type { Logger } from '@mic/logger';
import type { Memory } from '@mic/memory';
import { readBootparam } from '@mic/mic-common';
import {
  type DmaChannelProvider,
  releaseChannels,
  requestDmaChans,
  MBUS_DEV_DMA_MIC,
  type MbusBus,
  type MbusDevice,
} from '@mic/mic-bus';
import { MIC_MAX_DMA_CHAN, MIC_SCIF_DEV, type MicMw, type ScifBus, type ScifHwDev } from '@mic/scif-bus';
import { VOP_DEV_TRNSP, type VopBus, type VopDevice } from '@mic/vop-bus';
import { MmioMemory, X100_CARD_MMIO_BASE, X100_MMIO_SIZE, type X100CardView } from '@mic/x100';
import { cardDpInit } from './device-page.js';
import { CardDmaMapOps } from './dma-ops.js';
import { CardMbusHwOps, type CardOpsContext, CardScifHwOps, CardVopHwOps } from './hw-ops.js';
import { CardIrqTable } from './irq.js';

/** The buses the card driver registers on, owned by the caller (the card kernel's buses). */
export interface MicCardBuses {
  readonly mbus: MbusBus;
  readonly scif: ScifBus;
  readonly vop: VopBus;
}

/** What a card needs besides the driver (see `MicCardDriver.probe`). */
export interface MicCardOptions {
  /** The card's view of the hardware (the card code's entry gets it). */
  readonly card: X100CardView;
  /** Where the devices go. */
  readonly buses: MicCardBuses;
  /** Default: the driver's logger. */
  readonly logger?: Logger;
  /** DMA channels for SCIF and VOP; without it they get none (their CPU-copy fallback). */
  readonly dma?: DmaChannelProvider;
}

/** The steps of {@link MicCard.probe}, in order. */
export const MIC_CARD_PROBE_STEPS = ['dma', 'device page', 'dma channels', 'vop', 'scif'] as const;

/** One of {@link MIC_CARD_PROBE_STEPS}. */
export type MicCardStep = (typeof MIC_CARD_PROBE_STEPS)[number];

/** The card driver's state. Built and probed by `MicCardDriver.probe`. */
export class MicCard {
  /** The card's view of the hardware. */
  readonly card: X100CardView;
  /** The card's own MMIO (`0x08_007C_0000`, 128 KiB) as a window. */
  readonly mmio: MicMw;
  /** The DMA map ops of every device of the card (direct mapping). */
  readonly dmaOps: CardDmaMapOps;
  readonly #buses: MicCardBuses;
  readonly #logger: Logger;
  readonly #dma: DmaChannelProvider | undefined;
  readonly #irqs: CardIrqTable;
  readonly #ctx: CardOpsContext;
  readonly #onRemoved: (card: MicCard) => void;
  readonly #undo: UndoStep[] = [];
  #state: 'new' | 'probing' | 'probed' | 'removed' = 'new';
  #dp: Memory | undefined;
  #nodeId = 0;
  #mbus: MbusDevice | undefined;
  #vop: VopDevice | undefined;
  #scif: ScifHwDev | undefined;
  #channels: readonly DmaChannel[] = [];

  /** @internal Use `MicCardDriver.probe`. */
  constructor(options: MicCardOptions, logger: Logger, onRemoved: (card: MicCard) => void) {
    this.card = options.card;
    this.#buses = options.buses;
    this.#logger = logger;
    this.#dma = options.dma;
    this.#onRemoved = onRemoved;
    this.mmio = Object.freeze({ pa: X100_CARD_MMIO_BASE, va: this.card.mmio.memory, len: X100_MMIO_SIZE });
    this.dmaOps = new CardDmaMapOps(this.card);
    this.#irqs = new CardIrqTable(this.card, logger);
    this.#ctx = { card: this.card, irqs: this.#irqs };
  }

  /** The host's device page as the card mapped it, while probed. */
  get dp(): Memory | undefined {
    return this.#dp;
  }

  /** This card's SCIF node id (`bootparam.node_id`), once read. */
  get nodeId(): number {
    return this.#nodeId;
  }

  /** The DMA device on the mic bus, while probed. */
  get mbusDevice(): MbusDevice | undefined {
    return this.#mbus;
  }

  /** The VOP device, while probed. */
  get vopDevice(): VopDevice | undefined {
    return this.#vop;
  }

  /** The SCIF device, while probed. */
  get scifDevice(): ScifHwDev | undefined {
    return this.#scif;
  }

  /** The DMA channels held for SCIF and VOP. */
  get dmaChannels(): readonly DmaChannel[] {
    return this.#channels;
  }

  /** Interrupt requests on the card's line not freed yet. */
  get irqsInUse(): number {
    return this.#irqs.live;
  }

  /** Handlers on card doorbell `db` (0–7) as `mic_next_card_db` counts them. */
  doorbellUsage(db: number): number {
    return this.#irqs.doorbells.usage(db);
  }

  /**
   * `mic_driver_init`: registers the DMA, VOP and SCIF devices (see the module comment). Unwinds
   * in reverse on failure.
   * @throws MicError EIO on a bootparam magic mismatch, EFAULT when the device page address is
   * not mapped, ENODEV when the DMA provider has no channel, EBUSY when already probed, or what a
   * bus threw
   */
  async probe(): Promise<void> {
    if (this.#state !== 'new') throw new MicError('EBUSY', 'the card driver is already probed');
    this.#state = 'probing';
    const undo = this.#undo;
    let step: MicCardStep = 'dma';
    try {
      const mbdev = await this.#buses.mbus.registerDevice({
        id: MBUS_DEV_DMA_MIC,
        dmaOps: this.dmaOps,
        hwOps: new CardMbusHwOps(this.#ctx),
        index: 0,
        mmioVa: new MmioMemory(this.card.mmio),
      });
      this.#mbus = mbdev;
      undo.push(async () => {
        this.#mbus = undefined;
        await this.#buses.mbus.unregisterDevice(mbdev);
      });

      step = 'device page';
      const dp = cardDpInit(this.card);
      this.#dp = dp;
      undo.push(() => {
        this.#dp = undefined;
        if (this.card.alive) this.card.cardUnmap(dp); // mic_dp_uninit: mic_card_unmap
      });

      step = 'dma channels';
      const channels = await requestDmaChans(this.#dma, mbdev, MIC_MAX_DMA_CHAN, this.#logger);
      this.#channels = channels;
      undo.push(async () => {
        this.#channels = [];
        if (this.#dma) await releaseChannels(this.#dma, channels);
      });

      step = 'vop';
      const vpdev = await this.#buses.vop.registerDevice({
        id: VOP_DEV_TRNSP,
        dmaOps: this.dmaOps,
        hwOps: new CardVopHwOps(this.#ctx, dp),
        dnode: 0,
        aper: null,
        dmaCh: channels[0] ?? null,
      });
      this.#vop = vpdev;
      undo.push(async () => {
        this.#vop = undefined;
        await this.#buses.vop.unregisterDevice(vpdev);
      });

      step = 'scif';
      this.#nodeId = readBootparam(dp).nodeId;
      const sdev = await this.#buses.scif.registerDevice({
        id: MIC_SCIF_DEV,
        dmaOps: this.dmaOps,
        hwOps: new CardScifHwOps(this.#ctx),
        dnode: 0,
        snode: this.#nodeId,
        mmio: this.mmio,
        aper: null,
        dp: null,
        rdp: dp,
        dmaCh: channels,
        cardRelDa: true,
      });
      this.#scif = sdev;
      undo.push(async () => {
        this.#scif = undefined;
        await this.#buses.scif.unregisterDevice(sdev);
      });
    } catch (err) {
      this.#logger.warn('probe failed', { step, error: errorMessage(err) });
      await unwind(this.#undo, this.#logger, 'probe');
      this.#state = 'removed';
      this.#onRemoved(this);
      throw err;
    }
    this.#state = 'probed';
    this.#logger.info('probed', {
      node: this.#nodeId,
      mbus: this.#mbus?.name,
      vop: this.#vop?.name,
      scif: this.#scif?.name,
      channels: this.#channels.length,
    });
  }

  /** `mic_driver_uninit`: SCIF, VOP, DMA channels, device page, DMA device, in that order. Idempotent. */
  async remove(): Promise<void> {
    if (this.#state === 'removed') return;
    if (this.#state !== 'probed') throw new MicError('EBUSY', 'the card driver is being probed');
    this.#state = 'removed';
    await unwind(this.#undo, this.#logger, 'remove');
    this.#onRemoved(this);
    this.#logger.info('removed');
  }
}
