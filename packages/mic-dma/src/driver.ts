/**
 * The `mic_x100_dma` driver on the MIC bus: it binds to the DMA devices the host and card drivers
 * register (`MBUS_DEV_DMA_HOST`, `MBUS_DEV_DMA_MIC`), builds a {@link MicDmaDevice} for each and
 * hands out their channels (`dma_request_channel`). The host and card drivers take up to four
 * channels of their own device with {@link requestDmaChannels} and pass them to SCIF and VOP
 * (VOP uses the first).
 *
 * @see drivers/dma/mic_x100_dma.c (mic_dma_driver_probe, mic_dma_driver_remove)
 * @see drivers/misc/mic/host/mic_boot.c (mic_request_dma_chans)
 * @see drivers/misc/mic/card/mic_device.c (mic_request_dma_chans)
 */
import { IndexAllocator, checkOps } from '@mic/bus-core';
import type { IdTable } from '@mic/bus-core';
import { realClock } from '@mic/clock';
import type { Clock } from '@mic/clock';
import { MicError, checkFunction, checkInt, checkObject, formatValue, isMicError } from '@mic/errors';
import { nullLogger } from '@mic/logger';
import type { Logger } from '@mic/logger';
import { MBUS_DEV_ANY_ID, MBUS_DEV_DMA_HOST, MBUS_DEV_DMA_MIC } from '@mic/mic-bus';
import type { DmaChannelProvider, MbusDevice, MbusDriver } from '@mic/mic-bus';
import { checkDrainTimeout, checkMbusDevice, checkRingSize } from './args.js';
import { MIC_DMA_CHAN_STATE } from './chan.js';
import type { MicDmaChan } from './chan.js';
import { MIC_DMA_DESC_RX_SIZE, MIC_DMA_DRAIN_TIMEOUT_MS, MIC_DMA_NUM_CHAN } from './constants.js';
import { MicDmaDevice } from './device.js';

/** Options of {@link MicDmaDriver}. */
export interface MicDmaDriverOptions {
  /** Where the driver logs (default nowhere). */
  readonly logger?: Logger;
  /** The clock of the drain timeout (default the real clock). */
  readonly clock?: Clock;
  /**
   * Descriptors per channel ring (default `MIC_DMA_DESC_RX_SIZE`, 131 068: 2 MiB per channel);
   * 16–131 071. Smaller rings suit small memories and tests.
   */
  readonly ringSize?: number;
  /** How long releasing a channel waits for its drain (default 5000 ms). */
  readonly drainTimeoutMs?: number;
}

/** A channel filter for {@link MicDmaDriver.requestChannel} (`dma_filter_fn`). */
export type MicDmaFilter = (chan: MicDmaChan) => boolean;

/** The driver's id table: both DMA devices, then the terminator. */
export const MIC_DMA_ID_TABLE: IdTable = Object.freeze([
  Object.freeze({ device: MBUS_DEV_DMA_MIC, vendor: MBUS_DEV_ANY_ID }),
  Object.freeze({ device: MBUS_DEV_DMA_HOST, vendor: MBUS_DEV_ANY_ID }),
  Object.freeze({ device: 0, vendor: 0 }),
]);

/**
 * The X100 DMA driver: register it on an `MbusBus`. One instance serves every DMA device of the
 * bus (in a real system one per side: the host's bus has one per card, the card's bus its own).
 *
 * @example
 * const dma = new MicDmaDriver({ logger });
 * await mbusBus.registerDriver(dma);
 * const mbdev = await mbusBus.registerDevice(params); // probe builds the device
 * const chans = requestDmaChannels(dma, micDmaFilter(dma, mbdev));
 * const tx = chans[0]!.prepMemcpy(dst, src, 4096, DMA_PREP.INTERRUPT);
 * tx.callback = (r) => console.log(r.status);
 * chans[0]!.issuePending();
 */
export class MicDmaDriver implements MbusDriver {
  readonly name = 'mic_x100_dma';
  readonly idTable: IdTable = MIC_DMA_ID_TABLE;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #ringSize: number;
  readonly #drainTimeoutMs: number;
  readonly #ids = new IndexAllocator();
  readonly #devices = new Map<MbusDevice, MicDmaDevice>();

