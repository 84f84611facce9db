/**
 * One card as the host driver holds it (`struct mic_device`): PCI probe and remove, and the COSM
 * hardware ops that boot and stop the card, on the x100 model.
 *
 * - {@link MicHost.probe} (`mic_probe`): checks the PCI identity, allocates the device page in
 *   host RAM, maps it through the SMPT and initialises `mic_bootparam`, then registers the COSM
 *   device. A failure unwinds in reverse.
 * - COSM `start` (`_mic_start`), in the seed order: `mic_bootparam` init → DMA device on the mic
 *   bus → DMA channels → SCIF device (`dnode = id + 1`) → VOP device (`dnode = id + 1`, the host
 *   DMA map ops, the aperture, the first DMA channel) → firmware load (image, command line and
 *   ramdisk into the aperture, then SMPT restore, interrupts on, `SPAD14/15` = device page, and
 *   the bootstrap interrupt that boots the card). A failure unwinds in reverse.
 * - COSM `stop` (`_mic_stop`): VOP → SCIF → DMA channels → DMA device, then `mic_bootparam` init.
 * - {@link MicHost.remove} (`mic_remove`): COSM device off the bus (a bound COSM driver stops the
 *   card), a card still started is stopped and reset, then the device page is unmapped and freed.
 *
 * @see drivers/misc/mic/host/mic_main.c (`mic_probe`, `mic_remove`)
 * @see drivers/misc/mic/host/mic_boot.c (`_mic_start`, `_mic_stop`, `cosm_hw_ops`)
 */
import { AsyncMutex, type DmaChannel, HostDoorbellAllocator, type UndoStep, unwind } from '@mic/bus-core';
import { type Clock, realClock } from '@mic/clock';
import {
  COSM_FAMILY,
  type CosmBootConfig,
  type CosmBus,
  type CosmDevice,
  type CosmHwOps,
  steppingName,
} from '@mic/cosm-bus';
import { MicError, errorMessage } from '@mic/errors';
import type { Logger } from '@mic/logger';
import {
  type DmaChannelProvider,
  releaseChannels,
  requestDmaChans,
  MBUS_DEV_DMA_HOST,
  type MbusBus,
  type MbusDevice,
} from '@mic/mic-bus';
import { MIC_MAX_DMA_CHAN, MIC_SCIF_DEV, type ScifBus, type ScifHwDev } from '@mic/scif-bus';
import { type MicMw, VOP_DEV_TRNSP, type VopBus, type VopDevice } from '@mic/vop-bus';
import { bootparamInit } from '@mic/mic-common';
import {
  MmioMemory,
  X100_HOST_NUM_DOORBELLS,
  X100_MMIO_SIZE,
  X100_PCI_DEVICE_IDS,
  X100_PCI_VENDOR_INTEL,
  X100_CARD_STATE,
  X100_SPAD,
  type X100HostView,
} from '@mic/x100';
import { MIC_RESET_SLEEP_MS, aperBarAddress, mmioBarAddress } from './constants.js';
import { type DevicePage, hostDpInit, hostDpUninit, writeDpAddress } from './device-page.js';
import { HostDmaMapOps } from './dma-ops.js';
import { type FirmwareLayout, type FirmwareLoader, checkBootConfig, loadFirmware } from './firmware.js';
import { HostMbusHwOps, type HostOpsContext, HostScifHwOps, HostVopHwOps } from './hw-ops.js';
import { HostIrqTable } from './irq.js';

/** The buses the host driver registers on, owned by the caller (the kernel's global buses). */
export interface MicHostBuses {
  readonly mbus: MbusBus;
  readonly scif: ScifBus;
  readonly vop: VopBus;
  readonly cosm: CosmBus;
}

/** What a host needs besides the driver (see `MicHostDriver.probe`). */
export interface MicHostOptions {
  /** The host's view of the card (`X100Platform.host`). */
  readonly host: X100HostView;
  /** Where the devices go. */
  readonly buses: MicHostBuses;
  /** The card index (`mdev->id`, 0–127); default: the lowest free one of the driver. */
  readonly id?: number;
  /** What resets wait on (default the real clock; pass the platform's clock). */
  readonly clock?: Clock;
  /** Default: the driver's logger, under `mic<id>`. */
  readonly logger?: Logger;
  /** DMA channels for SCIF and VOP; without it they get none (their CPU-copy fallback). */
  readonly dma?: DmaChannelProvider;
  /** Firmware files; without it the image is empty (the platform's card code boots anyway). */
  readonly firmware?: FirmwareLoader;
  /** Wait after setting the reset bit, in ms of `clock` (default 1000, as the kernel). */
  readonly resetSleepMs?: number;
}

