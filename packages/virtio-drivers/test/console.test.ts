import { describe, expect, it } from '@jest/globals';
import { isMicError } from '@mic/errors';
import {
  VIRTIO_CONFIG_S,
  VIRTIO_CONSOLE_F,
  VIRTIO_F,
  VIRTIO_ID,
  encodeConsoleConfig,
  features,
} from '@mic/virtio';
import {
  type ConsoleSize,
  type VirtioConsole,
  VirtioConsoleDriver,
  type VirtioConsoleDriverOptions,
} from '../src/index.js';
import { type ConsoleDevice, consoleDevice } from './console-device.js';
import { type Rig, rig, until } from './harness.js';

async function setup(
  o: {
    features?: bigint;
    cols?: number;
    rows?: number;
    queueSize?: number;
    driver?: VirtioConsoleDriverOptions;
    echo?: boolean;
    maxPerBuffer?: number;
  } = {},
): Promise<{ r: Rig; drv: VirtioConsoleDriver; con: VirtioConsole; dev: ConsoleDevice }> {
  const drv = new VirtioConsoleDriver(o.driver);
  const r = await rig(drv, {
    deviceId: VIRTIO_ID.CONSOLE,
    features: o.features ?? 0n,
    config: encodeConsoleConfig({ cols: o.cols ?? 0, rows: o.rows ?? 0, maxNrPorts: 0, emergWr: 0 }),
    queueSizes: [o.queueSize ?? 128, o.queueSize ?? 128],
    memorySize: 8 << 20,
  });
  const dev = consoleDevice(r.t, { echo: o.echo, maxPerBuffer: o.maxPerBuffer });
  const con = await drv.waitForDevice();
  return { r, drv, con, dev };
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed + (i >> 8)) & 0xff;
  return b;
}

/** Reads `n` bytes from the stream (flowing), in event-loop turns. */
async function readBytes(r: Rig, con: VirtioConsole, n: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let have = 0;
  const onData = (b: Buffer): void => {
    got.push(b);
    have += b.length;
  };
  con.on('data', onData);
  con.resume();
  await until(r.t, () => have >= n);
  con.off('data', onData);
  con.pause();
  return Buffer.concat(got);
}

describe('virtio-console driver: binding and negotiation', () => {
  it("acks nothing of mpssd's empty offer and posts page-sized receive buffers on vring 0", async () => {
    const { r, con } = await setup();
    expect(r.t.driverFeatures).toBe(0n);
    expect(r.t.status & VIRTIO_CONFIG_S.DRIVER_OK).toBe(VIRTIO_CONFIG_S.DRIVER_OK);
    expect(con.size).toBeNull();
    expect(con.rxPosted).toBe(128);
    expect(r.t.queue(0)!.vringh.pending()).toBe(128);
  });

  it('acks SIZE of a richer offer, never MULTIPORT or EMERG_WRITE', async () => {
    const offer = features(
      VIRTIO_CONSOLE_F.SIZE,
      VIRTIO_CONSOLE_F.MULTIPORT,
      VIRTIO_CONSOLE_F.EMERG_WRITE,
      VIRTIO_F.VERSION_1,
      VIRTIO_F.RING_EVENT_IDX,
    );
    const { r, con } = await setup({ features: offer, cols: 80, rows: 25 });
    expect(r.t.driverFeatures).toBe(
      features(VIRTIO_CONSOLE_F.SIZE, VIRTIO_F.VERSION_1, VIRTIO_F.RING_EVENT_IDX),
    );
    expect(con.size).toEqual({ cols: 80, rows: 25 });
  });
});

