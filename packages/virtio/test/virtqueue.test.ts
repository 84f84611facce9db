import { describe, expect, it } from '@jest/globals';
import { BufferMemory } from '@mic/memory';
import {
  DESC,
  MockDeviceRing,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F,
  VRING_USED_F_NO_NOTIFY,
  Virtqueue,
  Vringh,
  VringhIov,
  alignUp,
  vringLayout,
  type GetRange,
  type VirtqBuf,
} from '../src/index.js';

const SLOT = 256;

interface DriverRig {
  readonly num: number;
  readonly mem: BufferMemory;
  readonly vq: Virtqueue<string>;
  readonly dev: MockDeviceRing;
  readonly poolBase: number;
  readonly ring: ReturnType<typeof vringLayout>;
  /** A data buffer in slot `slot` (slots never overlap). */
  buf(slot: number, len?: number): VirtqBuf;
}

function driverRig(o: { num?: number; eventIdx?: boolean; maxEntries?: number } = {}): DriverRig {
  const num = o.num ?? 8;
  const ring = vringLayout(num, 4096);
  const poolBase = alignUp(ring.size, 4096);
  const maxEntries = o.maxEntries ?? 0;
  const dataBase = alignUp(poolBase + num * maxEntries * 16, 4096);
  const mem = BufferMemory.allocate(dataBase + 64 * SLOT);
  const parts = { num, mem, desc: ring.desc, avail: ring.avail, used: ring.used };
  const vq = new Virtqueue<string>({
    ...parts,
    eventIdx: o.eventIdx ?? false,
    ...(maxEntries > 0 ? { indirect: { base: poolBase, dmaAddr: poolBase, maxEntries } } : {}),
  });
  const dev = new MockDeviceRing(parts);
  return {
    num,
    mem,
    vq,
    dev,
    poolBase,
    ring,
    buf: (slot, len = 64) => ({ addr: dataBase + slot * SLOT, len }),
  };
}

/** The device takes the next chain and returns it at once with `len`. */
function serveOne(rig: DriverRig, len = 0): number {
  const c = rig.dev.nextAvail();
  if (!c) throw new Error('no chain available');
  rig.dev.pushUsed(c.head, len);
  return c.head;
}

