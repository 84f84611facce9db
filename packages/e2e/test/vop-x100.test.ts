// VOP end to end on both x100 platforms: mic-host starts the card with vop-host bound on its VOP
// bus; the card's code (fixtures/vop-card-os.mjs: vop-card and the echo driver on mic-card) runs
// in the card's worker thread on `worker`. Devices are added, the card's driver sets them up over
// the real device page, doorbells and SMPT/aperture, and data crosses both ways — by the host's DMA
// channel and by memcpy — byte-identical; hot-unplug, config change, reset and card stop complete
// without a hang.
import { afterEach, describe, expect, it } from '@jest/globals';
import { CosmBus, type CosmBootConfig } from '@mic/cosm-bus';
import { MbusBus } from '@mic/mic-bus';
import { dmaChannelProvider, MicDmaDriver } from '@mic/mic-dma';
import { encodeDescBlock, featureBitsToBytes, walkDevicePage } from '@mic/mic-common';
import { type MicHost, MicHostDriver, type MicHostBuses, hostRam } from '@mic/mic-host';
import { ScifBus } from '@mic/scif-bus';
import { VIRTIO_CONFIG_S, VIRTIO_ID } from '@mic/virtio';
import { VopBus } from '@mic/vop-bus';
import { VopHostDriver, type VopHostOptions, type VopVirtioHandle } from '@mic/vop-host';
import {
  type CardDebugHandle,
  type X100Platform,
  createInProcessPlatform,
  createWorkerPlatform,
} from '@mic/x100';
import { echoBackend } from './echo.js';
import { cardMain } from './fixtures/vop-card-os.mjs';
import { until } from './x100-rig.js';

const CARD_OS = new URL('./fixtures/vop-card-os.mjs', import.meta.url);
const BOOT: CosmBootConfig = Object.freeze({
  firmware: 'mic/uos.img',
  ramdisk: null,
  cmdline: 'quiet',
  bootmode: 'linux',
});
const KINDS = ['inProcess', 'worker'] as const;

function consoleBlock(): Uint8Array {
  return encodeDescBlock({
    type: VIRTIO_ID.CONSOLE,
    vqconfigs: [0, 1].map(() => ({ address: 0, usedAddress: 0, num: 128 })),
    hostFeatures: featureBitsToBytes(0n, 4),
    config: new Uint8Array(12),
  });
}

interface Rig {
  platform: X100Platform;
  hostBuses: MicHostBuses;
  hostDriver: MicHostDriver;
  host: MicHost;
  vop: VopHostDriver;
  card: CardDebugHandle;
  stops: AbortController[];
}

let current: Rig | undefined;
afterEach(async () => {
  const r = current;
  current = undefined;
  if (!r) return;
  for (const s of r.stops) s.abort();
  await r.hostDriver.exit();
  await r.platform.close();
});

async function boot(kind: (typeof KINDS)[number], vopOptions: VopHostOptions = {}): Promise<Rig> {
  const platform =
    kind === 'inProcess'
      ? createInProcessPlatform({ cardMain, resetDelayMs: 100 })
      : createWorkerPlatform({ cardModule: CARD_OS, resetDelayMs: 20 });
  const hostBuses: MicHostBuses = {
    mbus: new MbusBus(),
    scif: new ScifBus(),
    vop: new VopBus(),
    cosm: new CosmBus(),
  };
  const vop = new VopHostDriver({ clock: platform.clock, ...vopOptions });
  await hostBuses.vop.registerDriver(vop);
  // The DMA driver on the host's mic bus, and its channels for mic-host (the first goes to VOP).
  const dma = new MicDmaDriver({ clock: platform.clock });
  const hostDriver = await MicHostDriver.init({ loadDmaDriver: () => hostBuses.mbus.registerDriver(dma) });
  const host = await hostDriver.probe({
    host: platform.host,
    clock: platform.clock,
    buses: hostBuses,
    dma: dmaChannelProvider(dma),
    resetSleepMs: kind === 'worker' ? 10 : 1000,
  });
  await host.cosmOps.start(host.cosmDevice!.index, BOOT);
  const card = await platform.boot!;
  current = { platform, hostBuses, hostDriver, host, vop, card, stops: [] };
  return current;
}

