import { describe, expect, it } from '@jest/globals';
import { isMicError } from '@mic/errors';
import {
  VIRTIO_CONFIG_S,
  VIRTIO_F,
  VIRTIO_ID,
  VIRTIO_NET_F,
  VIRTIO_NET_HDR_F,
  VIRTIO_NET_HDR_GSO,
  encodeNetConfig,
  features,
} from '@mic/virtio';
import {
  type NetFrameInfo,
  type VirtioNet,
  VirtioNetDriver,
  type VirtioNetDriverOptions,
} from '../src/index.js';
import { type DeliverOptions, type NetDevice, netDevice } from './net-device.js';
import { type Rig, countSignals, rejection, rig, until } from './harness.js';

/** mpssd's offer: CSUM, GSO, GUEST_TSO4, GUEST_TSO6, GUEST_ECN (mic-vop.md §7.5). */
const MPSSD_NET = 0x3c1n;

async function setup(
  o: {
    features?: bigint;
    mac?: Uint8Array;
    status?: number;
    queueSize?: number;
    driver?: VirtioNetDriverOptions;
    loop?: boolean;
  } = {},
): Promise<{ r: Rig; drv: VirtioNetDriver; nic: VirtioNet; dev: NetDevice }> {
  const drv = new VirtioNetDriver(o.driver);
  const offer = o.features ?? MPSSD_NET;
  const r = await rig(drv, {
    deviceId: VIRTIO_ID.NET,
    features: offer,
    config: encodeNetConfig({
      mac: o.mac ?? new Uint8Array(6),
      status: o.status ?? 0,
      maxVirtqueuePairs: 0,
      mtu: 0,
      speed: 0,
      duplex: 0,
    }),
    queueSizes: [o.queueSize ?? 128, o.queueSize ?? 128],
    memorySize: 8 << 20,
  });
  const nic = await drv.waitForDevice();
  const dev = netDevice(r.t, nic.hdrSize, { loop: o.loop, mergeable: nic.mergeable });
  return { r, drv, nic, dev };
}

/** An Ethernet frame of `len` bytes from `src` to `dst` with a pattern payload. */
function ethFrame(len: number, seed = 1): Uint8Array {
  const f = new Uint8Array(len);
  f.set([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x88, 0xb5]);
  for (let i = 14; i < len; i++) f[i] = (i * 3 + seed) & 0xff;
  return f;
}

function collect(nic: VirtioNet): { frames: Uint8Array[]; infos: NetFrameInfo[] } {
  const got = { frames: [] as Uint8Array[], infos: [] as NetFrameInfo[] };
  nic.on('frame', (f, info) => {
    got.frames.push(f);
    got.infos.push(info);
  });
  return got;
}

