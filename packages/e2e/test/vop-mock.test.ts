// VOP end to end on the mock link: vop-host on the host side, vop-card and a virtio driver on the
// card side, the sequences of the reference (§9): add before and after the card probes, LINKUP,
// DRIVER_OK, data both ways, config change, hot-unplug and re-add, card-initiated reset, card
// stop while traffic runs.
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  MIC_DP_SIZE,
  bootparamInit,
  encodeDescBlock,
  featureBitsToBytes,
  walkDevicePage,
} from '@mic/mic-common';
import { VIRTIO_CONFIG_S, VIRTIO_ID, VirtioBus } from '@mic/virtio';
import { MockVopLink, VopBus, type VopDevice } from '@mic/vop-bus';
import { VopCardDriver } from '@mic/vop-card';
import { VopHostDriver, type VopVirtioHandle } from '@mic/vop-host';
import { EchoCardDriver, echoBackend } from './echo.js';

function block(type: number, numVq: number, num = 128, configLen = 12): Uint8Array {
  return encodeDescBlock({
    type,
    vqconfigs: Array.from({ length: numVq }, () => ({ address: 0, usedAddress: 0, num })),
    hostFeatures: featureBitsToBytes(0n, 4),
    config: new Uint8Array(configLen),
  });
}

interface Rig {
  link: MockVopLink;
  hostBus: VopBus;
  host: VopHostDriver;
  hostDev: VopDevice;
  cardBus: VopBus;
  card: VopCardDriver;
  virtio: VirtioBus;
  echo: EchoCardDriver;
  cardDev: VopDevice | null;
  stops: AbortController[];
}

const rigs: Rig[] = [];

async function rig(type: number = VIRTIO_ID.CONSOLE, queues = 2): Promise<Rig> {
  const link = new MockVopLink({ hostRamSize: 8 << 20, cardRamSize: 8 << 20 });
  bootparamInit(link.dp.va, 1);
  const hostBus = new VopBus();
  const host = new VopHostDriver();
  await hostBus.registerDriver(host);
  const hostDev = await hostBus.registerDevice(link.hostParams());
  const virtio = new VirtioBus();
  const echo = new EchoCardDriver(type, queues);
  await virtio.registerDriver(echo);
  const cardBus = new VopBus();
  const card = new VopCardDriver({ virtioBus: virtio });
  await cardBus.registerDriver(card);
  const r: Rig = { link, hostBus, host, hostDev, cardBus, card, virtio, echo, cardDev: null, stops: [] };
  rigs.push(r);
  return r;
}

async function bootCard(r: Rig): Promise<void> {
  r.cardDev = await r.cardBus.registerDevice(r.link.cardParams());
}

/** Waits (bounded) for `check`, letting both sides run. */
async function until(r: Rig, check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    if (check()) return;
    await r.link.flush();
    await new Promise((res) => setImmediate(res));
    await r.card.idle();
  }
  throw new Error(`timed out waiting for ${what}`);
}

function serve(r: Rig, h: VopVirtioHandle): Promise<unknown> {
  const stop = new AbortController();
  r.stops.push(stop);
  return echoBackend(h, stop.signal);
}

const driverOk = (h: VopVirtioHandle): boolean => (h.info().status & VIRTIO_CONFIG_S.DRIVER_OK) !== 0;

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    for (const s of r.stops) s.abort();
    if (r.cardDev && r.cardBus.devices().includes(r.cardDev)) await r.cardBus.unregisterDevice(r.cardDev);
    if (r.hostBus.devices().includes(r.hostDev)) {
      const done = r.hostBus.unregisterDevice(r.hostDev);
      await until(r, () => r.host.controls().length === 0, 'host stop');
      await done;
    }
  }
});

