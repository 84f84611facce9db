/**
 * The host side the device suites boot, through the real host driver: `@mic/mic-host` loads
 * `@mic/mic-dma` on the host's mic bus once, at init (`request_module("mic_x100_dma")`), probes the
 * platform's card and starts it (COSM `start`: the DMA device and its channels, the SCIF and VOP
 * devices, then the boot).
 */
import { type CosmBootConfig, CosmBus } from '@mic/cosm-bus';
import { MbusBus } from '@mic/mic-bus';
import { MicDmaDriver, dmaChannelProvider } from '@mic/mic-dma';
import { type MicHost, type MicHostBuses, MicHostDriver } from '@mic/mic-host';
import { ScifBus } from '@mic/scif-bus';
import { VopBus } from '@mic/vop-bus';
import type { WorkerPlatform } from '@mic/x100';

const BOOT: CosmBootConfig = Object.freeze({
  firmware: 'mic/uos.img',
  ramdisk: null,
  cmdline: null,
  bootmode: 'linux',
});

/** A started host. */
export interface BenchHost {
  readonly buses: MicHostBuses;
  readonly dma: MicDmaDriver;
  readonly driver: MicHostDriver;
  readonly mic: MicHost;
}

/**
 * Boots the card of `platform` from a fresh set of host buses. `prepare` registers the suite's
 * drivers (SCIF, VOP) on them first, as a host loads its modules before the card comes up. On a
 * failure after init, the host driver is exited before the error is rethrown.
 */
export async function startHost(
  platform: WorkerPlatform,
  options: { readonly resetSleepMs: number; readonly prepare?: (buses: MicHostBuses) => Promise<void> },
): Promise<BenchHost> {
  const buses: MicHostBuses = {
    mbus: new MbusBus(),
    scif: new ScifBus(),
    vop: new VopBus(),
    cosm: new CosmBus(),
  };
  await options.prepare?.(buses);
  const dma = new MicDmaDriver({ clock: platform.clock });
  const driver = await MicHostDriver.init({ loadDmaDriver: () => buses.mbus.registerDriver(dma) });
  try {
    const mic = await driver.probe({
      host: platform.host,
      clock: platform.clock,
      buses,
      dma: dmaChannelProvider(dma),
      resetSleepMs: options.resetSleepMs,
    });
    await mic.cosmOps.start(mic.cosmDevice!.index, BOOT);
    return { buses, dma, driver, mic };
  } catch (err) {
    await driver.exit();
    throw err;
  }
}