/** The steps of {@link MicHost.probe}, in order. */
export const MIC_HOST_PROBE_STEPS = ['device page', 'cosm'] as const;

/** The steps of COSM `start` (`_mic_start`), in order. */
export const MIC_HOST_START_STEPS = ['dma', 'dma channels', 'scif', 'vop', 'firmware'] as const;

/** One of {@link MIC_HOST_PROBE_STEPS} or {@link MIC_HOST_START_STEPS}. */
export type MicHostStep = (typeof MIC_HOST_PROBE_STEPS)[number] | (typeof MIC_HOST_START_STEPS)[number];

/**
 * The host driver's state for one card. Built and probed by `MicHostDriver.probe`; see the module
 * comment for what each operation does.
 */
export class MicHost {
  /** The card index (`mdev->id`); its SCIF node is `id + 1`. */
  readonly id: number;
  /** The host's view of the card. */
  readonly host: X100HostView;
  /** The aperture (BAR0, card memory) as a window. */
  readonly aper: MicMw;
  /** The MMIO BAR (BAR4) as a window. */
  readonly mmio: MicMw;
  /** The DMA map ops of every device of this card (through the SMPT). */
  readonly dmaOps: HostDmaMapOps;
  /** The COSM hardware ops of this card (`cosm_hw_ops`). */
  readonly cosmOps: CosmHwOps;
  readonly #buses: MicHostBuses;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #dma: DmaChannelProvider | undefined;
  readonly #firmware: FirmwareLoader | undefined;
  readonly #resetSleepMs: number;
  readonly #ctx: HostOpsContext;
  readonly #irqs: HostIrqTable;
  readonly #lock = new AsyncMutex();
  readonly #onRemoved: (host: MicHost) => void;
  readonly #probeUndo: UndoStep[] = [];
  readonly #startUndo: UndoStep[] = [];
  #state: 'new' | 'probing' | 'probed' | 'removed' = 'new';
  #dp: DevicePage | undefined;
  #cosm: CosmDevice | undefined;
  #mbus: MbusDevice | undefined;
  #scif: ScifHwDev | undefined;
  #vop: VopDevice | undefined;
  #channels: readonly DmaChannel[] = [];
  #started = false;
  #firmwareLayout: FirmwareLayout | undefined;