describe('virtio-net driver: binding and negotiation', () => {
  it("acks only CSUM of mpssd's 0x3C1, uses the 10-byte header apart from the frame, picks a random MAC", async () => {
    const { r, nic } = await setup();
    expect(r.t.driverFeatures).toBe(features(VIRTIO_NET_F.CSUM));
    expect(r.t.status & VIRTIO_CONFIG_S.DRIVER_OK).toBe(VIRTIO_CONFIG_S.DRIVER_OK);
    expect(nic.hdrSize).toBe(10);
    expect(nic.anyLayout).toBe(false);
    expect(nic.mergeable).toBe(false);
    expect(nic.linkUp).toBe(true);
    // Locally administered (bit 1) and unicast (bit 0 clear).
    expect(nic.mac[0]! & 0x03).toBe(0x02);
    expect(nic.macString).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    // Two descriptors per receive buffer: 64 buffers fill the 128-entry ring.
    expect(nic.rxPosted).toBe(64);
    expect(r.t.queue(0)!.vringh.pending()).toBe(64);
    const other = await setup();
    expect(other.nic.macString).not.toBe(nic.macString);
  });

  it('acks what it implements of a richer offer, ANY_LAYOUT only from a legacy device', async () => {
    const all = features(
      ...Object.values(VIRTIO_NET_F).filter((b) => b < 32),
      VIRTIO_F.ANY_LAYOUT,
      VIRTIO_F.RING_EVENT_IDX,
    );
    const mine = features(VIRTIO_NET_F.CSUM, VIRTIO_NET_F.MAC, VIRTIO_NET_F.MRG_RXBUF, VIRTIO_NET_F.STATUS);
    const legacy = await setup({ features: all });
    expect(legacy.r.t.driverFeatures).toBe(mine | features(VIRTIO_F.ANY_LAYOUT, VIRTIO_F.RING_EVENT_IDX));
    expect(legacy.nic.anyLayout).toBe(true);
    const modern = await setup({ features: all | features(VIRTIO_F.VERSION_1) });
    expect(modern.r.t.driverFeatures).toBe(mine | features(VIRTIO_F.VERSION_1, VIRTIO_F.RING_EVENT_IDX));
    expect(modern.nic.hdrSize).toBe(12);
  });

  it('takes the MAC from config space when offered, else the configured one', async () => {
    const mac = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56);
    const a = await setup({
      features: features(VIRTIO_NET_F.MAC),
      mac,
      driver: { mac: '02:00:00:00:00:09' },
    });
    expect(a.nic.macString).toBe('52:54:00:12:34:56');
    const b = await setup({ mac, driver: { mac: '02:00:00:00:00:09' } });
    expect(b.nic.macString).toBe('02:00:00:00:00:09');
    expect(() => new VirtioNetDriver({ mac: '01:00:5e:00:00:01' })).toThrow(/multicast/);
    expect(() => new VirtioNetDriver({ mac: 'nonsense' })).toThrow(/aa:bb/);
  });
});

