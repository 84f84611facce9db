import { MbusBus } from '@mic/mic-bus';
import { ScifBus } from '@mic/scif-bus';
import { VopBus } from '@mic/vop-bus';
import {
  type CardDebugHandle,
  type InProcessPlatform,
  type WorkerPlatform,
  type X100CardView,
  createInProcessPlatform,
  createWorkerPlatform,
} from '@mic/x100';
import { type MicCard, type MicCardBuses, MicCardDriver, type MicCardOptions } from '../src/index.js';
import { HostPeer } from './host-peer.js';

/** The card code the worker tests boot (it probes mic-card from the built package). */
export const CARD_MAIN = new URL('./fixtures/card-main.mjs', import.meta.url);

/** The card side's buses (the card kernel's). */
export function makeCardBuses(): MicCardBuses {
  return { mbus: new MbusBus(), scif: new ScifBus(), vop: new VopBus() };
}

/** An in-process platform whose card code initialised the card driver, not probed yet. */
export interface BareRig {
  readonly platform: InProcessPlatform;
  /** The host end, on the raw host view. */
  readonly host: HostPeer;
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
    const host = new HostPeer(platform);
    platform.host.sendFirmwareIntr();
    await platform.boot;
    return { platform, host, cardBuses, cardDriver: state.driver!, view: state.view!, card: state.card };
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
export interface WorkerRig {
  readonly platform: WorkerPlatform;
  readonly host: HostPeer;
  readonly handle: CardDebugHandle;
}

/** Boots a worker card running card-main.mjs with `cardData`. */
export async function workerRig(cardData?: unknown): Promise<WorkerRig> {
  const platform = createWorkerPlatform({ cardModule: CARD_MAIN, cardData, resetDelayMs: 20 });
  try {
    const host = new HostPeer(platform);
    platform.host.sendFirmwareIntr();
    const handle = await platform.boot!;
    return { platform, host, handle };
  } catch (err) {
    await platform.close();
    throw err;
  }
}

/** Removes the card driver (in-process), releases the host end and closes the platform. */
export async function closeRig(rig: BareRig | WorkerRig): Promise<void> {
  try {
    if ('cardDriver' in rig) await rig.cardDriver.exit();
    await rig.host.close();
  } finally {
    await rig.platform.close();
  }
}
