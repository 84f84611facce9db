import { describe, expect, it } from '@jest/globals';
import { VirtualClock } from '@mic/clock';
import { isMicError } from '@mic/errors';
import {
  MIC_DEVICE_CTRL_OFFSETS,
  MIC_MAGIC,
  MIC_VIRTIO_PARAM_CONFIG_CHANGED,
  MIC_VIRTIO_PARAM_DEV_REMOVE,
  MIC_VRING_INFO_OFFSETS,
  encodeDescBlock,
  featureBitsToBytes,
  readS8,
  walkDevicePage,
} from '@mic/mic-common';
import { VIRTIO_CONFIG_S, VRING_AVAIL_F_NO_INTERRUPT } from '@mic/virtio';
import { MockVopLink, VopBus } from '@mic/vop-bus';
import { VopHostDriver } from '../src/index.js';
import { until } from './card-double.js';
import { blockBlock, consoleBlock, netBlock, rig } from './helpers.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('vop-host: probe and the control device', () => {
  it('probes a host-role device as vop_virtio<index> and refuses the card role', async () => {
    const { driver, control, link } = await rig();
    expect(control.name).toBe('vop_virtio0');
    expect(driver.controls()).toEqual([control]);
    const cardBus = new VopBus();
    await cardBus.registerDriver(new VopHostDriver());
    const dev = await cardBus.registerDevice(link.cardParams());
    expect(isMicError(cardBus.probeError(dev), 'ENODEV')).toBe(true);
  });

  it('removes the control at card stop: devices reset and removed, handles report ENODEV, pollers get an error', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    const polling = h.poll();
    const vpdev = r.bus.devices()[0]!;
    // The card acks the hot-unplug it is asked for.
    const acking = until(r.link, () => {
      if (r.card.ctrl(dev, 'configChange') === MIC_VIRTIO_PARAM_DEV_REMOVE)
        r.card.setCtrl(dev, 'guestAck', 1);
      return r.driver.controls().length === 0;
    });
    r.card.listen();
    await Promise.all([r.bus.unregisterDevice(vpdev), acking]);
    expect((await polling).err || (await h.poll()).err).toBe(true);
    await expect(h.copyDesc({ iov: [new Uint8Array(4)], vrIdx: 0, updateUsed: true })).rejects.toMatchObject({
      code: 'ENODEV',
    });
    expect(readS8(r.link.dp.va, 24)).toBe(-1);
    expect(() => r.control.open()).toThrow(/gone/);
    expect(r.link.host.usage(h.device!.virtioDb)).toBe(0);
  });
});

