/**
 * The `dma` suite's host, through the real host driver: `@mic/mic-host` loads `@mic/mic-dma` on
 * the host's mic bus once, at init (`request_module("mic_x100_dma")`), and its COSM `start`
 * registers the host's DMA device on that bus and takes the device's channels through a provider
 * backed by the DMA driver (`mic_request_dma_chans`), handing them to SCIF and the first one to
 * VOP, before it boots the card. The suite copies on the VOP device's channel.
 */
import { CosmBus } from '@mic/cosm-bus';
import { MicError } from '@mic/errors';
import { type DmaMapOps, MbusBus } from '@mic/mic-bus';
import { dmaChannelProvider, type MicDmaChan, MicDmaDriver } from '@mic/mic-dma';
import { MicHostDriver } from '@mic/mic-host';
import { ScifBus } from '@mic/scif-bus';
import { VopBus } from '@mic/vop-bus';
import type { WorkerPlatform } from '@mic/x100';

/** The started host: the VOP device's DMA channel and the host's DMA map ops. */
export interface DmaHost {
  /** The channel mic-host gave the VOP device (host channel 0). */
  readonly chan: MicDmaChan;
  /** Host memory mapped through the SMPT (the devices' DMA map ops). */
  readonly dmaOps: DmaMapOps;
  /** Stops and removes the card (its channels are released first), as `mic_exit`. */
  close(): Promise<void>;
}

/** Inits mic-host with the DMA driver, probes the platform's card and starts it. */
export async function startDmaHost(platform: WorkerPlatform): Promise<DmaHost> {
  const buses = { mbus: new MbusBus(), scif: new ScifBus(), vop: new VopBus(), cosm: new CosmBus() };
  const dma = new MicDmaDriver({ clock: platform.clock });
  const driver = await MicHostDriver.init({
    loadDmaDriver: async () => {
      await buses.mbus.registerDriver(dma);
    },
  });
  try {
    const mic = await driver.probe({
      host: platform.host,
      clock: platform.clock,
      buses,
      dma: dmaChannelProvider(dma),
      resetSleepMs: 0,
    });
    await mic.cosmOps.start(mic.cosmDevice!.index, {
      firmware: 'mic/uos.img',
      ramdisk: null,
      cmdline: null,
      bootmode: 'linux',
    });
    const vop = mic.vopDevice!;
    const chan = dma.devices.flatMap((d) => d.channels).find((c) => c === vop.dmaCh);
    if (!chan) throw new MicError('ENODEV', 'mic-host gave the VOP device no DMA channel');
    return { chan, dmaOps: vop.dmaOps, close: () => driver.exit() };
  } catch (err) {
    await driver.exit();
    throw err;
  }
}
