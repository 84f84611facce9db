// Notifications both ways: the host rings the card once per batch of completions, and keeps the
// card's kicks off while it drains a vring, turning them back on (with a re-check) before it
// could miss one.
import { describe, expect, it } from '@jest/globals';
import { encodeDescBlock, featureBitsToBytes, VIRTIO_ID_CONSOLE } from '@mic/mic-common';
import { VIRTIO_CONFIG_S, VIRTIO_F, VRING_AVAIL_F_NO_INTERRUPT, VRING_USED_F_NO_NOTIFY } from '@mic/virtio';
import type { CardDevice } from './card-double.js';
import { VOP_NOTIFY_BATCH } from '../src/index.js';
import { consoleBlock, rig, type Rig } from './helpers.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Doorbells the host rang for `dev` (the card's `h2c_vdev_db`). */
const rings = (r: Rig, dev: CardDevice): number =>
  r.link.host.sentInterrupts.filter((d) => d === dev.db).length;

/** Posts `n` receive buffers of 64 bytes on vring 0; tokens 0..n-1. */
function postRx(r: Rig, dev: CardDevice, n: number): void {
  for (let i = 0; i < n; i++) {
    const b = r.card.buffer(64);
    dev.vqs[0]!.vq.add([], [{ addr: b.addr, len: 64 }], i);
  }
}

/** Posts `n` transmit buffers of 16 bytes on vring 1; tokens 0..n-1. */
function postTx(r: Rig, dev: CardDevice, n: number): void {
  for (let i = 0; i < n; i++) {
    const b = r.card.buffer(64);
    b.mem.write(0, bytes(`request ${i}`.padEnd(16)));
    dev.vqs[1]!.vq.add([{ addr: b.addr, len: 16 }], [], i);
  }
}

/** The used ring's `flags` as the card reads it (its relocated used ring). */
const usedFlags = (dev: CardDevice, q: number): number => dev.vqs[q]!.used.readU16(0);

describe('vop-host: one notification per batch of completions', () => {
  it('rings the card once per batch of chains completed back to back in one turn, not once per chain', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    const B = VOP_NOTIFY_BATCH;
    postRx(r, dev, 2 * B + 1);
    for (let i = 0; i < B - 1; i++) {
      expect(await h.copyDesc({ iov: [bytes(`reply ${i}`)], vrIdx: 0, updateUsed: true })).toBe(7);
    }
    // Every used entry is published at once; the doorbell waits for the end of the batch (more
    // receive buffers are posted, so the backend may go on).
    expect(dev.vqs[0]!.used.readU16(2)).toBe(B - 1);
    expect(rings(r, dev)).toBe(0);
    await nextTurn();
    expect(rings(r, dev)).toBe(1);
    await r.link.flush();
    expect(dev.interrupts).toEqual([dev.db]);
    const got: number[] = [];
    for (let u = dev.vqs[0]!.vq.getBuf(); u; u = dev.vqs[0]!.vq.getBuf()) got.push(u.token);
    expect(got).toEqual([...Array(B - 1).keys()]);
    // Nothing more is owed: later turns ring nothing.
    await nextTurn();
    expect(rings(r, dev)).toBe(1);
    // A full batch rings at once, in the same turn.
    for (let i = 0; i < B; i++) await h.copyDesc({ iov: [bytes('more')], vrIdx: 0, updateUsed: true });
    expect(rings(r, dev)).toBe(2);
    await nextTurn();
    expect(rings(r, dev)).toBe(2);
    expect(dev.vqs[0]!.used.readU16(2)).toBe(2 * B - 1);
  });

  it('rings at once when the batch drains the ring, when a fetch finds it empty, and before poll waits', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    // Three buffers, three completions: the last one leaves nothing to fetch, one doorbell.
    postRx(r, dev, 3);
    for (let i = 0; i < 3; i++) await h.copyDesc({ iov: [bytes('x')], vrIdx: 0, updateUsed: true });
    expect(rings(r, dev)).toBe(1);
    // Two of four, then a look at the empty transmit ring: the batch ends there.
    postRx(r, dev, 4);
    for (let i = 0; i < 2; i++) await h.copyDesc({ iov: [bytes('y')], vrIdx: 0, updateUsed: true });
    expect(rings(r, dev)).toBe(1);
    expect(await h.copyDesc({ iov: [new Uint8Array(64)], vrIdx: 1, updateUsed: true })).toBe(0);
    expect(rings(r, dev)).toBe(2);
    // One more (one is left posted), then poll: the doorbell goes before the wait.
    await h.copyDesc({ iov: [bytes('z')], vrIdx: 0, updateUsed: true });
    expect(rings(r, dev)).toBe(2);
    const polled = h.poll({ timeoutMs: 0 });
    expect(rings(r, dev)).toBe(3);
    await polled;
  });

  it('decides once per batch whether the card wants it: nothing with NO_INTERRUPT', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    dev.vqs[0]!.hostVring.writeU16(2048, VRING_AVAIL_F_NO_INTERRUPT);
    postRx(r, dev, 4);
    for (let i = 0; i < 4; i++) await h.copyDesc({ iov: [bytes('x')], vrIdx: 0, updateUsed: true });
    await nextTurn();
    expect(rings(r, dev)).toBe(0);
    expect(dev.vqs[0]!.used.readU16(2)).toBe(4);
  });

  it('batches completions of chains taken with takeChain the same way', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    postRx(r, dev, 4);
    const chains = [await h.takeChain(0), await h.takeChain(0), await h.takeChain(0)];
    await Promise.all(
      chains.map(async (c) => {
        await c!.write(bytes('ok'));
        await c!.complete();
      }),
    );
    expect(rings(r, dev)).toBe(0);
    await nextTurn();
    expect(rings(r, dev)).toBe(1);
  });
});

