// The DMA driver on the real hardware drivers: mic-host loads it on the host's mic bus and starts
// the card with a channel provider backed by it; the card's code (fixtures/card-os.mjs) does the
// same with mic-card on the card's mic bus. Both platforms of the x100 model.
import { CosmBus, type CosmBootConfig } from '@mic/cosm-bus';
import { MicError } from '@mic/errors';
import { MbusBus } from '@mic/mic-bus';
import { type MicHost, type MicHostBuses, MicHostDriver } from '@mic/mic-host';
import { ScifBus } from '@mic/scif-bus';
import { VopBus } from '@mic/vop-bus';
import {
  type InProcessPlatform,
  type WorkerPlatform,
  type CardDebugHandle,
  createInProcessPlatform,
  createWorkerPlatform,
} from '@mic/x100';
import * as micDma from '../src/index.js';
import { dmaChannelProvider, type MicDmaChan, MicDmaDriver } from '../src/index.js';
import { bootCardOs, type CardHeld, type CardOs } from './fixtures/card-os.mjs';

export const KIB = 1024;
export const MIB = 1024 * KIB;
/** Descriptors per ring in these tests. */
export const RING = 256;

/** The card worker's entry: card-os.mjs with the built DMA driver. */
export const CARD_MAIN = new URL('./fixtures/card-main.mjs', import.meta.url);

/** Boot settings of every start. */
export const BOOT: CosmBootConfig = Object.freeze({
  firmware: 'mic/uos.img',
  ramdisk: null,
  cmdline: null,
  bootmode: 'linux',
});

/** The host side: its buses, the DMA driver the loader registered, the host driver and the card. */
export interface HostSide {
  readonly buses: MicHostBuses;
  readonly dma: MicDmaDriver;
  readonly driver: MicHostDriver;
  readonly mic: MicHost;
  /** How often the host driver called its DMA driver loader. */
  readonly loads: () => number;
}

export interface InProcessRig extends HostSide {
  readonly platform: InProcessPlatform;
  readonly card: CardDebugHandle;
  /** The card OS's objects (same thread). */
  readonly cardOs: CardOs;
}

export interface WorkerRig extends HostSide {
  readonly platform: WorkerPlatform;
  readonly card: CardDebugHandle;
}

/** What mic-host's DMA device holds: its channels, as the DMA driver built them. */
export function hostChannels(side: HostSide): MicDmaChan[] {
  const dev = side.dma.deviceOf(side.mic.mbusDevice!);
  if (!dev) throw new MicError('ENODEV', 'the host DMA device is not bound');
  return [...dev.channels];
}

/** The card OS's channels (in-process). */
export function cardChannels(rig: InProcessRig): MicDmaChan[] {
  const { dmaDriver, mic } = rig.cardOs;
  return [...dmaDriver.deviceOf(mic.mbusDevice!)!.channels];
}

/** Inits mic-host with the DMA driver loader, probes the card and starts it (the card boots). */
async function startHost(
  platform: InProcessPlatform | WorkerPlatform,
  resetSleepMs: number,
): Promise<HostSide> {
  const buses: MicHostBuses = {
    mbus: new MbusBus(),
    scif: new ScifBus(),
    vop: new VopBus(),
    cosm: new CosmBus(),
  };
  const dma = new MicDmaDriver({ ringSize: RING, clock: platform.clock });
  let loads = 0;
  const driver = await MicHostDriver.init({
    loadDmaDriver: async () => {
      loads++;
      await buses.mbus.registerDriver(dma);
    },
  });
  const mic = await driver.probe({
    host: platform.host,
    clock: platform.clock,
    buses,
    dma: dmaChannelProvider(dma),
    resetSleepMs,
  });
  await mic.cosmOps.start(mic.cosmDevice!.index, BOOT);
  return { buses, dma, driver, mic, loads: () => loads };
}

const MEMORY = { cardMemorySize: 32 * MIB, hostRamSize: 32 * MIB } as const;

/** The in-process x100 with both drivers up; the card OS runs the DMA driver's sources. */
export async function inProcessRig(): Promise<InProcessRig> {
  const state: { os?: CardOs } = {};
  const platform = createInProcessPlatform({
    ...MEMORY,
    resetDelayMs: 100,
    cardMain: async (view) => {
      state.os = await bootCardOs(view, { ringSize: RING }, micDma);
      return state.os.methods;
    },
  });
  try {
    const side = await startHost(platform, 1000);
    const card = await platform.boot!;
    return { ...side, platform, card, cardOs: state.os! };
  } catch (err) {
    await platform.close();
    throw err;
  }
}

/** The worker x100 with both drivers up; the card OS runs in the card's worker (built package). */
export async function workerRig(): Promise<WorkerRig> {
  const platform = createWorkerPlatform({
    ...MEMORY,
    cardModule: CARD_MAIN,
    cardData: { ringSize: RING },
    resetDelayMs: 20,
  });
  try {
    const side = await startHost(platform, 10);
    const card = await platform.boot!;
    return { ...side, platform, card };
  } catch (err) {
    await platform.close();
    throw err;
  }
}

/** Removes the card driver (while its code runs), then the host driver, and closes the platform. */
export async function closeRig(rig: InProcessRig | WorkerRig): Promise<void> {
  try {
    if (rig.platform.card === rig.card) await (rig.card.call('remove') as Promise<CardHeld>);
    await rig.driver.exit();
  } finally {
    await rig.platform.close();
  }
}

/** SMPT references the host holds (the mic-host tests' leak check). */
export function smptRefs(rig: HostSide & { platform: InProcessPlatform | WorkerPlatform }): number {
  return rig.platform.host.smpt.entries().reduce((sum, e) => sum + e.refCount, 0);
}
