import { CosmBus, type CosmBootConfig } from '@mic/cosm-bus';
import { MbusBus } from '@mic/mic-bus';
import { type MicHost, type MicHostBuses, MicHostDriver } from '@mic/mic-host';
import { ScifBus } from '@mic/scif-bus';
import { VopBus } from '@mic/vop-bus';
import {
  type InProcessPlatform,
  type WorkerPlatform,
  type CardDebugHandle,
  type X100CardView,
  type X100Platform,
  createInProcessPlatform,
  createWorkerPlatform,
} from '@mic/x100';
import { type MicCard, type MicCardBuses, MicCardDriver, type MicCardOptions } from '../src/index.js';

/** The card code the worker tests boot (it probes mic-card from the built package). */
export const CARD_MAIN = new URL('./fixtures/card-main.mjs', import.meta.url);

/** Boot settings every start in the tests uses. */
export const BOOT: CosmBootConfig = Object.freeze({
  firmware: 'mic/uos.img',
  ramdisk: null,
  cmdline: 'quiet',
  bootmode: 'linux',
});

/** The host side's buses (the host kernel's). */
export function makeHostBuses(): MicHostBuses {
  return { mbus: new MbusBus(), scif: new ScifBus(), vop: new VopBus(), cosm: new CosmBus() };
}

/** The card side's buses (the card kernel's). */
export function makeCardBuses(): MicCardBuses {
  return { mbus: new MbusBus(), scif: new ScifBus(), vop: new VopBus() };
}

/** The host driver and its card, probed and started on a platform. */
export interface HostSide {
  readonly hostBuses: MicHostBuses;
  readonly hostDriver: MicHostDriver;
  readonly host: MicHost;
}

/** Probes mic-host on the platform and starts the card (which boots the platform's card code). */
export async function startHost(platform: X100Platform, resetSleepMs: number): Promise<HostSide> {
  const hostBuses = makeHostBuses();
  const hostDriver = await MicHostDriver.init();
  const host = await hostDriver.probe({
    host: platform.host,
    clock: platform.clock,
    buses: hostBuses,
    resetSleepMs,
  });
  await host.cosmOps.start(host.cosmDevice!.index, BOOT);
  return { hostBuses, hostDriver, host };
}

/** An in-process platform whose card code initialised the card driver, not probed yet. */
export interface BareRig extends HostSide {
  readonly platform: InProcessPlatform;
  readonly cardBuses: MicCardBuses;
  readonly cardDriver: MicCardDriver;
  /** The booted card's view. */
  readonly view: X100CardView;
}

/** {@link BareRig} with the card driver probed on the card view (mic-card from the sources under test). */
export interface InProcessRig extends BareRig {
  readonly card: MicCard;
}

async function bootInProcess(probe: Partial<MicCardOptions> | null): Promise<BareRig & { card?: MicCard }> {
  const cardBuses = probe?.buses ?? makeCardBuses();
  const state: { view?: X100CardView; driver?: MicCardDriver; card?: MicCard } = {};
  const platform = createInProcessPlatform({
    resetDelayMs: 100,
    cardMain: async (view) => {
      state.view = view;
      state.driver = await MicCardDriver.init({ logger: view.logger });
      if (probe) state.card = await state.driver.probe({ card: view, buses: cardBuses, ...probe });
    },
  });
  try {
    const side = await startHost(platform, 1000);
    await platform.boot;
    return { platform, ...side, cardBuses, cardDriver: state.driver!, view: state.view!, card: state.card };
  } catch (err) {
    await platform.close();
    throw err;
  }
}

/** Boots an in-process card whose code initialises the card driver and probes it with `options`. */
export async function inProcessRig(options: Partial<MicCardOptions> = {}): Promise<InProcessRig> {
  const rig = await bootInProcess(options);
  return { ...rig, card: rig.card! };
}

/** Boots an in-process card whose code only initialises the card driver (the test probes). */
export function bareRig(): Promise<BareRig> {
  return bootInProcess(null);
}

/** A worker platform whose card code (card-main.mjs) probes mic-card in the card's thread. */
export interface WorkerRig extends HostSide {
  readonly platform: WorkerPlatform;
  readonly handle: CardDebugHandle;
}

/** Boots a worker card running card-main.mjs with `cardData`. */
export async function workerRig(cardData?: unknown): Promise<WorkerRig> {
  const platform = createWorkerPlatform({ cardModule: CARD_MAIN, cardData, resetDelayMs: 20 });
  try {
    const side = await startHost(platform, 10);
    const handle = await platform.boot!;
    return { platform, ...side, handle };
  } catch (err) {
    await platform.close();
    throw err;
  }
}

/** Removes the card driver (in-process), the host driver, and closes the platform. */
export async function closeRig(rig: BareRig | WorkerRig): Promise<void> {
  try {
    if ('cardDriver' in rig) await rig.cardDriver.exit();
    await rig.hostDriver.exit();
  } finally {
    await rig.platform.close();
  }
}
