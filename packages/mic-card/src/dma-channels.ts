/**
 * DMA channels for the card's SCIF and VOP devices. The DMA driver (`@mic/mic-dma`) binds to the
 * card's mbus DMA device and then offers its channels (4–7 on the card); this package does not
 * import it: the caller injects a provider.
 *
 * @see drivers/misc/mic/card/mic_device.c (`mic_request_dma_chans`)
 */
import type { DmaChannel } from '@mic/bus-core';
import type { MbusDevice } from '@mic/mic-bus';

/**
 * Where channels come from (`dma_request_channel` on the card's DMA device).
 *
 * @example
 * const dma: DmaChannelProvider = {
 *   requestChannels: (dev, max) => micDma.channelsOf(dev).slice(0, max),
 *   releaseChannel: (ch) => micDma.release(ch),
 * };
 */
export interface DmaChannelProvider {
  /** Takes up to `max` channels of the DMA device `dev`; none fails the probe with `ENODEV`. */
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

/** The DMA driver loader (`request_module("mic_x100_dma")`), called once at driver init. */
export type DmaDriverLoader = () => void | Promise<void>;