  /** @internal Use `MicHostDriver.probe`. */
  constructor(id: number, options: MicHostOptions, logger: Logger, onRemoved: (host: MicHost) => void) {
    const resetSleepMs = options.resetSleepMs ?? MIC_RESET_SLEEP_MS;
    if (!(resetSleepMs >= 0) || !Number.isFinite(resetSleepMs)) {
      throw new MicError(
        'EINVAL',
        `reset sleep ${String(resetSleepMs)} ms is not a finite non-negative number`,
      );
    }
    this.id = id;
    this.host = options.host;
    this.#buses = options.buses;
    this.#clock = options.clock ?? realClock;
    this.#logger = logger;
    this.#dma = options.dma;
    this.#firmware = options.firmware;
    this.#resetSleepMs = resetSleepMs;
    this.#onRemoved = onRemoved;
    this.aper = Object.freeze({
      pa: aperBarAddress(id),
      va: this.host.aperture,
      len: this.host.aperture.byteLength,
    });
    this.mmio = Object.freeze({ pa: mmioBarAddress(id), va: this.host.mmio.memory, len: X100_MMIO_SIZE });
    this.dmaOps = new HostDmaMapOps(this.host, `mic${id} dma`);
    this.#irqs = new HostIrqTable(this.host, logger);
    this.#ctx = {
      host: this.host,
      irqs: this.#irqs,
      doorbells: new HostDoorbellAllocator(X100_HOST_NUM_DOORBELLS),
    };
    this.cosmOps = Object.freeze({
      reset: () => this.reset(),
      forceReset: () => this.reset(),
      ready: () => this.ready(),
      start: (cosmId: number, boot: CosmBootConfig) => this.start(cosmId, boot),
      stop: (force: boolean) => this.stop(force),
      family: () => this.family(),
      stepping: () => this.stepping(),
      aper: () => this.aper,
    });
  }

  /** The device page (`mdev->dp`), between probe and remove. */
  get dp(): DevicePage | undefined {
    return this.#dp;
  }

  /** The COSM device, between probe and remove. */
  get cosmDevice(): CosmDevice | undefined {
    return this.#cosm;
  }

  /** The DMA device on the mic bus, while started. */
  get mbusDevice(): MbusDevice | undefined {
    return this.#mbus;
  }

  /** The SCIF device, while started. */
  get scifDevice(): ScifHwDev | undefined {
    return this.#scif;
  }

  /** The VOP device, while started. */
  get vopDevice(): VopDevice | undefined {
    return this.#vop;
  }

  /** The DMA channels held for SCIF and VOP, while started. */
  get dmaChannels(): readonly DmaChannel[] {
    return this.#channels;
  }

  /** True between a successful COSM `start` and the next `stop`. */
  get started(): boolean {
    return this.#started;
  }

  /** Interrupt requests on this card's host line not freed yet. */
  get irqsInUse(): number {
    return this.#irqs.live;
  }

  /** Where the last successful start put the firmware, command line and ramdisk. */
  get firmwareLayout(): FirmwareLayout | undefined {
    return this.#firmwareLayout;
  }

  /**
   * `mic_probe` for this card: PCI identity, device page (host RAM, SMPT-mapped, `mic_bootparam`
   * initialised), COSM device. Unwinds in reverse on failure.
   * @throws MicError ENODEV for a device that is not an x100, EBUSY when already probed, or what
   * a step threw (ENOMEM, ENOSPC, the COSM bus's error)
   */
  async probe(): Promise<void> {
    if (this.#state !== 'new') throw new MicError('EBUSY', `mic${this.id} is already probed`);
    this.#state = 'probing';
    const undo = this.#probeUndo;
    let step: MicHostStep | 'pci' = 'pci';
    try {
      const { vendor, device } = this.host.pci;
      if (vendor !== X100_PCI_VENDOR_INTEL || !X100_PCI_DEVICE_IDS.includes(device)) {
        throw new MicError('ENODEV', `PCI device ${hex(vendor)}:${hex(device)} is not an x100 card`, {
          details: { vendor, device },
        });
      }
      step = 'device page';
      const dp = hostDpInit(this.host, this.id + 1);
      this.#dp = dp;
      undo.push(() => {
        this.#dp = undefined;
        hostDpUninit(this.host, dp);
      });
      step = 'cosm';
      const cdev = await this.#buses.cosm.registerDevice({ hwOps: this.cosmOps });
      this.#cosm = cdev;
      undo.push(async () => {
        this.#cosm = undefined;
        await this.#buses.cosm.unregisterDevice(cdev);
      });
    } catch (err) {
      this.#logger.warn('probe failed', { step, error: errorMessage(err) });
      await unwind(undo, this.#logger, `mic${this.id} probe`);
      this.#state = 'removed';
      this.#onRemoved(this);
      throw err;
    }
    this.#state = 'probed';
    this.#logger.info('probed', { id: this.id, dp: this.#dp?.micAddr, cosm: this.#cosm?.name });
  }

  /**
   * `mic_remove`: takes the COSM device off its bus (a bound COSM driver stops the card), stops
   * a card still started and resets any card not back at its firmware, then frees the device
   * page. Idempotent.
   */
  async remove(): Promise<void> {
    if (this.#state === 'removed') return;
    if (this.#state !== 'probed') throw new MicError('EBUSY', `mic${this.id} is being probed`);
    this.#state = 'removed';
    const undo = this.#probeUndo;
    const cosm = undo.pop();
    if (cosm) {
      try {
        await cosm();
      } catch (err) {
        this.#logger.error('COSM device unregister failed', { error: errorMessage(err) });
      }
    }
    // Let a start or stop still in flight finish first.
    await this.#lock.run(() => undefined);
    // What cosm_stop(cdev, true) does: stop a card still started, then a forced reset of any
    // card not back at the firmware (also one a COSM driver stopped without a reset), so nothing
    // on the card still reaches the device page when it is freed below.
    const started = this.#started;
    if (started) await this.stop(true);
    const state = this.host.cardState;
    if (started || state === X100_CARD_STATE.RUNNING || state === X100_CARD_STATE.BOOTING) await this.reset();
    this.host.disableInterrupts();
    await unwind(undo, this.#logger, `mic${this.id} remove`);
    this.#onRemoved(this);
    this.#logger.info('removed', { id: this.id });
  }

  /**
   * COSM `start` (`_mic_start`): registers the DMA, SCIF and VOP devices, loads the firmware and
   * boots the card; a failure unwinds in reverse. `cosmId` is the COSM index (the mbus index).
   * @throws MicError EINVAL for bad boot settings, EBUSY when started or the firmware is not
   * ready, ENODEV when not probed or the DMA provider has no channel, or what a step threw
   */
  start(cosmId: number, boot: CosmBootConfig): Promise<void> {
    return this.#lock.run(async () => {
      // A COSM driver may start the card from its probe, while the COSM device is being registered.
      if (this.#dp === undefined || this.#state === 'removed') {
        throw new MicError('ENODEV', `mic${this.id} is not probed`);
      }
      if (this.#started) throw new MicError('EBUSY', `mic${this.id} is already started`);
      checkBootConfig(boot);
      const dp = this.#dp!;
      const undo = this.#startUndo;
      let step: MicHostStep = 'dma';
      try {
        bootparamInit(dp.mem, this.id + 1);
        const mbdev = await this.#buses.mbus.registerDevice({
          id: MBUS_DEV_DMA_HOST,
          dmaOps: this.dmaOps,
          hwOps: new HostMbusHwOps(this.#ctx),
          index: cosmId,
          mmioVa: new MmioMemory(this.host.mmio),
        });
        this.#mbus = mbdev;
        undo.push(async () => {
          this.#mbus = undefined;
          await this.#buses.mbus.unregisterDevice(mbdev);
        });

        step = 'dma channels';
        const channels = await requestDmaChans(this.#dma, mbdev, MIC_MAX_DMA_CHAN, this.#logger);
        this.#channels = channels;
        undo.push(async () => {
          this.#channels = [];
          if (this.#dma) await releaseChannels(this.#dma, channels);
        });

        step = 'scif';
        const sdev = await this.#buses.scif.registerDevice({
          id: MIC_SCIF_DEV,
          dmaOps: this.dmaOps,
          hwOps: new HostScifHwOps(this.#ctx),
          dnode: this.id + 1,
          snode: 0,
          mmio: this.mmio,
          aper: this.aper,
          dp: dp.mem,
          rdp: null,
          dmaCh: channels,
          cardRelDa: true,
        });
        this.#scif = sdev;
        undo.push(async () => {
          this.#scif = undefined;
          await this.#buses.scif.unregisterDevice(sdev);
        });

        step = 'vop';
        const vpdev = await this.#buses.vop.registerDevice({
          id: VOP_DEV_TRNSP,
          dmaOps: this.dmaOps,
          hwOps: new HostVopHwOps(this.#ctx, dp.mem),
          dnode: this.id + 1,
          aper: this.aper,
          dmaCh: channels[0] ?? null,
        });
        this.#vop = vpdev;
        undo.push(async () => {
          this.#vop = undefined;
          await this.#buses.vop.unregisterDevice(vpdev);
        });

        step = 'firmware';
        this.#firmwareLayout = await loadFirmware(this.host, boot, this.#firmware);
        this.host.smpt.restore();
        this.host.enableInterrupts();
        writeDpAddress(this.host, dp.micAddr);
        this.host.sendFirmwareIntr();
      } catch (err) {
        this.#logger.warn('start failed', { step, error: errorMessage(err) });
        await unwind(undo, this.#logger, `mic${this.id} start`);
        bootparamInit(dp.mem, this.id + 1);
        throw err;
      }
      this.#started = true;
      this.#logger.info('started', {
        mbus: this.#mbus?.name,
        scif: this.#scif?.name,
        vop: this.#vop?.name,
        channels: this.#channels.length,
      });
    });
  }

  /**
   * COSM `stop` (`_mic_stop`): unregisters VOP, SCIF, gives the DMA channels back, unregisters the
   * DMA device and reinitialises `mic_bootparam`. Does nothing when not started.
   */
  stop(force: boolean): Promise<void> {
    return this.#lock.run(async () => {
      if (!this.#started) return;
      this.#started = false;
      await unwind(this.#startUndo, this.#logger, `mic${this.id} stop`);
      if (this.#dp) bootparamInit(this.#dp.mem, this.id + 1);
      this.#logger.info('stopped', { force });
    });
  }

  /**
   * COSM `reset`/`forceReset` (`_mic_reset`): clears the firmware-ready scratchpad, sets `RGCR`
   * bit 0 and waits `resetSleepMs` (`mic_x100_hw_reset`). The card is ready again when
   * {@link ready} says so.
   */
  reset(): Promise<void> {
    return this.#lock.run(async () => {
      this.host.writeSpad(X100_SPAD.DOWNLOAD_INFO, 0);
      this.host.reset();
      await this.#clock.sleep(this.#resetSleepMs);
    });
  }

  /** COSM `ready` (`mic_x100_is_fw_ready`): `SPAD2` bit 0. */
  ready(): boolean {
    return this.host.downloadInfo().ready;
  }

  /** COSM `family`: `x100` for an X100 PCI id, else `Unknown`. */
  family(): string {
    return X100_PCI_DEVICE_IDS.includes(this.host.pci.device) ? COSM_FAMILY.X100 : COSM_FAMILY.UNKNOWN;
  }

  /** COSM `stepping`: `A0`, `B0`, `B1`, `C0` or `??` from the PCI revision. */
  stepping(): string {
    return steppingName(this.host.pci.revision);
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(4, '0')}`;
}