describe('virtio-console driver: port 0 as a byte stream', () => {
  it('sends writes to the host on vring 1 and delivers host bytes from vring 0', async () => {
    const { r, con, dev } = await setup();
    con.write('hello card\n');
    await until(r.t, () => dev.text() === 'hello card\n');
    dev.send(Buffer.from('hello host\n'));
    expect((await readBytes(r, con, 11)).toString()).toBe('hello host\n');
    expect(con.counters).toMatchObject({ rxBytes: 11, txBytes: 11, rxDropped: 0 });
  });

  it('cuts writes into page-sized chains and gets an echo of 200 KiB back intact through 4 refilled buffers', async () => {
    const { r, con, dev } = await setup({ echo: true, driver: { rxBuffers: 4 } });
    const data = bytes(200 * 1024);
    const reading = readBytes(r, con, data.length);
    con.write(data);
    const back = await reading;
    expect(back.equals(data)).toBe(true);
    expect(Math.max(...dev.chains.map((c) => c.length))).toBe(4096);
    expect(dev.delivered).toBeGreaterThanOrEqual(50);
    expect(con.rxPosted).toBe(4);
  });

  it('applies backpressure on writes while the host takes nothing, and drains when it resumes', async () => {
    const { r, con, dev } = await setup({ driver: { txBuffers: 4, highWaterMark: 8192 } });
    dev.tx.pause();
    const data = bytes(64 * 1024, 3);
    const accepted: boolean[] = [];
    for (let off = 0; off < data.length; off += 4096)
      accepted.push(con.write(data.subarray(off, off + 4096)));
    expect(accepted.slice(0, 1)).toEqual([true]);
    expect(accepted.at(-1)).toBe(false);
    let drained = false;
    con.once('drain', () => (drained = true));
    await until(r.t, () => con.txInFlight === 4);
    for (let i = 0; i < 20; i++) await r.t.flush();
    // Four chains with the device, the rest waits in the stream: no drain, nothing lost.
    expect(con.txInFlight).toBe(4);
    expect(con.writableNeedDrain).toBe(true);
    expect(con.writableLength).toBeGreaterThanOrEqual(data.length - 4 * 4096);
    expect(drained).toBe(false);
    expect(dev.chains).toEqual([]);
    dev.tx.resume();
    await until(r.t, () => drained && con.txInFlight === 0);
    expect(Buffer.concat(dev.chains).equals(data)).toBe(true);
  });

  it('keeps receive buffers back while the reader is behind, so the host waits, and refills when it reads', async () => {
    const { r, con, dev } = await setup({ driver: { rxBuffers: 4, highWaterMark: 4096 } });
    const data = bytes(64 * 1024, 5);
    dev.send(data);
    await until(r.t, () => con.rxPosted === 0);
    // Nobody reads: the stream holds a few buffers, the rest stays with the host.
    expect(dev.starved).toBeGreaterThan(0);
    expect(dev.pendingBytes()).toBeGreaterThan(32 * 1024);
    const back = await readBytes(r, con, data.length);
    expect(back.equals(data)).toBe(true);
    expect(dev.pendingBytes()).toBe(0);
  });

  it('ignores empty receive completions and takes no more than the buffer from an over-long one', async () => {
    const { r, con, dev } = await setup({ driver: { rxBuffers: 2, rxBufferSize: 64 } });
    const q = r.t.queue(0)!;
    const { VringhIov } = await import('@mic/virtio');
    const riov = new VringhIov();
    const wiov = new VringhIov();
    const a = q.vringh.getDesc(riov, wiov);
    const b = q.vringh.getDesc(riov, wiov);
    if (a.status !== 'chain' || b.status !== 'chain') throw new Error('no buffers');
    q.vringh.complete(a.head, 0);
    q.vringh.complete(b.head, 1 << 20); // claims a megabyte in a 64-byte buffer
    q.vringh.needNotify();
    r.t.interrupt(0);
    const got = await readBytes(r, con, 64);
    expect(got.length).toBe(64);
    await until(r.t, () => con.rxPosted === 2);
    dev.send(Buffer.from('ok'));
    expect((await readBytes(r, con, 2)).toString()).toBe('ok');
  });

  it('finishes end() only once the host took every byte', async () => {
    const { r, con, dev } = await setup();
    dev.tx.pause();
    let finished = false;
    con.on('finish', () => (finished = true));
    con.end(bytes(10_000));
    await until(r.t, () => con.txInFlight === 3);
    for (let i = 0; i < 20; i++) await r.t.flush();
    expect(finished).toBe(false);
    dev.tx.resume();
    await until(r.t, () => finished);
    expect(Buffer.concat(dev.chains).length).toBe(10_000);
  });

  it('after destroy drops what arrives, counted, and keeps buffers posted so the host never blocks', async () => {
    const { r, con, dev } = await setup({ driver: { rxBuffers: 2 } });
    con.destroy();
    dev.send(bytes(20_000));
    await until(r.t, () => con.counters.rxDropped === 20_000);
    expect(dev.pendingBytes()).toBe(0);
    expect(con.counters.rxBytes).toBe(0);
  });

  it('reports the console size and emits resize on a config change', async () => {
    const { r, con } = await setup({ features: features(VIRTIO_CONSOLE_F.SIZE), cols: 80, rows: 24 });
    const sizes: ConsoleSize[] = [];
    con.on('resize', (s: ConsoleSize) => sizes.push(s));
    r.t.setConfig(0, encodeConsoleConfig({ cols: 132, rows: 43, maxNrPorts: 0, emergWr: 0 }).subarray(0, 4));
    await until(r.t, () => sizes.length === 1);
    expect(sizes).toEqual([{ cols: 132, rows: 43 }]);
    expect(con.size).toEqual({ cols: 132, rows: 43 });
    // A config change that leaves the size alone emits nothing.
    r.t.setConfig(8, Uint8Array.of(0, 0, 0, 0));
    for (let i = 0; i < 5; i++) await r.t.flush();
    expect(sizes).toHaveLength(1);
  });
});

describe('virtio-console driver: a device that breaks or goes away', () => {
  it('destroys the stream with EIO when a queue breaks', async () => {
    const { r, con } = await setup();
    const errors: unknown[] = [];
    con.on('error', (e) => errors.push(e));
    const vrh = r.t.queue(1)!.vringh;
    vrh.complete(5, 1); // nothing was posted on the transmit queue
    vrh.needNotify();
    r.t.interrupt(1);
    await until(r.t, () => errors.length === 1);
    expect(isMicError(errors[0], 'EIO')).toBe(true);
    expect(con.destroyed).toBe(true);
    await r.unplug();
    expect(r.live.size).toBe(0);
  });

  it('on remove ends the readable side after the data received, fails writes with ENODEV, frees everything', async () => {
    const { r, drv, con, dev } = await setup();
    dev.send(Buffer.from('last words'));
    await until(r.t, () => con.readableLength === 10);
    let resets = 0;
    r.t.subscribe((e) => void (e.type === 'reset' && resets++));
    await r.unplug();
    expect(resets).toBe(1);
    expect(drv.devices()).toEqual([]);
    expect(r.live.size).toBe(0);
    const chunks: Buffer[] = [];
    let ended = false;
    con.on('data', (b: Buffer) => chunks.push(b));
    con.on('end', () => (ended = true));
    await until(r.t, () => ended);
    expect(Buffer.concat(chunks).toString()).toBe('last words');
    const errors: unknown[] = [];
    con.on('error', (e) => errors.push(e));
    con.write('anyone?');
    await until(r.t, () => errors.length === 1);
    expect(isMicError(errors[0], 'ENODEV')).toBe(true);
  });
});