describe('vop-host: ADD_DEVICE', () => {
  it('lays out console, net and block as the reference formulas say, byte for byte', async () => {
    const { control, link } = await rig();
    const dp = link.dp.va;
    const handles = [control.open(), control.open(), control.open()];
    await handles[0]!.addDevice(consoleBlock());
    await handles[1]!.addDevice(netBlock());
    await handles[2]!.addDevice(blockBlock());
    const infos = handles.map((h) => h.info());
    expect(infos.map((i) => [i.type, i.offset])).toEqual([
      [3, 24],
      [1, 120],
      [2, 224],
    ]);
    // console: desc 8 + 2×24 vqconfig + 2×4 features + 12 config = 76 → aligned 80, ctrl at +80, stride 96.
    const page = new Uint8Array(4096);
    dp.read(0, page);
    expect([...page.subarray(24, 29)]).toEqual([3, 2, 4, 12, 0]);
    expect([...page.subarray(120, 125)]).toEqual([1, 2, 4, 24, 0]);
    expect([...page.subarray(224, 229)]).toEqual([2, 1, 4, 60, 0]);
    expect(page[344]).toBe(0); // end of list after block (224 + 120)
    for (const [h, base, numVq, featureOff, ctrl] of [
      [handles[0]!, 24, 2, 80, 104],
      [handles[1]!, 120, 2, 176, 208],
      [handles[2]!, 224, 1, 256, 328],
    ] as const) {
      const dev = h.device!;
      for (let q = 0; q < numVq; q++) {
        const vq = base + 8 + q * 24;
        expect(dp.readU64(vq)).toBe(dev.vrings[q]!.block.dmaAddr);
        expect(dp.readU64(vq + 8)).toBe(0);
        expect(dp.readU16(vq + 16)).toBe(128);
        const block = dev.vrings[q]!.block;
        expect(block.size).toBe(8192);
        expect(block.va.readU32(5128 + MIC_VRING_INFO_OFFSETS.magic)).toBe((MIC_MAGIC + dev.type + q) >>> 0);
        expect(block.va.readU16(5128 + MIC_VRING_INFO_OFFSETS.availIdx)).toBe(0);
      }
      expect(dp.readU32(base + featureOff - base)).toBe(Number(dev.hostFeatures));
      expect(page[ctrl + MIC_DEVICE_CTRL_OFFSETS.c2hVdevDb]).toBe(dev.virtioDb);
      expect(page[ctrl + MIC_DEVICE_CTRL_OFFSETS.h2cVdevDb]).toBe(0xff);
      for (const f of ['configChange', 'vdevReset', 'guestAck', 'hostAck', 'usedAddressUpdated'] as const) {
        expect(page[ctrl + MIC_DEVICE_CTRL_OFFSETS[f]]).toBe(0);
      }
    }
    expect(handles.map((h) => h.device!.virtioDb)).toEqual([0, 1, 2]); // round robin
    expect(handles[1]!.device!.hostFeatures).toBe(0x3c1n);
  });

  it('refuses each bad block with its own error code', async () => {
    const { control } = await rig();
    const h = control.open();
    const withHeader = (numVq: number, featureLen: number, configLen: number, type = 3): Uint8Array => {
      const b = new Uint8Array(8 + numVq * 24 + 2 * featureLen + configLen);
      b.set([type & 0xff, numVq, featureLen, configLen]);
      for (let q = 0; q < numVq; q++) b[8 + q * 24 + 16] = 128;
      return b;
    };
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(5), 'EFAULT'],
      [consoleBlock().subarray(0, 40), 'EFAULT'],
      [withHeader(1, 100, 100), 'EMSGSIZE'],
      [withHeader(5, 0, 0), 'E2BIG'],
      [consoleBlock(256), 'EINVAL'],
      [consoleBlock(100), 'EINVAL'],
      [consoleBlock(0), 'EINVAL'],
      [withHeader(1, 4, 0, 0), 'EOPNOTSUPP'],
      [withHeader(1, 4, 0, -1), 'EOPNOTSUPP'],
      [withHeader(1, 4, 0, 14), 'EOPNOTSUPP'],
    ];
    for (const [block, code] of cases) {
      await expect(h.addDevice(block)).rejects.toMatchObject({ code });
    }
    await h.addDevice(consoleBlock());
    await expect(h.addDevice(consoleBlock())).rejects.toMatchObject({ code: 'EBUSY' });
  });

  it('fills the device page, then reports ENOSPC; a freed slot is reused', async () => {
    const { control, link } = await rig();
    const handles = [];
    for (;;) {
      const h = control.open();
      try {
        await h.addDevice(blockBlock());
      } catch (err) {
        expect(isMicError(err, 'ENOSPC')).toBe(true);
        break;
      }
      handles.push(h);
    }
    // 24 + n × 120 < 4096 − 120: 33 entries.
    expect(handles).toHaveLength(33);
    await handles[5]!.close();
    expect(readS8(link.dp.va, handles[5]!.control.devices().length >= 0 ? 24 + 5 * 120 : 0)).toBe(-1);
    const again = control.open();
    await again.addDevice(blockBlock());
    expect(again.info().offset).toBe(24 + 5 * 120);
  });

  it('rings h2c_config_db on add once the card listens (hot-plug)', async () => {
    const { control, card, link } = await rig();
    await control.open().addDevice(consoleBlock());
    await link.flush();
    expect(card.configInterrupts).toBe(0);
    card.listen();
    await control.open().addDevice(netBlock());
    await link.flush();
    expect(card.configInterrupts).toBe(1);
  });
});