describe('VOP on the mock link: host and card together', () => {
  it('finds devices added before the card probes, relocates, reaches DRIVER_OK and echoes data both ways', async () => {
    const r = await rig();
    const h = r.host.control(0)!.open();
    await h.addDevice(block(VIRTIO_ID.CONSOLE, 2));
    await h.addDevice(block(VIRTIO_ID.CONSOLE, 2)).catch(() => {}); // EBUSY, nothing changes
    await bootCard(r);
    await until(r, () => driverOk(h), 'DRIVER_OK');
    expect(h.device!.vrings.every((v) => v.usedAddress !== 0)).toBe(true); // LINKUP
    void serve(r, h);
    const vdev = r.echo.devices()[0]!;
    const msgs = Array.from({ length: 50 }, (_, i) =>
      new TextEncoder().encode(`message ${i} `.repeat(i + 1)),
    );
    for (const m of msgs) r.echo.send(vdev, m);
    await until(r, () => r.echo.received(vdev).length === msgs.length, 'echoes');
    expect(r.echo.received(vdev).map((b) => new TextDecoder().decode(b))).toEqual(
      msgs.map((b) => new TextDecoder().decode(b)),
    );
    const stats = h.stats();
    expect(stats.inBytes).toBe(msgs.reduce((s, m) => s + m.length, 0));
    expect(stats.outBytes).toBe(stats.inBytes);
  });

  it('hot-plugs a device added after the card probed (h2c_config_db)', async () => {
    const r = await rig();
    await bootCard(r);
    const h = r.host.control(0)!.open();
    await h.addDevice(block(VIRTIO_ID.CONSOLE, 2));
    await until(r, () => driverOk(h), 'DRIVER_OK after hot-plug');
    void serve(r, h);
    const vdev = r.echo.devices()[0]!;
    r.echo.send(vdev, Uint8Array.of(1, 2, 3));
    await until(r, () => r.echo.received(vdev).length === 1, 'echo');
    expect([...r.echo.received(vdev)[0]!]).toEqual([1, 2, 3]);
  });

  it('delivers a config change to the card driver and resolves on guest_ack', async () => {
    const r = await rig();
    await bootCard(r);
    const h = r.host.control(0)!.open();
    await h.addDevice(block(VIRTIO_ID.CONSOLE, 2));
    await until(r, () => driverOk(h), 'DRIVER_OK');
    const cfg = Uint8Array.from({ length: 12 }, (_, i) => 100 + i);
    const changing = h.configChange(cfg);
    await until(r, () => r.echo.configChanges.length === 1, 'configChanged');
    await changing;
    const vdev = r.echo.devices()[0]!;
    expect([...vdev.readConfig(0, 12)]).toEqual([...cfg]);
  });

  it('hot-unplugs: the card removes its virtio device and acks; a new device takes the freed slot', async () => {
    const r = await rig();
    await bootCard(r);
    const a = r.host.control(0)!.open();
    const b = r.host.control(0)!.open();
    await a.addDevice(block(VIRTIO_ID.CONSOLE, 2));
    await b.addDevice(block(VIRTIO_ID.CONSOLE, 2));
    await until(r, () => driverOk(a) && driverOk(b), 'both up');
    const first = r.echo.devices()[0]!;
    const closing = a.close();
    await until(r, () => r.echo.removed.includes(first), 'card removed the device');
    await closing;
    expect(walkDevicePage(r.link.dp.va).entries.map((e) => e.type)).toEqual([-1, VIRTIO_ID.CONSOLE]);
    const c = r.host.control(0)!.open();
    await c.addDevice(block(VIRTIO_ID.CONSOLE, 2));
    expect(c.info().offset).toBe(24);
    await until(r, () => driverOk(c), 're-added device up');
    void serve(r, c);
    const vdev = r.echo.devices().at(-1)!; // the one bound last: the re-added device
    r.echo.send(vdev, Uint8Array.of(9));
    await until(r, () => r.echo.received(vdev).length === 1, 'echo on the re-added device');
  });

  it('handles a card-initiated reset: the driver rebinds and traffic resumes', async () => {
    const r = await rig();
    await bootCard(r);
    const h = r.host.control(0)!.open();
    await h.addDevice(block(VIRTIO_ID.CONSOLE, 2));
    await until(r, () => driverOk(h), 'DRIVER_OK');
    void serve(r, h);
    let vdev = r.echo.devices()[0]!;
    r.echo.send(vdev, Uint8Array.of(1));
    await until(r, () => r.echo.received(vdev).length === 1, 'first echo');
    // Unbinding the driver resets the device (vop_reset_inform_host); binding again sets it up.
    await r.virtio.unregisterDriver(r.echo);
    expect(h.info().status & VIRTIO_CONFIG_S.DRIVER_OK).toBe(0);
    expect(h.device!.vrings[0]!.vringh.lastAvailIdx).toBe(0);
    await r.virtio.registerDriver(r.echo);
    await until(r, () => driverOk(h), 'DRIVER_OK again');
    vdev = r.echo.devices()[0]!;
    r.echo.send(vdev, Uint8Array.of(2));
    await until(r, () => r.echo.received(vdev).length === 1, 'echo after reset');
    expect([...r.echo.received(vdev)[0]!]).toEqual([2]);
  });

  it('stops the card while traffic runs: nothing hangs, handles report ENODEV', async () => {
    const r = await rig();
    await bootCard(r);
    const h = r.host.control(0)!.open();
    await h.addDevice(block(VIRTIO_ID.CONSOLE, 2));
    await until(r, () => driverOk(h), 'DRIVER_OK');
    const backend = serve(r, h);
    const vdev = r.echo.devices()[0]!;
    for (let i = 0; i < 20; i++) r.echo.send(vdev, new Uint8Array(1000).fill(i));
    const stopping = r.hostBus.unregisterDevice(r.hostDev);
    await until(r, () => r.host.controls().length === 0, 'host uninit');
    await stopping;
    await backend;
    await expect(h.copyDesc({ iov: [new Uint8Array(4)], vrIdx: 0, updateUsed: true })).rejects.toMatchObject({
      code: 'ENODEV',
    });
    expect((await h.poll()).err).toBe(true);
  });

  it('fills the device page with one-vring devices; the card sees every one', async () => {
    const r = await rig(VIRTIO_ID.RNG, 4);
    await bootCard(r);
    const control = r.host.control(0)!;
    const handles: VopVirtioHandle[] = [];
    for (;;) {
      const h = control.open();
      try {
        await h.addDevice(block(VIRTIO_ID.BLOCK, 1, 8, 0));
      } catch {
        break;
      }
      handles.push(h);
    }
    // 8 + 24 + 8 = 40 → stride 56: 24 + n × 56 < 4096 − 56
    expect(handles.length).toBe(Math.floor((MIC_DP_SIZE - 56 - 24 - 1) / 56) + 1);
    await until(r, () => r.card.devices().length === handles.length, 'card sees every device');
  });

  it('runs a device with 4 vrings', async () => {
    const r = await rig(VIRTIO_ID.RNG, 4);
    await bootCard(r);
    const control = r.host.control(0)!;
    const quad = control.open();
    await quad.addDevice(block(VIRTIO_ID.RNG, 4, 16, 0));
    await until(r, () => driverOk(quad), '4-vring device up');
    const vdev = r.echo.devices()[0]!;
    const stop = new AbortController();
    r.stops.push(stop);
    void echoBackend(quad, stop.signal, undefined, { from: 3, to: 0 });
    r.echo.send(vdev, Uint8Array.of(4, 4, 4, 4), r.echo.extraQueues(vdev)[1]!);
    await until(r, () => r.echo.received(vdev).length === 1, 'echo through vring 3');
    expect(quad.info().nums).toEqual([16, 16, 16, 16]);
  });
});
