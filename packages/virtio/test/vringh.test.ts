import { describe, expect, it } from '@jest/globals';
import { BufferMemory } from '@mic/memory';
import {
  MockDriverRing,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F,
  VRING_USED_F_NO_NOTIFY,
  Virtqueue,
  Vringh,
  VringhIov,
  vringLayout,
  type GetRange,
} from '../src/index.js';

const { NEXT, WRITE, INDIRECT } = VRING_DESC_F;
const DATA_BASE = 8192;

interface RigOptions {
  num?: number;
  eventIdx?: boolean;
  indirect?: boolean;
  getRange?: GetRange;
  maxChainLength?: number;
  memSize?: number;
}

function deviceRig(o: RigOptions = {}) {
  const num = o.num ?? 8;
  const ring = vringLayout(num, 4096);
  const mem = BufferMemory.allocate(o.memSize ?? 16384);
  const parts = { num, mem, desc: ring.desc, avail: ring.avail, used: ring.used };
  const drv = new MockDriverRing({ ...parts, dataBase: DATA_BASE });
  const vrh = new Vringh({
    ...parts,
    eventIdx: o.eventIdx ?? false,
    indirect: o.indirect ?? false,
    ...(o.getRange ? { getRange: o.getRange } : {}),
    ...(o.maxChainLength ? { maxChainLength: o.maxChainLength } : {}),
  });
  return { num, mem, ring, drv, vrh, riov: new VringhIov(), wiov: new VringhIov() };
}

const pattern = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (seed + i * 7) & 0xff);

const segments = (iov: VringhIov): [number, number][] =>
  Array.from({ length: iov.count }, (_, k) => [iov.offsets[k]!, iov.lengths[k]!]);

function pullAll(vrh: Vringh, riov: VringhIov): Uint8Array {
  const out = new Uint8Array(riov.remaining);
  expect(vrh.pull(riov, out)).toBe(out.length);
  return out;
}