  constructor(options: MicDmaDriverOptions = {}) {
    checkObject('DMA driver options', options);
    this.#ringSize = options.ringSize ?? MIC_DMA_DESC_RX_SIZE;
    checkRingSize(this.#ringSize);
    this.#drainTimeoutMs = options.drainTimeoutMs ?? MIC_DMA_DRAIN_TIMEOUT_MS;
    checkDrainTimeout(this.#drainTimeoutMs);
    this.#logger = (options.logger ?? nullLogger).child('mic_x100_dma');
    this.#clock = options.clock ?? realClock;
  }

  /**
   * Binds to a DMA device (`mic_dma_driver_probe`): card-owned channels 4–7 on an
   * `MBUS_DEV_DMA_MIC` device, host-owned 0–3 otherwise, and each channel's interrupt requested.
   * @throws MicError EEXIST when the device is already bound here; what the hw ops throw
   */
  probe(mbdev: MbusDevice): void {
    checkMbusDevice('mbus device', mbdev);
    if (this.#devices.has(mbdev)) {
      throw new MicError('EEXIST', `${mbdev.name} is already bound to ${this.name}`);
    }
    const id = this.#ids.get();
    const dev = new MicDmaDevice(mbdev, id, {
      ringSize: this.#ringSize,
      drainTimeoutMs: this.#drainTimeoutMs,
      clock: this.#clock,
      logger: this.#logger,
    });
    try {
      dev.setupIrqs();
    } catch (err) {
      this.#ids.remove(id);
      throw err;
    }
    this.#devices.set(mbdev, dev);
    this.#logger.debug('probed', { device: mbdev.name, dma: dev.name, owner: dev.owner });
  }

  /**
   * Unbinds (`mic_dma_driver_remove`): releases the channels still allocated (a warning: their
   * users should have released them; a drain failure is logged), then frees the interrupts.
   */
  async remove(mbdev: MbusDevice): Promise<void> {
    checkObject('mbus device', mbdev);
    const dev = this.#devices.get(mbdev);
    if (!dev) return;
    for (const ch of dev.channels) {
      if (ch.state === MIC_DMA_CHAN_STATE.FREE || ch.state === MIC_DMA_CHAN_STATE.RELEASING) continue;
      this.#logger.warn('channel still in use at remove', { chan: ch.name });
      try {
        await ch.release();
      } catch (err) {
        this.#logger.error('releasing a channel at remove failed', {
          chan: ch.name,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    dev.freeIrqs();
    this.#devices.delete(mbdev);
    this.#ids.remove(dev.id);
  }

  /** The DMA device built for `mbdev`, while bound. */
  deviceOf(mbdev: MbusDevice): MicDmaDevice | undefined {
    return this.#devices.get(mbdev);
  }

  /** Every bound device, in probe order. */
  get devices(): readonly MicDmaDevice[] {
    return [...this.#devices.values()];
  }

  /**
   * Allocates the first free channel `filter` accepts (`dma_request_channel`), in device then
   * channel order. A channel whose setup fails (EBUSY) is logged and skipped.
   * @returns the channel, ready to use, or undefined when none is available
   */
  requestChannel(filter?: MicDmaFilter): MicDmaChan | undefined {
    if (filter !== undefined) checkFunction('DMA channel filter', filter);
    for (const dev of this.#devices.values()) {
      for (const ch of dev.channels) {
        if (ch.state !== MIC_DMA_CHAN_STATE.FREE || (filter && !filter(ch))) continue;
        try {
          ch.request();
          return ch;
        } catch (err) {
          if (!isMicError(err, 'EBUSY') && !isMicError(err, 'ENOMEM')) throw err;
          this.#logger.warn('channel refused', { chan: ch.name, error: err.message });
        }
      }
    }
    return undefined;
  }

  /** The device a channel belongs to. */
  deviceOfChannel(chan: MicDmaChan): MicDmaDevice | undefined {
    for (const dev of this.#devices.values()) if (dev.channels.includes(chan)) return dev;
    return undefined;
  }
}

/** Throws `EINVAL` unless `driver` has the methods of a {@link MicDmaDriver} the helpers use. */
function checkDriver(driver: unknown): void {
  checkOps('DMA driver', driver, ['requestChannel', 'deviceOf']);
}

/** A filter that accepts the channels of `mbdev`'s DMA device only (the host's `mic_dma_filter`). */
export function micDmaFilter(driver: MicDmaDriver, mbdev: MbusDevice): MicDmaFilter {
  checkDriver(driver);
  checkMbusDevice('mbus device', mbdev);
  return (chan) => driver.deviceOf(mbdev)?.channels.includes(chan) === true;
}

/**
 * Requests up to `max` channels (`mic_request_dma_chans`: the host with its device's filter, the
 * card without), in channel order. The host and card drivers hand the array to SCIF and the first
 * channel to VOP.
 */
export function requestDmaChannels(
  driver: MicDmaDriver,
  filter?: MicDmaFilter,
  max = MIC_DMA_NUM_CHAN,
): MicDmaChan[] {
  checkDriver(driver);
  if (filter !== undefined) checkFunction('DMA channel filter', filter);
  checkInt('DMA channel count', max, 0, MIC_DMA_NUM_CHAN * 2);
  const chans: MicDmaChan[] = [];
  while (chans.length < max) {
    const ch = driver.requestChannel(filter);
    if (!ch) break;
    chans.push(ch);
  }
  return chans;
}

/**
 * The `DmaChannelProvider` a hardware driver (`@mic/mic-host`, `@mic/mic-card`) takes its channels
 * from: {@link requestDmaChannels} with {@link micDmaFilter} of the mbus DMA device it names, and a
 * channel goes back with its `release` (`dma_release_channel`).
 *
 * @example
 * const dma = new MicDmaDriver({ clock });
 * const host = await hostDriver.probe({ host: platform.host, clock, buses, dma: dmaChannelProvider(dma) });
 * @throws MicError EINVAL when `driver` is not a DMA driver; `releaseChannel` of a channel that is
 *   not one of `driver`'s: EINVAL naming it
 */
export function dmaChannelProvider(driver: MicDmaDriver): DmaChannelProvider {
  checkDriver(driver);
  return {
    requestChannels: (dev, max) => requestDmaChannels(driver, micDmaFilter(driver, dev), max),
    releaseChannel: (ch) => {
      const chan = ch as MicDmaChan;
      if (driver.deviceOfChannel(chan) === undefined) {
        throw new MicError(
          'EINVAL',
          `DMA channel ${formatValue(ch?.name ?? ch)} is not a channel of ${driver.name}`,
        );
      }
      return chan.release();
    },
  };
}

/** Releases channels in reverse order (`mic_free_dma_chans`); the first failure is rethrown after all. */
export async function releaseDmaChannels(chans: readonly MicDmaChan[]): Promise<void> {
  if (!Array.isArray(chans)) {
    throw new MicError('EINVAL', `DMA channels ${formatValue(chans)} are not an array`);
  }
  for (const ch of chans as unknown[]) checkOps('DMA channel', ch, ['release']);
  let first: unknown;
  for (const ch of [...chans].reverse()) {
    try {
      await ch.release();
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}