describe('Virtqueue posts chains and collects them (driver side against MockDeviceRing)', () => {
  it('posts readable buffers before writable ones, and the device sees them in order', () => {
    const { vq, dev, buf } = driverRig();
    vq.add([buf(0, 32), buf(1, 16)], [buf(2, 64)], 'req');
    expect(dev.availIdx).toBe(1);
    expect(vq.numFree).toBe(5);
    expect(vq.inFlight).toBe(1);
    expect(dev.nextAvail()).toEqual({ head: 0, readable: [buf(0, 32), buf(1, 16)], writable: [buf(2, 64)] });
    expect(dev.nextAvail()).toBeNull();
  });

  it('returns the token with the length the device wrote, and frees the descriptors', () => {
    const { vq, dev, buf } = driverRig();
    vq.add([buf(0, 32)], [buf(1, 64)], 'req');
    const c = dev.nextAvail()!;
    expect(vq.moreUsed()).toBe(false);
    expect(vq.getBuf()).toBeNull();
    dev.pushUsed(c.head, 40);
    expect(vq.moreUsed()).toBe(true);
    expect(vq.getBuf()).toEqual({ token: 'req', len: 40 });
    expect(vq.numFree).toBe(8);
    expect(vq.inFlight).toBe(0);
    expect(vq.getBuf()).toBeNull();
    expect(vq.moreUsed()).toBe(false);
  });

  it('accepts chains with only readable or only writable buffers', () => {
    const { vq, dev, buf } = driverRig();
    vq.add([buf(0)], [], 'out-only');
    vq.add([], [buf(1), buf(2)], 'in-only');
    expect(dev.nextAvail()).toEqual({ head: 0, readable: [buf(0)], writable: [] });
    expect(dev.nextAvail()).toEqual({ head: 1, readable: [], writable: [buf(1), buf(2)] });
  });

  it('returns tokens in the order the device completes them and recycles the descriptors', () => {
    const { vq, dev, buf } = driverRig({ num: 8 });
    vq.add([buf(0)], [buf(1), buf(2)], 'A');
    vq.add([buf(3)], [buf(4)], 'B');
    vq.add([buf(5), buf(6)], [buf(7)], 'C');
    expect(vq.numFree).toBe(0);
    const a = dev.nextAvail()!;
    const b = dev.nextAvail()!;
    const c = dev.nextAvail()!;
    dev.pushUsed(c.head, 1);
    dev.pushUsed(b.head, 2);
    expect(vq.getBuf()).toEqual({ token: 'C', len: 1 });
    expect(vq.getBuf()).toEqual({ token: 'B', len: 2 });
    expect(vq.numFree).toBe(5);
    // The five freed descriptors (from two chains) make one chain again.
    vq.add([buf(10), buf(11)], [buf(12), buf(13), buf(14)], 'D');
    expect(() => vq.add([buf(15)], [], 'E')).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    const d = dev.nextAvail()!;
    expect(d.readable).toEqual([buf(10), buf(11)]);
    expect(d.writable).toEqual([buf(12), buf(13), buf(14)]);
    expect(new Set([a.head, d.head]).size).toBe(2);
    dev.pushUsed(a.head, 3);
    dev.pushUsed(d.head, 4);
    expect(vq.getBuf()).toEqual({ token: 'A', len: 3 });
    expect(vq.getBuf()).toEqual({ token: 'D', len: 4 });
    expect(vq.numFree).toBe(8);
    expect(vq.inFlight).toBe(0);
  });

  it('addMany posts every chain and publishes avail.idx for all of them', () => {
    const { vq, dev, buf } = driverRig();
    vq.addMany([
      { out: [buf(0)], in: [], token: 'a' },
      { out: [buf(1)], in: [buf(2)], token: 'b' },
    ]);
    expect(dev.availIdx).toBe(2);
    expect(dev.nextAvail()?.readable).toEqual([buf(0)]);
    expect(dev.nextAvail()?.writable).toEqual([buf(2)]);
  });

  it('addMany stops at the first chain that does not fit and still publishes the ones before it', () => {
    const { vq, dev, buf } = driverRig({ num: 4 });
    expect(() =>
      vq.addMany([
        { out: [buf(0)], in: [], token: 'a' },
        { out: [buf(1)], in: [buf(2)], token: 'b' },
        { out: [buf(3)], in: [buf(4)], token: 'c' },
      ]),
    ).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(dev.availIdx).toBe(2);
    expect(vq.inFlight).toBe(2);
    expect(vq.numFree).toBe(1);
  });
});

