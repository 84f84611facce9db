import { describe, expect, it } from '@jest/globals';
import { isMicError } from '@mic/errors';
import {
  VIRTIO_BLK_F,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VIRTIO_CONFIG_S,
  VIRTIO_F,
  VIRTIO_ID,
  type VirtioBlkConfig,
  encodeBlkConfig,
  features,
} from '@mic/virtio';
import { type VirtioBlk, VirtioBlkDriver, type VirtioBlkDriverOptions } from '../src/index.js';
import { type BlkDevice, type BlkDeviceOptions, blkDevice } from './blk-device.js';
import { type Rig, countSignals, rejection, rig, until } from './harness.js';

/** What mpssd offers: SEG_MAX only, seg_max 126, 128 entries (mic-vop.md §7.5). */
const MPSSD_BLK = features(VIRTIO_BLK_F.SEG_MAX);

interface BlkSetup {
  readonly r: Rig;
  readonly drv: VirtioBlkDriver;
  readonly disk: VirtioBlk;
  readonly dev: BlkDevice;
}

async function setup(
  o: {
    features?: bigint;
    config?: Partial<VirtioBlkConfig>;
    configBytes?: Uint8Array;
    sectors?: number;
    queueSize?: number;
    device?: BlkDeviceOptions;
    driver?: VirtioBlkDriverOptions;
  } = {},
): Promise<BlkSetup> {
  const sectors = o.sectors ?? 256;
  const image = new Uint8Array(sectors * 512);
  const drv = new VirtioBlkDriver(o.driver);
  const config = o.configBytes ?? encodeBlkConfig({ capacity: BigInt(sectors), segMax: 126, ...o.config });
  const r = await rig(drv, {
    deviceId: VIRTIO_ID.BLOCK,
    features: o.features ?? MPSSD_BLK,
    config,
    queueSizes: [o.queueSize ?? 128],
    memorySize: 8 << 20,
  });
  // The device side subscribes after registration: queues exist only from the driver's probe on.
  const dev = blkDevice(r.t, image, o.device);
  const disk = await drv.waitForDevice();
  return { r, drv, disk, dev };
}

function pattern(bytes: number, seed: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 7 + seed * 13 + (i >> 9)) & 0xff;
  return b;
}

describe('virtio-blk driver: binding and feature negotiation', () => {
  it("acks only SEG_MAX of mpssd's offer, and reads capacity and seg_max", async () => {
    const { r, disk } = await setup({ sectors: 100 });
    expect(r.t.driverFeatures).toBe(MPSSD_BLK);
    expect(r.t.status & VIRTIO_CONFIG_S.DRIVER_OK).toBe(VIRTIO_CONFIG_S.DRIVER_OK);
    expect(disk.capacity).toBe(100n);
    expect(disk.limits.segMax).toBe(126);
    expect(disk.readOnly).toBe(false);
    expect(disk.canFlush).toBe(false);
    expect(disk.queueSize).toBe(128);
  });

  it('acks what it implements of a richer offer and nothing else', async () => {
    const implemented = features(
      VIRTIO_BLK_F.SIZE_MAX,
      VIRTIO_BLK_F.SEG_MAX,
      VIRTIO_BLK_F.RO,
      VIRTIO_BLK_F.BLK_SIZE,
      VIRTIO_BLK_F.FLUSH,
      VIRTIO_BLK_F.DISCARD,
      VIRTIO_BLK_F.WRITE_ZEROES,
    );
    const others = features(
      0, // BARRIER (legacy)
      VIRTIO_BLK_F.GEOMETRY,
      7, // SCSI (legacy)
      VIRTIO_BLK_F.TOPOLOGY,
      VIRTIO_BLK_F.CONFIG_WCE,
      VIRTIO_BLK_F.MQ,
    );
    const transport = features(VIRTIO_F.VERSION_1, VIRTIO_F.RING_EVENT_IDX, VIRTIO_F.RING_INDIRECT_DESC);
    const { r, disk } = await setup({
      features: implemented | others | transport,
      config: { blkSize: 4096, sizeMax: 8192 },
    });
    expect(r.t.driverFeatures).toBe(implemented | transport);
    expect(disk.readOnly).toBe(true);
    expect(disk.canFlush && disk.canDiscard && disk.canWriteZeroes).toBe(true);
    expect(disk.blockSize).toBe(4096);
    expect(disk.limits.maxSegmentSize).toBe(8192);
  });

  it('drops a feature whose config field lies outside a short config space', async () => {
    // 16 bytes: capacity, size_max, seg_max; no room for blk_size or the discard fields.
    const cfg = encodeBlkConfig({ capacity: 64n, segMax: 8 }).slice(0, 16);
    const { r, disk } = await setup({
      features: features(VIRTIO_BLK_F.SEG_MAX, VIRTIO_BLK_F.BLK_SIZE, VIRTIO_BLK_F.DISCARD),
      configBytes: cfg,
      sectors: 64,
    });
    expect(r.t.driverFeatures).toBe(features(VIRTIO_BLK_F.SEG_MAX));
    expect(disk.canDiscard).toBe(false);
    expect(disk.limits.segMax).toBe(8);
  });

  it('fails the probe of a device whose config space has no capacity', async () => {
    const drv = new VirtioBlkDriver();
    const r = await rig(drv, {
      deviceId: VIRTIO_ID.BLOCK,
      features: 0n,
      config: new Uint8Array(4),
      queueSizes: [8],
    });
    expect(drv.devices()).toEqual([]);
    expect(isMicError(r.bus.probeError(r.vdev), 'EINVAL')).toBe(true);
    expect(r.t.status & VIRTIO_CONFIG_S.FAILED).toBe(VIRTIO_CONFIG_S.FAILED);
    expect(r.live.size).toBe(0);
  });

  it('waits for a device with a bound, and cancels the wait', async () => {
    const drv = new VirtioBlkDriver();
    const ac = new AbortController();
    const waiting = drv.waitForDevice({ signal: ac.signal });
    ac.abort();
    expect(isMicError(await rejection(waiting), 'ECANCELED')).toBe(true);
  });
});