describe('virtio-net driver: frames', () => {
  it('sends and receives with the legacy 10-byte header in its own descriptor', async () => {
    const { r, nic, dev } = await setup();
    const got = collect(nic);
    const frame = ethFrame(1514);
    await nic.send(frame);
    await until(r.t, () => dev.sent.length === 1);
    expect(dev.sent[0]!.segments).toEqual([10, 1514]);
    expect([...dev.sent[0]!.hdr]).toEqual(new Array(10).fill(0));
    expect(dev.sent[0]!.frame).toEqual(frame);
    dev.send(ethFrame(60, 7), { flags: VIRTIO_NET_HDR_F.DATA_VALID });
    await until(r.t, () => got.frames.length === 1);
    expect(got.frames[0]).toEqual(ethFrame(60, 7));
    expect(got.infos[0]).toEqual({ dataValid: true, buffers: 1 });
    await until(r.t, () => nic.rxPosted === 64);
    expect(nic.counters).toMatchObject({ rxPackets: 1, rxBytes: 60, txPackets: 1, txBytes: 1514 });
  });

  it("keeps receiving after a listener transferred a frame's buffer away", async () => {
    const { r, nic, dev } = await setup();
    const got: Uint8Array[] = [];
    nic.on('frame', (f) => {
      // Detaches the chunk the frame was carved from (and its neighbours); the driver's next
      // frame must not be written into it.
      if (got.length === 0) structuredClone(f.buffer, { transfer: [f.buffer as ArrayBuffer] });
      got.push(f.length === 0 ? f : f.slice());
    });
    dev.send(ethFrame(60, 1));
    await until(r.t, () => got.length === 1);
    dev.send(ethFrame(100, 2));
    dev.send(ethFrame(1514, 3));
    await until(r.t, () => got.length === 3);
    expect(got[1]).toEqual(ethFrame(100, 2));
    expect(got[2]).toEqual(ethFrame(1514, 3));
    expect(nic.broken).toBeNull();
  });

  it('uses the 12-byte header in one descriptor with VERSION_1, num_buffers 0 on transmit', async () => {
    const { r, nic, dev } = await setup({ features: features(VIRTIO_F.VERSION_1) });
    const got = collect(nic);
    await nic.send(ethFrame(100));
    await until(r.t, () => dev.sent.length === 1);
    expect(dev.sent[0]!.segments).toEqual([112]);
    expect([...dev.sent[0]!.hdr]).toEqual(new Array(12).fill(0));
    dev.send(ethFrame(1518, 3));
    await until(r.t, () => got.frames.length === 1);
    expect(got.frames[0]).toEqual(ethFrame(1518, 3));
  });

  it('reassembles a frame spread over mergeable receive buffers', async () => {
    const { r, nic, dev } = await setup({
      features: features(VIRTIO_NET_F.MRG_RXBUF),
      driver: { mergeableBufferSize: 256 },
    });
    expect(nic.hdrSize).toBe(12);
    const got = collect(nic);
    dev.send(ethFrame(1514, 9), { maxPerBuffer: 256 });
    dev.send(ethFrame(200, 4), { maxPerBuffer: 256 });
    await until(r.t, () => got.frames.length === 2);
    expect(got.frames[0]).toEqual(ethFrame(1514, 9));
    expect(got.infos[0]!.buffers).toBe(Math.ceil((1514 + 12) / 256));
    expect(got.frames[1]).toEqual(ethFrame(200, 4));
    await until(r.t, () => nic.rxPosted === 128);
  });

  it('loops a thousand frames of every size through a loopback device', async () => {
    const { r, nic } = await setup({ loop: true });
    const got = collect(nic);
    const sizes = Array.from({ length: 1000 }, (_, i) => 14 + ((i * 37) % (1518 - 13)));
    for (let i = 0; i < sizes.length; i++) await nic.send(ethFrame(sizes[i]!, i));
    await until(r.t, () => got.frames.length === sizes.length);
    const wrong = got.frames.filter((f, i) => !Buffer.from(f).equals(ethFrame(sizes[i]!, i)));
    expect(wrong).toEqual([]);
  });

  it('sends a burst with one notification and collects transmit buffers without an interrupt per frame', async () => {
    const { r, nic, dev } = await setup();
    const c = countSignals(r.t);
    try {
      for (let round = 0; round < 3; round++) {
        // 32 sends in one turn (as `xmit_more`): one kick; the device completes each chain.
        await Promise.all(Array.from({ length: 32 }, (_, i) => nic.send(ethFrame(100, round * 32 + i))));
        await until(r.t, () => dev.sent.length === 32 * (round + 1));
      }
      expect(c.kicks[1]).toBe(3);
      // VRING_AVAIL_F_NO_INTERRUPT on the transmit queue: the device never had to interrupt.
      expect(c.irqs[1] ?? 0).toBe(0);
      expect(nic.txInFlight).toBe(0);
      expect(dev.sent.map((s) => s.frame[14]! - 42)).toEqual(Array.from({ length: 96 }, (_, i) => i));
    } finally {
      c.restore();
    }
  });

  it('waits for transmit buffers in order while the device takes nothing; a cancelled send is never posted', async () => {
    const { r, nic, dev } = await setup({ driver: { txBuffers: 4 } });
    dev.tx.pause();
    const first = Array.from({ length: 4 }, (_, i) => nic.send(ethFrame(64, i)));
    await Promise.all(first);
    expect(nic.txInFlight).toBe(4);
    const ac = new AbortController();
    const waiting = nic.send(ethFrame(64, 4));
    const cancelledSend = nic.send(ethFrame(64, 5), { signal: ac.signal });
    const last = nic.send(ethFrame(64, 6));
    ac.abort();
    expect(isMicError(await rejection(cancelledSend), 'ECANCELED')).toBe(true);
    for (let i = 0; i < 10; i++) await r.t.flush();
    expect(dev.sent).toEqual([]);
    dev.tx.resume();
    await Promise.all([waiting, last]);
    await until(r.t, () => dev.sent.length === 6);
    // The first payload byte is 42 + seed.
    expect(dev.sent.map((s) => s.frame[14]! - 42)).toEqual([0, 1, 2, 3, 4, 6]);
  });

  it('checks frame lengths and checksum requests before anything reaches the device', async () => {
    const { nic, dev } = await setup({ features: 0n });
    expect(isMicError(await rejection(nic.send(new Uint8Array(1519))), 'EMSGSIZE')).toBe(true);
    expect(isMicError(await rejection(nic.send(new Uint8Array(13))), 'EINVAL')).toBe(true);
    const csum = { start: 34, offset: 16 };
    expect(isMicError(await rejection(nic.send(ethFrame(80), { csum })), 'EOPNOTSUPP')).toBe(true);
    expect(dev.sent).toEqual([]);
  });

  it('asks the device for a partial checksum with VIRTIO_NET_F_CSUM', async () => {
    const { r, nic, dev } = await setup();
    await nic.send(ethFrame(80), { csum: { start: 34, offset: 16 } });
    expect(
      isMicError(await rejection(nic.send(ethFrame(40), { csum: { start: 34, offset: 6 } })), 'EINVAL'),
    ).toBe(true);
    await until(r.t, () => dev.sent.length === 1);
    const hdr = new DataView(dev.sent[0]!.hdr.buffer);
    expect(hdr.getUint8(0)).toBe(VIRTIO_NET_HDR_F.NEEDS_CSUM);
    expect([hdr.getUint16(6, true), hdr.getUint16(8, true)]).toEqual([34, 16]);
  });
});

