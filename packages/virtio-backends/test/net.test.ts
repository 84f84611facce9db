// The net backend on the in-process adapter against a driver double: frames between the card and
// a switch endpoint intact both ways (10- and 12-byte headers, mergeable buffers), partial
// checksums completed, bad frames dropped, a QEMU-stream peer on a Unix socket, a pcap read
// back by `tcpdump -r`, and the options' errors.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  VIRTIO_F,
  VIRTIO_NET_F,
  VIRTIO_NET_HDR_F,
  VIRTIO_NET_HDR_GSO,
  decodeNetConfig,
  decodeNetHdr,
  encodeNetHdr,
  hasFeature,
  type VirtioNetHdr,
} from '@mic/virtio';
import {
  NET_RECEIVEQ,
  NET_TRANSMITQ,
  NetBackend,
  type NetBackendOptions,
  QemuStreamLink,
  StreamFramer,
  TapLink,
  VirtualSwitch,
  encodeStreamFrame,
} from '../src/index.js';
import { type Rig, rig, until, errorCode } from './driver-double.js';
import { BROADCAST, equal, ip4, udpChecksumOk, udpFrame } from './frames.js';
import { ensureTool } from './tools.js';

const CARD_MAC = Uint8Array.of(0x02, 0, 0, 0, 0, 1);
const HOST_MAC = Uint8Array.of(0x02, 0, 0, 0, 0, 0xfe);
const LEGACY: number[] = [VIRTIO_NET_F.CSUM, VIRTIO_NET_F.GUEST_CSUM, VIRTIO_NET_F.MAC, VIRTIO_NET_F.STATUS];

const dirs: string[] = [];
/** Whether the in-process transport offers mapped views (the switch suite runs both ways). */
let useMapping = true;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'net-'));
  dirs.push(d);
  return d;
}

/** The card side: receive buffers kept posted, frames (reassembled across merged buffers) collected. */
class CardNic {
  readonly received: { hdr: VirtioNetHdr; frame: Uint8Array }[] = [];
  readonly #r: Rig;
  readonly #hdrSize: 10 | 12;
  #merging: { hdr: VirtioNetHdr; parts: Uint8Array[]; left: number } | null = null;

  constructor(r: Rig, hdrSize: 10 | 12, bufSize: number, count: number) {
    this.#r = r;
    this.#hdrSize = hdrSize;
    const post = (): void => {
      void r.driver.post(NET_RECEIVEQ, [], [bufSize]).then((u) => {
        this.#used(u.written[0]!.subarray(0, u.len));
        post();
      });
    };
    for (let i = 0; i < count; i++) post();
  }