describe('virtio-blk driver: requests', () => {
  it('writes and reads back sectors; the device image holds the bytes', async () => {
    const { disk, dev } = await setup();
    const data = pattern(8 * 512, 1);
    await disk.write(10, data);
    expect(dev.image.subarray(10 * 512, 18 * 512)).toEqual(data);
    expect(await disk.read(10n, 8)).toEqual(data);
    const into = new Uint8Array(1024);
    await disk.readInto(11, into);
    expect(into).toEqual(data.subarray(512, 1536));
    expect(dev.seen.map((s) => s.type)).toEqual([VIRTIO_BLK_T.OUT, VIRTIO_BLK_T.IN, VIRTIO_BLK_T.IN]);
    expect(disk.counters).toMatchObject({ completed: 3, failed: 0, bytesWritten: 4096, bytesRead: 5120 });
  });

  it('notifies the device once for the requests posted in one turn', async () => {
    const { r, disk, dev } = await setup();
    dev.image.set(pattern(64 * 512, 3));
    const c = countSignals(r.t);
    try {
      const bufs = Array.from({ length: 8 }, () => new Uint8Array(4096));
      await Promise.all(bufs.map((b, i) => disk.readInto(i * 8, b)));
      bufs.forEach((b, i) => expect(b).toEqual(dev.image.subarray(i * 4096, (i + 1) * 4096)));
      expect(c.kicks[0]).toBe(1);
    } finally {
      c.restore();
    }
  });

  it('sends FLUSH when the device offers it, and none when it does not', async () => {
    const a = await setup({ features: features(VIRTIO_BLK_F.FLUSH) });
    await a.disk.write(0, pattern(512, 2));
    await a.disk.flush();
    expect(a.dev.flushes).toBe(1);
    const flushReq = a.dev.seen.at(-1)!;
    expect(flushReq).toMatchObject({ type: VIRTIO_BLK_T.FLUSH, sector: 0n, dataLen: 0 });
    const b = await setup();
    await b.disk.flush();
    expect(b.dev.seen).toEqual([]);
  });

  it('reads the serial with GET_ID: NUL-padded, or all 20 bytes', async () => {
    const a = await setup({ device: { serial: 'mic0-image' } });
    expect(await a.disk.getId()).toBe('mic0-image');
    const b = await setup({ device: { serial: 'ABCDEFGHIJKLMNOPQRST' } });
    expect(await b.disk.getId()).toBe('ABCDEFGHIJKLMNOPQRST');
    const c = await setup();
    expect(isMicError(await rejection(c.disk.getId()), 'EOPNOTSUPP')).toBe(true);
  });

  it('discards and zeroes ranges in segments of the advertised limits', async () => {
    const { disk, dev } = await setup({
      features: features(VIRTIO_BLK_F.DISCARD, VIRTIO_BLK_F.WRITE_ZEROES),
      config: { maxDiscardSectors: 4, maxDiscardSeg: 2, maxWriteZeroesSectors: 0, maxWriteZeroesSeg: 0 },
    });
    dev.image.fill(0x55);
    await disk.discard(8, 10); // segments 4+4+2, two per request
    const discards = dev.seen.filter((s) => s.type === VIRTIO_BLK_T.DISCARD);
    expect(discards.map((s) => s.dataLen)).toEqual([32, 16]);
    expect(dev.image.subarray(8 * 512, 18 * 512).every((b) => b === 0xdd)).toBe(true);
    expect(dev.image[18 * 512]).toBe(0x55);
    await disk.writeZeroes(100, 50); // 0 limits: one segment of any size
    const wz = dev.seen.filter((s) => s.type === VIRTIO_BLK_T.WRITE_ZEROES);
    expect(wz.map((s) => s.dataLen)).toEqual([16]);
    expect(dev.image.subarray(100 * 512, 150 * 512).every((b) => b === 0)).toBe(true);
    expect(await disk.read(99, 1)).toEqual(new Uint8Array(512).fill(0x55));
  });

  it('refuses discard and write-zeroes the device did not offer, before any request', async () => {
    const { disk, dev } = await setup();
    expect(isMicError(await rejection(disk.discard(0, 1)), 'EOPNOTSUPP')).toBe(true);
    expect(isMicError(await rejection(disk.writeZeroes(0, 1)), 'EOPNOTSUPP')).toBe(true);
    expect(dev.seen).toEqual([]);
  });

  it('checks ranges and lengths before a request reaches the device', async () => {
    const { disk, dev } = await setup({ sectors: 64 });
    await disk.write(63, pattern(512, 3)); // the last sector is fine
    dev.seen.length = 0;
    const cases: Promise<unknown>[] = [
      disk.read(64, 1),
      disk.read(60, 5),
      disk.write(63, new Uint8Array(1024)),
      disk.read(-1, 1),
      disk.read(2n ** 64n - 1n, 1),
      disk.read(1.5, 1),
      disk.write(0, new Uint8Array(100)),
      disk.write(0, new Uint8Array(0)),
      disk.read(0, 0),
    ];
    for (const p of cases) expect(isMicError(await rejection(p), 'EINVAL')).toBe(true);
    expect(dev.seen).toEqual([]);
    const err = await rejection(disk.read(60, 5));
    expect((err as Error).message).toMatch(/read of 5 sectors at 60 is outside the 64-sector disk/);
  });

  it('honours read-only: writes, discards and write-zeroes fail with EROFS without reaching the device', async () => {
    const { disk, dev } = await setup({
      features: features(VIRTIO_BLK_F.RO, VIRTIO_BLK_F.DISCARD, VIRTIO_BLK_F.WRITE_ZEROES),
      device: { readOnly: true },
    });
    dev.image.fill(7, 0, 512);
    for (const p of [disk.write(0, new Uint8Array(512)), disk.discard(0, 1), disk.writeZeroes(0, 1)]) {
      expect(isMicError(await rejection(p), 'EROFS')).toBe(true);
    }
    expect(dev.seen).toEqual([]);
    expect(await disk.read(0, 1)).toEqual(new Uint8Array(512).fill(7));
  });

  it('maps the status byte: IOERR to EIO, UNSUPP to EOPNOTSUPP, anything else to EIO naming it', async () => {
    const statuses = [VIRTIO_BLK_S.IOERR, VIRTIO_BLK_S.UNSUPP, 7];
    let next = 0;
    const { disk } = await setup({ device: { status: () => statuses[next++] } });
    const e1 = await rejection(disk.read(0, 1));
    expect(isMicError(e1, 'EIO') && /VIRTIO_BLK_S_IOERR/.test(e1.message)).toBe(true);
    expect(isMicError(await rejection(disk.write(0, new Uint8Array(512))), 'EOPNOTSUPP')).toBe(true);
    const e3 = await rejection(disk.read(0, 1));
    expect(isMicError(e3, 'EIO') && /status byte 0x07/.test(e3.message)).toBe(true);
    expect(disk.counters.failed).toBe(3);
    // The disk goes on after failed requests.
    await disk.write(0, pattern(512, 4));
  });

  it('reports a status byte the device never wrote, and a request returned with used length 0', async () => {
    const a = await setup({ device: { skipStatus: true } });
    const e = await rejection(a.disk.read(0, 1));
    expect(isMicError(e, 'EIO') && /0xff .*did not write it/.test(e.message)).toBe(true);
    const b = await setup({ device: { usedLen: () => 0 } });
    const e2 = await rejection(b.disk.write(0, new Uint8Array(512)));
    expect(isMicError(e2, 'EIO') && /used length 0/.test(e2.message)).toBe(true);
  });

  it('rejects a short used length from a VERSION_1 device, and ignores it from a legacy one (§5.2.6.4)', async () => {
    const short = (honest: number): number => (honest > 1 ? honest - 512 : honest);
    const modern = await setup({ features: features(VIRTIO_F.VERSION_1), device: { usedLen: short } });
    modern.dev.image.fill(9, 0, 1024);
    const e = await rejection(modern.disk.read(0, 2));
    expect(isMicError(e, 'EIO') && /wrote 513 bytes, 1025 expected/.test(e.message)).toBe(true);
    const legacy = await setup({ device: { usedLen: short } });
    legacy.dev.image.fill(9, 0, 1024);
    expect(await legacy.disk.read(0, 2)).toEqual(new Uint8Array(1024).fill(9));
    // An over-long used length is clamped by the ring, never trusted.
    const long = await setup({ features: features(VIRTIO_F.VERSION_1), device: { usedLen: () => 1 << 30 } });
    long.dev.image.fill(3, 0, 1024);
    expect(await long.disk.read(0, 2)).toEqual(new Uint8Array(1024).fill(3));
    expect(long.disk.broken).toBeNull();
  });
});

