import { CosmBus, type CosmBootConfig } from '@mic/cosm-bus';
import type { ClosableLinkPeer } from '@mic/hwops-compliance';
import { MbusBus } from '@mic/mic-bus';
import { ScifBus } from '@mic/scif-bus';
import { VopBus } from '@mic/vop-bus';
import { MIC_DP_SIZE } from '@mic/mic-common';
import {
  type CardDebugHandle,
  type X100Platform,
  X100Hardware,
  X100HostView,
  createInProcessPlatform,
  createWorkerPlatform,
} from '@mic/x100';
import { type MicHost, type MicHostBuses, MicHostDriver, type MicHostOptions } from '../src/index.js';
import { cardMain } from './fixtures/card-peer.mjs';

/** The card code the tests boot: the other end of the link on the bare x100 card view. */
export const CARD_PEER = new URL('./fixtures/card-peer.mjs', import.meta.url);

/** Boot settings every start in the tests uses. */
export const BOOT: CosmBootConfig = Object.freeze({
  firmware: 'mic/uos.img',
  ramdisk: null,
  cmdline: 'quiet',
  bootmode: 'linux',
});

export type PlatformKind = 'inProcess' | 'worker';
export const PLATFORMS: readonly PlatformKind[] = ['inProcess', 'worker'];

/** A host view of 1 MiB of host RAM on bare hardware (no platform, no card code). */
export function bareHost(): X100HostView {
  const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
  return new X100HostView(hw, { delivery: 'microtask' });
}

/** Fresh buses, as the kernel's global buses. */
export function makeBuses(): MicHostBuses {
  return { mbus: new MbusBus(), scif: new ScifBus(), vop: new VopBus(), cosm: new CosmBus() };
}

/** A platform whose card boots the peer card code. */
export function makePlatform(kind: PlatformKind): X100Platform {
  return kind === 'inProcess'
    ? createInProcessPlatform({ cardMain, resetDelayMs: 100 })
    : createWorkerPlatform({ cardModule: CARD_PEER, resetDelayMs: 20 });
}

/**
 * The card side of the link as a `LinkPeer`, driven through the card handle: every operation is a
 * call into the card code (in the card's worker on `worker`); memory comes back as offsets into
 * the shared card memory or host RAM, viewed here.
 */
export function cardPeer(platform: X100Platform, handle: CardDebugHandle): ClosableLinkPeer {
  const hw = platform.hardware;
  return {
    async ring(db) {
      await handle.call('ring', db);
    },
    async listen() {
      const { key, db } = (await handle.call('listen')) as { key: number; db: number };
      return {
        db,
        received: async () => (await handle.call('received', key)) as number,
        close: async () => {
          await handle.call('unlisten', key);
        },
      };
    },
    async alloc(size) {
      const addr = (await handle.call('alloc', size)) as number;
      return {
        dmaAddr: addr,
        view: hw.cardMemory.window(addr, size),
        free: async () => {
          await handle.call('free', addr);
        },
      };
    },
    async view(dmaAddr, size) {
      return hw.hostRam.window((await handle.call('map', dmaAddr, size)) as number, size);
    },
    async devicePage() {
      return hw.hostRam.window((await handle.call('devicePage')) as number, MIC_DP_SIZE);
    },
    async close() {
      await handle.call('closeAll');
    },
  };
}

/** A platform, the buses, the host driver and one probed card. */
export interface HostRig {
  readonly kind: PlatformKind;
  readonly platform: X100Platform;
  readonly buses: MicHostBuses;
  readonly driver: MicHostDriver;
  readonly mic: MicHost;
}

/** A rig whose card was started and has booted the peer card code. */
export interface BootedRig extends HostRig {
  readonly handle: CardDebugHandle;
  readonly peer: ClosableLinkPeer;
}

/** Builds a platform and probes the host driver on it. */
export async function hostRig(kind: PlatformKind, options: Partial<MicHostOptions> = {}): Promise<HostRig> {
  const platform = makePlatform(kind);
  try {
    const buses = options.buses ?? makeBuses();
    const driver = await MicHostDriver.init();
    const mic = await driver.probe({
      host: platform.host,
      clock: platform.clock,
      buses,
      resetSleepMs: kind === 'worker' ? 10 : 1000,
      ...options,
    });
    return { kind, platform, buses, driver, mic };
  } catch (err) {
    await platform.close();
    throw err;
  }
}

/** {@link hostRig}, then COSM start and the card's boot. */
export async function bootedRig(
  kind: PlatformKind,
  options: Partial<MicHostOptions> = {},
): Promise<BootedRig> {
  const rig = await hostRig(kind, options);
  try {
    await rig.mic.cosmOps.start(rig.mic.cosmDevice!.index, BOOT);
    const handle = await rig.platform.boot!;
    return { ...rig, handle, peer: cardPeer(rig.platform, handle) };
  } catch (err) {
    await closeRig(rig);
    throw err;
  }
}

/** Releases what a rig holds: the peer's doorbells and buffers, every card, the platform. */
export async function closeRig(rig: HostRig | BootedRig): Promise<void> {
  try {
    // The peer belongs to the boot it was made for: a card reset since has dropped its state.
    if ('peer' in rig && rig.platform.card === rig.handle) await rig.peer.close();
    await rig.driver.exit();
  } finally {
    await rig.platform.close();
  }
}