describe('Virtqueue notification suppression (virtio 1.2 §2.7.10)', () => {
  it('kickPrepare is false when nothing was added since the last call', () => {
    const { vq, buf } = driverRig();
    expect(vq.kickPrepare()).toBe(false);
    vq.add([buf(0)], [], 'a');
    expect(vq.kickPrepare()).toBe(true);
    expect(vq.kickPrepare()).toBe(false);
  });

  it('without EVENT_IDX, kickPrepare follows the NO_NOTIFY flag of the device', () => {
    const { vq, dev, buf } = driverRig();
    dev.setUsedFlags(VRING_USED_F_NO_NOTIFY);
    vq.add([buf(0)], [], 'a');
    expect(vq.kickPrepare()).toBe(false);
    dev.setUsedFlags(0);
    vq.add([buf(1)], [], 'b');
    expect(vq.kickPrepare()).toBe(true);
  });

  it.each([
    ['avail_event is the first new index', 0, 1, true],
    ['avail_event is the last of three new indices', 2, 3, true],
    ['avail_event is one past the new indices', 3, 3, false],
    ['avail_event is behind the indices of this batch', -1, 2, false],
    ['avail_event is far ahead', 100, 2, false],
  ])('with EVENT_IDX, kickPrepare when %s is %p', (_what, rel, adds, expected) => {
    const rig = driverRig({ eventIdx: true });
    const { vq, dev, buf } = rig;
    for (let k = 0; k < 3; k++) {
      vq.add([buf(k)], [], 'warm');
      serveOne(rig);
      vq.getBuf();
    }
    vq.kickPrepare();
    dev.setUsedFlags(VRING_USED_F_NO_NOTIFY); // ignored with EVENT_IDX
    dev.setAvailEvent(3 + rel);
    for (let k = 0; k < adds; k++) vq.add([buf(k)], [], 'x');
    expect(vq.kickPrepare()).toBe(expected);
  });

  it('with EVENT_IDX, kickPrepare is right across the 16-bit wrap of avail.idx', () => {
    const rig = driverRig({ num: 4, eventIdx: true });
    const { vq, dev, buf } = rig;
    for (let k = 0; k < 0xfffe; k++) {
      vq.add([buf(0)], [], 'x');
      vq.kickPrepare();
      serveOne(rig);
      vq.getBuf();
    }
    expect(dev.availIdx).toBe(0xfffe);
    dev.setAvailEvent(0xffff);
    vq.add([buf(0)], [], 'a');
    vq.add([buf(1)], [], 'b');
    vq.add([buf(2)], [], 'c');
    expect(dev.availIdx).toBe(1);
    expect(vq.kickPrepare()).toBe(true);
    dev.setAvailEvent(2);
    expect(vq.numFree).toBe(1);
    serveOne(rig);
    vq.getBuf();
    vq.add([buf(3)], [], 'd'); // index 1: before avail_event
    expect(vq.kickPrepare()).toBe(false);
    vq.add([buf(4)], [], 'e'); // index 2: reaches avail_event
    expect(vq.kickPrepare()).toBe(true);
  });

  it('with EVENT_IDX, kickPrepare still asks for a kick after more than 65535 adds without one', () => {
    // A polling device consumed 65535 chains without asking for kicks, then went to sleep
    // asking for a kick at the next index; the driver adds two more and must kick.
    const rig = driverRig({ num: 4, eventIdx: true });
    const { vq, dev, buf } = rig;
    for (let k = 0; k < 0xffff; k++) {
      vq.add([buf(0)], [], 'x');
      serveOne(rig);
      vq.getBuf();
    }
    dev.setAvailEvent(dev.availIdx);
    vq.add([buf(0)], [], 'a');
    vq.add([buf(1)], [], 'b');
    expect(vq.kickPrepare()).toBe(true);
  });

  it('without EVENT_IDX, disableCb sets NO_INTERRUPT and enableCb clears it', () => {
    const { vq, dev } = driverRig();
    expect(dev.availFlags).toBe(0);
    vq.disableCb();
    expect(dev.availFlags).toBe(VRING_AVAIL_F_NO_INTERRUPT);
    expect(vq.enableCb()).toBe(true);
    expect(dev.availFlags).toBe(0);
  });

  it.each([false, true])(
    'enableCb returns false when buffers came back meanwhile (EVENT_IDX %p)',
    (eventIdx) => {
      const rig = driverRig({ eventIdx });
      rig.vq.add([rig.buf(0)], [], 'a');
      rig.vq.disableCb();
      serveOne(rig);
      expect(rig.vq.enableCb()).toBe(false);
      expect(rig.vq.getBuf()?.token).toBe('a');
      expect(rig.vq.enableCb()).toBe(true);
    },
  );

  it('with EVENT_IDX, disableCb moves used_event half the index space back and leaves the flags', () => {
    const rig = driverRig({ eventIdx: true });
    const { vq, dev, buf } = rig;
    vq.add([buf(0)], [], 'a');
    serveOne(rig);
    vq.getBuf();
    vq.disableCb();
    expect(dev.availFlags).toBe(0);
    expect(dev.usedEvent).toBe((1 - 0x8000) & 0xffff);
  });

  it('with EVENT_IDX, enableCb sets used_event to the next used index and getBuf keeps it current', () => {
    const rig = driverRig({ eventIdx: true });
    const { vq, dev, buf } = rig;
    vq.add([buf(0)], [], 'a');
    vq.add([buf(1)], [], 'b');
    vq.add([buf(2)], [], 'c');
    serveOne(rig);
    serveOne(rig);
    serveOne(rig);
    vq.getBuf();
    expect(dev.usedEvent).toBe(1);
    vq.disableCb();
    vq.getBuf();
    expect(dev.usedEvent).toBe((1 - 0x8000) & 0xffff); // not moved while disabled
    expect(vq.enableCb()).toBe(false); // one is still waiting
    expect(dev.usedEvent).toBe(2);
    vq.getBuf();
    expect(dev.usedEvent).toBe(3);
    expect(vq.enableCb()).toBe(true);
  });

  it('with EVENT_IDX, enableCbDelayed asks for an interrupt after three quarters of the chains in flight', () => {
    const rig = driverRig({ eventIdx: true });
    const { vq, dev, buf } = rig;
    for (let k = 0; k < 8; k++) vq.add([buf(k)], [], `t${k}`);
    expect(vq.enableCbDelayed()).toBe(true);
    expect(dev.usedEvent).toBe(6);
    for (let k = 0; k < 6; k++) serveOne(rig);
    expect(vq.enableCbDelayed()).toBe(true); // 6 returned: not more than 6
    serveOne(rig);
    expect(vq.enableCbDelayed()).toBe(false); // 7 returned
    for (let k = 0; k < 4; k++) vq.getBuf();
    // 4 still in flight (3 of them returned): used_event = 4 + floor(4 · 3/4)
    expect(vq.enableCbDelayed()).toBe(true);
    expect(dev.usedEvent).toBe(7);
  });

  it('without EVENT_IDX, enableCbDelayed is enableCb', () => {
    const rig = driverRig();
    rig.vq.add([rig.buf(0)], [], 'a');
    rig.vq.disableCb();
    expect(rig.vq.enableCbDelayed()).toBe(true);
    expect(rig.dev.availFlags).toBe(0);
    serveOne(rig);
    expect(rig.vq.enableCbDelayed()).toBe(false);
  });
});

