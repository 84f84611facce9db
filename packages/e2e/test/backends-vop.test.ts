// The host backends of @mic/virtio-backends over VOP on the mock link: vop-host and the VOP
// adapter on the host side, vop-card and a small driver double on the card's virtio bus. Block
// (pattern written by the card, image read back, FLUSH, a malformed request, hot swap into the
// freed slot), console (output to the log, input split to the card's buffers) and net (frames
// both ways through the userspace switch), and a card-initiated reset in the middle of serving.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { bootparamInit } from '@mic/mic-common';
import {
  VIRTIO_BLK_F,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VIRTIO_CONFIG_S,
  VIRTIO_DEV_ANY_ID,
  VIRTIO_F,
  VIRTIO_ID,
  VIRTIO_NET_F,
  VirtioBus,
  type VirtioDevice,
  type VirtioDmaBuffer,
  type VirtioDriver,
  type VirtioQueue,
  decodeBlkConfig,
  decodeNetHdr,
  encodeBlkOutHdr,
} from '@mic/virtio';
import {
  BlockBackend,
  ConsoleBackend,
  NetBackend,
  type VirtioBackend,
  VopBackendTransport,
  waitForDriverOk,
} from '@mic/virtio-backends';
import { MockVopLink, VopBus, type VopDevice } from '@mic/vop-bus';
import { VopCardDriver } from '@mic/vop-card';
import { VopHostDriver } from '@mic/vop-host';

interface Token {
  readonly bufs: VirtioDmaBuffer[];
  readonly lens: number[];
  readonly resolve: (u: { len: number; written: Uint8Array[] }) => void;
}

/** A card-side driver double: binds one device type, posts the chains a test asks for. */
class CardDouble implements VirtioDriver {
  readonly name = 'e2e-backend-double';
  readonly idTable;
  readonly featureTable: number[];
  readonly bound = new Map<VirtioDevice, VirtioQueue<Token>[]>();
  readonly #queues: number;

  constructor(type: number, featureTable: number[], queues: number) {
    this.idTable = [
      { device: type, vendor: VIRTIO_DEV_ANY_ID },
      { device: 0, vendor: 0 },
    ];
    this.featureTable = featureTable;
    this.#queues = queues;
  }

  async probe(vdev: VirtioDevice): Promise<void> {
    const qs = await vdev.findVqs<Token>(
      Array.from({ length: this.#queues }, (_, i) => ({
        name: `q${i}`,
        callback: (vq: VirtioQueue) => this.#used(vdev, vq),
      })),
    );
    this.bound.set(
      vdev,
      qs.map((q) => q!),
    );
  }

  async remove(vdev: VirtioDevice): Promise<void> {
    this.bound.delete(vdev);
    await vdev.reset();
    await vdev.delVqs();
  }

  /** The device bound last. */
  get vdev(): VirtioDevice {
    const all = [...this.bound.keys()];
    if (all.length === 0) throw new Error('no device bound');
    return all.at(-1)!;
  }

  post(q: number, readable: readonly Uint8Array[], writable: readonly number[], vdev = this.vdev) {
    const vq = this.bound.get(vdev)![q]!;
    const bufs: VirtioDmaBuffer[] = [];
    const out = readable.map((b) => {
      const buf = vdev.dma.alloc(b.length);
      buf.va.write(0, b);
      bufs.push(buf);
      return { addr: buf.addr, len: b.length };
    });
    const ins = writable.map((len) => {
      const buf = vdev.dma.alloc(len);
      bufs.push(buf);
      return { addr: buf.addr, len };
    });
    return new Promise<{ len: number; written: Uint8Array[] }>((resolve) => {
      vq.add(out, ins, { bufs, lens: [...writable], resolve });
      vq.kick();
    });
  }

  #used(vdev: VirtioDevice, vq: VirtioQueue): void {
    const q = vq as VirtioQueue<Token>;
    for (let u = q.getBuf(); u; u = q.getBuf()) {
      const ins = u.token.bufs.slice(u.token.bufs.length - u.token.lens.length);
      const written = ins.map((b, i) => {
        const data = new Uint8Array(u.token.lens[i]!);
        b.va.read(0, data);
        return data;
      });
      for (const b of u.token.bufs) vdev.dma.free(b);
      u.token.resolve({ len: u.len, written });
    }
  }
}

