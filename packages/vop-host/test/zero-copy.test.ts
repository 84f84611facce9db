import { describe, expect, it } from '@jest/globals';
import { isMicError } from '@mic/errors';
import { VOP_NOTIFY_BATCH_PIPELINED, VOP_NOTIFY_BATCH_PIPELINED_MAX } from '../src/index.js';
import { netBlock, rig } from './helpers.js';

const pattern = (size: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: size }, (_, i) => (i * 7 + seed) & 0xff);

async function setup(dmaMinBytes = 0): Promise<{
  r: Awaited<ReturnType<typeof rig>>;
  h: ReturnType<Awaited<ReturnType<typeof rig>>['control']['open']>;
  dev: Awaited<ReturnType<Awaited<ReturnType<typeof rig>>['card']['bringUp']>>;
}> {
  const r = await rig({ dma: true, dmaMinBytes });
  const h = r.control.open();
  await h.addDevice(netBlock());
  const dev = await r.card.bringUp(24);
  return { r, h, dev };
}

describe('vop-host: zero-copy DMA between card memory and host DMA buffers', () => {
  it('moves an aligned chain with one engine copy each way, no bounce pieces, byte-identical', async () => {
    const { r, h, dev } = await setup();
    const size = 64 * 1024;
    const data = pattern(size, 3);
    const src = r.card.buffer(size);
    src.mem.write(0, data);
    const buf = h.allocDmaBuffer(size);
    expect(buf.length).toBe(size);
    dev.vqs[1]!.vq.add([{ addr: src.addr, len: size }], [], 1);
    expect(await h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true })).toBe(size);
    expect(Buffer.compare(buf, data)).toBe(0);
    expect(r.dma!.lengths).toEqual([size]);
    expect(dev.vqs[1]!.vq.getBuf()).toEqual({ token: 1, len: 0 });
    const dst = r.card.buffer(size);
    dev.vqs[0]!.vq.add([], [{ addr: dst.addr, len: size }], 2);
    expect(await h.copyDesc({ iov: [buf], vrIdx: 0, updateUsed: true })).toBe(size);
    const back = new Uint8Array(size);
    dst.mem.read(0, back);
    expect(Buffer.compare(back, data)).toBe(0);
    expect(r.dma!.lengths).toEqual([size, size]);
    expect(dev.vqs[0]!.vq.getBuf()).toEqual({ token: 2, len: size });
    expect(h.stats()).toMatchObject({ inBytes: size, inBytesDma: size, outBytes: size, outBytesDma: size });
    h.freeDmaBuffer(buf);
  });

  it('copies unaligned heads and tails by memcpy, the aligned middle by DMA; other offsets take the bounce path', async () => {
    const { r, h, dev } = await setup();
    const size = 10_000;
    const data = pattern(size, 11);
    const src = r.card.buffer(size + 128);
    src.mem.write(5, data);
    const buf = h.allocDmaBuffer(size + 128);
    // Same offset from the 64-byte alignment on both sides: head 59, middle by DMA, tail.
    dev.vqs[1]!.vq.add([{ addr: src.addr + 5, len: size }], [], 1);
    expect(await h.copyDesc({ iov: [buf.subarray(5, 5 + size)], vrIdx: 1, updateUsed: true })).toBe(size);
    expect(Buffer.compare(buf.subarray(5, 5 + size), data)).toBe(0);
    // Nothing outside the view was written (the engine moves whole 64-byte units).
    expect(buf.subarray(0, 5).every((b) => b === 0)).toBe(true);
    expect(buf.subarray(5 + size).every((b) => b === 0)).toBe(true);
    const mid = Math.floor((size - 59) / 64) * 64;
    expect(r.dma!.lengths).toEqual([mid]);
    // Offsets that differ: the bounce buffer (aligned read rounded out), same bytes.
    r.dma!.lengths.length = 0;
    buf.fill(0);
    dev.vqs[1]!.vq.add([{ addr: src.addr + 5, len: size }], [], 2);
    expect(await h.copyDesc({ iov: [buf.subarray(0, size)], vrIdx: 1, updateUsed: true })).toBe(size);
    expect(Buffer.compare(buf.subarray(0, size), data)).toBe(0);
    expect(r.dma!.lengths).toEqual([alignUp(size + 5, 64)]);
    // Host → card with a head and a tail: the card's buffer around the segment is untouched.
    const dst = r.card.buffer(size + 128);
    dst.mem.fill(0, size + 128, 0xee);
    buf.set(data, 5);
    r.dma!.lengths.length = 0;
    dev.vqs[0]!.vq.add([], [{ addr: dst.addr + 5, len: size }], 3);
    expect(await h.copyDesc({ iov: [buf.subarray(5, 5 + size)], vrIdx: 0, updateUsed: true })).toBe(size);
    const back = new Uint8Array(size + 128);
    dst.mem.read(0, back);
    expect(Buffer.compare(back.subarray(5, 5 + size), data)).toBe(0);
    expect(back.subarray(0, 5).every((b) => b === 0xee)).toBe(true);
    expect(back.subarray(5 + size).every((b) => b === 0xee)).toBe(true);
    expect(r.dma!.lengths).toEqual([mid]);
  });

  it('pipelines chains of one vring: the next is queued while the last one is in flight, used entries in order', async () => {
    const { r, h, dev } = await setup();
    const size = 16 * 1024;
    const bufs = [h.allocDmaBuffer(size), h.allocDmaBuffer(size), h.allocDmaBuffer(size)];
    const srcs = bufs.map((_, i) => {
      const b = r.card.buffer(size);
      b.mem.write(0, pattern(size, i));
      dev.vqs[1]!.vq.add([{ addr: b.addr, len: size }], [], 10 + i);
      return b;
    });
    r.dma!.maxInFlight = 0;
    const calls = bufs.map((buf) => h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true }));
    // The copies are on the engine, none waited for: a buffer in use cannot be freed.
    expect(() => h.freeDmaBuffer(bufs[0]!)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(await Promise.all(calls)).toEqual([size, size, size]);
    expect(r.dma!.maxInFlight).toBe(3);
    bufs.forEach((buf, i) => expect(Buffer.compare(buf, pattern(size, i))).toBe(0));
    expect([0, 1, 2].map(() => dev.vqs[1]!.vq.getBuf()?.token)).toEqual([10, 11, 12]);
    expect(srcs.length).toBe(3);
    for (const buf of bufs) h.freeDmaBuffer(buf);
  });

  it('rings the card once per half of the chains in flight (at most VOP_NOTIFY_BATCH_PIPELINED_MAX), all used entries in order', async () => {
    const { r, h, dev } = await setup();
    const size = 4096;
    const n = 64;
    const bufs = Array.from({ length: n }, () => h.allocDmaBuffer(size));
    for (let i = 0; i < n; i++) {
      const b = r.card.buffer(size);
      b.mem.write(0, pattern(size, i));
      dev.vqs[1]!.vq.add([{ addr: b.addr, len: size }], [], 100 + i);
    }
    const rings = (): number => r.link.host.sentInterrupts.filter((d) => d === dev.db).length;
    const calls = bufs.map((buf) => h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true }));
    expect(await Promise.all(calls)).toEqual(Array.from({ length: n }, () => size));
    await new Promise((resolve) => setImmediate(resolve));
    // Batches of 31 (63 in flight), then of 8 as the last ones drain, and the last (no head
    // left): far fewer than one per VOP_NOTIFY_BATCH_PIPELINED (8) completions.
    expect(rings()).toBeGreaterThanOrEqual(1);
    expect(rings()).toBeLessThan(n / VOP_NOTIFY_BATCH_PIPELINED);
    const tokens: number[] = [];
    for (let u = dev.vqs[1]!.vq.getBuf(); u; u = dev.vqs[1]!.vq.getBuf()) tokens.push(u.token);
    expect(tokens).toEqual(Array.from({ length: n }, (_, i) => 100 + i));
    bufs.forEach((buf, i) => expect(Buffer.compare(buf, pattern(size, i))).toBe(0));
    expect(VOP_NOTIFY_BATCH_PIPELINED_MAX).toBe(32);
    for (const buf of bufs) h.freeDmaBuffer(buf);
  });

  it('a memcpy chain behind a chain in flight is published after it; a reset waits for the chains in flight', async () => {
    const { r, h, dev } = await setup(1024);
    const size = 8192;
    const buf = h.allocDmaBuffer(size);
    const a = r.card.buffer(size);
    const b = r.card.buffer(64);
    dev.vqs[1]!.vq.add([{ addr: a.addr, len: size }], [], 1);
    dev.vqs[1]!.vq.add([{ addr: b.addr, len: 16 }], [], 2);
    const first = h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true });
    const second = h.copyDesc({ iov: [new Uint8Array(16)], vrIdx: 1, updateUsed: true });
    const order: string[] = [];
    void first.then(() => order.push('first'));
    void second.then(() => order.push('second'));
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
    expect([dev.vqs[1]!.vq.getBuf()?.token, dev.vqs[1]!.vq.getBuf()?.token]).toEqual([1, 2]);
    // A reset while a chain's DMA is in flight: the chain is published first, then the ring reset.
    dev.vqs[1]!.vq.add([{ addr: a.addr, len: size }], [], 3);
    const third = h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true });
    const reset = h.device!.deviceReset().then(() => order.push('reset'));
    void third.then(() => order.push('third'));
    await Promise.all([third, reset]);
    expect(order.slice(2)).toEqual(['third', 'reset']);
    expect(h.device!.vrings[1]!.vringh.lastAvailIdx).toBe(0);
    expect(h.device!.vrings[1]!.pendingCompletions).toBe(0);
  });

  it('a hot-unplug while chains are in flight publishes them first, then frees the rings', async () => {
    const { r, h, dev } = await setup();
    const size = 4096;
    const bufs = [h.allocDmaBuffer(size), h.allocDmaBuffer(size)];
    for (let i = 0; i < 2; i++) {
      const b = r.card.buffer(size);
      b.mem.write(0, pattern(size, 20 + i));
      dev.vqs[1]!.vq.add([{ addr: b.addr, len: size }], [], 30 + i);
    }
    const calls = bufs.map((buf) => h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true }));
    const removing = h.remove();
    expect(await Promise.all(calls)).toEqual([size, size]);
    await removing;
    bufs.forEach((buf, i) => expect(Buffer.compare(buf, pattern(size, 20 + i))).toBe(0));
    expect([dev.vqs[1]!.vq.getBuf()?.token, dev.vqs[1]!.vq.getBuf()?.token]).toEqual([30, 31]);
    await expect(h.copyDesc({ iov: [bufs[0]!], vrIdx: 1, updateUsed: true })).rejects.toMatchObject({
      code: 'ENODEV',
    });
    for (const buf of bufs) h.freeDmaBuffer(buf);
  });

  it('takeChain chains read and write zero-copy without holding the vring lock over the DMA', async () => {
    const { r, h, dev } = await setup();
    const size = 8192;
    const bufs = [h.allocDmaBuffer(size), h.allocDmaBuffer(size)];
    const dsts = bufs.map((_, i) => {
      const b = r.card.buffer(size);
      dev.vqs[0]!.vq.add([], [{ addr: b.addr, len: size }], 40 + i);
      bufs[i]!.set(pattern(size, 40 + i));
      return b;
    });
    const chains = [(await h.takeChain(0))!, (await h.takeChain(0))!];
    r.dma!.maxInFlight = 0;
    const writes = chains.map((c, i) => c.write(bufs[i]!));
    // Completing before the bytes are in place waits for them.
    const completes = chains.map((c) => c.complete());
    expect(await Promise.all(writes)).toEqual([size, size]);
    await Promise.all(completes);
    expect(r.dma!.maxInFlight).toBe(2);
    dsts.forEach((d, i) => {
      const back = new Uint8Array(size);
      d.mem.read(0, back);
      expect(Buffer.compare(back, pattern(size, 40 + i))).toBe(0);
    });
    expect([dev.vqs[0]!.vq.getBuf(), dev.vqs[0]!.vq.getBuf()]).toEqual([
      { token: 40, len: size },
      { token: 41, len: size },
    ]);
  });

  it('falls back to memcpy when the engine fails, and plain arrays keep the bounce path', async () => {
    const { r, h, dev } = await setup();
    const size = 4096;
    const data = pattern(size, 5);
    const src = r.card.buffer(size);
    src.mem.write(0, data);
    const plain = new Uint8Array(size);
    dev.vqs[1]!.vq.add([{ addr: src.addr, len: size }], [], 1);
    expect(await h.copyDesc({ iov: [plain], vrIdx: 1, updateUsed: true })).toBe(size);
    expect(Buffer.compare(plain, data)).toBe(0);
    expect(r.dma!.lengths).toEqual([size]); // one bounce piece
    const buf = h.allocDmaBuffer(size);
    r.dma!.failAfter = r.dma!.copies;
    dev.vqs[1]!.vq.add([{ addr: src.addr, len: size }], [], 2);
    expect(await h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true })).toBe(size);
    expect(Buffer.compare(buf, data)).toBe(0);
    expect(h.stats().dmaErrors).toBe(1);
    expect(r.control.dmaChannel).toBeNull();
    h.freeDmaBuffer(buf);
  });

  it('validates allocDmaBuffer and freeDmaBuffer arguments; close frees every buffer', async () => {
    const { h } = await setup();
    for (const bad of [0, -1, 1.5, Number.NaN, '4096', null]) {
      expect(() => h.allocDmaBuffer(bad as number)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    const buf = h.allocDmaBuffer(100);
    expect(() => h.freeDmaBuffer(buf.subarray(1))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => h.freeDmaBuffer(new Uint8Array(100))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => h.freeDmaBuffer('x' as unknown as Uint8Array)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    h.freeDmaBuffer(buf);
    expect(() => h.freeDmaBuffer(buf)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    h.allocDmaBuffer(4096);
    await h.close();
    try {
      h.allocDmaBuffer(64);
      throw new Error('not refused');
    } catch (err) {
      expect(isMicError(err, 'EBADF')).toBe(true);
    }
  });
});

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