describe('Vringh fetches chains (device side against MockDriverRing)', () => {
  it('reports empty while the driver has published nothing', () => {
    const { vrh, riov, wiov } = deviceRig();
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'empty' });
    expect(vrh.pending()).toBe(0);
  });

  it('turns readable then writable buffers into riov and wiov segments', () => {
    const { drv, vrh, riov, wiov } = deviceRig();
    const c = drv.addChain([pattern(10, 1), pattern(20, 2)], [30, 40]);
    expect(vrh.pending()).toBe(1);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: c.head });
    expect(segments(riov)).toEqual(c.readable.map((b) => [b.addr, b.len]));
    expect(segments(wiov)).toEqual(c.writable.map((b) => [b.addr, b.len]));
    expect(riov.total).toBe(30);
    expect(wiov.total).toBe(70);
    expect(vrh.state().lastAvailIdx).toBe(1);
    expect(vrh.pending()).toBe(0);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'empty' });
  });

  it('serves heads in the order of the avail ring, whatever their numbers', () => {
    const { drv, vrh, riov, wiov } = deviceRig();
    const a = drv.addChain([pattern(4, 1)], [], false);
    const b = drv.addChain([pattern(4, 2)], [8], false);
    const c = drv.addChain([], [8, 8], false);
    for (const h of [c.head, a.head, b.head]) drv.pushAvail(h);
    expect(vrh.pending()).toBe(3);
    const heads: number[] = [];
    for (let r = vrh.getDesc(riov, wiov); r.status === 'chain'; r = vrh.getDesc(riov, wiov))
      heads.push(r.head);
    expect(heads).toEqual([c.head, a.head, b.head]);
  });

  it('skips zero-length descriptors without adding a segment', () => {
    const { drv, vrh, riov, wiov } = deviceRig();
    const a = drv.alloc(8);
    const w = drv.alloc(8);
    drv.writeDesc(0, { addr: a, len: 8, flags: NEXT, next: 1 });
    drv.writeDesc(1, { addr: a, len: 0, flags: NEXT, next: 2 });
    drv.writeDesc(2, { addr: w, len: 0, flags: WRITE | NEXT, next: 3 });
    drv.writeDesc(3, { addr: w, len: 8, flags: WRITE, next: 0 });
    drv.pushAvail(0);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: 0 });
    expect(segments(riov)).toEqual([[a, 8]]);
    expect(segments(wiov)).toEqual([[w, 8]]);
  });

  it('follows an INDIRECT descriptor when negotiated, ignoring its own WRITE flag', () => {
    const { drv, mem, vrh, riov, wiov } = deviceRig({ indirect: true });
    const table = drv.alloc(48);
    const r = drv.alloc(16);
    const w1 = drv.alloc(8);
    const w2 = drv.alloc(8);
    mem.write(r, pattern(16, 9));
    drv.writeIndirectDesc(table, 0, { addr: r, len: 16, flags: NEXT, next: 1 });
    drv.writeIndirectDesc(table, 1, { addr: w1, len: 8, flags: WRITE | NEXT, next: 2 });
    drv.writeIndirectDesc(table, 2, { addr: w2, len: 8, flags: WRITE, next: 0 });
    drv.writeDesc(5, { addr: table, len: 48, flags: INDIRECT | WRITE, next: 0 });
    drv.pushAvail(5);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: 5 });
    expect(segments(riov)).toEqual([[r, 16]]);
    expect(segments(wiov)).toEqual([
      [w1, 8],
      [w2, 8],
    ]);
    expect(pullAll(vrh, riov)).toEqual(pattern(16, 9));
  });

  it('accepts direct descriptors followed by one INDIRECT descriptor', () => {
    const { drv, vrh, riov, wiov } = deviceRig({ indirect: true });
    const table = drv.alloc(32);
    const r0 = drv.alloc(4);
    const r1 = drv.alloc(4);
    const w = drv.alloc(4);
    drv.writeDesc(0, { addr: r0, len: 4, flags: NEXT, next: 1 });
    drv.writeDesc(1, { addr: table, len: 32, flags: INDIRECT, next: 0 });
    drv.writeIndirectDesc(table, 0, { addr: r1, len: 4, flags: NEXT, next: 1 });
    drv.writeIndirectDesc(table, 1, { addr: w, len: 4, flags: WRITE, next: 0 });
    drv.pushAvail(0);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: 0 });
    expect(segments(riov)).toEqual([
      [r0, 4],
      [r1, 4],
    ]);
    expect(segments(wiov)).toEqual([[w, 4]]);
  });

  it('accepts an indirect table of exactly num descriptors (the INDIRECT descriptor itself is not counted)', () => {
    const { num, drv, vrh, riov, wiov } = deviceRig({ indirect: true });
    const table = drv.alloc(16 * num);
    const buf = drv.alloc(num);
    for (let k = 0; k < num; k++) {
      const last = k === num - 1;
      drv.writeIndirectDesc(table, k, {
        addr: buf + k,
        len: 1,
        flags: last ? 0 : NEXT,
        next: last ? 0 : k + 1,
      });
    }
    drv.writeDesc(0, { addr: table, len: 16 * num, flags: INDIRECT, next: 0 });
    drv.pushAvail(0);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: 0 });
    expect(riov.count).toBe(num);
  });

  it('serves the largest chain a Virtqueue puts in an indirect table (maxEntries = num)', () => {
    const num = 4;
    const mem = BufferMemory.allocate(16384);
    const ring = vringLayout(num, 4096);
    const parts = { num, mem, desc: ring.desc, avail: ring.avail, used: ring.used };
    const vq = new Virtqueue<string>({ ...parts, indirect: { base: 8192, dmaAddr: 8192, maxEntries: num } });
    const vrh = new Vringh({ ...parts, indirect: true });
    mem.write(12288, pattern(12, 3));
    vq.add(
      [
        { addr: 12288, len: 4 },
        { addr: 12292, len: 4 },
        { addr: 12296, len: 4 },
      ],
      [{ addr: 12800, len: 8 }],
      'big',
    );
    const riov = new VringhIov();
    const wiov = new VringhIov();
    const r = vrh.getDesc(riov, wiov);
    expect(r).toEqual({ status: 'chain', head: 0 });
    expect(pullAll(vrh, riov)).toEqual(pattern(12, 3));
    vrh.complete(0, vrh.push(wiov, pattern(8, 5)));
    expect(vq.getBuf()).toEqual({ token: 'big', len: 8 });
    expect(mem.bytes(12800, 8)).toEqual(pattern(8, 5));
  });

  it('reads buffers from a data memory separate from the ring memory', () => {
    const num = 4;
    const ringMem = BufferMemory.allocate(4096);
    const data = BufferMemory.allocate(256);
    const ring = vringLayout(num, 16);
    const parts = { num, mem: ringMem, desc: ring.desc, avail: ring.avail, used: ring.used };
    const drv = new MockDriverRing({ ...parts, dataMem: data, dataBase: 0 });
    const vrh = new Vringh({ ...parts, dataMem: data });
    expect(vrh.dataMem).toBe(data);
    drv.addChain([pattern(16, 4)], [16]);
    const riov = new VringhIov();
    const wiov = new VringhIov();
    expect(vrh.getDesc(riov, wiov).status).toBe('chain');
    expect(pullAll(vrh, riov)).toEqual(pattern(16, 4));
    // An address valid in the ring memory but not in the 256-byte data memory is refused.
    drv.writeDesc(3, { addr: 1024, len: 4, flags: 0, next: 0 });
    drv.pushAvail(3);
    expect(vrh.getDesc(riov, wiov)).toEqual(
      expect.objectContaining({ status: 'bad-chain', error: expect.objectContaining({ code: 'EFAULT' }) }),
    );
  });
});

