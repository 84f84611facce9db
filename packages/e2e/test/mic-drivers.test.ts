// End to end on both x100 platforms with both hardware drivers: mic-host probes and starts the
// card, the card's code probes mic-card (in the card's worker thread on `worker`), and a VOP-level
// doorbell ping goes from the card to the host and back through the registered devices' hw ops,
// many times over; then both sides unwind and nothing is left behind. (mic-host and mic-card are
// tested alone against a peer on the raw x100 view of the other side; this is where they meet.)
import { afterEach, describe, expect, it } from '@jest/globals';
import { CosmBus, type CosmBootConfig } from '@mic/cosm-bus';
import { MbusBus } from '@mic/mic-bus';
import { readBootparam } from '@mic/mic-common';
import { MicHostDriver, type MicHostBuses, hostRam } from '@mic/mic-host';
import { ScifBus } from '@mic/scif-bus';
import { VopBus } from '@mic/vop-bus';
import { X100_CARD_STATE, type X100Platform, createInProcessPlatform, createWorkerPlatform } from '@mic/x100';
import { cardMain } from './fixtures/card-os.mjs';

/** The card OS the worker platform boots (it probes mic-card from the built package). */
const CARD_OS = new URL('./fixtures/card-os.mjs', import.meta.url);

const BOOT: CosmBootConfig = Object.freeze({
  firmware: 'mic/uos.img',
  ramdisk: null,
  cmdline: 'quiet',
  bootmode: 'linux',
});

/** Probes mic-host on the platform and starts the card (which boots the platform's card code). */
async function startHost(platform: X100Platform, resetSleepMs: number) {
  const hostBuses: MicHostBuses = {
    mbus: new MbusBus(),
    scif: new ScifBus(),
    vop: new VopBus(),
    cosm: new CosmBus(),
  };
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

const KINDS = ['inProcess', 'worker'] as const;

let platform: X100Platform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

describe.each(KINDS)('host and card booted on the %s platform', (kind) => {
  it('carry a VOP doorbell ping from card to host and back, and unwind completely', async () => {
    platform =
      kind === 'inProcess'
        ? createInProcessPlatform({ cardMain, resetDelayMs: 100 })
        : createWorkerPlatform({ cardModule: CARD_OS, resetDelayMs: 20 });
    const p = platform;
    const { host, hostDriver, hostBuses } = await startHost(p, kind === 'worker' ? 10 : 1000);
    const card = await p.boot!;
    expect(p.cardState).toBe(X100_CARD_STATE.RUNNING);
    expect(await card.call('nodeId')).toBe(host.id + 1);
    expect(await card.call('dmaLoads')).toBe(1);
    expect(await card.call('devices')).toEqual({
      mbus: ['mbus-dev0'],
      vop: ['vop-dev4294967295'],
      scif: ['scif-dev0'],
    });

    // The card's VOP side listens and publishes its doorbell in h2c_config_db, as vop_main does.
    const cardDb = (await card.call('listenVop')) as number;
    const dp = host.dp!.mem;
    expect(readBootparam(dp).h2cConfigDb).toBe(cardDb);

    // The host's VOP side answers every ring by ringing the card's published doorbell.
    const vop = host.vopDevice!;
    const hostDb = vop.hwOps.nextDb();
    let seen = 0;
    const data = { tag: 'e2e' };
    const got: unknown[] = [];
    const cookie = vop.hwOps.requestIrq(
      (irq, d) => {
        vop.hwOps.ackInterrupt(irq);
        if (irq !== hostDb || d !== data) got.push([irq, d]);
        seen++;
        vop.hwOps.sendIntr(readBootparam(dp).h2cConfigDb);
      },
      'e2e pong',
      data,
      hostDb,
    );
    const rounds = 200;
    expect(await card.call('pingPong', hostDb, rounds)).toBe(rounds);
    expect(seen).toBe(rounds);
    expect(got).toEqual([]);
    vop.hwOps.freeIrq(cookie, data);
    expect(host.irqsInUse).toBe(0);

    await card.call('unlistenVop');
    expect(readBootparam(dp).h2cConfigDb).toBe(-1);
    expect(await card.call('held')).toEqual({ irqs: 0, buffers: 0, usage: [0, 0, 0, 0, 0, 0, 0, 0] });
    expect(await card.call('remove')).toEqual({ mbus: [], vop: [], scif: [] });

    await hostDriver.exit();
    for (const bus of Object.values(hostBuses)) expect(bus.devices()).toEqual([]);
    expect(hostRam(p.host).usedBytes).toBe(0);
    expect(p.host.smpt.entries().every((e) => e.refCount === 0)).toBe(true);
    expect(p.card).toBeUndefined();
  });
});