function serve(r: Rig, h: VopVirtioHandle): Promise<unknown> {
  const stop = new AbortController();
  r.stops.push(stop);
  return echoBackend(h, stop.signal);
}

const driverOk = (h: VopVirtioHandle): boolean => (h.info().status & VIRTIO_CONFIG_S.DRIVER_OK) !== 0;

describe.each(KINDS)('VOP on the %s platform', (kind) => {
  it('hot-plugs a console, sets it up over the real device page and echoes 64 B to 200 KiB both ways, DMA and memcpy', async () => {
    const r = await boot(kind, { dmaMinBytes: 0 });
    const control = r.vop.control(0)!;
    expect(control.dmaChannel).not.toBeNull(); // mic-host gave the VOP device host DMA channel 0
    const h = control.open();
    await h.addDevice(consoleBlock());
    await until(() => driverOk(h), 'DRIVER_OK');
    expect(await r.card.call('bound')).toBe(1);
    expect(h.device!.vrings.every((v) => v.usedAddress !== 0)).toBe(true); // LINKUP
    void serve(r, h);
    let total = 0;
    for (const [count, len] of [
      [64, 64],
      [16, 4096],
      [4, 65_536],
      [2, 200_000],
      [8, 1500],
    ] as const) {
      total += (await r.card.call('echo', 0, count, len)) as number;
    }
    const stats = h.stats();
    expect(stats.inBytes).toBe(total);
    expect(stats.outBytes).toBe(total);
    // Card buffers from the card's page allocator are 64-byte aligned: both directions went by DMA.
    expect(stats.inBytesDma).toBe(total);
    expect(stats.outBytesDma).toBeGreaterThan(0);
    expect(stats.dmaErrors).toBe(0);
  });

  it('echoes by memcpy alone when told not to use DMA', async () => {
    const r = await boot(kind, { noDma: true });
    const h = r.vop.control(0)!.open();
    await h.addDevice(consoleBlock());
    await until(() => driverOk(h), 'DRIVER_OK');
    void serve(r, h);
    const bytes = (await r.card.call('echo', 0, 3, 100_000)) as number;
    expect(h.stats()).toMatchObject({ inBytes: bytes, outBytes: bytes, inBytesDma: 0, outBytesDma: 0 });
  });

  it('hot-unplugs and re-adds into the freed slot, passes a config change, survives a card-initiated reset', async () => {
    const r = await boot(kind);
    const control = r.vop.control(0)!;
    const a = control.open();
    await a.addDevice(consoleBlock());
    await until(() => driverOk(a), 'first device up');
    await a.close();
    expect(walkDevicePage(r.host.dp!.mem).entries.map((e) => e.type)).toEqual([-1]);
    await until(async () => (await r.card.call('bound')) === 0, 'card unbound the device');
    const b = control.open();
    await b.addDevice(consoleBlock());
    expect(b.info().offset).toBe(24);
    await until(() => driverOk(b), 're-added device up');
    void serve(r, b);
    expect(await r.card.call('echo', 0, 4, 512)).toBe(2048);
    await b.configChange(new Uint8Array(12).fill(5));
    expect(await r.card.call('configChanges')).toBe(1);
    // Unbinding the card's driver resets the device (the host zeroes its rings); binding again sets it up.
    expect(await r.card.call('rebind')).toBe(1);
    await until(() => driverOk(b), 'up after the reset');
    expect(await r.card.call('echo', 0, 4, 512)).toBe(2048);
  });

  it('stops the card while traffic runs: no hang, the handle reports ENODEV, nothing leaks', async () => {
    const r = await boot(kind);
    const h = r.vop.control(0)!.open();
    await h.addDevice(consoleBlock());
    await until(() => driverOk(h), 'DRIVER_OK');
    const backend = serve(r, h);
    await r.card.call('flood', 0, 100, 3000);
    await r.host.cosmOps.stop(false);
    expect(r.vop.controls()).toEqual([]);
    await backend;
    await expect(h.copyDesc({ iov: [new Uint8Array(8)], vrIdx: 1, updateUsed: true })).rejects.toMatchObject({
      code: 'ENODEV',
    });
    expect((await h.poll()).err).toBe(true);
    // Everything vop-host took from host RAM went back (the device page stays, as the kernel's).
    expect(hostRam(r.platform.host).usedBytes).toBe(4096);
  });
});