  #used(b: Uint8Array): void {
    if (this.#merging) {
      this.#merging.parts.push(b);
      if (--this.#merging.left === 0) {
        const m = this.#merging;
        this.#merging = null;
        this.received.push({ hdr: m.hdr, frame: Buffer.concat(m.parts) });
      }
      return;
    }
    const hdr = decodeNetHdr(b, this.#hdrSize);
    const frame = b.slice(this.#hdrSize);
    const n = this.#hdrSize === 12 ? (hdr.numBuffers ?? 1) : 1;
    if (n > 1) this.#merging = { hdr, parts: [frame], left: n - 1 };
    else this.received.push({ hdr, frame });
  }

  send(frame: Uint8Array, hdr: Partial<VirtioNetHdr> = {}): Promise<unknown> {
    const h = encodeNetHdr(
      { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0, ...hdr },
      this.#hdrSize,
    );
    return this.#r.driver.post(NET_TRANSMITQ, [h, frame], []);
  }
}

async function start(
  options: NetBackendOptions = {},
  features = LEGACY,
): Promise<{ r: Rig; nic: NetBackend; port: ReturnType<VirtualSwitch['port']> | null }> {
  const nic = await NetBackend.open({ mac: CARD_MAC, ...options });
  const r = await rig(nic, features, undefined, { mapping: useMapping });
  cleanups.push(() => r.stop());
  const port = nic.switch?.port('host endpoint') ?? null;
  return { r, nic, port };
}

const payload = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
/** A UDP frame: the card is 10.0.0.1, every other sender 10.0.0.2. */
const frameTo = (dst: Uint8Array, src: Uint8Array, n: number, seed: number): Uint8Array =>
  equal(src, CARD_MAC)
    ? udpFrame(dst, src, ip4('10.0.0.1'), ip4('10.0.0.2'), payload(n, seed), false)
    : udpFrame(dst, src, ip4('10.0.0.2'), ip4('10.0.0.1'), payload(n, seed), false);

for (const mapping of [true, false]) {
  describe(`NetBackend on the userspace switch (${mapping ? 'mapped views' : 'copies'})`, () => {
    beforeAll(() => {
      useMapping = mapping;
    });

    it('describes the NIC: MAC, link up, CSUM and GUEST_CSUM, no GSO', async () => {
      const { r } = await start();
      const cfg = decodeNetConfig(r.transport.config());
      expect(equal(cfg.mac, CARD_MAC)).toBe(true);
      expect(cfg.status & 1).toBe(1);
      const f = r.transport.offeredFeatures;
      expect(hasFeature(f, VIRTIO_NET_F.CSUM) && hasFeature(f, VIRTIO_NET_F.GUEST_CSUM)).toBe(true);
      expect(hasFeature(f, VIRTIO_NET_F.GSO) || hasFeature(f, VIRTIO_NET_F.HOST_TSO4)).toBe(false);
    });

    it('carries frames intact both ways with the legacy 10-byte header, DATA_VALID towards the card', async () => {
      const { r, nic, port } = await start();
      const card = new CardNic(r, 10, 1526, 16);
      const got: Uint8Array[] = [];
      port!.setReceiver((f) => got.push(f));
      const out = Array.from({ length: 20 }, (_, i) => frameTo(HOST_MAC, CARD_MAC, 40 + i * 70, i));
      for (const f of out) await card.send(f);
      await until(() => got.length === out.length, 'frames at the endpoint');
      expect(got.every((f, i) => equal(f, out[i]!))).toBe(true);
      const back = Array.from({ length: 20 }, (_, i) => frameTo(CARD_MAC, HOST_MAC, 1472 - i * 50, 100 + i));
      for (const f of back) port!.send(f);
      await until(() => card.received.length === back.length, 'frames at the card');
      expect(card.received.every((x, i) => equal(x.frame, back[i]!))).toBe(true);
      expect(
        card.received.every((x) => x.hdr.flags === VIRTIO_NET_HDR_F.DATA_VALID && x.hdr.gsoType === 0),
      ).toBe(true);
      expect(nic.stats()).toMatchObject({ txFrames: 20, rxFrames: 20, txDropped: 0 });
      expect(nic.switch!.lookup(CARD_MAC)).not.toBeNull();
    });

    it('offers ANY_LAYOUT (unless told not to) and takes header and frame in one descriptor', async () => {
      const plain = await NetBackend.open({ anyLayout: false });
      expect(hasFeature(plain.description.features, VIRTIO_F.ANY_LAYOUT)).toBe(false);
      await plain.close();
      const { r, port } = await start({}, [...LEGACY, VIRTIO_F.ANY_LAYOUT]);
      expect(hasFeature(r.transport.negotiatedFeatures(), VIRTIO_F.ANY_LAYOUT)).toBe(true);
      const got: Uint8Array[] = [];
      port!.setReceiver((f) => got.push(f));
      const frame = frameTo(HOST_MAC, CARD_MAC, 1000, 3);
      const hdr = encodeNetHdr(
        { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 },
        10,
      );
      const one = new Uint8Array(hdr.length + frame.length);
      one.set(hdr);
      one.set(frame, hdr.length);
      await r.driver.post(NET_TRANSMITQ, [one], []);
      await until(() => got.length === 1, 'the frame at the endpoint');
      expect(equal(got[0]!, frame)).toBe(true);
    });

    it('uses the 12-byte header with VERSION_1 and spreads a frame over mergeable buffers', async () => {
      const { r, port } = await start({ version1: true, mergeableRxBuffers: true }, [
        ...LEGACY,
        VIRTIO_F.VERSION_1,
        VIRTIO_NET_F.MRG_RXBUF,
      ]);
      expect(hasFeature(r.transport.negotiatedFeatures(), VIRTIO_F.VERSION_1)).toBe(true);
      const card = new CardNic(r, 12, 256, 32);
      const got: Uint8Array[] = [];
      port!.setReceiver((f) => got.push(f));
      const f1 = frameTo(HOST_MAC, CARD_MAC, 500, 1);
      await card.send(f1);
      await until(() => got.length === 1, 'frame at the endpoint');
      expect(equal(got[0]!, f1)).toBe(true);
      const big = frameTo(CARD_MAC, HOST_MAC, 1400, 2); // 12 + 1442 bytes: six 256-byte buffers
      port!.send(big);
      port!.send(frameTo(CARD_MAC, HOST_MAC, 10, 3));
      await until(() => card.received.length === 2, 'frames at the card');
      expect(card.received[0]!.hdr.numBuffers).toBe(6);
      expect(equal(card.received[0]!.frame, big)).toBe(true);
      expect(card.received[1]!.hdr.numBuffers).toBe(1);
    });

    it('completes partial checksums the card left (NEEDS_CSUM) and drops frames it cannot send', async () => {
      const { r, nic, port } = await start();
      const got: Uint8Array[] = [];
      port!.setReceiver((f) => got.push(f));
      const card = new CardNic(r, 10, 1526, 4);
      const partial = udpFrame(HOST_MAC, CARD_MAC, ip4('10.0.0.1'), ip4('10.0.0.2'), payload(333, 9), true);
      expect(udpChecksumOk(partial)).toBe(false);
      await card.send(partial, { flags: VIRTIO_NET_HDR_F.NEEDS_CSUM, csumStart: 34, csumOffset: 6 });
      await until(() => got.length === 1, 'the frame');
      expect(udpChecksumOk(got[0]!)).toBe(true);
      expect(equal(got[0]!.subarray(0, 40), partial.subarray(0, 40))).toBe(true);
      await card.send(partial, { gsoType: VIRTIO_NET_HDR_GSO.TCPV4, gsoSize: 1448 }); // GSO was not offered
      await card.send(partial, { flags: VIRTIO_NET_HDR_F.NEEDS_CSUM, csumStart: 2000, csumOffset: 6 }); // outside
      await r.driver.post(NET_TRANSMITQ, [new Uint8Array(6)], []); // shorter than a header
      await until(() => nic.stats().txDropped === 3, 'three drops');
      expect(got.length).toBe(1);
      expect(nic.stats().txChecksums).toBe(1);
    });

    it('drops frames larger than any receive buffer and goes on with the next', async () => {
      const { r, nic, port } = await start();
      const card = new CardNic(r, 10, 600, 4);
      port!.send(frameTo(CARD_MAC, HOST_MAC, 1000, 1));
      const small = frameTo(CARD_MAC, HOST_MAC, 100, 2);
      port!.send(small);
      await until(() => card.received.length === 1, 'the small frame');
      expect(equal(card.received[0]!.frame, small)).toBe(true);
      expect(nic.stats().rxTooBig).toBe(1);
    });

    it('floods broadcasts to every other port and forwards to learned MACs only', async () => {
      const sw = new VirtualSwitch();
      const a = sw.port('a');
      const b = sw.port('b');
      const c = sw.port('c');
      const seen: Record<string, number> = { a: 0, b: 0, c: 0 };
      a.setReceiver(() => seen.a!++);
      b.setReceiver(() => seen.b!++);
      c.setReceiver(() => seen.c!++);
      const macA = Uint8Array.of(2, 0, 0, 0, 0, 0xa);
      const macB = Uint8Array.of(2, 0, 0, 0, 0, 0xb);
      a.send(frameTo(BROADCAST, macA, 10, 1));
      await Promise.resolve();
      b.send(frameTo(macA, macB, 10, 2)); // learned: only a
      await new Promise((res) => setImmediate(res));
      expect(seen).toEqual({ a: 1, b: 1, c: 1 });
      expect(sw.stats()).toMatchObject({ flooded: 1, forwarded: 1 });
    });
  });
}

describe('NetBackend on a QEMU stream socket (4-byte big-endian length prefix)', () => {
  /** A peer that speaks the stream protocol, as QEMU's `-netdev stream` does. */
  function peer(s: net.Socket): { frames: Uint8Array[] } {
    const frames: Uint8Array[] = [];
    const framer = new StreamFramer((f) => frames.push(f));
    s.on('data', (d) => framer.push(new Uint8Array(d.buffer, d.byteOffset, d.length)));
    return { frames };
  }

  it('exchanges frames with a peer that connects (QEMU server=off)', async () => {
    const path = join(tmp(), 'n0.sock');
    const { r } = await start({ link: { kind: 'qemu-stream', path } });
    const card = new CardNic(r, 10, 1526, 8);
    const s = net.connect(path);
    cleanups.push(() => void s.destroy());
    await new Promise((res) => s.once('connect', res));
    const p = peer(s);
    const toCard = [frameTo(CARD_MAC, HOST_MAC, 60, 1), frameTo(BROADCAST, HOST_MAC, 1400, 2)];
    // One write with both frames split oddly: the framer must reassemble.
    const bytes = Buffer.concat(toCard.map(encodeStreamFrame));
    s.write(bytes.subarray(0, 7));
    await new Promise((res) => setTimeout(res, 5));
    s.write(bytes.subarray(7));
    await until(() => card.received.length === 2, 'frames at the card');
    expect(card.received.map((x) => x.frame.length)).toEqual(toCard.map((f) => f.length));
    expect(card.received.every((x, i) => equal(x.frame, toCard[i]!))).toBe(true);
    const fromCard = frameTo(HOST_MAC, CARD_MAC, 777, 3);
    await card.send(fromCard);
    await until(() => p.frames.length === 1, 'frame at the peer');
    expect(equal(p.frames[0]!, fromCard)).toBe(true);
  });

  it('connects to a peer that listens (QEMU server=on)', async () => {
    const path = join(tmp(), 'n1.sock');
    let p: { frames: Uint8Array[] } | null = null;
    let sock: net.Socket | null = null;
    const server = net.createServer((s) => {
      sock = s;
      p = peer(s);
    });
    await new Promise<void>((res) => server.listen(path, res));
    cleanups.push(() => new Promise<void>((res) => server.close(() => res())));
    const { r, nic } = await start({ link: { kind: 'qemu-stream', path, mode: 'connect' } });
    cleanups.push(() => void sock?.destroy());
    const card = new CardNic(r, 10, 1526, 8);
    await until(() => sock !== null, 'the connection');
    const f = frameTo(HOST_MAC, CARD_MAC, 100, 4);
    await card.send(f);
    await until(() => (p?.frames.length ?? 0) === 1, 'frame at the peer');
    expect(equal(p!.frames[0]!, f)).toBe(true);
    sock!.write(encodeStreamFrame(frameTo(CARD_MAC, HOST_MAC, 50, 5)));
    await until(() => card.received.length === 1, 'frame at the card');
    expect(nic.link.stats()).toMatchObject({ sent: 1, received: 1 });
  });

  it('drops the peer on an oversized length and accepts a new one', async () => {
    const path = join(tmp(), 'n2.sock');
    const link = await QemuStreamLink.open({ path });
    cleanups.push(() => link.close());
    const got: Uint8Array[] = [];
    link.setReceiver((f) => got.push(f));
    const bad = net.connect(path);
    await new Promise((res) => bad.once('connect', res));
    await until(() => link.connected, 'first peer');
    bad.write(Uint8Array.of(0x7f, 0xff, 0xff, 0xff));
    await new Promise((res) => bad.once('close', res));
    const good = net.connect(path);
    cleanups.push(() => void good.destroy());
    await new Promise((res) => good.once('connect', res));
    good.write(encodeStreamFrame(frameTo(CARD_MAC, HOST_MAC, 20, 1)));
    await until(() => got.length === 1, 'a frame from the second peer');
  });
});

describe('NetBackend pcap', () => {
  let skip: string | null = null;
  beforeAll(() => {
    skip = ensureTool('tcpdump', 'tcpdump');
  }, 600_000);

  it('writes a capture of both directions that tcpdump -r reads back', async () => {
    if (skip) {
      console.warn(`skipped: ${skip}`);
      return;
    }
    const pcapPath = join(tmp(), 'mic0.pcap');
    const { r, nic, port } = await start({ pcapPath, now: () => 1_700_000_000_123.456 });
    const card = new CardNic(r, 10, 1526, 8);
    port!.setReceiver(() => {});
    for (let i = 0; i < 3; i++) await card.send(frameTo(HOST_MAC, CARD_MAC, 100 + i, i));
    for (let i = 0; i < 2; i++) port!.send(frameTo(CARD_MAC, HOST_MAC, 200 + i, i));
    await until(() => card.received.length === 2, 'frames at the card');
    await nic.pcap!.flush();
    const out = execFileSync('tcpdump', ['-nn', '-tt', '-r', pcapPath], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines.every((l) => l.startsWith('1700000000.123456 IP 10.0.0.'))).toBe(true);
    expect(lines.filter((l) => l.includes('10.0.0.1.4000 > 10.0.0.2.5000')).length).toBe(3);
    expect(lines.filter((l) => l.includes('10.0.0.2.4000 > 10.0.0.1.5000')).length).toBe(2);
  });
});

describe('NetBackend options', () => {
  const code = errorCode;

  it('gives one clear error per bad option', async () => {
    const dir = tmp();
    expect(await code(NetBackend.open({ mac: '01:00:5e:00:00:01' }))).toBe('EINVAL'); // multicast
    expect(await code(NetBackend.open({ mac: 'zz' }))).toBe('EINVAL');
    expect(await code(NetBackend.open({ queueSize: 3 }))).toBe('EINVAL');
    expect(await code(NetBackend.open({ pcapPath: join(dir, 'no', 'x.pcap') }))).toBe('ENOENT');
    expect(await code(NetBackend.open({ pcapPath: dir }))).toBe('EISDIR');
    // An interface named lo exists everywhere: refused before anything is created.
    expect(await code(TapLink.open({ name: 'lo' }))).toBe('EEXIST');
    await expect(TapLink.open({ name: 'lo' })).rejects.toThrow(/a network interface named lo already exists/);
    expect(await code(TapLink.open({ name: 'a/b' }))).toBe('EINVAL');
    expect(await code(TapLink.open({ cardId: 255 }))).toBe('EINVAL');
    expect(await code(TapLink.open({ name: 'mictest9', netns: 'no-such-ns-here' }))).toBe('ENOENT');
    const sock = join(dir, 'busy.sock');
    const other = net.createServer().listen(sock);
    await new Promise((res) => other.once('listening', res));
    expect(await code(NetBackend.open({ link: { kind: 'qemu-stream', path: sock } }))).toBe('EADDRINUSE');
    await new Promise((res) => other.close(res));
    expect(
      await code(
        NetBackend.open({ link: { kind: 'qemu-stream', path: join(dir, 'nobody.sock'), mode: 'connect' } }),
      ),
    ).toBe('ENOENT');
    const file = join(dir, 'f');
    writeFileSync(file, '');
    expect(await code(NetBackend.open({ link: { kind: 'qemu-stream', path: file } }))).toBe('EEXIST');
  });
});

describe('NetBackend: EVENT_IDX and frame chunks', () => {
  it('offers RING_EVENT_IDX only when asked', async () => {
    const plain = await NetBackend.open();
    const eidx = await NetBackend.open({ eventIdx: true });
    try {
      expect(hasFeature(plain.description.features, VIRTIO_F.RING_EVENT_IDX)).toBe(false);
      expect(hasFeature(eidx.description.features, VIRTIO_F.RING_EVENT_IDX)).toBe(true);
    } finally {
      await plain.close();
      await eidx.close();
    }
  });
});