describe('Vringh reads avail.idx once per run of published heads', () => {
  it('fetches the heads it saw without loading the index again, and checks the next load', () => {
    const { num, drv, vrh, riov, wiov } = deviceRig();
    const heads = [0, 1, 2].map((k) => drv.addChain([pattern(4, k)], []).head);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: heads[0] }); // loads idx 3
    drv.setAvailIdx(drv.availIdx + num + 1); // the driver jumps the index meanwhile
    expect(vrh.pending()).toBe(num + 3); // the live index
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: heads[1] });
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: heads[2] });
    const r = vrh.getDesc(riov, wiov); // all seen heads fetched: the load finds the jump
    expect(r.status).toBe('broken');
    expect(vrh.broken?.message).toContain(`${num + 1} entries, more than the queue size`);
  });

  it.each(['abandon', 'restore'])('loads and checks the index again after %s', (how) => {
    const { num, drv, vrh, riov, wiov } = deviceRig();
    const a = drv.addChain([pattern(4, 1)], []);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: a.head });
    if (how === 'abandon') vrh.abandon(1);
    else vrh.restore({ ...vrh.state(), lastAvailIdx: 0 });
    drv.setAvailIdx(num + 1); // a bad index, published after the head was given back
    expect(vrh.getDesc(riov, wiov).status).toBe('broken');
  });

  it('returns the same frozen result for every good chain from a head', () => {
    const { drv, vrh, riov, wiov } = deviceRig({ num: 2 });
    const first = drv.addChain([pattern(4, 1)], []);
    const r1 = vrh.getDesc(riov, wiov);
    vrh.complete(first.head, 0);
    drv.addChain([pattern(4, 2)], []);
    drv.addChain([pattern(4, 3)], []);
    vrh.getDesc(riov, wiov);
    const r3 = vrh.getDesc(riov, wiov);
    expect(r3).toEqual({ status: 'chain', head: first.head });
    expect(r3).toBe(r1);
    expect(Object.isFrozen(r1)).toBe(true);
  });
});

