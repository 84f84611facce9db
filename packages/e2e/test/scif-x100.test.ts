// SCIF end to end on both x100 platforms: the host's SCIF driver on mic-host's SCIF bus (with the
// host's DMA channels from mic-dma), the card's on mic-card's, the node handshake through the real
// device page, an echo over an endpoint, RMA through the x100 DMA engine, and card-initiated
// teardown.
import { afterEach, describe, expect, it } from '@jest/globals';
import { CosmBus, type CosmBootConfig } from '@mic/cosm-bus';
import { MbusBus } from '@mic/mic-bus';
import { dmaChannelProvider, MicDmaDriver } from '@mic/mic-dma';
import { MicHostDriver, type MicHostBuses } from '@mic/mic-host';
import {
  SCIFEP,
  SCIF_MAP_FIXED,
  SCIF_PROT_READ,
  SCIF_PROT_WRITE,
  SCIF_RECV_BLOCK,
  SCIF_RMA_SYNC,
  SCIF_SEND_BLOCK,
  Scif,
} from '@mic/scif';
import { ScifBus } from '@mic/scif-bus';
import { VopBus } from '@mic/vop-bus';
import { type X100Platform, createInProcessPlatform, createWorkerPlatform } from '@mic/x100';
import { cardMain } from './fixtures/scif-card-os.mjs';
import { until } from './x100-rig.js';

const KINDS = ['inProcess', 'worker'] as const;
const CARD_OS = new URL('./fixtures/scif-card-os.mjs', import.meta.url);
const BOOT: CosmBootConfig = Object.freeze({
  firmware: 'mic/uos.img',
  ramdisk: null,
  cmdline: null,
  bootmode: 'linux',
});

let platform: X100Platform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

/**
 * Awaits one step of the scenario with a bound, so a stall fails naming the step instead of
 * running into jest's timeout with nothing to say.
 */
async function step<T>(what: string, p: Promise<T>, ms = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`step "${what}" did not finish in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, bound]);
  } finally {
    clearTimeout(timer);
  }
}

describe.each(KINDS)('SCIF on the x100 %s platform', (kind) => {
  it('brings node 1 up, echoes bytes, moves RMA data through the DMA engine, and tears down', async () => {
    const p =
      kind === 'inProcess'
        ? createInProcessPlatform({ cardMain, resetDelayMs: 100 })
        : createWorkerPlatform({ cardModule: CARD_OS, resetDelayMs: 20 });
    platform = p;
    const hostBuses: MicHostBuses = {
      mbus: new MbusBus(),
      scif: new ScifBus(),
      vop: new VopBus(),
      cosm: new CosmBus(),
    };
    const scif = new Scif({ clock: p.clock, tunables: { qpPollMs: 5 } });
    await hostBuses.scif.registerDriver(scif.driver);
    const dma = new MicDmaDriver({ clock: p.clock });
    const hostDriver = await MicHostDriver.init({ loadDmaDriver: () => hostBuses.mbus.registerDriver(dma) });
    const host = await hostDriver.probe({
      host: p.host,
      clock: p.clock,
      buses: hostBuses,
      dma: dmaChannelProvider(dma),
      resetSleepMs: 10,
    });
    await host.cosmOps.start(host.cosmDevice!.index, BOOT);
    const card = await p.boot!;
    await until(async () => scif.isAlive(1) && ((await card.call('hostAlive')) as boolean), 'node 1 online');
    expect(await card.call('nodeId')).toBe(1);
    expect((await scif.getNodeIds()).nodes).toEqual([0, 1]);

    // Echo: 200 KB in pieces, every byte back in order.
    await step('card listens', card.call('listen', 2000));
    const ep = scif.open();
    await step('connect', ep.connect({ node: 1, port: 2000 }));
    expect(ep.state).toBe(SCIFEP.CONNECTED);
    const total = 200_000;
    const data = new Uint8Array(total).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
    const back = new Uint8Array(total);
    const [sent, got] = await step(
      'echo 200 KB',
      Promise.all([ep.send(data, SCIF_SEND_BLOCK), ep.recv(back, SCIF_RECV_BLOCK)]),
    );
    expect(sent).toBe(total);
    expect(got).toBe(total);
    expect(Buffer.compare(back, data)).toBe(0);

    // RMA: the card registers 64 KiB; the host writes and reads it (DMA bodies, CPU edges).
    const size = 64 * 1024;
    expect(await step('card registers', card.call('register', size))).toBe(0);
    const sdev = hostBuses.scif.devices()[0]!;
    expect(sdev.dmaCh.length).toBeGreaterThan(0);
    const mine = sdev.dmaOps.alloc(size);
    await step(
      'host registers',
      ep.register(mine.va, 0x100000, SCIF_PROT_READ | SCIF_PROT_WRITE, SCIF_MAP_FIXED),
    );
    const pattern = new Uint8Array(size).map((_, i) => (i * 29 + 3) & 0xff);
    mine.va.write(0, pattern);
    await step('writeto', ep.writeto(0x100000 + 100, 40_000, 100, SCIF_RMA_SYNC));
    expect(
      Buffer.compare(
        Buffer.from((await card.call('readWindow', 100, 40_000)) as number[]),
        pattern.subarray(100, 40_100),
      ),
    ).toBe(0);
    await step('card fills', card.call('fillWindow', 0, size, 5));
    await step('readfrom', ep.readfrom(0x100000, size, 0, SCIF_RMA_SYNC));
    const expected = new Uint8Array(size).map((_, i) => (i * 17 + 5) & 0xff);
    const window = new Uint8Array(size);
    mine.va.read(0, window);
    expect(Buffer.compare(window, expected)).toBe(0);

    // Card-initiated teardown: the host's endpoint goes DISCONNECTED.
    const left = (await step('card removes', card.call('remove'))) as { scif: number; endpoints: number };
    expect(left).toEqual({ scif: 0, endpoints: 0 });
    await until(() => ep.state === SCIFEP.DISCONNECTED && !scif.isAlive(1), 'the host to see the card leave');
    await step('close', ep.close());
    await step('host exits', hostDriver.exit());
    expect(scif.endpointCount).toBe(0);
  });
});
