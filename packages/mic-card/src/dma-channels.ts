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
  /** Gives a channel back (`dma_release_channel`). */
  releaseChannel(ch: DmaChannel): void;
}

/** The DMA driver loader (`request_module("mic_x100_dma")`), called once at driver init. */
export type DmaDriverLoader = () => void | Promise<void>;