describe('Virtqueue indirect descriptors (virtio 1.2 §2.7.5.3)', () => {
  it('puts a chain of several buffers in an INDIRECT table behind one ring descriptor', () => {
    const { vq, dev, mem, buf, poolBase, ring } = driverRig({ maxEntries: 4 });
    vq.add([buf(0, 10), buf(1, 20)], [buf(2, 30)], 'ind');
    expect(vq.numFree).toBe(7);
    const d = ring.desc; // head 0
    expect(mem.readU16(d + DESC.FLAGS)).toBe(VRING_DESC_F.INDIRECT);
    expect(mem.readU32(d + DESC.LEN)).toBe(48);
    expect(mem.readU64(d + DESC.ADDR)).toBe(poolBase);
    // The table: readable, readable, writable; linked 0 → 1 → 2.
    expect([0, 1, 2].map((k) => mem.readU16(poolBase + 16 * k + DESC.FLAGS))).toEqual([
      VRING_DESC_F.NEXT,
      VRING_DESC_F.NEXT,
      VRING_DESC_F.WRITE,
    ]);
    expect([0, 1].map((k) => mem.readU16(poolBase + 16 * k + DESC.NEXT))).toEqual([1, 2]);
    expect(mem.readU64(poolBase + 32 + DESC.ADDR)).toBe(buf(2).addr);
    expect(dev.nextAvail()).toEqual({
      head: 0,
      readable: [buf(0, 10), buf(1, 20)],
      writable: [buf(2, 30)],
    });
    dev.pushUsed(0, 30);
    expect(vq.getBuf()).toEqual({ token: 'ind', len: 30 });
    expect(vq.numFree).toBe(8);
  });

  it('gives every head in flight its own table', () => {
    const { vq, dev, mem, buf, poolBase, ring } = driverRig({ maxEntries: 4 });
    vq.add([buf(0)], [buf(1)], 'a');
    vq.add([buf(2)], [buf(3)], 'b');
    expect(mem.readU64(ring.desc + 16 + DESC.ADDR)).toBe(poolBase + 4 * 16);
    expect(dev.nextAvail()).toEqual({ head: 0, readable: [buf(0)], writable: [buf(1)] });
    expect(dev.nextAvail()).toEqual({ head: 1, readable: [buf(2)], writable: [buf(3)] });
  });

  it('posts a single buffer, and a chain longer than the table, directly', () => {
    const { vq, dev, mem, buf, ring } = driverRig({ maxEntries: 4 });
    vq.add([buf(0)], [], 'one');
    expect(mem.readU16(ring.desc + DESC.FLAGS)).toBe(0);
    expect(vq.numFree).toBe(7);
    vq.add([buf(1), buf(2), buf(3)], [buf(4), buf(5)], 'five');
    expect(vq.numFree).toBe(2);
    dev.nextAvail();
    const c = dev.nextAvail()!;
    expect(c.readable).toEqual([buf(1), buf(2), buf(3)]);
    expect(c.writable).toEqual([buf(4), buf(5)]);
  });

  it('names each table by its DMA address, which differs from its offset in the pool memory', () => {
    // As on the card: the pool is a buffer from dmaOps.alloc(), a window of memory whose offset 0
    // the device reaches at DMA address 0x8000_0000; data buffers sit at DMA 0x4000_0000 + offset.
    const num = 8;
    const ring = vringLayout(num, 4096);
    const mem = BufferMemory.allocate(32768);
    const POOL_AT = 16384; // where the pool's window starts in the device's memory
    const POOL_DMA = 0x8000_0000;
    const DATA_DMA = 0x4000_0000;
    const maxEntries = 4;
    const pool = mem.window(POOL_AT, 64 + num * maxEntries * 16);
    const parts = { num, mem, desc: ring.desc, avail: ring.avail, used: ring.used };
    const vq = new Virtqueue<string>({
      ...parts,
      indirect: { mem: pool, base: 64, dmaAddr: POOL_DMA + 64, maxEntries },
    });
    const getRange: GetRange = (addr) =>
      addr >= POOL_DMA && addr < POOL_DMA + pool.byteLength
        ? { start: POOL_DMA, end: POOL_DMA + pool.byteLength, offset: POOL_AT - POOL_DMA }
        : addr >= DATA_DMA && addr < DATA_DMA + 8192
          ? { start: DATA_DMA, end: DATA_DMA + 8192, offset: 8192 - DATA_DMA }
          : null;
    const vrh = new Vringh({ ...parts, indirect: true, getRange });
    mem.write(8192 + 100, Uint8Array.of(1, 2, 3, 4, 5, 6));
    vq.add(
      [
        { addr: DATA_DMA + 100, len: 2 },
        { addr: DATA_DMA + 102, len: 4 },
      ],
      [{ addr: DATA_DMA + 512, len: 8 }],
      'dma',
    );
    const table = POOL_DMA + 64; // head 0's table
    expect(mem.readU64(ring.desc + DESC.ADDR)).toBe(table);
    expect(pool.readU64(64 + 2 * 16 + DESC.ADDR)).toBe(DATA_DMA + 512); // written at the pool offset
    const riov = new VringhIov();
    const wiov = new VringhIov();
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: 0 });
    expect(Array.from({ length: riov.count }, (_, k) => [riov.offsets[k], riov.lengths[k]])).toEqual([
      [8192 + 100, 2],
      [8192 + 102, 4],
    ]);
    expect([wiov.offsets[0], wiov.lengths[0]]).toEqual([8192 + 512, 8]);
    const req = new Uint8Array(6);
    vrh.pull(riov, req);
    expect([...req]).toEqual([1, 2, 3, 4, 5, 6]);
    vrh.complete(0, vrh.push(wiov, Uint8Array.of(9, 9, 9)));
    expect(vq.getBuf()).toEqual({ token: 'dma', len: 3 });
    // The second head's table follows at one table stride, by DMA address too.
    vq.add([{ addr: DATA_DMA, len: 1 }], [{ addr: DATA_DMA + 1, len: 1 }], 'next');
    expect(mem.readU64(ring.desc + DESC.ADDR)).toBe(table);
    expect(vrh.getDesc(riov, wiov).status).toBe('chain');
  });

  it('needs a pool DMA address that is a 16-byte aligned safe integer with room for the tables', () => {
    const mem = BufferMemory.allocate(8192);
    const parts = { mem, ...vringLayout(8, 16) };
    const bad = (dmaAddr: number) => () =>
      new Virtqueue({ ...parts, indirect: { base: 4096, dmaAddr, maxEntries: 4 } });
    for (const dmaAddr of [-16, 8, 1.5, Number.NaN, 2 ** 53 - 16]) {
      expect(bad(dmaAddr)).toThrow(
        expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('DMA address') }),
      );
    }
    expect(bad(2 ** 40)).not.toThrow();
  });

  it('needs a pool with 2 to num entries, 16-byte aligned, inside its memory', () => {
    const mem = BufferMemory.allocate(8192);
    const parts = { mem, ...vringLayout(8, 16) };
    const bad = (base: number, maxEntries: number) => () =>
      new Virtqueue({ ...parts, indirect: { base, dmaAddr: base, maxEntries } });
    expect(bad(4096, 1)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('1') }),
    );
    expect(bad(4096, 9)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(bad(4104, 4)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(bad(8192 - 8 * 4 * 16 + 16, 4)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(bad(8192 - 8 * 4 * 16, 4)).not.toThrow();
  });
});