describe('virtio-blk driver: buffers of allocBuffer (no copy on the card)', () => {
  it('has the device write a read into the buffer itself, before the completion', async () => {
    const { r, disk, dev } = await setup({ device: { hold: true } });
    dev.image.set(pattern(4096, 3), 8 * 512);
    const own = disk.allocBuffer(4096);
    const plain = new Uint8Array(4096);
    const a = disk.readInto(8, own);
    const b = disk.readInto(8, plain);
    await until(r.t, () => dev.served.held.length === 2);
    // The device has written both; only the bounce buffer of the plain array waits for the copy.
    expect(own).toEqual(pattern(4096, 3));
    expect(plain).toEqual(new Uint8Array(4096));
    dev.served.release();
    await Promise.all([a, b]);
    expect(plain).toEqual(pattern(4096, 3));
    expect(disk.counters.bytesRead).toBe(8192);
    disk.freeBuffer(own);
  });

  it('reads into and writes from a subarray of a buffer, and allocates nothing per request', async () => {
    const { r, disk, dev } = await setup();
    const own = disk.allocBuffer(3 * 512);
    own.set(pattern(1024, 5), 512);
    const before = r.live.size;
    await disk.write(20, own.subarray(512));
    expect(dev.image.subarray(20 * 512, 22 * 512)).toEqual(pattern(1024, 5));
    dev.image.set(pattern(512, 9), 40 * 512);
    await disk.readInto(40, own.subarray(0, 512));
    expect(own.subarray(0, 512)).toEqual(pattern(512, 9));
    expect(own.subarray(512)).toEqual(pattern(1024, 5));
    // Header slots only: no bounce buffer was taken for these requests.
    expect(r.live.size).toBe(before);
    disk.freeBuffer(own);
    expect(r.live.size).toBe(before - 1);
    disk.freeBuffer(own); // a second free is a no-op
    disk.freeBuffer(new Uint8Array(512)); // so is an array of the program's own
  });

  it('refuses to free a buffer the device still holds (EBUSY), then frees it', async () => {
    const { r, disk, dev } = await setup({ device: { hold: true } });
    const own = disk.allocBuffer(512);
    const read = disk.readInto(0, own);
    await until(r.t, () => dev.served.held.length === 1);
    const err = (() => {
      try {
        disk.freeBuffer(own);
        return null;
      } catch (e) {
        return e;
      }
    })();
    expect(isMicError(err, 'EBUSY')).toBe(true);
    dev.served.release();
    await read;
    const live = r.live.size;
    disk.freeBuffer(own);
    expect(r.live.size).toBe(live - 1);
  });

  it('keeps the checks of every request: a bad length or range fails before the device sees it', async () => {
    const { disk, dev } = await setup({ sectors: 16 });
    const own = disk.allocBuffer(1024);
    expect(isMicError(await rejection(disk.readInto(15, own)), 'EINVAL')).toBe(true);
    expect(isMicError(await rejection(disk.readInto(0, own.subarray(0, 100))), 'EINVAL')).toBe(true);
    expect(dev.seen).toHaveLength(0);
    expect(() => disk.allocBuffer(0)).toThrow();
    disk.freeBuffer(own);
  });
});

