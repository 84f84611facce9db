// Mapped chains (`VopChain.mapReadable` / `mapWritable`): views of card memory instead of copies,
// what they may reach, the used length, the reset and hot-unplug that wait for them, and the
// per-device DMA threshold of addDevice.
import { describe, expect, it } from '@jest/globals';
import { VirtualClock } from '@mic/clock';
import { createMemoryLogger } from '@mic/logger';
import { VOP_MAPPED_DRAIN_TIMEOUT_MS } from '../src/index.js';
import { until } from './card-double.js';
import { blockBlock, netBlock, rig } from './helpers.js';

/** The MicError code `fn` throws ('none' when it returns). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  }
}

describe('vop-host: mapped chains', () => {
  it('maps the readable and writable segments of a chain as views of card memory', async () => {
    const r = await rig({ dma: true, dmaMinBytes: 0 });
    const h = r.control.open();
    await h.addDevice(blockBlock());
    const dev = await r.card.bringUp(24);
    const hdr = r.card.buffer(64);
    hdr.mem.write(
      0,
      Uint8Array.from({ length: 16 }, (_, i) => i + 1),
    );
    const a = r.card.buffer(4096);
    const b = r.card.buffer(4096);
    dev.vqs[0]!.vq.add(
      [{ addr: hdr.addr, len: 16 }],
      [
        { addr: a.addr, len: 3000 },
        { addr: b.addr, len: 1000 },
      ],
      7,
    );
    const c = (await h.takeChain(0))!;
    const rv = c.mapReadable(100);
    expect(rv.map((v) => v.length)).toEqual([16]);
    expect([...rv[0]!]).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(c.bytesRead).toBe(16);
    expect(c.mapReadable(10)).toEqual([]);
    const wv = c.mapWritable(3500);
    expect(wv.map((v) => v.length)).toEqual([3000, 500]);
    wv[0]!.fill(0xa1);
    wv[1]!.fill(0xb2);
    expect(c.bytesWritten).toBe(3500);
    // The rest by a copy, after the mapped part.
    expect(await c.write(new Uint8Array(500).fill(0xc3))).toBe(500);
    await c.complete();
    expect(dev.vqs[0]!.vq.getBuf()).toEqual({ token: 7, len: 4000 });
    const back = new Uint8Array(1000);
    b.mem.read(0, back);
    expect(back.subarray(0, 500).every((x) => x === 0xb2)).toBe(true);
    expect(back.subarray(500).every((x) => x === 0xc3)).toBe(true);
    const first = new Uint8Array(3000);
    a.mem.read(0, first);
    expect(first.every((x) => x === 0xa1)).toBe(true);
    const stats = h.stats();
    expect(stats.inBytes).toBe(16);
    expect(stats.outBytes).toBe(4000);
    // Mapped bytes moved by no DMA; the copied 500 went by memcpy (an unaligned card address).
    expect(stats.inBytesDma + stats.outBytesDma).toBe(0);
    expect(stats.txDstUnaligned).toBe(500);
  });

  it('gives one view for descriptors adjacent in card memory', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(blockBlock());
    const dev = await r.card.bringUp(24);
    const data = r.card.buffer(3 * 4096);
    dev.vqs[0]!.vq.add(
      [],
      [
        { addr: data.addr, len: 4096 },
        { addr: data.addr + 4096, len: 4096 },
        { addr: data.addr + 2 * 4096 + 64, len: 100 },
      ],
      1,
    );
    const c = (await h.takeChain(0))!;
    const views = c.mapWritable(8192 + 100);
    expect(views.map((v) => v.length)).toEqual([8192, 100]);
    views[0]!.fill(1);
    views[1]!.fill(2);
    await c.complete();
    const back = new Uint8Array(3 * 4096);
    data.mem.read(0, back);
    expect(back.subarray(0, 8192).every((b) => b === 1)).toBe(true);
    expect(back.subarray(8192, 8192 + 64).every((b) => b === 0)).toBe(true);
    expect(back.subarray(8192 + 64, 8192 + 164).every((b) => b === 2)).toBe(true);
    expect(dev.vqs[0]!.vq.getBuf()).toEqual({ token: 1, len: 8292 });
  });

  it('refuses a bad count, a completed chain and a chain that died with a reset', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(blockBlock());
    const dev = await r.card.bringUp(24);
    const data = r.card.buffer(1024);
    for (const token of [1, 2])
      dev.vqs[0]!.vq.add([{ addr: data.addr, len: 16 }], [{ addr: data.addr + 16, len: 8 }], token);
    const c = (await h.takeChain(0))!;
    expect(codeOf(() => c.mapWritable(-1))).toBe('EINVAL');
    expect(codeOf(() => c.mapWritable(1.5))).toBe('EINVAL');
    await c.complete();
    expect(codeOf(() => c.mapReadable(1))).toBe('EINVAL');
    const d = (await h.takeChain(0))!;
    await r.card.reset(dev);
    expect(codeOf(() => d.mapWritable(8))).toBe('ENODEV');
  });

  it('a card reset waits for the mapped chains to complete before it acks', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const logger = createMemoryLogger();
    const r = await rig({ clock, logger });
    const h = r.control.open();
    await h.addDevice(blockBlock());
    const dev = await r.card.bringUp(24);
    const data = r.card.buffer(8192);
    dev.vqs[0]!.vq.add([{ addr: data.addr, len: 16 }], [{ addr: data.addr + 16, len: 4096 }], 1);
    const c = (await h.takeChain(0))!;
    const views = c.mapWritable(4096);
    let completed = false;
    const reset = r.card.reset(dev).then(() => completed);
    await until(
      r.link,
      () => logger.records.some((x) => x.msg === 'vop: waiting for mapped chains'),
      'the reset to wait',
    );
    for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
    expect(h.device!.ctrl().hostAck).toBe(0);
    // The host's late write lands before the card has its buffer back.
    views[0]!.fill(0x5e);
    completed = true;
    await c.complete();
    expect(await reset).toBe(true);
    expect(h.device!.ctrl().hostAck).toBe(1);
  });

  it('a reset goes on after VOP_MAPPED_DRAIN_TIMEOUT_MS when a mapped chain is never completed', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const logger = createMemoryLogger();
    const r = await rig({ clock, logger });
    const h = r.control.open();
    await h.addDevice(blockBlock());
    const dev = await r.card.bringUp(24);
    const data = r.card.buffer(8192);
    dev.vqs[0]!.vq.add([{ addr: data.addr, len: 16 }], [{ addr: data.addr + 16, len: 4096 }], 1);
    const c = (await h.takeChain(0))!;
    c.mapWritable(4096);
    const reset = r.card.reset(dev);
    await until(
      r.link,
      () => logger.records.some((x) => x.msg === 'vop: waiting for mapped chains'),
      'the reset to wait',
    );
    clock.advance(VOP_MAPPED_DRAIN_TIMEOUT_MS);
    await reset;
    expect(logger.records.some((x) => x.level === 'error' && /mapped chains/.test(x.msg))).toBe(true);
    await expect(c.complete()).rejects.toMatchObject({ code: 'ENODEV' });
  });

  it('an unmapped dead chain does not hold a reset up', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const r = await rig({ clock });
    const h = r.control.open();
    await h.addDevice(blockBlock());
    const dev = await r.card.bringUp(24);
    const data = r.card.buffer(8192);
    dev.vqs[0]!.vq.add([{ addr: data.addr, len: 16 }], [{ addr: data.addr + 16, len: 4096 }], 1);
    const c = (await h.takeChain(0))!;
    c.mapWritable(16);
    c.unmap();
    await r.card.reset(dev);
    expect(h.device!.ctrl().hostAck).toBe(1);
  });
});

describe('vop-host: per-device DMA threshold', () => {
  it('copies of a device added with dmaMinBytes below it go by memcpy; others keep the control default', async () => {
    const r = await rig({ dma: true, dmaMinBytes: 0 });
    const fast = r.control.open();
    await fast.addDevice(netBlock(), { dmaMinBytes: 4096 });
    const dev = await r.card.bringUp(24);
    const buf = r.card.buffer(8192);
    dev.vqs[1]!.vq.add([{ addr: buf.addr, len: 2048 }], [], 1);
    expect(await fast.copyDesc({ iov: [new Uint8Array(2048)], vrIdx: 1, updateUsed: true })).toBe(2048);
    dev.vqs[1]!.vq.add([{ addr: buf.addr, len: 4096 }], [], 2);
    expect(await fast.copyDesc({ iov: [new Uint8Array(4096)], vrIdx: 1, updateUsed: true })).toBe(4096);
    expect(fast.stats()).toMatchObject({ inBytes: 6144, inBytesDma: 4096 });
    await expect(r.control.open().addDevice(blockBlock(), { dmaMinBytes: -1 })).rejects.toMatchObject({
      code: 'EINVAL',
    });
  });
});