describe('Virtqueue refuses what it cannot post', () => {
  it('throws ENOSPC when the chain does not fit, and posts nothing', () => {
    const { vq, dev, buf } = driverRig({ num: 4 });
    vq.add([buf(0)], [buf(1), buf(2)], 'a');
    expect(() => vq.add([buf(3)], [buf(4)], 'b')).toThrow(
      expect.objectContaining({ code: 'ENOSPC', details: { needed: 2, free: 1 } }),
    );
    expect(dev.availIdx).toBe(1);
    expect(vq.numFree).toBe(1);
    expect(vq.inFlight).toBe(1);
    vq.add([buf(3)], [], 'c');
    expect(vq.numFree).toBe(0);
    expect(() => vq.add([buf(4)], [], 'd')).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
  });

  it('throws ENOSPC for a chain longer than the queue, even when it is empty', () => {
    const { vq, buf } = driverRig({ num: 2 });
    expect(() => vq.add([buf(0), buf(1)], [buf(2)], 'big')).toThrow(
      expect.objectContaining({ code: 'ENOSPC' }),
    );
  });

  it.each<[string, VirtqBuf[], VirtqBuf[]]>([
    ['an empty chain', [], []],
    ['a zero-length buffer', [{ addr: 0x10000, len: 0 }], []],
    ['a buffer of 2^32 bytes', [], [{ addr: 0x10000, len: 2 ** 32 }]],
    ['a fractional length', [{ addr: 0x10000, len: 1.5 }], []],
    ['a negative address', [{ addr: -1, len: 8 }], []],
    ['a fractional address', [{ addr: 0.5, len: 8 }], []],
    ['an address of 2^53', [], [{ addr: 2 ** 53, len: 8 }]],
    ['a NaN address', [{ addr: NaN, len: 8 }], []],
    ['a bad buffer after a good one', [{ addr: 0x10000, len: 8 }], [{ addr: 0x10100, len: -8 }]],
  ])('throws EINVAL for %s and posts nothing', (_what, out, inBufs) => {
    const { vq, dev, num } = driverRig();
    expect(() => vq.add(out, inBufs, 'x')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(vq.numFree).toBe(num);
    expect(vq.inFlight).toBe(0);
    expect(dev.availIdx).toBe(0);
  });

  it('throws EINVAL for an undefined token', () => {
    const mem = BufferMemory.allocate(8192);
    const vq = new Virtqueue<string | undefined>({ mem, ...vringLayout(4, 16) });
    expect(() => vq.add([{ addr: 4096, len: 4 }], [], undefined)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('token') }),
    );
    expect(vq.numFree).toBe(4);
  });
});