describe('vop-host: the data path (COPY_DESC)', () => {
  it('relocates the used rings on used_address_updated (LINKUP) and returns 0 on an empty ring', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    expect(h.device!.vrings.map((v) => v.usedAddress)).toEqual(dev.vqs.map((q) => q.usedAddr));
    expect(await h.copyDesc({ iov: [new Uint8Array(64)], vrIdx: 1, updateUsed: true })).toBe(0);
  });

  it('moves card → host and host → card data, with used length = bytes written to the card', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    // Card transmits on vring 1 (readable buffer).
    const tx = r.card.buffer(64);
    tx.mem.write(0, text('hello host'));
    dev.vqs[1]!.vq.add([{ addr: tx.addr, len: 10 }], [], 7);
    const got = new Uint8Array(4096);
    expect(await h.copyDesc({ iov: [got], vrIdx: 1, updateUsed: true })).toBe(10);
    expect(str(got.subarray(0, 10))).toBe('hello host');
    expect(dev.vqs[1]!.vq.getBuf()).toEqual({ token: 7, len: 0 });
    // Card posts a receive buffer on vring 0 (writable).
    const rx = r.card.buffer(4096);
    dev.vqs[0]!.vq.add([], [{ addr: rx.addr, len: 4096 }], 8);
    expect(await h.copyDesc({ iov: [text('hi card')], vrIdx: 0, updateUsed: true })).toBe(7);
    expect(dev.vqs[0]!.vq.getBuf()).toEqual({ token: 8, len: 7 });
    const back = new Uint8Array(7);
    rx.mem.read(0, back);
    expect(str(back)).toBe('hi card');
    expect(h.stats()).toMatchObject({ inBytes: 10, outBytes: 7, inBytesDma: 0, outBytesDma: 0 });
    // info.avail_idx follows last_avail_idx.
    expect(h.device!.vrings[0]!.block.va.readU16(5128)).toBe(1);
  });

  it('copies each chain into the same place of one large buffer, and into other places, exactly', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    const big = new Uint8Array(1 << 16);
    const tx = r.card.buffer(4096);
    const rx = r.card.buffer(4096);
    const cases: Array<[number, string]> = [
      [0, 'first chain'],
      [0, 'second!'],
      [0, 'third chain, longer'],
      [100, 'at 100'],
      [100, 'at 100 again'],
    ];
    for (const [at, s] of cases) {
      tx.mem.write(0, text(s));
      dev.vqs[1]!.vq.add([{ addr: tx.addr, len: s.length }], [], 1);
      expect(await h.copyDesc({ iov: [big.subarray(at)], vrIdx: 1, updateUsed: true })).toBe(s.length);
      expect(str(big.subarray(at, at + s.length))).toBe(s);
      dev.vqs[0]!.vq.add([], [{ addr: rx.addr, len: 4096 }], 2);
      expect(await h.copyDesc({ iov: [big.subarray(at, at + s.length)], vrIdx: 0, updateUsed: true })).toBe(
        s.length,
      );
      const back = new Uint8Array(s.length);
      rx.mem.read(0, back);
      expect(str(back)).toBe(s);
      expect(dev.vqs[1]!.vq.getBuf()).toEqual({ token: 1, len: 0 });
      expect(dev.vqs[0]!.vq.getBuf()).toEqual({ token: 2, len: s.length });
    }
  });

  it('keeps partial progress across calls: header, data and status of one block request', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(blockBlock());
    const dev = await r.card.bringUp(24);
    const hdr = r.card.buffer(64);
    hdr.mem.write(
      0,
      Uint8Array.from({ length: 16 }, (_, i) => i),
    );
    const data = r.card.buffer(4096);
    const status = r.card.buffer(64);
    dev.vqs[0]!.vq.add(
      [{ addr: hdr.addr, len: 16 }],
      [
        { addr: data.addr, len: 4096 },
        { addr: status.addr, len: 1 },
      ],
      1,
    );
    const header = new Uint8Array(16);
    expect(await h.copyDesc({ iov: [header], vrIdx: 0, updateUsed: false })).toBe(16);
    expect([...header]).toEqual([...Array(16).keys()]);
    const sector = new Uint8Array(4096).fill(0xab);
    expect(await h.copyDesc({ iov: [sector], vrIdx: 0, updateUsed: false })).toBe(4096);
    expect(dev.vqs[0]!.vq.getBuf()).toBeNull();
    expect(await h.copyDesc({ iov: [Uint8Array.of(0)], vrIdx: 0, updateUsed: true })).toBe(1);
    expect(dev.vqs[0]!.vq.getBuf()).toEqual({ token: 1, len: 4097 });
    const d = new Uint8Array(4096);
    data.mem.read(0, d);
    expect(d.every((b) => b === 0xab)).toBe(true);
  });

  it('reports the chain in progress (sizes and progress) without moving data', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(blockBlock());
    const dev = await r.card.bringUp(24);
    expect(await h.chainInfo(0)).toBeNull();
    const hdr = r.card.buffer(64);
    const data = r.card.buffer(4096);
    dev.vqs[0]!.vq.add(
      [{ addr: hdr.addr, len: 16 }],
      [
        { addr: data.addr, len: 512 },
        { addr: data.addr + 512, len: 1 },
      ],
      1,
    );
    expect(await h.chainInfo(0)).toEqual({ head: 0, readable: 16, writable: 513, read: 0, written: 0 });
    await h.copyDesc({ iov: [new Uint8Array(16)], vrIdx: 0, updateUsed: false });
    expect(await h.chainInfo(0)).toMatchObject({ read: 16, written: 0 });
    await h.copyDesc({ iov: [new Uint8Array(513)], vrIdx: 0, updateUsed: true });
    expect(await h.chainInfo(0)).toBeNull();
    expect(dev.vqs[0]!.vq.getBuf()).toEqual({ token: 1, len: 513 });
  });

  it('hands out several chains of one vring at once, completed in any order; a reset kills them', async () => {
    const r = await rig({ dma: true, dmaMinBytes: 0 });
    const h = r.control.open();
    await h.addDevice(blockBlock());
    const dev = await r.card.bringUp(24);
    const reqs = [0, 1, 2].map((i) => {
      const hdr = r.card.buffer(64);
      hdr.mem.write(0, Uint8Array.of(i));
      const data = r.card.buffer(8192);
      dev.vqs[0]!.vq.add([{ addr: hdr.addr, len: 16 }], [{ addr: data.addr, len: 8192 }], i);
      return data;
    });
    const chains = [await h.takeChain(0), await h.takeChain(0), await h.takeChain(0)];
    expect(await h.takeChain(0)).toBeNull();
    expect(chains.map((c) => [c!.readable, c!.writable])).toEqual([
      [16, 8192],
      [16, 8192],
      [16, 8192],
    ]);
    for (const [i, c] of [chains[2]!, chains[0]!].entries()) {
      const hdr = new Uint8Array(16);
      expect(await c.read(hdr)).toBe(16);
      expect(await c.write(new Uint8Array(8192).fill(0x10 + i))).toBe(8192);
      await c.complete();
    }
    expect(dev.vqs[0]!.vq.getBuf()).toEqual({ token: 2, len: 8192 });
    expect(dev.vqs[0]!.vq.getBuf()).toEqual({ token: 0, len: 8192 });
    const back = new Uint8Array(8192);
    reqs[2]!.mem.read(0, back);
    expect(back.every((b) => b === 0x10)).toBe(true);
    expect(h.stats().outBytesDma).toBe(2 * 8192);
    await expect(chains[0]!.complete()).rejects.toMatchObject({ code: 'EINVAL' });
    await r.card.reset(dev);
    await expect(chains[1]!.write(Uint8Array.of(1))).rejects.toMatchObject({ code: 'ENODEV' });
    expect(dev.vqs[0]!.vq.getBuf()).toBeNull();
  });

  it('reads a chain split over several user buffers and writes the rest of a buffer into the writable part', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(netBlock());
    const dev = await r.card.bringUp(24);
    const out = r.card.buffer(64);
    out.mem.write(0, text('abcdef'));
    const inb = r.card.buffer(64);
    dev.vqs[1]!.vq.add([{ addr: out.addr, len: 6 }], [{ addr: inb.addr, len: 8 }], 3);
    const a = new Uint8Array(4);
    const b = new Uint8Array(6);
    b.set(text('XYZW'), 2);
    expect(await h.copyDesc({ iov: [a, b], vrIdx: 1, updateUsed: true })).toBe(10);
    expect(str(a)).toBe('abcd');
    expect(str(b.subarray(0, 2))).toBe('ef');
    const w = new Uint8Array(4);
    inb.mem.read(0, w);
    expect(str(w)).toBe('XYZW');
    expect(dev.vqs[1]!.vq.getBuf()).toEqual({ token: 3, len: 4 });
  });

  it('notifies the card unless it set NO_INTERRUPT', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    const b = r.card.buffer(64);
    dev.vqs[0]!.vq.add([], [{ addr: b.addr, len: 64 }], 1);
    await h.copyDesc({ iov: [text('x')], vrIdx: 0, updateUsed: true });
    await r.link.flush();
    expect(dev.interrupts).toEqual([dev.db]);
    dev.vqs[0]!.hostVring.writeU16(2048, VRING_AVAIL_F_NO_INTERRUPT);
    dev.vqs[0]!.vq.add([], [{ addr: b.addr, len: 64 }], 2);
    await h.copyDesc({ iov: [text('y')], vrIdx: 0, updateUsed: true });
    await r.link.flush();
    expect(dev.interrupts).toHaveLength(1);
  });

  it('fetches no chain before DRIVER_OK (the card may still be setting the rings up)', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = r.card.attach(24);
    await r.card.findVqs(dev);
    r.card.setStatus(dev, VIRTIO_CONFIG_S.ACKNOWLEDGE | VIRTIO_CONFIG_S.DRIVER);
    const tx = r.card.buffer(64);
    dev.vqs[1]!.vq.add([{ addr: tx.addr, len: 4 }], [], 1);
    expect(await h.copyDesc({ iov: [new Uint8Array(4)], vrIdx: 1, updateUsed: true })).toBe(0);
    expect(await h.chainInfo(1)).toBeNull();
    r.card.setStatus(dev, VIRTIO_CONFIG_S.ACKNOWLEDGE | VIRTIO_CONFIG_S.DRIVER | VIRTIO_CONFIG_S.DRIVER_OK);
    expect(await h.copyDesc({ iov: [new Uint8Array(4)], vrIdx: 1, updateUsed: true })).toBe(4);
  });

  it('refuses copies while the status is 0 (ENODEV) and for a vring index out of range (EINVAL)', async () => {
    const r = await rig();
    const h = r.control.open();
    await expect(h.copyDesc({ iov: [], vrIdx: 0, updateUsed: true })).rejects.toMatchObject({
      code: 'EINVAL',
    });
    await h.addDevice(consoleBlock());
    await expect(h.copyDesc({ iov: [new Uint8Array(1)], vrIdx: 0, updateUsed: true })).rejects.toMatchObject({
      code: 'ENODEV',
    });
    await r.card.bringUp(24);
    await expect(h.copyDesc({ iov: [new Uint8Array(1)], vrIdx: 2, updateUsed: true })).rejects.toMatchObject({
      code: 'EINVAL',
    });
  });

  it('returns a bad chain to the card with length 0 and goes on with the next one', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    const good = r.card.buffer(64);
    good.mem.write(0, text('ok'));
    // A chain naming memory outside the card (the aperture is 4 MiB).
    dev.vqs[1]!.vq.add([{ addr: 64 << 20, len: 16 }], [], 1);
    dev.vqs[1]!.vq.add([{ addr: good.addr, len: 2 }], [], 2);
    await expect(h.copyDesc({ iov: [new Uint8Array(64)], vrIdx: 1, updateUsed: true })).rejects.toMatchObject(
      {
        code: 'EFAULT',
      },
    );
    const got = new Uint8Array(64);
    expect(await h.copyDesc({ iov: [got], vrIdx: 1, updateUsed: true })).toBe(2);
    expect(dev.vqs[1]!.vq.getBuf()).toEqual({ token: 1, len: 0 });
    expect(dev.vqs[1]!.vq.getBuf()).toEqual({ token: 2, len: 0 });
    expect(h.stats().badChains).toBe(1);
  });

  it('copies by DMA through the bounce buffer when aligned, byte-identical to memcpy, and counts both', async () => {
    for (const dma of [false, true]) {
      const r = await rig({ dma, dmaMinBytes: 0 });
      const h = r.control.open();
      await h.addDevice(netBlock());
      const dev = await r.card.bringUp(24);
      const size = 200_000;
      const pattern = Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) & 0xff);
      // Unaligned read over several 64 KiB chunks (the kernel's multi-chunk quirk).
      const src = r.card.buffer(size + 128);
      src.mem.write(5, pattern);
      dev.vqs[1]!.vq.add([{ addr: src.addr + 5, len: size }], [], 1);
      const got = new Uint8Array(size);
      expect(await h.copyDesc({ iov: [got], vrIdx: 1, updateUsed: true })).toBe(size);
      expect(Buffer.compare(got, pattern)).toBe(0);
      // Aligned write; then one whose length does not round up inside the descriptor.
      const dst = r.card.buffer(size);
      dev.vqs[0]!.vq.add([], [{ addr: dst.addr, len: size }], 2);
      expect(await h.copyDesc({ iov: [pattern.subarray(0, size - 10)], vrIdx: 0, updateUsed: true })).toBe(
        size - 10,
      );
      const back = new Uint8Array(size - 10);
      dst.mem.read(0, back);
      expect(Buffer.compare(back, pattern.subarray(0, size - 10))).toBe(0);
      const stats = h.stats();
      expect(stats.inBytes).toBe(size);
      expect(stats.outBytes).toBe(size - 10);
      if (dma) {
        expect(stats.inBytesDma).toBe(size);
        expect(stats.outBytesDma).toBe(size - 10);
        expect(r.dma!.copies).toBeGreaterThanOrEqual(8);
      } else {
        expect(stats.inBytesDma + stats.outBytesDma).toBe(0);
      }
    }
  });

  it('moves a DMA copy in overlapping pieces: 64 KiB as four of 16 KiB, 1 MiB as sixteen of 64 KiB', async () => {
    const r = await rig({ dma: true, dmaMinBytes: 0 });
    const h = r.control.open();
    await h.addDevice(netBlock());
    const dev = await r.card.bringUp(24);
    for (const [size, piece, depth] of [
      [64 * 1024, 16 * 1024, 4],
      [1 << 20, 64 * 1024, 2],
    ] as const) {
      const pattern = Uint8Array.from({ length: size }, (_, i) => (i * 13 + size) & 0xff);
      const src = r.card.buffer(size);
      src.mem.write(0, pattern);
      dev.vqs[1]!.vq.add([{ addr: src.addr, len: size }], [], 1);
      r.dma!.lengths.length = 0;
      r.dma!.maxInFlight = 0;
      const got = new Uint8Array(size);
      expect(await h.copyDesc({ iov: [got], vrIdx: 1, updateUsed: true })).toBe(size);
      expect(Buffer.compare(got, pattern)).toBe(0);
      expect(r.dma!.lengths).toEqual(new Array<number>(size / piece).fill(piece));
      // Every piece the bounce buffer (128 KiB) has room for is handed to the engine at once.
      expect(r.dma!.maxInFlight).toBe(depth);
      const dst = r.card.buffer(size);
      dev.vqs[0]!.vq.add([], [{ addr: dst.addr, len: size }], 2);
      r.dma!.lengths.length = 0;
      r.dma!.maxInFlight = 0;
      expect(await h.copyDesc({ iov: [pattern], vrIdx: 0, updateUsed: true })).toBe(size);
      const back = new Uint8Array(size);
      dst.mem.read(0, back);
      expect(Buffer.compare(back, pattern)).toBe(0);
      expect(r.dma!.lengths).toEqual(new Array<number>(size / piece).fill(piece));
      expect(r.dma!.maxInFlight).toBe(Math.min(size / piece, (128 * 1024) / piece));
    }
  });

  it('falls back to memcpy for unaligned card addresses and lengths that do not fit, and after a DMA failure', async () => {
    const r = await rig({ dma: true, dmaMinBytes: 0 });
    const h = r.control.open();
    await h.addDevice(netBlock());
    const dev = await r.card.bringUp(24);
    const dst = r.card.buffer(8192);
    dev.vqs[0]!.vq.add([], [{ addr: dst.addr + 3, len: 1000 }], 1);
    await h.copyDesc({ iov: [new Uint8Array(1000).fill(1)], vrIdx: 0, updateUsed: true });
    dev.vqs[0]!.vq.add([], [{ addr: dst.addr, len: 100 }], 2);
    await h.copyDesc({ iov: [new Uint8Array(100).fill(2)], vrIdx: 0, updateUsed: true });
    expect(h.stats()).toMatchObject({ txDstUnaligned: 1000, txLenUnaligned: 100, outBytesDma: 0 });
    r.dma!.failAfter = r.dma!.copies;
    const pattern = Uint8Array.from({ length: 4096 }, (_, i) => i & 0xff);
    dev.vqs[0]!.vq.add([], [{ addr: dst.addr + 4096, len: 4096 }], 3);
    expect(await h.copyDesc({ iov: [pattern], vrIdx: 0, updateUsed: true })).toBe(4096);
    const back = new Uint8Array(4096);
    dst.mem.read(4096, back);
    expect(Buffer.compare(back, pattern)).toBe(0);
    expect(h.stats().dmaErrors).toBe(1);
    expect(r.control.dmaChannel).toBeNull();
  });
});

