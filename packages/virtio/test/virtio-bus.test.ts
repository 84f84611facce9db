import { describe, expect, it } from '@jest/globals';
import { isMicError } from '@mic/errors';
import { readBytes } from '@mic/memory';
import {
  InProcessTransport,
  VIRTIO_CONFIG_S,
  VIRTIO_DEV_ANY_ID,
  VIRTIO_F,
  VIRTIO_ID,
  VirtioBus,
  type VirtioDevice,
  type VirtioDriver,
  type VirtioQueue,
  VringhIov,
  featureBit,
  features,
  vringTransportFeatures,
} from '../src/index.js';

const { ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, FAILED } = VIRTIO_CONFIG_S;

/** A transport whose status writes are recorded, one entry per write. */
function recorded(options: Partial<ConstructorParameters<typeof InProcessTransport>[0]> = {}) {
  const t = new InProcessTransport({
    deviceId: VIRTIO_ID.CONSOLE,
    features: 0n,
    queueSizes: [8, 8],
    memorySize: 1 << 16,
    ...options,
  });
  const statuses: number[] = [];
  t.subscribe((e) => {
    if (e.type === 'status') statuses.push(e.status);
    if (e.type === 'reset') statuses.push(0);
  });
  return { t, statuses };
}

function driver(
  over: Partial<VirtioDriver> = {},
): VirtioDriver & { probed: VirtioDevice[]; removed: VirtioDevice[] } {
  const probed: VirtioDevice[] = [];
  const removed: VirtioDevice[] = [];
  return {
    name: 'test-driver',
    idTable: [
      { device: VIRTIO_ID.CONSOLE, vendor: VIRTIO_DEV_ANY_ID },
      { device: 0, vendor: 0 },
    ],
    featureTable: [],
    probe: (vdev) => void probed.push(vdev),
    remove: async (vdev) => {
      removed.push(vdev);
      await vdev.reset();
    },
    ...over,
    probed,
    removed,
  };
}