interface Rig {
  readonly link: MockVopLink;
  readonly host: VopHostDriver;
  readonly hostBus: VopBus;
  readonly hostDev: VopDevice;
  readonly cardBus: VopBus;
  readonly virtio: VirtioBus;
  readonly card: CardDouble;
  readonly stops: (() => Promise<void>)[];
}

const rigs: Rig[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    for (const s of r.stops.reverse()) await s();
    for (const d of r.cardBus.devices()) await r.cardBus.unregisterDevice(d);
    await r.hostBus.unregisterDevice(r.hostDev);
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function rig(type: number, features: number[], queues: number): Promise<Rig> {
  const link = new MockVopLink({ hostRamSize: 16 << 20, cardRamSize: 16 << 20 });
  bootparamInit(link.dp.va, 1);
  const hostBus = new VopBus();
  const host = new VopHostDriver({ timeouts: { removeMs: 5000 } });
  await hostBus.registerDriver(host);
  const hostDev = await hostBus.registerDevice(link.hostParams());
  const virtio = new VirtioBus();
  const card = new CardDouble(type, features, queues);
  await virtio.registerDriver(card);
  const cardBus = new VopBus();
  await cardBus.registerDriver(new VopCardDriver({ virtioBus: virtio }));
  await cardBus.registerDevice(link.cardParams());
  const r: Rig = { link, host, hostBus, hostDev, cardBus, virtio, card, stops: [] };
  rigs.push(r);
  return r;
}

/** Adds `backend` over VOP, waits for DRIVER_OK and serves it until the test ends. */
async function serve(
  r: Rig,
  backend: VirtioBackend,
): Promise<{ t: VopBackendTransport; stop: () => Promise<void> }> {
  const t = await VopBackendTransport.add(r.host.control(0)!.open(), backend.description);
  const ac = new AbortController();
  expect(await waitForDriverOk(t, AbortSignal.timeout(60_000))).toBe(true);
  const serving = backend.serve(t, { signal: ac.signal });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    ac.abort();
    await serving;
    await t.remove();
    await t.handle.close();
    await backend.close();
  };
  r.stops.push(stop);
  return { t, stop };
}

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'e2e-backends-'));
  dirs.push(d);
  return d;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const pattern = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 7 + (i >> 9)) & 0xff);
const hdr = (type: number, sector: bigint): Uint8Array => encodeBlkOutHdr({ type, ioprio: 0, sector });

async function until(check: () => boolean, what: string): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > 60_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 2));
  }
}