describe('vop-host: poll, config change, hot-unplug, reset', () => {
  it('poll wakes once per card doorbell (edge) and reports err without a device', async () => {
    const r = await rig();
    const h = r.control.open();
    expect(await h.poll()).toMatchObject({ err: true });
    await h.addDevice(consoleBlock());
    const dev = r.card.attach(24);
    const first = h.poll();
    r.card.ring(dev);
    expect(await first).toEqual({ in: true, out: true, err: false });
    expect(await h.poll({ timeoutMs: 50 })).toEqual({ in: false, out: false, err: false });
    r.card.ring(dev);
    await r.link.flush();
    await new Promise((res) => setImmediate(res));
    expect(await h.poll({ timeoutMs: 50 })).toMatchObject({ in: true });
  });

  it('timed polls share one clock sleep: each times out at its own deadline, a wake-up ends the rest', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const r = await rig({ clock });
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = r.card.attach(24);
    const settled: string[] = [];
    const track = (name: string, p: Promise<{ in: boolean }>): Promise<void> =>
      p.then((e) => void settled.push(`${name}:${e.in ? 'woken' : 'timeout'}`));
    const flushed = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
    };
    const long = track('long', h.poll({ timeoutMs: 1000 }));
    const short = track('short', h.poll({ timeoutMs: 10 }));
    const mid = track('mid', h.poll({ timeoutMs: 100 }));
    clock.advance(10);
    await flushed();
    expect(settled).toEqual(['short:timeout']);
    clock.advance(90);
    await flushed();
    expect(settled).toEqual(['short:timeout', 'mid:timeout']);
    r.card.ring(dev);
    await r.link.flush();
    await Promise.all([long, short, mid]);
    expect(settled).toEqual(['short:timeout', 'mid:timeout', 'long:woken']);
    // the sleeps armed for the long poll fire later and find nothing to time out
    clock.advance(1000);
    await flushed();
    expect(settled).toHaveLength(3);
    // timeoutMs 0 looks without waiting (no clock time needs to pass)
    expect(await h.poll({ timeoutMs: 0 })).toEqual({ in: false, out: false, err: false });
    r.card.ring(dev);
    await r.link.flush();
    await flushed();
    expect(await h.poll({ timeoutMs: 0 })).toMatchObject({ in: true });
  });

  it('config change: resolves on guest_ack, ETIMEDOUT after 10 s without, EIO when the card does not listen', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    await expect(h.configChange(new Uint8Array(12))).rejects.toMatchObject({ code: 'EIO' });
    await expect(h.configChange(new Uint8Array(3))).rejects.toMatchObject({ code: 'EINVAL' });
    r.card.listen();
    const acking = until(r.link, () => {
      if (r.card.ctrl(dev, 'configChange') !== MIC_VIRTIO_PARAM_CONFIG_CHANGED) return false;
      r.card.setCtrl(dev, 'guestAck', 1);
      return true;
    });
    const cfg = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
    await Promise.all([h.configChange(cfg), acking]);
    expect(r.card.configInterrupts).toBe(1);
    expect(r.card.ctrl(dev, 'configChange')).toBe(0);
    expect(r.card.ctrl(dev, 'guestAck')).toBe(0);
    const seen = new Uint8Array(12);
    r.card.dp.read(24 + 8 + 48 + 8, seen);
    expect([...seen]).toEqual([...cfg]);
    const start = r.clock.now();
    await expect(h.configChange(cfg)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(r.clock.now() - start).toBeGreaterThanOrEqual(10_000);
    expect(r.card.ctrl(dev, 'configChange')).toBe(0);
  });

  it('hot-unplug waits at most 15 s for the ack, frees everything, marks the slot -1; a new device takes the slot', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(blockBlock());
    await r.card.bringUp(24);
    r.card.listen();
    const ramBefore = r.link.hostDmaOps.liveBuffers;
    const start = r.clock.now();
    await h.close();
    expect(r.clock.now() - start).toBeGreaterThanOrEqual(15_000);
    expect(readS8(r.link.dp.va, 24)).toBe(-1);
    expect(r.link.hostDmaOps.liveBuffers).toBe(ramBefore - 1); // the vring block (no DMA channel: no bounce buffer)
    await expect(h.poll()).rejects.toMatchObject({ code: 'EBADF' });
    const again = r.control.open();
    await again.addDevice(blockBlock());
    expect(again.info().offset).toBe(24);
    expect(walkDevicePage(r.link.dp.va).entries.map((e) => e.type)).toEqual([2]);
  });

  it('answers a card-initiated reset: indices zeroed, status 0, host_ack 1, pollers woken', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const dev = await r.card.bringUp(24);
    const tx = r.card.buffer(64);
    dev.vqs[1]!.vq.add([{ addr: tx.addr, len: 4 }], [], 1);
    // Leave a chain half read across the reset.
    await h.copyDesc({ iov: [new Uint8Array(2)], vrIdx: 1, updateUsed: false });
    const polling = h.poll();
    await r.card.reset(dev);
    expect(await polling).toMatchObject({ in: true });
    const vr = h.device!.vrings[1]!;
    expect(vr.vringh.lastAvailIdx).toBe(0);
    expect(vr.head).toBe(0xffff);
    expect(vr.riov.count).toBe(0);
    expect(h.info().status).toBe(0);
    expect(r.card.ctrl(dev, 'vdevReset')).toBe(0);
  });
});