describe('Virtqueue detachUnused and reset', () => {
  it('detachUnused returns every token in flight and frees every descriptor', () => {
    const rig = driverRig();
    const { vq, buf } = rig;
    vq.add([buf(0)], [buf(1)], 'a');
    vq.add([buf(2)], [], 'b');
    vq.add([buf(3), buf(4)], [buf(5)], 'c');
    serveOne(rig);
    vq.getBuf();
    expect(vq.detachUnused().sort()).toEqual(['b', 'c']);
    expect(vq.inFlight).toBe(0);
    expect(vq.numFree).toBe(8);
    expect(vq.detachUnused()).toEqual([]);
  });

  it('reset returns the tokens, zeroes the ring and starts again at index 0', () => {
    const rig = driverRig({ eventIdx: true });
    const { vq, mem, buf, ring, num } = rig;
    vq.add([buf(0)], [buf(1)], 'a');
    vq.add([buf(2)], [], 'b');
    serveOne(rig);
    expect(vq.reset().sort()).toEqual(['a', 'b']);
    expect(mem.bytes(ring.desc, ring.size).every((b) => b === 0)).toBe(true);
    expect(vq.numFree).toBe(num);
    expect(vq.inFlight).toBe(0);
    // A fresh device sees the ring from index 0 again.
    const dev = new MockDeviceRing({ num, mem, desc: ring.desc, avail: ring.avail, used: ring.used });
    vq.add([buf(3)], [], 'c');
    expect(dev.availIdx).toBe(1);
    expect(dev.nextAvail()).toEqual({ head: 0, readable: [buf(3)], writable: [] });
    dev.pushUsed(0, 0);
    expect(vq.getBuf()).toEqual({ token: 'c', len: 0 });
  });
});

