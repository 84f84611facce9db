/**
 * DMA channels for SCIF and VOP. The DMA driver (`@mic/mic-dma`) binds to the mbus DMA device a
 * hardware driver (`mic-host`, `mic-card`) registers and then offers its channels; the hardware
 * driver asks for up to `MIC_MAX_DMA_CHAN` of them (`mic_request_dma_chans`) and gives them back
 * when the card stops. Hardware drivers do not import the DMA driver: the caller injects a
 * provider.
 *
 * @see drivers/misc/mic/host/mic_boot.c (`mic_request_dma_chans`, `mic_free_dma_chans`)
 * @see drivers/misc/mic/card/mic_device.c (`mic_request_dma_chans`)
 */
import type { DmaChannel } from '@mic/bus-core';
import { MicError, toMicError, errorMessage } from '@mic/errors';
import type { Logger } from '@mic/logger';
import type { MbusDevice } from './mbus.js';

/**
 * Where channels come from (`dma_request_channel` with the x100 filter for one mbus device).
 *
 * @example
 * // @mic/mic-dma's dmaChannelProvider(micDma) is this provider:
 * const dma: DmaChannelProvider = {
 *   requestChannels: (dev, max) => requestDmaChannels(micDma, micDmaFilter(micDma, dev), max),
 *   releaseChannel: (ch) => (ch as MicDmaChan).release(),
 * };
 */
export interface DmaChannelProvider {
  /**
   * Takes up to `max` channels of the DMA device `dev`, once the DMA driver is bound to it. May
   * return fewer, or none (then the start or probe fails with `ENODEV`, as in the kernel).
   */
  requestChannels(dev: MbusDevice, max: number): readonly DmaChannel[] | Promise<readonly DmaChannel[]>;
  /**
   * Gives a channel back (`dma_release_channel`). A promise (a DMA driver draining the channel) is
   * awaited before the DMA device goes away: the kernel's release returns once the channel is free.
   */
  releaseChannel(ch: DmaChannel): void | Promise<void>;
}

/**
 * Gives `channels` back in reverse order (`mic_free_dma_chans`), one at a time, each awaited. A
 * failure does not stop the others; the first one is rethrown after all were tried.
 */
export async function releaseChannels(
  dma: DmaChannelProvider,
  channels: readonly DmaChannel[],
): Promise<void> {
  let first: unknown;
  for (const ch of [...channels].reverse()) {
    try {
      await dma.releaseChannel(ch);
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}

/**
 * `mic_request_dma_chans`: takes 1 to `max` channels of the DMA device `dev` from `dma`. Without a
 * provider it takes none (SCIF and VOP then copy with the CPU), and says so at debug level.
 * @throws MicError ENODEV when the provider fails, or gives none or more than `max` (those it gave
 *   are given back first; a failure to give them back is logged)
 */
export async function requestDmaChans(
  dma: DmaChannelProvider | undefined,
  dev: MbusDevice,
  max: number,
  logger: Logger,
): Promise<readonly DmaChannel[]> {
  if (!dma) {
    logger.debug('no DMA channel provider: SCIF and VOP copy with the CPU');
    return [];
  }
  let got: readonly DmaChannel[];
  try {
    got = await dma.requestChannels(dev, max);
  } catch (err) {
    throw toMicError(err, 'ENODEV', `requesting DMA channels of ${dev.name} failed`);
  }
  const channels = Object.freeze([...got]);
  if (channels.length === 0 || channels.length > max) {
    await releaseChannels(dma, channels).catch((err: unknown) => {
      logger.error('giving back DMA channels failed', {
        error: errorMessage(err),
      });
    });
    throw new MicError('ENODEV', `${dev.name} gave ${channels.length} DMA channels, not 1 to ${max}`, {
      details: { device: dev.name, count: channels.length },
    });
  }
  return channels;
}

/** The DMA driver loader (`request_module("mic_x100_dma")`), called once at driver init. */
export type DmaDriverLoader = () => void | Promise<void>;

/**
 * Runs a hardware driver's DMA driver loader at `mic_init` (once per driver, never per card);
 * nothing to do when it is absent.
 *
 * @param loader - what the caller injected (`options.loadDmaDriver`)
 * @param logger - the hardware driver's logger
 * @throws MicError EINVAL when `loader` is neither a function nor absent; what the loader threw
 *   (as ENODEV when it was not a MicError)
 */
export async function loadDmaDriver(loader: unknown, logger: Logger): Promise<void> {
  if (loader === undefined) return;
  if (typeof loader !== 'function') {
    throw new MicError('EINVAL', 'loadDmaDriver is neither a function nor absent');
  }
  try {
    await (loader as DmaDriverLoader)();
  } catch (err) {
    logger.error('loading the DMA driver failed', { error: errorMessage(err) });
    throw toMicError(err, 'ENODEV', 'loading the DMA driver (mic_x100_dma) failed');
  }
  logger.debug('DMA driver loaded');
}