describe('Vringh pull, push and skip move their cursor across segments', () => {
  it('pull copies the readable bytes in order, in pieces of any size', () => {
    const { drv, vrh, riov, wiov } = deviceRig();
    const parts = [pattern(5, 1), pattern(3, 50), pattern(9, 100)];
    drv.addChain(parts, []);
    vrh.getDesc(riov, wiov);
    const got: number[] = [];
    const piece = new Uint8Array(4);
    const sizes: number[] = [];
    for (let n = vrh.pull(riov, piece); n > 0; n = vrh.pull(riov, piece)) {
      sizes.push(n);
      got.push(...piece.subarray(0, n));
    }
    expect(sizes).toEqual([4, 4, 4, 4, 1]);
    expect(got).toEqual([...parts[0]!, ...parts[1]!, ...parts[2]!]);
    expect(riov.done).toBe(17);
    expect(riov.remaining).toBe(0);
    expect(riov.i).toBe(3);
    expect(vrh.pull(riov, piece)).toBe(0);
  });

  it('pull keeps its position inside a segment between calls', () => {
    const { drv, vrh, riov, wiov } = deviceRig();
    drv.addChain([pattern(10, 7)], []);
    vrh.getDesc(riov, wiov);
    const a = new Uint8Array(3);
    vrh.pull(riov, a);
    expect(riov.i).toBe(0);
    expect(riov.consumed).toBe(3);
    const b = new Uint8Array(7);
    expect(vrh.pull(riov, b)).toBe(7);
    expect([...a, ...b]).toEqual([...pattern(10, 7)]);
  });

  it('push fills the writable buffers in order and stops when they are full', () => {
    const { drv, mem, vrh, riov, wiov } = deviceRig();
    const c = drv.addChain([], [4, 6]);
    const [w0, w1] = c.writable;
    mem.fill(DATA_BASE, 64, 0xee);
    vrh.getDesc(riov, wiov);
    const src = pattern(12, 33);
    expect(vrh.push(wiov, src.subarray(0, 3))).toBe(3);
    expect(vrh.push(wiov, src.subarray(3, 12))).toBe(7);
    expect(vrh.push(wiov, src.subarray(0, 1))).toBe(0);
    expect(wiov.done).toBe(10);
    expect(mem.bytes(w0!.addr, 4)).toEqual(src.subarray(0, 4));
    expect(mem.bytes(w1!.addr, 6)).toEqual(src.subarray(4, 10));
    // The padding between the two buffers is untouched.
    expect(mem.readU8(w0!.addr + 4)).toBe(0xee);
    expect(mem.readU8(w1!.addr + 6)).toBe(0xee);
  });

  it('skip moves the cursor without copying', () => {
    const { drv, vrh, riov, wiov } = deviceRig();
    drv.addChain([pattern(4, 1), pattern(4, 2)], []);
    vrh.getDesc(riov, wiov);
    expect(vrh.skip(riov, 6)).toBe(6);
    const rest = new Uint8Array(4);
    expect(vrh.pull(riov, rest)).toBe(2);
    expect([...rest.subarray(0, 2)]).toEqual([...pattern(4, 2).subarray(2)]);
    expect(vrh.skip(riov, 1)).toBe(0);
  });

  it('getDesc starts both vectors afresh', () => {
    const { drv, vrh, riov, wiov } = deviceRig();
    drv.addChain([pattern(8, 1)], [8]);
    drv.addChain([pattern(4, 2)], [4]);
    vrh.getDesc(riov, wiov);
    vrh.skip(riov, 5);
    vrh.push(wiov, pattern(3, 0));
    vrh.getDesc(riov, wiov);
    expect([riov.count, riov.i, riov.consumed, riov.done, riov.total]).toEqual([1, 0, 0, 0, 4]);
    expect([wiov.count, wiov.i, wiov.consumed, wiov.done, wiov.total]).toEqual([1, 0, 0, 0, 4]);
    expect(pullAll(vrh, riov)).toEqual(pattern(4, 2));
  });
});