describe('virtio bus: registration and negotiation (drivers/virtio/virtio.c)', () => {
  it('resets a new device, acknowledges it, and names it virtio<n> with its modalias', async () => {
    const bus = new VirtioBus();
    const { t, statuses } = recorded();
    const vdev = await bus.registerDevice(t.params());
    expect(vdev.name).toBe('virtio0');
    expect(statuses).toEqual([0, ACKNOWLEDGE]);
    expect(bus.modalias(vdev)).toBe('virtio:d00000003v00000000');
    expect(bus.driverOf(vdev)).toBeUndefined();
    const second = await bus.registerDevice(recorded().t.params());
    expect(second.name).toBe('virtio1');
    await bus.unregisterDevice(vdev);
    const third = await bus.registerDevice(recorded().t.params());
    expect(third.name).toBe('virtio0');
  });

  it('runs ACKNOWLEDGE, DRIVER, FEATURES_OK (re-read) and DRIVER_OK for a VERSION_1 device', async () => {
    const bus = new VirtioBus();
    const offered = features(VIRTIO_F.VERSION_1, 0, 1, 5);
    const { t, statuses } = recorded({ features: offered });
    const drv = driver({ featureTable: [1, 5, 7] });
    await bus.registerDriver(drv);
    const vdev = await bus.registerDevice(t.params());
    expect(drv.probed).toEqual([vdev]);
    expect(statuses).toEqual([
      0,
      ACKNOWLEDGE,
      ACKNOWLEDGE | DRIVER,
      ACKNOWLEDGE | DRIVER | FEATURES_OK,
      ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK,
    ]);
    // Driver bits it lists and the device offers, plus the transport bit VERSION_1.
    expect(vdev.features).toBe(features(VIRTIO_F.VERSION_1, 1, 5));
    expect(t.driverFeatures).toBe(vdev.features);
    expect(vdev.hasFeature(5)).toBe(true);
    expect(vdev.hasFeature(0)).toBe(false);
  });

  it('skips FEATURES_OK for a legacy device and uses the legacy feature table', async () => {
    const bus = new VirtioBus();
    const { t, statuses } = recorded({ features: features(2, 3) });
    const drv = driver({ featureTable: [2], featureTableLegacy: [3] });
    await bus.registerDriver(drv);
    const vdev = await bus.registerDevice(t.params());
    expect(vdev.features).toBe(featureBit(3));
    expect(statuses).toEqual([0, ACKNOWLEDGE, ACKNOWLEDGE | DRIVER, ACKNOWLEDGE | DRIVER | DRIVER_OK]);
  });

  it('lets validate clear a negotiated feature before the transport finalizes them', async () => {
    const bus = new VirtioBus();
    const { t } = recorded({ features: features(2, 3, 5) });
    const drv = driver({ featureTable: [2, 3, 5], validate: (vdev) => vdev.clearFeature(3) });
    await bus.registerDriver(drv);
    const vdev = await bus.registerDevice(t.params());
    expect(vdev.features).toBe(features(2, 5));
    expect(t.driverFeatures).toBe(features(2, 5));
  });

  it('keeps transport features for the transport to finalize and drops those the ring lacks', async () => {
    expect(vringTransportFeatures(features(VIRTIO_F.RING_PACKED, VIRTIO_F.RING_EVENT_IDX, 3, 30))).toBe(
      features(VIRTIO_F.RING_EVENT_IDX, 3),
    );
    const bus = new VirtioBus();
    const { t } = recorded({ features: features(VIRTIO_F.RING_PACKED, VIRTIO_F.RING_EVENT_IDX, 36) });
    await bus.registerDriver(driver());
    const vdev = await bus.registerDevice(t.params());
    expect(vdev.features).toBe(featureBit(VIRTIO_F.RING_EVENT_IDX));
  });

  it('fails the probe with ENODEV and sets FAILED when the device clears FEATURES_OK', async () => {
    const bus = new VirtioBus();
    const { t, statuses } = recorded({
      features: featureBit(VIRTIO_F.VERSION_1),
      acceptFeatures: () => false,
    });
    const drv = driver();
    await bus.registerDriver(drv);
    const vdev = await bus.registerDevice(t.params());
    expect(drv.probed).toEqual([]);
    expect(bus.driverOf(vdev)).toBeUndefined();
    const err = bus.probeError(vdev);
    expect(isMicError(err, 'ENODEV')).toBe(true);
    expect(err?.message).toMatch(/refuses features/);
    expect(statuses.at(-1)! & FAILED).toBe(FAILED);
    expect(statuses.at(-1)! & DRIVER_OK).toBe(0);
  });

  it('sets FAILED when the driver probe throws, and keeps the reason', async () => {
    const bus = new VirtioBus();
    const { t } = recorded();
    await bus.registerDriver(
      driver({
        probe: () => {
          throw new Error('no memory for buffers');
        },
      }),
    );
    const vdev = await bus.registerDevice(t.params());
    expect(t.status & FAILED).toBe(FAILED);
    expect(bus.probeError(vdev)?.message).toMatch(/no memory for buffers/);
  });

  it('does not write DRIVER_OK again when the driver set it in probe', async () => {
    const bus = new VirtioBus();
    const { t, statuses } = recorded();
    await bus.registerDriver(driver({ probe: (vdev) => vdev.ready() }));
    await bus.registerDevice(t.params());
    expect(statuses.filter((s) => s & DRIVER_OK)).toHaveLength(1);
  });

  it('binds only matching drivers: device id or ANY, vendor ANY or equal, table ends at device 0', async () => {
    const bus = new VirtioBus();
    const net = driver({ name: 'net', idTable: [{ device: VIRTIO_ID.NET, vendor: VIRTIO_DEV_ANY_ID }] });
    const afterEnd = driver({
      name: 'after-end',
      idTable: [
        { device: 0, vendor: 0 },
        { device: VIRTIO_ID.CONSOLE, vendor: VIRTIO_DEV_ANY_ID },
      ],
    });
    const vendor7 = driver({ name: 'vendor7', idTable: [{ device: VIRTIO_DEV_ANY_ID, vendor: 7 }] });
    await bus.registerDriver(net);
    await bus.registerDriver(afterEnd);
    await bus.registerDriver(vendor7);
    const plain = await bus.registerDevice(recorded().t.params());
    expect(bus.driverOf(plain)).toBeUndefined();
    const seven = await bus.registerDevice(recorded({ vendor: 7 }).t.params());
    expect(bus.driverOf(seven)?.name).toBe('vendor7');
  });

  it('rejects bad registrations with EINVAL naming what is wrong', async () => {
    const bus = new VirtioBus();
    await expect(bus.registerDriver(driver({ featureTable: [64] }))).rejects.toThrow(/feature bit/);
    const p = recorded().t.params();
    await expect(bus.registerDevice({ ...p, id: { device: 0 } })).rejects.toThrow(/virtio device id/);
    await expect(
      bus.registerDevice({ ...p, config: { ...p.config, reset: undefined } as unknown as typeof p.config }),
    ).rejects.toThrow(/lack reset/);
  });

  it('removes: the driver resets the device, ACKNOWLEDGE is set again, another driver can bind', async () => {
    const bus = new VirtioBus();
    const { t, statuses } = recorded();
    const first = driver({ name: 'first' });
    await bus.registerDriver(first);
    const vdev = await bus.registerDevice(t.params());
    await bus.unregisterDriver(first);
    expect(first.removed).toEqual([vdev]);
    expect(statuses.slice(-2)).toEqual([0, ACKNOWLEDGE]);
    const second = driver({ name: 'second' });
    await bus.registerDriver(second);
    expect(bus.driverOf(vdev)?.name).toBe('second');
    await bus.unregisterDevice(vdev);
    expect(second.removed).toEqual([vdev]);
    expect(bus.devices()).toEqual([]);
  });

  it('delivers a config change after probe finished, never during it', async () => {
    const bus = new VirtioBus();
    const { t } = recorded({ config: new Uint8Array(4) });
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const drv = driver({
      probe: async () => {
        seen.push('probe-start');
        await gate;
        seen.push('probe-end');
      },
      configChanged: (vdev) => seen.push(`changed:${vdev.readConfigU32(0)}`),
    });
    await bus.registerDriver(drv);
    const registering = bus.registerDevice(t.params());
    await new Promise((r) => setImmediate(r));
    t.setConfig(0, new Uint8Array([7, 0, 0, 0]));
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['probe-start']);
    release();
    await registering;
    expect(seen).toEqual(['probe-start', 'probe-end', 'changed:7']);
    t.setConfig(0, new Uint8Array([9, 0, 0, 0]));
    await t.flush();
    expect(seen.at(-1)).toBe('changed:9');
  });

  it('reads config fields little-endian and refuses reads outside the config space', async () => {
    const bus = new VirtioBus();
    const config = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const { t } = recorded({ config });
    const vdev = await bus.registerDevice(t.params());
    expect(vdev.readConfigU8(8)).toBe(9);
    expect(vdev.readConfigU16(0)).toBe(0x0201);
    expect(vdev.readConfigU32(1)).toBe(0x05040302);
    expect(vdev.readConfigU64(0)).toBe(0x0807060504030201n);
    expect(() => vdev.readConfig(6, 4)).toThrow(/outside the 9-byte config space/);
    vdev.writeConfig(0, Uint8Array.of(0xaa));
    expect(t.configBytes()[0]).toBe(0xaa);
  });
});