describe('virtio-blk driver: queue depth and segments', () => {
  it('keeps as many requests in flight as the ring holds; the rest wait in order', async () => {
    const { r, disk, dev } = await setup({ device: { hold: true }, queueSize: 32 });
    for (let s = 0; s < 64; s++) dev.image.fill(s, s * 512, s * 512 + 512);
    const reads = Array.from({ length: 40 }, (_, s) => disk.read(s, 1));
    await until(r.t, () => dev.served.held.length === 10);
    // Three descriptors per request (header, data, status): 32 / 3 = 10 in flight.
    expect(disk.inFlight).toBe(10);
    expect(disk.waiting).toBe(30);
    while (dev.served.completed < 40) {
      dev.served.release();
      await until(r.t, () => dev.served.held.length > 0 || dev.served.completed === 40);
    }
    const got = await Promise.all(reads);
    got.forEach((b, s) => expect(b).toEqual(new Uint8Array(512).fill(s)));
    // The order of arrival at the device is the order of the calls.
    expect(dev.seen.map((x) => Number(x.sector))).toEqual(Array.from({ length: 40 }, (_, s) => s));
  });

  it('puts a request in one descriptor with indirect tables, so the depth reaches the ring size', async () => {
    const { r, disk, dev } = await setup({
      device: { hold: true },
      queueSize: 16,
      features: features(VIRTIO_BLK_F.SEG_MAX, VIRTIO_F.RING_INDIRECT_DESC),
    });
    const writes = Array.from({ length: 20 }, (_, s) => disk.write(s, pattern(512, s)));
    await until(r.t, () => dev.served.held.length === 16);
    expect(disk.inFlight).toBe(16);
    dev.served.release();
    await until(r.t, () => dev.served.held.length === 4);
    dev.served.release();
    await Promise.all(writes);
    expect(dev.image.subarray(19 * 512, 20 * 512)).toEqual(pattern(512, 19));
  });

  it('cancels a waiting request before it reaches the device, and a posted one at once', async () => {
    const { r, disk, dev } = await setup({ device: { hold: true }, queueSize: 4 });
    const first = disk.write(0, pattern(512, 1)); // 3 of 4 descriptors
    const ac = new AbortController();
    const second = disk.write(1, pattern(512, 2), { signal: ac.signal });
    await until(r.t, () => dev.served.held.length === 1);
    expect(disk.waiting).toBe(1);
    ac.abort(new Error('user gave up'));
    const err = await rejection(second);
    expect(isMicError(err, 'ECANCELED')).toBe(true);
    const ac2 = new AbortController();
    const third = disk.read(5, 1, { signal: ac2.signal });
    dev.served.release();
    await first;
    await until(r.t, () => dev.served.held.length === 1);
    const buffersWhilePosted = r.live.size;
    ac2.abort();
    expect(isMicError(await rejection(third), 'ECANCELED')).toBe(true);
    dev.served.release();
    await until(r.t, () => r.live.size < buffersWhilePosted || disk.inFlight === 0);
    expect(disk.inFlight).toBe(0);
    expect(dev.seen.map((s) => Number(s.sector))).toEqual([0, 5]);
    expect(dev.image[512]).toBe(0);
  });

  it('splits data into segments of size_max, up to seg_max per request, and longer transfers into requests', async () => {
    const { disk, dev } = await setup({
      features: features(VIRTIO_BLK_F.SEG_MAX, VIRTIO_BLK_F.SIZE_MAX),
      config: { segMax: 4, sizeMax: 4096 },
    });
    expect(disk.limits).toMatchObject({ segMax: 4, maxSegmentSize: 4096, maxRequestSectors: 32 });
    const data = pattern(48 * 512, 5);
    await disk.write(0, data); // 24 KiB: a request of 4 segments and one of 2
    expect(dev.seen.map((s) => [s.dataSegments, s.dataLen])).toEqual([
      [4, 16384],
      [2, 8192],
    ]);
    expect(await disk.read(0, 48)).toEqual(data);
    expect(dev.seen.slice(2).map((s) => s.dataSegments)).toEqual([4, 2]);
    expect(Math.max(...dev.seen.map((s) => s.dataSegments))).toBeLessThanOrEqual(4);
  });

  it('caps seg_max by the ring: header and status need two descriptors', async () => {
    const { disk, dev } = await setup({ queueSize: 8, driver: { maxSegmentSize: 512 } });
    expect(disk.limits.segMax).toBe(6);
    await disk.write(0, pattern(7 * 512, 6));
    expect(dev.seen.map((s) => s.dataSegments)).toEqual([6, 1]);
  });
});