describe('Vringh completion', () => {
  it('complete publishes { head, len } and moves used.idx', () => {
    const { drv, vrh, riov, wiov } = deviceRig();
    const c = drv.addChain([pattern(4, 1)], [32]);
    vrh.getDesc(riov, wiov);
    vrh.complete(c.head, 17);
    expect(drv.usedIdx).toBe(1);
    expect(drv.readUsed(0)).toEqual({ id: c.head, len: 17 });
    expect(vrh.state().completed).toBe(1);
  });

  it('completeMany publishes several entries at once, after earlier single completions', () => {
    const { drv, vrh } = deviceRig();
    vrh.complete(7, 1);
    vrh.completeMany([1, 2, 3], [10, 20, 30]);
    expect(drv.usedIdx).toBe(4);
    expect([0, 1, 2, 3].map((s) => drv.readUsed(s))).toEqual([
      { id: 7, len: 1 },
      { id: 1, len: 10 },
      { id: 2, len: 20 },
      { id: 3, len: 30 },
    ]);
    expect(vrh.state().completed).toBe(4);
  });

  it('refuses its own bad arguments with EINVAL', () => {
    const { vrh, num } = deviceRig();
    expect(() => vrh.completeMany([1, 2], [1])).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => vrh.complete(num, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => vrh.complete(0, 2 ** 32)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => vrh.complete(0, -1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('wraps used entries around the ring', () => {
    const { drv, vrh, num } = deviceRig({ num: 4 });
    for (let k = 0; k < 2 * num + 1; k++) {
      vrh.complete(k % num, k);
      vrh.needNotify();
    }
    expect(drv.usedIdx).toBe(2 * num + 1);
    expect(drv.readUsed(0)).toEqual({ id: 0, len: 2 * num });
    expect(drv.readUsed(3)).toEqual({ id: 3, len: num + 3 });
  });
});

describe('Vringh needNotify (virtio 1.2 §2.7.7)', () => {
  it('without EVENT_IDX follows the NO_INTERRUPT flag of the driver', () => {
    const { drv, vrh } = deviceRig();
    vrh.complete(0, 0);
    expect(vrh.needNotify()).toBe(true);
    drv.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
    vrh.complete(1, 0);
    expect(vrh.needNotify()).toBe(false);
  });

  it.each([false, true])(
    'is false when nothing was completed since the last call (EVENT_IDX %p)',
    (eventIdx) => {
      const { drv, vrh } = deviceRig({ eventIdx });
      drv.setUsedEvent(0);
      expect(vrh.needNotify()).toBe(false);
      vrh.complete(0, 0);
      expect(vrh.needNotify()).toBe(true);
      expect(vrh.needNotify()).toBe(false);
    },
  );

  it.each([
    ['used_event is the first new entry', 0, 1, true],
    ['used_event is the last of three new entries', 2, 3, true],
    ['used_event is one past the new entries', 3, 3, false],
    ['used_event is behind the entries of this batch', -1, 2, false],
  ])('with EVENT_IDX, when %s: %p', (_what, rel, n, expected) => {
    const { drv, vrh } = deviceRig({ eventIdx: true });
    for (let k = 0; k < 5; k++) vrh.complete(k, 0);
    vrh.needNotify();
    drv.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT); // ignored with EVENT_IDX
    drv.setUsedEvent(5 + rel);
    for (let k = 0; k < n; k++) vrh.complete(k, 0);
    expect(vrh.needNotify()).toBe(expected);
    expect(vrh.state().lastUsedIdx).toBe(5 + n);
    expect(vrh.state().completed).toBe(0);
  });

  it('with EVENT_IDX is right across the 16-bit wrap of used.idx', () => {
    const { drv, vrh, riov, wiov } = deviceRig({ num: 4, eventIdx: true });
    drv.writeDesc(0, { addr: DATA_BASE, len: 4, flags: 0, next: 0 });
    for (let k = 0; k < 0xfffe; k++) {
      drv.pushAvail(0);
      vrh.getDesc(riov, wiov);
      vrh.complete(0, 0);
      vrh.needNotify();
    }
    expect(drv.usedIdx).toBe(0xfffe);
    drv.setUsedEvent(0xffff);
    vrh.complete(0, 0);
    vrh.complete(0, 0);
    expect(drv.usedIdx).toBe(0);
    expect(vrh.needNotify()).toBe(true);
    drv.setUsedEvent(1);
    vrh.complete(0, 0); // 0 → 1: entry 0 is not the event entry
    expect(vrh.needNotify()).toBe(false);
    vrh.complete(0, 0); // 1 → 2
    expect(vrh.needNotify()).toBe(true);
  });
});

describe('Vringh notifyEnable and notifyDisable', () => {
  it('without EVENT_IDX, notifyDisable sets NO_NOTIFY and notifyEnable clears it', () => {
    const { drv, vrh } = deviceRig();
    vrh.notifyDisable();
    expect(drv.usedFlags).toBe(VRING_USED_F_NO_NOTIFY);
    expect(vrh.notifyEnable()).toBe(true);
    expect(drv.usedFlags).toBe(0);
  });

  it('with EVENT_IDX, notifyEnable sets avail_event to the next index and the flags stay clear', () => {
    const { drv, vrh, riov, wiov } = deviceRig({ eventIdx: true });
    drv.addChain([pattern(4, 0)], []);
    drv.addChain([pattern(4, 0)], []);
    vrh.getDesc(riov, wiov);
    vrh.getDesc(riov, wiov);
    vrh.notifyDisable();
    expect(drv.usedFlags).toBe(0);
    expect(vrh.notifyEnable()).toBe(true);
    expect(drv.availEvent).toBe(2);
    expect(drv.usedFlags).toBe(0);
  });

  it.each([false, true])('notifyEnable returns false when heads are waiting (EVENT_IDX %p)', (eventIdx) => {
    const { drv, vrh, riov, wiov } = deviceRig({ eventIdx });
    drv.addChain([pattern(4, 0)], []);
    expect(vrh.notifyEnable()).toBe(false);
    vrh.getDesc(riov, wiov);
    expect(vrh.notifyEnable()).toBe(true);
  });

  it('notify calls the callback given at construction', () => {
    const mem = BufferMemory.allocate(4096);
    let calls = 0;
    const vrh = new Vringh({ mem, ...vringLayout(4, 16), notify: () => calls++ });
    vrh.notify();
    expect(calls).toBe(1);
    expect(() => new Vringh({ mem, ...vringLayout(4, 16) }).notify()).not.toThrow();
  });
});

describe('Vringh abandon', () => {
  it('gives fetched heads back so getDesc returns them again', () => {
    const { drv, vrh, riov, wiov } = deviceRig();
    const a = drv.addChain([pattern(4, 1)], []);
    const b = drv.addChain([pattern(4, 2)], []);
    drv.addChain([pattern(4, 3)], []);
    vrh.getDesc(riov, wiov);
    vrh.getDesc(riov, wiov);
    vrh.abandon(2);
    expect(vrh.pending()).toBe(3);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: a.head });
    expect(pullAll(vrh, riov)).toEqual(pattern(4, 1));
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: b.head });
  });

  it.each([-1, 1.5, 9])('refuses to abandon %p heads of a queue of 8', (n) => {
    const { vrh } = deviceRig();
    expect(() => vrh.abandon(n)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(vrh.state().lastAvailIdx).toBe(0);
  });
});