describe('in-process transport: queues between a driver and a Vringh in one thread', () => {
  /** A console-like echo device: every chain's readable bytes come back in its writable part. */
  function echoDevice(t: InProcessTransport): { served: number } {
    const riov = new VringhIov();
    const wiov = new VringhIov();
    const stats = { served: 0 };
    t.subscribe((e) => {
      if (e.type !== 'kick') return;
      const q = t.queue(e.queue)!;
      for (;;) {
        const r = q.vringh.getDesc(riov, wiov);
        if (r.status !== 'chain') break;
        const buf = new Uint8Array(riov.total);
        q.vringh.pull(riov, buf);
        const n = q.vringh.push(wiov, buf);
        q.vringh.complete(r.head, n);
        stats.served++;
      }
      if (q.vringh.needNotify()) t.interrupt(e.queue);
    });
    return stats;
  }

  /** Registers a driver that sets up one queue and reports its used buffers; returns the queue. */
  async function oneQueueDriver(
    bus: VirtioBus,
    onUsed: (token: number, len: number) => void,
  ): Promise<() => VirtioQueue<number>> {
    let vq: VirtioQueue<number> | undefined;
    await bus.registerDriver(
      driver({
        probe: async (vdev) => {
          [vq] = (await vdev.findVqs<number>([
            {
              name: 'echo',
              callback: (q) => {
                for (let u = q.getBuf(); u; u = q.getBuf()) onUsed(u.token as number, u.len);
              },
            },
          ])) as [VirtioQueue<number>];
        },
        remove: async (vdev) => {
          await vdev.reset();
          await vdev.delVqs();
        },
      }),
    );
    return () => vq!;
  }

  it('carries requests to the device and responses back, with device addresses above the DMA base', async () => {
    const bus = new VirtioBus();
    const t = new InProcessTransport({ deviceId: VIRTIO_ID.CONSOLE, features: 0n, queueSizes: [16] });
    const stats = echoDevice(t);
    const done: number[] = [];
    const queue = await oneQueueDriver(bus, (token, len) => done.push(token * 1000 + len));
    const vdev = await bus.registerDevice(t.params());
    const vq = queue();
    const out = vdev.dma.alloc(64);
    const back = vdev.dma.alloc(64);
    expect(out.addr).toBeGreaterThanOrEqual(t.dmaBase + 4096);
    out.va.write(0, new TextEncoder().encode('hello'));
    vq.add([{ addr: out.addr, len: 5 }], [{ addr: back.addr, len: 64 }], 1);
    expect(vq.kick()).toBe(true);
    expect(stats.served).toBe(0); // the device runs in a later task
    while (done.length === 0) await t.flush();
    expect(done).toEqual([1005]);
    const got = new Uint8Array(5);
    back.va.read(0, got);
    expect(new TextDecoder().decode(got)).toBe('hello');
    await bus.unregisterDevice(vdev);
    expect(t.queue(0)).toBeNull();
  });

  it('carries multi-buffer chains in indirect tables at device addresses when INDIRECT_DESC is negotiated', async () => {
    const bus = new VirtioBus();
    const t = new InProcessTransport({
      deviceId: VIRTIO_ID.CONSOLE,
      features: featureBit(VIRTIO_F.RING_INDIRECT_DESC),
      queueSizes: [4],
    });
    const stats = echoDevice(t);
    const done: number[] = [];
    const queue = await oneQueueDriver(bus, (_token, len) => done.push(len));
    const vdev = await bus.registerDevice(t.params());
    const vq = queue();
    const b = vdev.dma.alloc(64);
    b.va.write(0, Uint8Array.of(1, 2, 3, 4));
    // Four chains of three buffers in a ring of four descriptors: one descriptor each.
    for (let k = 0; k < 4; k++) {
      vq.add(
        [
          { addr: b.addr, len: 2 },
          { addr: b.addr + 2, len: 2 },
        ],
        [{ addr: b.addr + 32 + 4 * k, len: 4 }],
        k,
      );
    }
    vq.kick();
    for (let turn = 0; turn < 100 && done.length < 4; turn++) await t.flush();
    expect(done).toEqual([4, 4, 4, 4]);
    expect(t.queue(0)!.vringh.badChains).toBe(0);
    expect(stats.served).toBe(4);
    expect([...readBytes(b.va, 44, 4)]).toEqual([1, 2, 3, 4]);
  });

  it('skips null names without using a queue index, and refuses more queues than the device has', async () => {
    const bus = new VirtioBus();
    const t = new InProcessTransport({ deviceId: VIRTIO_ID.CONSOLE, features: 0n, queueSizes: [8, 4] });
    let got: (VirtioQueue | null)[] = [];
    let tooMany: unknown;
    await bus.registerDriver(
      driver({
        probe: async (vdev) => {
          try {
            await vdev.findVqs([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
          } catch (err) {
            tooMany = err;
          }
          got = await vdev.findVqs([{ name: 'rx' }, { name: null }, { name: 'tx' }]);
        },
      }),
    );
    await bus.registerDevice(t.params());
    expect(isMicError(tooMany, 'ENOENT')).toBe(true);
    expect(got.map((q) => q && [q.name, q.index, q.num])).toEqual([['rx', 0, 8], null, ['tx', 1, 4]]);
    expect(t.queue(1)?.num).toBe(4);
  });

  it('stops queues on reset: the device side starts over and kicks of deleted queues fail', async () => {
    const bus = new VirtioBus();
    const t = new InProcessTransport({ deviceId: VIRTIO_ID.CONSOLE, features: 0n, queueSizes: [8] });
    echoDevice(t);
    let vq!: VirtioQueue<number>;
    let vdevRef!: VirtioDevice;
    await bus.registerDriver(
      driver({
        probe: async (vdev) => {
          vdevRef = vdev;
          [vq] = (await vdev.findVqs<number>([{ name: 'q' }])) as [VirtioQueue<number>];
        },
      }),
    );
    await bus.registerDevice(t.params());
    const b = vdevRef.dma.alloc(64);
    vq.add([{ addr: b.addr, len: 8 }], [], 1);
    vq.kick();
    while (vq.numFree < 8) {
      await t.flush();
      vq.getBuf();
    }
    expect(t.queue(0)!.vringh.lastAvailIdx).toBe(1);
    await vdevRef.reset();
    expect(t.status).toBe(0);
    expect(t.queue(0)!.vringh.lastAvailIdx).toBe(0);
    await vdevRef.delVqs();
    expect(vq.notify()).toBe(false);
    expect(vq.broken).toBe(true);
  });
});
