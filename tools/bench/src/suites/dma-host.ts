/**
 * The `dma` suite's host, through the real host driver: `@mic/mic-host` loads `@mic/mic-dma` on
 * the host's mic bus once, at init (`request_module("mic_x100_dma")`), and its COSM `start`
 * registers the host's DMA device on that bus and takes the device's channels through a provider
 * backed by the DMA driver (`mic_request_dma_chans`), handing them to SCIF and the first one to
 * VOP, before it boots the card. The suite copies on the VOP device's channel.
 */
import { MicError } from '@mic/errors';
import type { DmaMapOps } from '@mic/mic-bus';
import type { MicDmaChan } from '@mic/mic-dma';
import type { WorkerPlatform } from '@mic/x100';
import { startHost } from './host.js';

/** The started host: the VOP device's DMA channel and the host's DMA map ops. */
export interface DmaHost {
  /** The channel mic-host gave the VOP device (host channel 0). */
  readonly chan: MicDmaChan;
  /** Host memory mapped through the SMPT (the devices' DMA map ops). */
  readonly dmaOps: DmaMapOps;
  /** Stops and removes the card (its channels are released first), as `mic_exit`. */
  close(): Promise<void>;
}

/** Starts the host ({@link startHost}) and takes the VOP device's DMA channel. */
export async function startDmaHost(platform: WorkerPlatform): Promise<DmaHost> {
  const { dma, driver, mic } = await startHost(platform, { resetSleepMs: 0 });
  const vop = mic.vopDevice!;
  const chan = dma.devices.flatMap((d) => d.channels).find((c) => c === vop.dmaCh);
  if (!chan) {
    await driver.exit();
    throw new MicError('ENODEV', 'mic-host gave the VOP device no DMA channel');
  }
  return { chan, dmaOps: vop.dmaOps, close: () => driver.exit() };
}