describe('Vringh getRange', () => {
  // Guest addresses [0x1000, 0x1100) live at 8192, [0x1100, 0x1200) at 12288: adjacent for the
  // guest, apart in the device's memory.
  const split: GetRange = (addr) =>
    addr >= 0x1000 && addr < 0x1100
      ? { start: 0x1000, end: 0x1100, offset: 8192 - 0x1000 }
      : addr >= 0x1100 && addr < 0x1200
        ? { start: 0x1100, end: 0x1200, offset: 12288 - 0x1100 }
        : null;

  it('splits a buffer that spans two ranges at the boundary and translates both parts', () => {
    const { drv, mem, vrh, riov, wiov } = deviceRig({ getRange: split });
    mem.write(8192 + 0xc0, pattern(0x40, 1));
    mem.write(12288, pattern(0x40, 2));
    drv.writeDesc(0, { addr: 0x10c0, len: 0x80, flags: 0, next: 0 });
    drv.pushAvail(0);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: 0 });
    expect(segments(riov)).toEqual([
      [8192 + 0xc0, 0x40],
      [12288, 0x40],
    ]);
    expect(pullAll(vrh, riov)).toEqual(Uint8Array.from([...pattern(0x40, 1), ...pattern(0x40, 2)]));
  });

  it('translates writable buffers, so push lands in the mapped memory', () => {
    const { drv, mem, vrh, riov, wiov } = deviceRig({ getRange: split });
    drv.writeDesc(0, { addr: 0x10fc, len: 8, flags: WRITE, next: 0 });
    drv.pushAvail(0);
    vrh.getDesc(riov, wiov);
    expect(vrh.push(wiov, pattern(8, 9))).toBe(8);
    expect(mem.bytes(8192 + 0xfc, 4)).toEqual(pattern(8, 9).subarray(0, 4));
    expect(mem.bytes(12288, 4)).toEqual(pattern(8, 9).subarray(4));
  });

  it('translates the address of an indirect table', () => {
    const { drv, mem, vrh, riov, wiov } = deviceRig({ getRange: split, indirect: true });
    // Table at guest 0x1010 (memory 8208), pointing at guest 0x1180 (memory 12288 + 0x80).
    drv.writeDesc(0, { addr: 0x1010, len: 16, flags: INDIRECT, next: 0 });
    drv.writeIndirectDesc(8208, 0, { addr: 0x1180, len: 4, flags: 0, next: 0 });
    mem.write(12288 + 0x80, pattern(4, 6));
    drv.pushAvail(0);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: 0 });
    expect(pullAll(vrh, riov)).toEqual(pattern(4, 6));
  });

  it('makes a chain naming an address outside every range bad (EFAULT)', () => {
    const { drv, vrh, riov, wiov } = deviceRig({ getRange: split });
    drv.writeDesc(0, { addr: 0x1200, len: 4, flags: 0, next: 0 });
    drv.pushAvail(0);
    const r = vrh.getDesc(riov, wiov);
    expect(r).toEqual(
      expect.objectContaining({ status: 'bad-chain', error: expect.objectContaining({ code: 'EFAULT' }) }),
    );
  });

  it('refuses a range that would map past the end of the data memory', () => {
    const { drv, vrh, riov, wiov } = deviceRig({ getRange: () => ({ start: 0, end: 1 << 20, offset: 0 }) });
    drv.addChain([pattern(4, 0)], []);
    expect(vrh.getDesc(riov, wiov)).toEqual(
      expect.objectContaining({ status: 'bad-chain', error: expect.objectContaining({ code: 'EFAULT' }) }),
    );
  });

  it('refuses a range that does not contain the address it was asked for', () => {
    const { drv, vrh, riov, wiov } = deviceRig({ getRange: () => ({ start: 0, end: 16, offset: 0 }) });
    drv.addChain([pattern(4, 0)], []);
    expect(vrh.getDesc(riov, wiov).status).toBe('bad-chain');
  });
});