describe('vop-host: debug views', () => {
  it('renders dp and vdev_info as the kernel debugfs files do', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock(4));
    await r.card.bringUp(24);
    const dp = r.control.dpText().split('\n');
    expect(dp.slice(0, 7)).toEqual([
      `Bootparam: magic 0xc0ffee00`,
      'Bootparam: h2c_config_db -1',
      'Bootparam: node_id 1',
      'Bootparam: c2h_scif_db 255',
      'Bootparam: h2c_scif_db 255',
      'Bootparam: scif_host_dma_addr 0x0',
      'Bootparam: scif_card_dma_addr 0x0',
    ]);
    expect(dp[7]).toBe('Type 3 Num VQ 2 Feature Len 4');
    expect(dp[8]).toBe(
      `Config Len 12 Shutdown Status ${VIRTIO_CONFIG_S.ACKNOWLEDGE | VIRTIO_CONFIG_S.DRIVER | VIRTIO_CONFIG_S.DRIVER_OK}`,
    );
    expect(dp[9]).toMatch(/^vqconfig\[0\]: address 0x8000[0-9a-f]+ num 4 used address 0x[0-9a-f]+$/);
    expect(dp).toContain('Device control:');
    expect(dp).toContain(`c2h doorbell 0 h2c doorbell 0`);
    const info = (await r.control.vdevInfoText()).split('\n');
    expect(info[0]).toBe('VDEV type 3 state UP in 0 out 0 in_dma 0 out_dma 0');
    expect(info[1]).toBe('vring i 0 avail_idx 0 vring i 0 avail_idx 0');
    expect(info[2]).toBe('vrh i 0 weak_barriers 0 last_avail_idx 0 last_used_idx 0 completed 0');
    expect(info.filter((l) => l.startsWith('desc['))).toHaveLength(8);
    expect(info.filter((l) => l.startsWith('used ring['))).toHaveLength(8);
  });

  it('gives a read-only mapping: the page at 0, vrings from 0x1000; a writable mapping is refused', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    const m = h.view();
    expect(m.byteLength).toBe(4096 + 2 * 8192);
    expect(m.readU8(24)).toBe(3);
    expect(m.readU32(0x1000 + 5128 + 4)).toBe(0xc0ffee03);
    expect(m.readU32(0x1000 + 8192 + 5128 + 4)).toBe(0xc0ffee04);
    expect(() => m.writeU8(24, 1)).toThrow(/read-only/);
    expect(() => h.view({ write: true })).toThrow(/read-only/);
    expect(walkDevicePage(m).entries[0]!.type).toBe(3);
  });
});