describe('virtio-backends over VOP (mock link, vop-card, a card-side driver double)', () => {
  it('block: the card writes a pattern (sha256 of the image), reads the image back, flushes; a malformed request gets IOERR', async () => {
    const r = await rig(VIRTIO_ID.BLOCK, [VIRTIO_BLK_F.SEG_MAX, VIRTIO_BLK_F.FLUSH], 1);
    const path = join(tmp(), 'disk.img');
    writeFileSync(path, new Uint8Array(1 << 20));
    const blk = await BlockBackend.open({ path, serial: 'e2e' });
    const { t } = await serve(r, blk);
    expect(t.maxInFlight(0)).toBe(128); // chains of their own (vop-host takeChain): requests in flight
    expect(decodeBlkConfig(r.card.vdev.readConfig(0, 60)).capacity).toBe(2048n);
    const data = pattern(1 << 20, 1);
    const chunk = 64 << 10;
    const writes = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        r.card.post(
          0,
          [hdr(VIRTIO_BLK_T.OUT, BigInt((i * chunk) / 512)), data.subarray(i * chunk, (i + 1) * chunk)],
          [1],
        ),
      ),
    );
    expect(writes.every((u) => u.written[0]![0] === VIRTIO_BLK_S.OK && u.len === 1)).toBe(true);
    expect((await r.card.post(0, [hdr(VIRTIO_BLK_T.FLUSH, 0n)], [1])).written[0]![0]).toBe(VIRTIO_BLK_S.OK);
    expect(sha(readFileSync(path))).toBe(sha(data));
    const back = await r.card.post(0, [hdr(VIRTIO_BLK_T.IN, 8n)], [4096, 1]);
    expect(back.written[1]![0]).toBe(VIRTIO_BLK_S.OK);
    expect(back.len).toBe(4097);
    expect(sha(back.written[0]!)).toBe(sha(data.subarray(4096, 8192)));
    const bad = await r.card.post(0, [], [16, 512, 1]); // the header in writable memory
    expect(bad.written[2]![0]).toBe(VIRTIO_BLK_S.IOERR);
    const noStatus = await r.card.post(0, [hdr(VIRTIO_BLK_T.OUT, 0n), pattern(512, 9)], []);
    expect(noStatus.len).toBe(0); // not executed, returned with used length 0
    const past = await r.card.post(0, [hdr(VIRTIO_BLK_T.IN, 2048n)], [512, 1]);
    expect(past.written[1]![0]).toBe(VIRTIO_BLK_S.IOERR);
    expect(sha(readFileSync(path))).toBe(sha(data));
    expect(blk.stats()).toMatchObject({ writes: 16, flushes: 1, ioErrors: 2, noStatus: 1 });
  });

  it('block: hot swap while idle: remove, re-add a new image into the freed slot', async () => {
    const r = await rig(VIRTIO_ID.BLOCK, [VIRTIO_BLK_F.SEG_MAX], 1);
    const dir = tmp();
    const a = join(dir, 'a.img');
    const b = join(dir, 'b.img');
    writeFileSync(a, pattern(64 << 10, 1));
    writeFileSync(b, pattern(128 << 10, 2));
    const first = await serve(r, await BlockBackend.open({ path: a }));
    const offset = first.t.handle.info().offset;
    const oldDev = r.card.vdev;
    expect((await r.card.post(0, [hdr(VIRTIO_BLK_T.IN, 0n)], [512, 1])).written[1]![0]).toBe(VIRTIO_BLK_S.OK);
    await first.stop(); // hot-unplug: the card removes its device
    await until(() => !r.card.bound.has(oldDev), 'the card removed the device');
    const second = await serve(r, await BlockBackend.open({ path: b }));
    expect(second.t.handle.info().offset).toBe(offset);
    expect(decodeBlkConfig(r.card.vdev.readConfig(0, 60)).capacity).toBe(256n);
    const rd = await r.card.post(0, [hdr(VIRTIO_BLK_T.IN, 200n)], [512, 1]);
    expect(rd.written[1]![0]).toBe(VIRTIO_BLK_S.OK);
    expect(sha(rd.written[0]!)).toBe(sha(pattern(128 << 10, 2).subarray(200 * 512, 201 * 512)));
  });

  it('console: what the card prints reaches the log, host input reaches the card in its buffer sizes', async () => {
    const r = await rig(VIRTIO_ID.CONSOLE, [], 2);
    const logPath = join(tmp(), 'console.log');
    const con = await ConsoleBackend.open({ logPath });
    await serve(r, con);
    const lines = Array.from({ length: 30 }, (_, i) => `card line ${i}\n`);
    for (const l of lines) await r.card.post(1, [new TextEncoder().encode(l)], []);
    const got: string[] = [];
    const want = 'x'.repeat(300);
    con.write(want);
    while (got.join('').length < want.length) {
      const u = await r.card.post(0, [], [64]);
      expect(u.len).toBeLessThanOrEqual(64);
      got.push(new TextDecoder().decode(u.written[0]!.subarray(0, u.len)));
    }
    expect(got.join('')).toBe(want);
    await until(() => con.stats().outputBytes === lines.join('').length, 'output counted');
    await r.stops.at(-1)!();
    expect(readFileSync(logPath, 'utf8')).toBe(lines.join(''));
  });

  it('net: frames between the card and a switch endpoint, intact both ways', async () => {
    const r = await rig(VIRTIO_ID.NET, [VIRTIO_NET_F.CSUM, VIRTIO_NET_F.GUEST_CSUM, VIRTIO_NET_F.MAC], 2);
    const net = await NetBackend.open({ mac: '02:00:00:00:00:01' });
    await serve(r, net);
    const host = net.switch!.port('host');
    const got: Uint8Array[] = [];
    host.setReceiver((f) => got.push(f));
    const frame = (dst: number, src: number, n: number): Uint8Array => {
      const f = pattern(n, dst);
      f.set([2, 0, 0, 0, 0, dst, 2, 0, 0, 0, 0, src], 0);
      return f;
    };
    const out = [frame(0xfe, 1, 60), frame(0xfe, 1, 1514)];
    for (const f of out) await r.card.post(1, [new Uint8Array(10), f], []);
    await until(() => got.length === 2, 'frames at the endpoint');
    expect(got.map(sha)).toEqual(out.map(sha));
    const rx = r.card.post(0, [], [1526]);
    const inbound = frame(1, 0xfe, 1000);
    host.send(inbound);
    const u = await rx;
    expect(decodeNetHdr(u.written[0]!, 10).flags).toBe(2); // DATA_VALID
    expect(sha(u.written[0]!.subarray(10, u.len))).toBe(sha(inbound));
  });

  it('net: VERSION_1 over VOP (feature_len 8) gives the 12-byte header', async () => {
    const r = await rig(VIRTIO_ID.NET, [VIRTIO_NET_F.GUEST_CSUM, VIRTIO_F.VERSION_1], 2);
    const net = await NetBackend.open({ version1: true });
    const { t } = await serve(r, net);
    expect(t.handle.info().featureLen).toBe(8);
    expect(r.card.vdev.hasFeature(VIRTIO_F.VERSION_1)).toBe(true);
    const host = net.switch!.port('host');
    const rx = r.card.post(0, [], [1526]);
    const inbound = pattern(200, 3);
    host.send(inbound);
    const u = await rx;
    expect(u.len).toBe(212);
    expect(decodeNetHdr(u.written[0]!, 12)).toMatchObject({ flags: 2, numBuffers: 1 });
    expect(sha(u.written[0]!.subarray(12, u.len))).toBe(sha(inbound));
  });

  it('block: a card-initiated reset ends the session; after the driver binds again requests are served', async () => {
    const r = await rig(VIRTIO_ID.BLOCK, [VIRTIO_BLK_F.SEG_MAX], 1);
    const path = join(tmp(), 'disk.img');
    writeFileSync(path, pattern(64 << 10, 5));
    const { t } = await serve(r, await BlockBackend.open({ path }));
    expect((await r.card.post(0, [hdr(VIRTIO_BLK_T.IN, 0n)], [512, 1])).written[1]![0]).toBe(VIRTIO_BLK_S.OK);
    await r.virtio.unregisterDriver(r.card); // resets the device (vop_reset_inform_host)
    await until(() => (t.status() & VIRTIO_CONFIG_S.DRIVER_OK) === 0, 'the reset seen');
    await r.virtio.registerDriver(r.card);
    await until(() => (t.status() & VIRTIO_CONFIG_S.DRIVER_OK) !== 0, 'DRIVER_OK again');
    const rd = await r.card.post(0, [hdr(VIRTIO_BLK_T.IN, 1n)], [512, 1]);
    expect(rd.written[1]![0]).toBe(VIRTIO_BLK_S.OK);
    expect(sha(rd.written[0]!)).toBe(sha(pattern(64 << 10, 5).subarray(512, 1024)));
    expect(t.stats().resets).toBeGreaterThanOrEqual(1);
  });
});