describe('virtio-net driver: link, malformed devices, removal', () => {
  it('follows link status from config space with VIRTIO_NET_F_STATUS', async () => {
    const { r, nic } = await setup({ features: features(VIRTIO_NET_F.STATUS), status: 0 });
    expect(nic.linkUp).toBe(false);
    const seen: boolean[] = [];
    nic.on('link', (up) => seen.push(up));
    r.t.setConfig(6, Uint8Array.of(1, 0));
    await until(r.t, () => seen.length === 1);
    r.t.setConfig(6, Uint8Array.of(0, 0));
    await until(r.t, () => seen.length === 2);
    expect(seen).toEqual([true, false]);
    expect(nic.linkUp).toBe(false);
  });

  it('drops and counts malformed frames without losing buffers, then receives good ones', async () => {
    const m = await setup({
      features: features(VIRTIO_NET_F.MRG_RXBUF),
      driver: { mergeableBufferSize: 512 },
    });
    const got = collect(m.nic);
    const c = m.nic.counters;
    const seen = (): number => c.rxLengthErrors + c.rxFrameErrors + c.rxPackets;
    // One at a time: a device that claims buffers it never used would take the next frame's.
    const deliver = async (frame: Uint8Array, o: DeliverOptions = {}): Promise<void> => {
      const before = seen();
      m.dev.send(frame, o);
      await until(m.r.t, () => seen() > before);
    };
    await deliver(ethFrame(60), { usedLen: 20 }); // header + 8 bytes: shorter than an Ethernet header
    await deliver(ethFrame(60), { numBuffers: 3 }); // claims buffers that never come
    await deliver(ethFrame(1600), { maxPerBuffer: 512 }); // longer than 1518
    await deliver(ethFrame(60), { numBuffers: 0 });
    await deliver(ethFrame(60), { gsoType: VIRTIO_NET_HDR_GSO.TCPV4 }); // GSO was not negotiated
    await deliver(ethFrame(60), { flags: VIRTIO_NET_HDR_F.NEEDS_CSUM }); // nor GUEST_CSUM
    await deliver(ethFrame(61, 5));
    expect(got.frames).toEqual([ethFrame(61, 5)]);
    expect(c).toMatchObject({ rxLengthErrors: 4, rxFrameErrors: 2, rxPackets: 1 });
    await until(m.r.t, () => m.nic.rxPosted === 128);
    expect(m.nic.broken).toBeNull();
    // A legacy device whose used length claims more than the buffer: clamped by the ring.
    const l = await setup();
    const lgot = collect(l.nic);
    l.dev.send(ethFrame(100, 2), { usedLen: 1 << 20 });
    await until(l.r.t, () => lgot.frames.length === 1 || l.nic.counters.rxLengthErrors === 1);
    expect(lgot.frames[0]?.length ?? 0).toBeLessThanOrEqual(1518);
  });

  it('yields frames from an async iterator, drops beyond its high-water mark, ends on remove', async () => {
    const { r, nic, dev } = await setup();
    const it = nic.frames({ highWaterMark: 3 });
    for (let i = 0; i < 5; i++) dev.send(ethFrame(60 + i));
    await until(r.t, () => nic.counters.rxPackets === 5);
    expect(nic.counters.rxDropped).toBe(2);
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) seen.push((await it.next()).value!.length);
    expect(seen).toEqual([60, 61, 62]);
    const pending = it.next();
    dev.send(ethFrame(99));
    expect((await pending).value!.length).toBe(99);
    const ended = it.next();
    await r.unplug();
    expect(await ended).toEqual({ value: undefined, done: true });
    let count = 0;
    for await (const _ of nic) count++;
    expect(count).toBe(0);
  });

  it('breaks on a corrupted used ring: sends reject with EIO, iterators throw, nothing hangs', async () => {
    const { r, nic } = await setup();
    const broken: unknown[] = [];
    nic.on('broken', (e) => broken.push(e));
    const it = nic.frames();
    const next = rejection(it.next());
    const vrh = r.t.queue(1)!.vringh;
    vrh.complete(3, 0); // nothing was posted on the transmit queue
    vrh.needNotify();
    r.t.interrupt(1);
    await until(r.t, () => broken.length === 1);
    expect(isMicError(await next, 'EIO')).toBe(true);
    expect(isMicError(await rejection(nic.send(ethFrame(60))), 'EIO')).toBe(true);
    await r.unplug();
    expect(r.live.size).toBe(0);
  });

  it('on remove resets the device, rejects waiting sends with ENODEV and frees every buffer', async () => {
    const { r, drv, nic, dev } = await setup({ driver: { txBuffers: 1 } });
    dev.tx.pause();
    await nic.send(ethFrame(60));
    const waiting = nic.send(ethFrame(60));
    let resets = 0;
    r.t.subscribe((e) => void (e.type === 'reset' && resets++));
    await r.unplug();
    expect(resets).toBe(1);
    expect(isMicError(await rejection(waiting), 'ENODEV')).toBe(true);
    expect(isMicError(await rejection(nic.send(ethFrame(60))), 'ENODEV')).toBe(true);
    expect(drv.devices()).toEqual([]);
    expect(r.live.size).toBe(0);
  });
});