type Misbehaviour = [string, string, (rig: DriverRig) => void];

describe('Virtqueue checks every used entry against its shadow', () => {
  const cases: Misbehaviour[] = [
    [
      'a used id equal to the queue size',
      'out of range',
      (rig) => {
        rig.vq.add([rig.buf(0)], [], 'a');
        rig.dev.nextAvail();
        rig.dev.pushUsed(rig.num, 0);
      },
    ],
    [
      'a used id of 0xffffffff',
      'out of range',
      (rig) => {
        rig.vq.add([rig.buf(0)], [], 'a');
        rig.dev.pushUsed(0xffffffff, 0);
      },
    ],
    [
      'a used id that was never posted',
      'not a head in flight',
      (rig) => {
        rig.vq.add([rig.buf(0)], [], 'a');
        rig.dev.pushUsed(5, 0);
      },
    ],
    [
      'a used id naming a descriptor inside a chain rather than its head',
      'not a head in flight',
      (rig) => {
        rig.vq.add([rig.buf(0)], [rig.buf(1), rig.buf(2)], 'a');
        rig.dev.pushUsed(1, 0);
      },
    ],
    [
      'the same id returned twice',
      'not a head in flight',
      (rig) => {
        rig.vq.add([rig.buf(0)], [], 'a');
        rig.vq.add([rig.buf(1)], [], 'b');
        rig.dev.pushUsed(0, 0);
        rig.dev.pushUsed(0, 0);
        expect(rig.vq.getBuf()).toEqual({ token: 'a', len: 0 });
      },
    ],
    [
      'used.idx jumping past the number of chains in flight',
      'in flight',
      (rig) => {
        rig.vq.add([rig.buf(0)], [], 'a');
        rig.vq.add([rig.buf(1)], [], 'b');
        rig.dev.setUsedIdx(3);
      },
    ],
    [
      'used.idx jumping by 0x8000',
      'in flight',
      (rig) => {
        rig.vq.add([rig.buf(0)], [], 'a');
        rig.dev.setUsedIdx(0x8000);
      },
    ],
    [
      'used.idx moving backwards',
      'in flight',
      (rig) => {
        rig.vq.add([rig.buf(0)], [], 'a');
        rig.vq.add([rig.buf(1)], [], 'b');
        serveOne(rig);
        expect(rig.vq.getBuf()?.token).toBe('a');
        rig.dev.setUsedIdx(0);
      },
    ],
  ];

  it.each(cases)('%s latches the queue broken (EIO)', (_what, message, misbehave) => {
    const rig = driverRig();
    misbehave(rig);
    const inFlight = rig.vq.inFlight;
    expect(rig.vq.getBuf()).toBeNull();
    const err = rig.vq.broken;
    expect(err).toEqual(expect.objectContaining({ code: 'EIO', message: expect.stringContaining(message) }));
    // Latched: nothing more is collected, nothing can be added.
    expect(rig.vq.moreUsed()).toBe(false);
    expect(rig.vq.getBuf()).toBeNull();
    expect(rig.vq.broken).toBe(err);
    expect(() => rig.vq.add([rig.buf(9)], [], 'late')).toThrow(
      expect.objectContaining({ code: 'EIO', cause: err }),
    );
    expect(rig.vq.inFlight).toBe(inFlight);
    // Until the owner resets the device and the queue.
    rig.vq.reset();
    expect(rig.vq.broken).toBeNull();
    rig.vq.add([rig.buf(9)], [], 'fresh');
    expect(rig.vq.inFlight).toBe(1);
  });

  it('loads used.idx once per run of returned entries and checks each load against the chains in flight', () => {
    const rig = driverRig();
    const { vq, dev, buf } = rig;
    for (let k = 0; k < 3; k++) vq.add([buf(k)], [], `t${k}`);
    for (let k = 0; k < 2; k++) dev.pushUsed(dev.nextAvail()!.head, 0);
    expect(vq.getBuf()?.token).toBe('t0'); // loads used.idx = 2
    dev.setUsedIdx(9); // a jump past the one chain still in flight after the next
    expect(vq.getBuf()?.token).toBe('t1'); // seen at the load, collected without another
    expect(vq.broken).toBeNull();
    expect(vq.moreUsed()).toBe(true); // the live index
    expect(vq.getBuf()).toBeNull(); // the next load sees 9: 7 ahead, 1 in flight
    expect(vq.broken).toEqual(
      expect.objectContaining({ code: 'EIO', message: expect.stringContaining('in flight') }),
    );
  });

  it('clamps a used length above the writable capacity of the chain and counts it', () => {
    const rig = driverRig();
    const { vq, dev, buf } = rig;
    vq.add([buf(0, 16)], [buf(1, 32), buf(2, 8)], 'rw');
    vq.add([buf(3, 16)], [], 'ro');
    vq.add([buf(4, 16)], [buf(5, 40)], 'exact');
    dev.nextAvail();
    dev.nextAvail();
    dev.nextAvail();
    dev.pushUsed(0, 1000);
    dev.pushUsed(3, 5);
    dev.pushUsed(4, 40);
    expect(vq.getBuf()).toEqual({ token: 'rw', len: 40 });
    expect(vq.clampedLengths).toBe(1);
    expect(vq.getBuf()).toEqual({ token: 'ro', len: 0 });
    expect(vq.clampedLengths).toBe(2);
    expect(vq.getBuf()).toEqual({ token: 'exact', len: 40 });
    expect(vq.clampedLengths).toBe(2);
    expect(vq.broken).toBeNull();
  });
});