describe("vop-host: the card's kicks while the host drains", () => {
  it('turns kicks off once it fetched a chain and back on when the ring is empty', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    const tx = dev.vqs[1]!.vq;
    postTx(r, dev, 2);
    expect(tx.kickPrepare()).toBe(true);
    const buf = new Uint8Array(64);
    expect(await h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true })).toBe(16);
    // The host is draining: the card adds without a doorbell.
    expect(usedFlags(dev, 1) & VRING_USED_F_NO_NOTIFY).toBe(VRING_USED_F_NO_NOTIFY);
    postTx(r, dev, 1);
    expect(tx.kickPrepare()).toBe(false);
    expect(await h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true })).toBe(16);
    expect(await h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true })).toBe(16);
    // Empty: kicks are on again, so the next chain rings the host.
    expect(await h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true })).toBe(0);
    expect(usedFlags(dev, 1) & VRING_USED_F_NO_NOTIFY).toBe(0);
    postTx(r, dev, 1);
    expect(tx.kickPrepare()).toBe(true);
    // Vring 0 was never fetched from: its kicks stayed on all along.
    expect(usedFlags(dev, 0)).toBe(0);
  });

  it('a poll after a partial drain turns kicks on and reports the heads that came without one', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    const tx = dev.vqs[1]!.vq;
    postTx(r, dev, 1);
    expect(await h.copyDesc({ iov: [new Uint8Array(64)], vrIdx: 1, updateUsed: true })).toBe(16);
    // The card adds a chain while kicks are off: it rings nothing.
    postTx(r, dev, 1);
    expect(tx.kickPrepare()).toBe(false);
    // The backend waits: that chain counts as a doorbell, and kicks are on again.
    expect(await h.poll({ timeoutMs: 0 })).toEqual({ in: true, out: true, err: false });
    expect(usedFlags(dev, 1) & VRING_USED_F_NO_NOTIFY).toBe(0);
    // Reported once: the next poll waits for a real doorbell.
    expect(await h.poll({ timeoutMs: 0 })).toEqual({ in: false, out: false, err: false });
    postTx(r, dev, 1);
    expect(tx.kickPrepare()).toBe(true);
  });

  it('with EVENT_IDX publishes avail_event when it has drained, so the card kicks for the next head', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(
      encodeDescBlock({
        type: VIRTIO_ID_CONSOLE,
        vqconfigs: [0, 1].map(() => ({ address: 0, usedAddress: 0, num: 128 })),
        hostFeatures: featureBitsToBytes(1n << BigInt(VIRTIO_F.RING_EVENT_IDX), 4),
        config: new Uint8Array(12),
      }),
    );
    const dev = r.card.attach(24);
    r.card.setStatus(dev, VIRTIO_CONFIG_S.ACKNOWLEDGE | VIRTIO_CONFIG_S.DRIVER);
    r.card.ackFeatures(dev, 1n << BigInt(VIRTIO_F.RING_EVENT_IDX));
    await r.card.findVqs(dev, { eventIdx: true });
    r.card.setStatus(dev, VIRTIO_CONFIG_S.ACKNOWLEDGE | VIRTIO_CONFIG_S.DRIVER | VIRTIO_CONFIG_S.DRIVER_OK);
    const tx = dev.vqs[1]!.vq;
    const buf = new Uint8Array(64);
    for (let round = 0; round < 3; round++) {
      postTx(r, dev, 2);
      // The first kick of a session and each after a drain: avail_event names the next head.
      expect(tx.kickPrepare()).toBe(true);
      expect(await h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true })).toBe(16);
      expect(await h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true })).toBe(16);
      expect(await h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true })).toBe(0);
      expect(dev.vqs[1]!.used.readU16(4 + 8 * 128)).toBe(2 * (round + 1));
    }
  });
});

describe('vop-host: copies on one vring while a DMA copy runs', () => {
  it('a copy called while another waits for the engine runs after it, on the next chain', async () => {
    const r = await rig({ dma: true, dmaMinBytes: 0 });
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    const size = 8192;
    const patterns = [0x11, 0x22].map((v) => new Uint8Array(size).fill(v));
    for (const [i, p] of patterns.entries()) {
      const b = r.card.buffer(size);
      b.mem.write(0, p);
      dev.vqs[1]!.vq.add([{ addr: b.addr, len: size }], [], i);
    }
    const got = [new Uint8Array(size), new Uint8Array(size)];
    // Both calls before either resolves: the first goes to the engine, the second must not
    // continue its chain (it takes the vring's lock in its call and waits for it).
    const first = h.copyDesc({ iov: [got[0]!], vrIdx: 1, updateUsed: true });
    const second = h.copyDesc({ iov: [got[1]!], vrIdx: 1, updateUsed: true });
    expect(await Promise.all([first, second])).toEqual([size, size]);
    expect(Buffer.compare(got[0]!, patterns[0]!)).toBe(0);
    expect(Buffer.compare(got[1]!, patterns[1]!)).toBe(0);
    expect(h.stats().inBytesDma).toBe(2 * size);
    expect([dev.vqs[1]!.vq.getBuf(), dev.vqs[1]!.vq.getBuf()]).toEqual([
      { token: 0, len: 0 },
      { token: 1, len: 0 },
    ]);
  });

  it('reports bad arguments as rejections, not throws', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    await r.card.bringUp(24);
    const bad = [
      h.copyDesc({ iov: [new Uint8Array(4), 'x' as unknown as Uint8Array], vrIdx: 1, updateUsed: true }),
      h.copyDesc({ iov: [new Uint8Array(4)], vrIdx: 9, updateUsed: true }),
    ];
    await expect(bad[0]).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(bad[1]).rejects.toMatchObject({ code: 'EINVAL' });
  });
});