describe('vop-host: hostile card values', () => {
  it('survives a used_address outside card memory: that device reports EIO, others work', async () => {
    const r = await rig();
    const bad = r.control.open();
    const good = r.control.open();
    await bad.addDevice(consoleBlock());
    await good.addDevice(consoleBlock());
    const b = r.card.attach(24);
    r.card.dp.writeU64(24 + 8 + 8, 1 << 30); // vqconfig[0].used_address far outside
    r.card.setCtrl(b, 'usedAddressUpdated', 1);
    r.card.setStatus(b, 7);
    await until(r.link, () => r.card.ctrl(b, 'usedAddressUpdated') === 0, 'LINKUP');
    await expect(
      bad.copyDesc({ iov: [new Uint8Array(4)], vrIdx: 0, updateUsed: true }),
    ).rejects.toMatchObject({
      code: 'EIO',
    });
    const g = await r.card.bringUp(120);
    const tx = r.card.buffer(64);
    tx.mem.write(0, text('fine'));
    g.vqs[1]!.vq.add([{ addr: tx.addr, len: 4 }], [], 1);
    const got = new Uint8Array(4);
    expect(await good.copyDesc({ iov: [got], vrIdx: 1, updateUsed: true })).toBe(4);
    expect(str(got)).toBe('fine');
  });

  it('removes a device whose header word the card overwrote, restoring its own sizes', async () => {
    const r = await rig();
    const h = r.control.open();
    await h.addDevice(consoleBlock());
    await r.control.open().addDevice(netBlock());
    r.card.dp.storeU32(24, 0x0000fe00); // type 0 (would end the list), sizes garbage
    await h.close();
    const walk = walkDevicePage(r.link.dp.va);
    expect(walk.entries.map((e) => [e.offset, e.type])).toEqual([
      [24, -1],
      [120, 1],
    ]);
  });
});