describe('Vringh reset', () => {
  it('clears the broken latch and the indices', () => {
    const { num, drv, vrh, riov, wiov } = deviceRig();
    drv.setAvailIdx(num + 1);
    const r = vrh.getDesc(riov, wiov);
    expect(r.status).toBe('broken');
    vrh.complete(0, 0);
    vrh.reset();
    expect(vrh.broken).toBeNull();
    expect(vrh.state()).toEqual({
      lastAvailIdx: 0,
      lastUsedIdx: 0,
      completed: 0,
      eventIdx: false,
      badChains: 0,
      broken: null,
    });
    // The driver sets the ring up again.
    drv.setAvailIdx(0);
    const c = drv.addChain([pattern(4, 1)], []);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: c.head });
    expect(pullAll(vrh, riov)).toEqual(pattern(4, 1));
  });
});

describe('Vringh state and restore', () => {
  it('state() is a copy of the progress, and the indices cannot be written from outside', () => {
    const { drv, vrh, riov, wiov } = deviceRig({ eventIdx: true });
    const a = drv.addChain([pattern(4, 1)], []);
    drv.addChain([pattern(4, 2)], []);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: a.head });
    vrh.complete(a.head, 0);
    const s = vrh.state();
    expect(s).toEqual({
      lastAvailIdx: 1,
      lastUsedIdx: 0,
      completed: 1,
      eventIdx: true,
      badChains: 0,
      broken: null,
    });
    (s as { lastAvailIdx: number }).lastAvailIdx = 7;
    Object.assign(vrh, { lastUsedIdx: 5, completed: 5 });
    // `lastAvailIdx` is a getter only: an assignment throws and changes nothing
    expect(() => Object.assign(vrh, { lastAvailIdx: 5 })).toThrow(TypeError);
    expect(vrh.lastAvailIdx).toBe(1);
    expect(vrh.state()).toEqual({ ...s, lastAvailIdx: 1 });
    expect(vrh.pending()).toBe(1);
  });

  it('round trip: a new Vringh over a relocated used ring goes on where the old one stopped', () => {
    const num = 8;
    const ring = vringLayout(num, 4096);
    const mem = BufferMemory.allocate(16384);
    const card = BufferMemory.allocate(4096); // the used ring's new home, as VOP relocates it
    const parts = { num, mem, desc: ring.desc, avail: ring.avail, used: ring.used, eventIdx: true };
    const drv = new MockDriverRing({ ...parts, dataBase: DATA_BASE });
    const before = new Vringh(parts);
    const riov = new VringhIov();
    const wiov = new VringhIov();
    const heads = [0, 1, 2, 3].map((k) => drv.addChain([pattern(4, k)], [4]).head);
    for (let k = 0; k < 3; k++)
      expect(before.getDesc(riov, wiov)).toEqual({ status: 'chain', head: heads[k] });
    for (let k = 0; k < 2; k++) before.complete(heads[k]!, 4);
    before.needNotify();
    before.complete(heads[2]!, 4); // completed, not yet folded by needNotify
    const saved = before.state();
    expect(saved).toMatchObject({ lastAvailIdx: 3, lastUsedIdx: 2, completed: 1 });

    card.write(0, mem.bytes(ring.used, 6 + 8 * num)); // the used entries so far move along
    const after = new Vringh({ ...parts, usedMem: card, used: 0 });
    after.restore(saved);
    expect(after.state()).toEqual(saved);
    expect(after.getDesc(riov, wiov)).toEqual({ status: 'chain', head: heads[3] });
    expect(pullAll(after, riov)).toEqual(pattern(4, 3));
    after.complete(heads[3]!, 4);
    expect(card.loadU16(2)).toBe(4); // used.idx = lastUsedIdx + completed
    expect([card.readU32(4 + 8 * 3), card.readU32(8 + 8 * 3)]).toEqual([heads[3], 4]);
    drv.setUsedEvent(3);
    expect(after.needNotify()).toBe(true); // the batch since lastUsedIdx 2 (entries 2 and 3) passes 3
    expect(after.state()).toMatchObject({ lastAvailIdx: 4, lastUsedIdx: 4, completed: 0 });
  });

  it('restore keeps a latched error and the bad-chain count', () => {
    const { num, drv, vrh, riov, wiov } = deviceRig();
    drv.writeDesc(0, { addr: DATA_BASE, len: 4, flags: NEXT, next: num });
    drv.pushAvail(0);
    expect(vrh.getDesc(riov, wiov).status).toBe('bad-chain');
    drv.setAvailIdx(drv.availIdx + num + 1);
    const r = vrh.getDesc(riov, wiov);
    expect(r.status).toBe('broken');
    const other = deviceRig().vrh;
    other.restore(vrh.state());
    expect(other.badChains).toBe(1);
    expect(other.broken).toBe(vrh.broken);
    expect(other.getDesc(riov, wiov)).toEqual(r);
  });

  const good = { lastAvailIdx: 3, lastUsedIdx: 2, completed: 1, eventIdx: false, badChains: 0, broken: null };
  it.each([
    ['lastAvailIdx', -1, 'last_avail_idx -1 is not an integer in [0, 65535]'],
    ['lastAvailIdx', 0x10000, 'last_avail_idx 65536'],
    ['lastAvailIdx', 1.5, 'last_avail_idx 1.5'],
    ['lastUsedIdx', '2', 'last_used_idx "2"'],
    ['lastUsedIdx', undefined, 'last_used_idx undefined'],
    ['completed', -1, 'completed -1'],
    ['completed', Number.NaN, 'completed NaN'],
    ['badChains', 2 ** 53, 'bad chain count'],
    ['eventIdx', 1, 'eventIdx 1 is not a boolean'],
    ['broken', new Error('not ours'), 'neither null nor a MicError'],
  ])('restore refuses %s = %p with EINVAL and changes nothing', (field, value, message) => {
    const { drv, vrh, riov, wiov } = deviceRig();
    drv.addChain([pattern(4, 1)], []);
    vrh.getDesc(riov, wiov);
    const before = vrh.state();
    expect(() => vrh.restore({ ...good, [field]: value } as never)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining(message) }),
    );
    expect(vrh.state()).toEqual(before);
  });

  it('restore refuses something that is not a state', () => {
    const { vrh } = deviceRig();
    expect(() => vrh.restore(null as never)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('reset zeroes the progress and keeps eventIdx and the bad-chain count', () => {
    const { num, drv, vrh, riov, wiov } = deviceRig({ eventIdx: true });
    drv.writeDesc(0, { addr: DATA_BASE, len: 4, flags: NEXT, next: num });
    drv.pushAvail(0);
    expect(vrh.getDesc(riov, wiov).status).toBe('bad-chain');
    drv.addChain([pattern(4, 1)], []);
    expect(vrh.getDesc(riov, wiov).status).toBe('chain');
    vrh.restore({ ...vrh.state(), eventIdx: false });
    vrh.reset();
    expect(vrh.state()).toEqual({
      lastAvailIdx: 0,
      lastUsedIdx: 0,
      completed: 0,
      eventIdx: false,
      badChains: 1,
      broken: null,
    });
  });
});

describe('Vringh construction', () => {
  it.each([0, 9, 1.5])('refuses maxChainLength %p for a queue of 8', (maxChainLength) => {
    const mem = BufferMemory.allocate(4096);
    expect(() => new Vringh({ mem, ...vringLayout(8, 16), maxChainLength })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining(String(maxChainLength)) }),
    );
  });
});