describe('virtio-blk driver: a device that breaks, changes or goes away', () => {
  it('fails every request with EIO when the device corrupts the used ring, and does not hang', async () => {
    const { r, disk, dev } = await setup({ device: { hold: true } });
    const broken: unknown[] = [];
    disk.on('broken', (e) => broken.push(e));
    const pending = [disk.read(0, 1), disk.read(1, 1)];
    await until(r.t, () => dev.served.held.length === 2);
    // used.idx jumps far past what is in flight.
    const vrh = r.t.queue(0)!.vringh;
    vrh.complete(dev.served.held[0]!.head, 1);
    vrh.complete(dev.served.held[0]!.head, 1);
    vrh.complete(dev.served.held[0]!.head, 1);
    vrh.needNotify();
    r.t.interrupt(0);
    for (const p of pending) expect(isMicError(await rejection(p), 'EIO')).toBe(true);
    expect(broken).toHaveLength(1);
    expect(disk.broken?.message).toMatch(/virtqueue broken/);
    expect(isMicError(await rejection(disk.write(0, new Uint8Array(512))), 'EIO')).toBe(true);
    await r.unplug();
    expect(r.live.size).toBe(0);
  });

  it('treats NEEDS_RESET as a broken device', async () => {
    const { r, disk } = await setup();
    r.t.needsReset();
    await until(r.t, () => disk.broken !== null);
    expect(isMicError(await rejection(disk.read(0, 1)), 'EIO')).toBe(true);
  });

  it('follows a capacity change from the config space', async () => {
    const { r, disk } = await setup({ sectors: 64 });
    const seen: bigint[] = [];
    disk.on('capacity', (c) => seen.push(c));
    expect(isMicError(await rejection(disk.read(64, 1)), 'EINVAL')).toBe(true);
    const cap = new Uint8Array(8);
    new DataView(cap.buffer).setBigUint64(0, 32n, true);
    r.t.setConfig(0, cap);
    await until(r.t, () => seen.length === 1);
    expect(disk.capacity).toBe(32n);
    expect(isMicError(await rejection(disk.read(40, 1)), 'EINVAL')).toBe(true);
  });

  it('on remove resets the device, fails requests in flight with ENODEV and frees every buffer', async () => {
    const { r, drv, disk, dev } = await setup({ device: { hold: true } });
    let resets = 0;
    r.t.subscribe((e) => void (e.type === 'reset' && resets++));
    const before = r.live.size;
    const pending = [disk.read(0, 8), disk.write(8, pattern(4096, 1)), disk.read(16, 1)];
    await until(r.t, () => dev.served.held.length === 3);
    expect(r.live.size).toBeGreaterThan(before);
    const removed: VirtioBlk[] = [];
    drv.on('remove', (d) => removed.push(d));
    await r.unplug();
    for (const p of pending) expect(isMicError(await rejection(p), 'ENODEV')).toBe(true);
    expect(resets).toBe(1);
    expect(removed).toEqual([disk]);
    expect(drv.devices()).toEqual([]);
    expect(r.live.size).toBe(0);
    expect(r.t.queue(0)).toBeNull();
    expect(isMicError(await rejection(disk.read(0, 1)), 'ENODEV')).toBe(true);
  });
});