describe('vop-host: a card that marks live entries removed', () => {
  it('never gives a new device the slot of a device the host still has', async () => {
    const r = await rig();
    const first = r.control.open();
    await first.addDevice(consoleBlock());
    // The card's VOP driver went away and marked every entry removed (as the kernel's does).
    r.card.dp.writeU8(24, 0xff);
    const second = r.control.open();
    await second.addDevice(consoleBlock());
    expect(second.info().offset).toBe(120);
    expect(walkDevicePage(r.link.dp.va).entries.map((e) => [e.offset, e.type])).toEqual([
      [24, 3],
      [120, 3],
    ]);
  });
});

describe('vop-host: bounds and clocks', () => {
  it('uses the injected clock for every handshake bound', async () => {
    const clock = new VirtualClock();
    const link = new MockVopLink();
    const bus = new VopBus();
    const driver = new VopHostDriver({ clock, timeouts: { removeMs: 500 } });
    await bus.registerDriver(driver);
    await bus.registerDevice(link.hostParams());
    const h = driver.control(0)!.open();
    link.dp.va.writeU32(0, MIC_MAGIC);
    link.dp.va.writeU8(4, 3); // a card listening on doorbell 3 that never acks
    await h.addDevice(
      encodeDescBlock({
        type: 3,
        vqconfigs: [{ address: 0, usedAddress: 0, num: 8 }],
        hostFeatures: featureBitsToBytes(0n, 4),
        config: new Uint8Array(0),
      }),
    );
    const start = clock.now();
    await h.remove();
    expect(clock.now() - start).toBe(500);
  });
});