describe('virtio-net driver: receive interrupt coalescing (EVENT_IDX)', () => {
  it('after a busy drain asks for an interrupt only later, a timer collecting what came; sparse frames interrupt at once', async () => {
    const { r, nic, dev } = await setup({ features: features(VIRTIO_F.RING_EVENT_IDX) });
    expect(r.t.driverFeatures & features(VIRTIO_F.RING_EVENT_IDX)).toBe(features(VIRTIO_F.RING_EVENT_IDX));
    const got = collect(nic);
    const sig = countSignals(r.t);
    try {
      // A burst: one interrupt for all of it; the drain is busy, so coalescing starts.
      for (let i = 0; i < 8; i++) dev.send(ethFrame(100, i));
      await until(r.t, () => got.frames.length === 8);
      const afterBurst = sig.irqs[0] ?? 0;
      expect(afterBurst).toBe(1);
      // Frames now come without an interrupt each; the timer collects them, intact and in order.
      for (let i = 8; i < 12; i++) dev.send(ethFrame(100, i));
      expect(sig.irqs[0] ?? 0).toBe(afterBurst);
      const deadline = Date.now() + 5000;
      while (got.frames.length < 12 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 2));
      expect(got.frames.length).toBe(12);
      got.frames.forEach((f, i) => expect(f).toEqual(ethFrame(100, i)));
      // A single frame after a drain of one: interrupts are back to one per frame.
      dev.send(ethFrame(60, 12));
      while (got.frames.length < 13 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 2));
      const before = sig.irqs[0] ?? 0;
      dev.send(ethFrame(60, 13));
      expect(sig.irqs[0] ?? 0).toBe(before + 1);
      await until(r.t, () => got.frames.length === 14);
      expect(got.frames[13]).toEqual(ethFrame(60, 13));
      // Each frame is its own: no two share bytes.
      got.frames[0]!.fill(0);
      expect(got.frames[1]).toEqual(ethFrame(100, 1));
    } finally {
      sig.restore();
    }
  });
});
