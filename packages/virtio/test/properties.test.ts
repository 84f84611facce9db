import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { MicError } from '@mic/errors';
import { BufferMemory, type Memory } from '@mic/memory';
import {
  AVAIL,
  DESC,
  Virtqueue,
  Vringh,
  VringhIov,
  alignUp,
  usedEventOffset,
  vringLayout,
  type GetRange,
  type VirtqBuf,
} from '../src/index.js';

// ---------------------------------------------------------------------------------------------
// (1) Driver and device over one memory: random interleavings deliver every byte and every token.
// ---------------------------------------------------------------------------------------------

const MAX_BUF = 48;
const GUARD = 0xee;
const SLOT_SIZE = 512; // 8 buffers of up to 48 bytes with gaps of up to 8

interface ChainShape {
  readonly readable: number[];
  readonly writable: number[];
  readonly gaps: number[];
}

type Cmd =
  | { readonly op: 'add'; readonly chains: ChainShape[] }
  | { readonly op: 'kick' }
  | { readonly op: 'fetch'; readonly resp: number; readonly piece: number }
  | { readonly op: 'complete'; readonly pick: number; readonly many: boolean }
  | { readonly op: 'collect' }
  | { readonly op: 'deviceSleep' }
  | { readonly op: 'driverSleep' };

const chainArb: fc.Arbitrary<ChainShape> = fc.record({
  readable: fc.array(fc.integer({ min: 1, max: MAX_BUF }), { minLength: 1, maxLength: 4 }),
  writable: fc.array(fc.integer({ min: 1, max: MAX_BUF }), { maxLength: 4 }),
  gaps: fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 8, maxLength: 8 }),
});

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('add'),
      chains: fc.array(chainArb, { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ op: 'kick' } as const) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('fetch'),
      resp: fc.nat(),
      piece: fc.integer({ min: 1, max: 20 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('complete'), pick: fc.nat(), many: fc.boolean() }) },
  { weight: 5, arbitrary: fc.constant({ op: 'collect' } as const) },
  { weight: 1, arbitrary: fc.constant({ op: 'deviceSleep' } as const) },
  { weight: 1, arbitrary: fc.constant({ op: 'driverSleep' } as const) },
);

const configArb = fc.record({
  num: fc.constantFrom(2, 4, 8, 16, 32, 64, 128),
  eventIdx: fc.boolean(),
  indirect: fc.boolean(),
  maxEntriesPick: fc.nat(),
});

const reqByte = (token: number, b: number, i: number): number => (token * 131 + b * 31 + i * 7 + 1) & 0xff;
const respByte = (token: number, i: number): number => (token * 17 + i * 13 + 0x5a) & 0xff;

interface Req {
  readonly token: number;
  readonly slot: number;
  readonly readable: VirtqBuf[];
  readonly writable: VirtqBuf[];
  head: number;
  respLen: number;
}

type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;

function runInterleaving(config: ValueOf<typeof configArb>, cmds: Cmd[]): void {
  const { num, eventIdx } = config;
  const maxEntries = 2 + (config.maxEntriesPick % (num - 1));
  const ring = vringLayout(num, 16);
  const poolBase = alignUp(ring.size, 16);
  const dataBase = alignUp(poolBase + num * maxEntries * 16, 64);
  const mem = BufferMemory.allocate(dataBase + num * SLOT_SIZE);
  const parts = { num, mem, desc: ring.desc, avail: ring.avail, used: ring.used, eventIdx };
  const vq = new Virtqueue<number>({
    ...parts,
    ...(config.indirect ? { indirect: { base: poolBase, dmaAddr: poolBase, maxEntries } } : {}),
  });
  const vrh = new Vringh({ ...parts, indirect: config.indirect });
  const riov = new VringhIov();
  const wiov = new VringhIov();

  const freeSlots = Array.from({ length: num }, (_, s) => num - 1 - s);
  const toFetch: Req[] = []; // posted, in avail order
  const fetched: Req[] = []; // fetched by the device, not completed
  const toCollect: Req[] = []; // completed, in used order
  const posted = new Set<number>();
  const collected: number[] = [];
  let nextToken = 1;
  let deviceSleeping = false;
  let driverSleeping = false;
  vq.disableCb();
  vrh.notifyDisable();

  const add = (chains: ChainShape[]): void => {
    const ready: { out: VirtqBuf[]; in: VirtqBuf[]; token: number }[] = [];
    let free = vq.numFree;
    let fits = true;
    for (const shape of chains) {
      const total = shape.readable.length + shape.writable.length;
      const needed = config.indirect && total > 1 && total <= maxEntries ? 1 : total;
      if (needed > free) {
        fits = false;
        break;
      }
      free -= needed;
      const slot = freeSlots.pop()!;
      const base = dataBase + slot * SLOT_SIZE;
      mem.fill(base, SLOT_SIZE, GUARD);
      let at = base;
      const place = (len: number, k: number): VirtqBuf => {
        at += shape.gaps[k]!;
        const b = { addr: at, len };
        at += len;
        return b;
      };
      const token = nextToken++;
      const readable = shape.readable.map((len, k) => place(len, k));
      const writable = shape.writable.map((len, k) => place(len, 4 + k));
      readable.forEach((b, k) => {
        for (let i = 0; i < b.len; i++) mem.writeU8(b.addr + i, reqByte(token, k, i));
      });
      ready.push({ out: readable, in: writable, token });
      toFetch.push({ token, slot, readable, writable, head: -1, respLen: 0 });
      posted.add(token);
    }
    if (chains.length === 1 && ready.length === 1) {
      vq.add(ready[0]!.out, ready[0]!.in, ready[0]!.token);
    } else if (fits) {
      vq.addMany(chains.map((_, k) => ready[k]!));
    } else {
      // The chain that does not fit is refused with ENOSPC; the ones before it are posted.
      const shape = chains[ready.length]!;
      const dummy = (): VirtqBuf => ({ addr: dataBase, len: 1 });
      const refused = { out: shape.readable.map(dummy), in: shape.writable.map(dummy), token: 0 };
      const availBefore = mem.readU16(ring.avail + AVAIL.IDX);
      expect(() => vq.addMany([...ready, refused])).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
      expect(mem.readU16(ring.avail + AVAIL.IDX)).toBe((availBefore + ready.length) & 0xffff);
    }
  };

  const fetch = (resp: number, piece: number): void => {
    const r = vrh.getDesc(riov, wiov);
    if (toFetch.length === 0) {
      expect(r).toEqual({ status: 'empty' });
      return;
    }
    const req = toFetch.shift()!;
    expect(r.status).toBe('chain');
    if (r.status !== 'chain') return;
    req.head = r.head;
    // The device sees exactly the posted buffers, readable first.
    const segs = (iov: VringhIov) =>
      Array.from({ length: iov.count }, (_, k) => [iov.offsets[k], iov.lengths[k]]);
    expect(segs(riov)).toEqual(req.readable.map((b) => [b.addr, b.len]));
    expect(segs(wiov)).toEqual(req.writable.map((b) => [b.addr, b.len]));
    // It pulls exactly the posted bytes, in pieces.
    const expected: number[] = [];
    req.readable.forEach((b, k) => {
      for (let i = 0; i < b.len; i++) expected.push(reqByte(req.token, k, i));
    });
    const got: number[] = [];
    const buf = new Uint8Array(piece);
    for (let n = vrh.pull(riov, buf); n > 0; n = vrh.pull(riov, buf)) got.push(...buf.subarray(0, n));
    expect(got).toEqual(expected);
    // It answers with some bytes; they must fit in the writable buffers.
    const respLen = resp % (wiov.total + 1);
    const answer = Uint8Array.from({ length: respLen }, (_, i) => respByte(req.token, i));
    expect(vrh.push(wiov, answer)).toBe(respLen);
    req.respLen = respLen;
    fetched.push(req);
  };

  const afterComplete = (): void => {
    const notify = vrh.needNotify();
    if (driverSleeping) {
      // The driver asked for an interrupt before sleeping: it must get one.
      expect(notify).toBe(true);
      driverSleeping = false;
      vq.disableCb();
    }
  };

  const complete = (pick: number, many: boolean): void => {
    if (fetched.length === 0) return;
    if (many) {
      const batch = fetched.splice(0, fetched.length);
      if (pick % 2 === 1) batch.reverse();
      vrh.completeMany(
        batch.map((q) => q.head),
        batch.map((q) => q.respLen),
      );
      toCollect.push(...batch);
    } else {
      const [req] = fetched.splice(pick % fetched.length, 1);
      vrh.complete(req!.head, req!.respLen);
      toCollect.push(req!);
    }
    afterComplete();
  };

  const collect = (): void => {
    const u = vq.getBuf();
    if (toCollect.length === 0) {
      expect(u).toBeNull();
      return;
    }
    const req = toCollect.shift()!;
    expect(u).toEqual({ token: req.token, len: req.respLen });
    // What the device pushed is in the writable buffers, in order; nothing else in the slot changed.
    const base = dataBase + req.slot * SLOT_SIZE;
    const expected = new Uint8Array(SLOT_SIZE).fill(GUARD);
    req.readable.forEach((b, j) => {
      for (let i = 0; i < b.len; i++) expected[b.addr - base + i] = reqByte(req.token, j, i);
    });
    let k = 0;
    for (const b of req.writable) {
      for (let i = 0; i < b.len && k < req.respLen; i++, k++)
        expected[b.addr - base + i] = respByte(req.token, k);
    }
    const actual = mem.bytes(base, SLOT_SIZE);
    if (Buffer.compare(actual, expected) !== 0) expect([...actual]).toEqual([...expected]);
    collected.push(req.token);
    freeSlots.push(req.slot);
  };

  const kick = (): void => {
    const kicked = vq.kickPrepare();
    if (deviceSleeping) {
      // The device asked for a kick before sleeping: new chains must bring one.
      if (vrh.pending() > 0) expect(kicked).toBe(true);
      if (kicked) {
        deviceSleeping = false;
        vrh.notifyDisable();
      }
    }
  };

  for (const cmd of cmds) {
    switch (cmd.op) {
      case 'add':
        if (!driverSleeping) add(cmd.chains);
        break;
      case 'kick':
        if (!driverSleeping) kick();
        break;
      case 'fetch':
        if (!deviceSleeping) fetch(cmd.resp, cmd.piece);
        break;
      case 'complete':
        if (!deviceSleeping) complete(cmd.pick, cmd.many);
        break;
      case 'collect':
        if (!driverSleeping) collect();
        break;
      case 'deviceSleep':
        // A device sleeps only with no chain in hand.
        if (!deviceSleeping && fetched.length === 0) {
          const idle = vrh.notifyEnable();
          expect(idle).toBe(toFetch.length === 0);
          if (idle) deviceSleeping = true;
          else vrh.notifyDisable();
        }
        break;
      case 'driverSleep':
        // A driver sleeps only while it waits for something, and kicks before it sleeps.
        if (!driverSleeping && vq.inFlight > 0) {
          kick();
          const idle = vq.enableCb();
          expect(idle).toBe(toCollect.length === 0);
          if (idle) driverSleeping = true;
          else vq.disableCb();
        }
        break;
    }
    // No lost wake-up: both sides are never asleep at once.
    expect(driverSleeping && deviceSleeping).toBe(false);
  }

  // Drain: both sides awake, everything fetched, completed and collected.
  deviceSleeping = false;
  driverSleeping = false;
  for (let round = 0; toFetch.length + fetched.length + toCollect.length > 0; round++) {
    expect(round).toBeLessThan(3);
    while (toFetch.length > 0) fetch(7, 13);
    while (fetched.length > 0) complete(0, false);
    while (toCollect.length > 0) collect();
  }
  expect(vq.getBuf()).toBeNull();
  expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'empty' });
  expect([...collected].sort((a, b) => a - b)).toEqual([...posted].sort((a, b) => a - b));
  expect(new Set(collected).size).toBe(collected.length);
  expect(vq.inFlight).toBe(0);
  expect(vq.numFree).toBe(num);
  expect(vq.broken).toBeNull();
  expect(vq.clampedLengths).toBe(0);
  expect(vrh.broken).toBeNull();
  expect(vrh.badChains).toBe(0);
}

describe('a Virtqueue and a Vringh over one memory (property)', () => {
  it('deliver every byte into the right buffers and every token exactly once, whatever the interleaving', () => {
    fc.assert(
      fc.property(
        configArb,
        fc.array(cmdArb, { minLength: 10, maxLength: 150, size: 'medium' }),
        (config, cmds) => {
          runInterleaving(config, cmds);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('deliver every byte for a fixed long interleaving with indirect tables and EVENT_IDX', () => {
    const cmds: Cmd[] = [];
    for (let k = 0; k < 200; k++) {
      cmds.push({
        op: 'add',
        chains: [
          {
            readable: [1 + (k % 48), 5],
            writable: k % 3 === 0 ? [] : [48, k % 7 || 1],
            gaps: [1, 2, 3, 4, 5, 6, 7, 8],
          },
        ],
      });
      if (k % 4 === 3)
        cmds.push(
          { op: 'kick' },
          { op: 'fetch', resp: k * 5, piece: 3 },
          { op: 'fetch', resp: k, piece: 16 },
        );
      if (k % 5 === 4)
        cmds.push({ op: 'complete', pick: k, many: k % 2 === 0 }, { op: 'collect' }, { op: 'collect' });
      if (k % 9 === 8) cmds.push({ op: 'deviceSleep' }, { op: 'driverSleep' });
    }
    runInterleaving({ num: 8, eventIdx: true, indirect: true, maxEntriesPick: 2 }, cmds);
  });

  it('interoperate across the 16-bit wrap of every index', () => {
    const num = 4;
    const mem = BufferMemory.allocate(4096);
    const ring = vringLayout(num, 16);
    const parts = { num, mem, desc: ring.desc, avail: ring.avail, used: ring.used, eventIdx: true };
    const vq = new Virtqueue<number>({ ...parts, indirect: { base: 256, dmaAddr: 256, maxEntries: 2 } });
    const vrh = new Vringh({ ...parts, indirect: true });
    const riov = new VringhIov();
    const wiov = new VringhIov();
    const word = new Uint8Array(4);
    for (let k = 0; k < 70_000; k++) {
      mem.writeU32(1024, k);
      vq.add([{ addr: 1024, len: 4 }], [{ addr: 2048, len: 4 }], k);
      vq.kickPrepare();
      const r = vrh.getDesc(riov, wiov);
      if (r.status !== 'chain') throw new Error(`request ${k}: ${r.status}`);
      vrh.pull(riov, word);
      vrh.complete(r.head, vrh.push(wiov, word));
      vrh.needNotify();
      const u = vq.getBuf();
      if (u?.token !== k || u.len !== 4 || mem.readU32(2048) !== k) throw new Error(`request ${k} lost`);
    }
    expect(mem.readU16(ring.avail + AVAIL.IDX)).toBe(70_000 & 0xffff);
    expect(vq.broken).toBeNull();
    expect(vrh.broken).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// (2) Garbage rings: Vringh never throws, never reads outside memory, always terminates.
// ---------------------------------------------------------------------------------------------

const BAD_CHAIN_CODES = ['EINVAL', 'ELOOP', 'EFAULT', 'EOVERFLOW'];

interface FuzzSetup {
  readonly num: number;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  readonly separateData: boolean;
  readonly gapped: boolean;
  readonly maxChainPick: number;
}

const fuzzSetupArb: fc.Arbitrary<FuzzSetup> = fc.record({
  num: fc.constantFrom(1, 2, 4, 8, 16),
  eventIdx: fc.boolean(),
  indirect: fc.boolean(),
  separateData: fc.boolean(),
  gapped: fc.boolean(),
  maxChainPick: fc.nat(),
});

const DATA_SIZE = 512;

/** Builds the memories for a fuzz run; every memory has exactly the bytes it needs. */
function fuzzRig(s: FuzzSetup) {
  const ring = vringLayout(s.num, 16);
  const ringSize = alignUp(ring.size, 16);
  const mem = BufferMemory.allocate(s.separateData ? ringSize : ringSize + DATA_SIZE);
  const data = s.separateData ? BufferMemory.allocate(DATA_SIZE) : mem;
  const dataStart = s.separateData ? 0 : ringSize;
  const size = data.byteLength;
  // A 32-byte hole in the middle of the data memory, when gapped.
  const hole = Math.floor(size / 2);
  const getRange: GetRange = (addr) =>
    addr < hole
      ? { start: 0, end: hole, offset: 0 }
      : addr >= hole + 32 && addr < size
        ? { start: hole + 32, end: size, offset: 0 }
        : null;
  const vrh = new Vringh({
    num: s.num,
    mem,
    desc: ring.desc,
    avail: ring.avail,
    used: ring.used,
    eventIdx: s.eventIdx,
    indirect: s.indirect,
    dataMem: data,
    maxChainLength: 1 + (s.maxChainPick % s.num),
    ...(s.gapped ? { getRange } : {}),
  });
  return { ring, mem, data, dataStart, vrh };
}

/** Calls getDesc up to 3·num times, checking every result; returns how the loop ended. */
function drive(vrh: Vringh, mem: Memory, data: Memory, usedAt: number): string {
  const riov = new VringhIov();
  const wiov = new VringhIov();
  const num = vrh.num;
  for (let k = 0; k < 3 * num; k++) {
    const r = vrh.getDesc(riov, wiov);
    if (r.status === 'empty') return 'empty';
    if (r.status === 'broken') {
      expect(r.error).toBeInstanceOf(MicError);
      expect(r.error.code).toBe('EIO');
      expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'broken', error: r.error });
      expect(vrh.pending()).toBe(0);
      return 'broken';
    }
    expect(r.head).toBeLessThan(num);
    if (r.status === 'bad-chain') {
      expect(BAD_CHAIN_CODES).toContain(r.error.code);
      expect(riov.count + wiov.count).toBe(0);
      const slot = (mem.readU16(usedAt + 2) - 1) & (num - 1);
      expect(mem.readU32(usedAt + 4 + 8 * slot)).toBe(r.head);
      expect(mem.readU32(usedAt + 8 + 8 * slot)).toBe(0);
    } else {
      for (const iov of [riov, wiov]) {
        expect(iov.total).toBeLessThanOrEqual(0xffffffff);
        for (let s = 0; s < iov.count; s++) {
          expect(iov.offsets[s]).toBeGreaterThanOrEqual(0);
          expect(iov.lengths[s]).toBeGreaterThan(0);
          expect(iov.offsets[s]! + iov.lengths[s]!).toBeLessThanOrEqual(data.byteLength);
        }
      }
      // Reading every readable byte stays inside memory (BufferMemory throws otherwise).
      expect(vrh.pull(riov, new Uint8Array(riov.total))).toBe(riov.total);
      vrh.complete(r.head, wiov.total);
    }
    vrh.needNotify();
  }
  return 'unterminated';
}

const u64Arb = (max: number): fc.Arbitrary<bigint> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.bigInt({ min: 0n, max: BigInt(max) }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(2n ** 53n, 2n ** 53n - 1n, 2n ** 32n, 2n ** 64n - 1n, 2n ** 63n),
    },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) },
  );

const descArb = (num: number, dataSize: number) =>
  fc.record({
    addr: u64Arb(dataSize + 64),
    len: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: 96 }) },
      { weight: 1, arbitrary: fc.constantFrom(0, 16, 32, 48, 0xfffffff0, 0xffffffff, 0x80000000) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
    ),
    flags: fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) },
      { weight: 2, arbitrary: fc.integer({ min: 0, max: 7 }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
    ),
    next: fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: num }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
    ),
  });

type FuzzDesc = ValueOf<ReturnType<typeof descArb>>;

function writeFuzzDesc(m: Memory, at: number, d: FuzzDesc): void {
  m.writeBigU64(at + DESC.ADDR, d.addr);
  m.writeU32(at + DESC.LEN, d.len);
  m.writeU16(at + DESC.FLAGS, d.flags);
  m.writeU16(at + DESC.NEXT, d.next);
}

describe('Vringh over a ring of garbage (property)', () => {
  it('never throws, stays inside memory and terminates, on a hostile but structured ring', () => {
    const arb = fuzzSetupArb.chain((s) =>
      fc.record({
        s: fc.constant(s),
        descs: fc.array(descArb(s.num, DATA_SIZE), { minLength: s.num, maxLength: s.num }),
        tables: fc.array(descArb(s.num, DATA_SIZE), { minLength: 0, maxLength: 24 }),
        tableAt: fc.integer({ min: 0, max: DATA_SIZE - 24 * 16 }),
        heads: fc.array(
          fc.oneof(
            { weight: 8, arbitrary: fc.integer({ min: 0, max: s.num - 1 }) },
            { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
          ),
          {
            minLength: s.num,
            maxLength: s.num,
          },
        ),
        availIdx: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: 0, max: s.num + 1 }) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
        ),
        flags: fc.integer({ min: 0, max: 0xffff }),
        usedEvent: fc.integer({ min: 0, max: 0xffff }),
      }),
    );
    fc.assert(
      fc.property(arb, ({ s, descs, tables, tableAt, heads, availIdx, flags, usedEvent }) => {
        const { ring, mem, data, dataStart, vrh } = fuzzRig(s);
        descs.forEach((d, i) => writeFuzzDesc(mem, ring.desc + 16 * i, d));
        tables.forEach((d, i) => writeFuzzDesc(data, dataStart + tableAt + 16 * i, d));
        heads.forEach((h, slot) => mem.writeU16(ring.avail + AVAIL.RING + 2 * slot, h));
        mem.writeU16(ring.avail + AVAIL.FLAGS, flags);
        mem.writeU16(ring.avail + usedEventOffset(s.num), usedEvent);
        mem.writeU16(ring.avail + AVAIL.IDX, availIdx);
        const end = drive(vrh, mem, data, ring.used);
        expect(['empty', 'broken']).toContain(end);
      }),
      { numRuns: 600 },
    );
  });

  it('never throws, stays inside memory and terminates, on random bytes', () => {
    const arb = fuzzSetupArb.chain((s) => {
      const { mem, data } = fuzzRig(s);
      return fc.record({
        s: fc.constant(s),
        ringBytes: fc.uint8Array({ minLength: mem.byteLength, maxLength: mem.byteLength }),
        dataBytes: fc.uint8Array({ minLength: data.byteLength, maxLength: data.byteLength }),
        availIdx: fc.option(fc.integer({ min: 0, max: s.num })),
      });
    });
    fc.assert(
      fc.property(arb, ({ s, ringBytes, dataBytes, availIdx }) => {
        const { ring, mem, data, vrh } = fuzzRig(s);
        mem.write(0, ringBytes);
        if (data !== mem) data.write(0, dataBytes);
        if (availIdx !== null) mem.writeU16(ring.avail + AVAIL.IDX, availIdx);
        const end = drive(vrh, mem, data, ring.used);
        expect(['empty', 'broken']).toContain(end);
      }),
      { numRuns: 600 },
    );
  });
});
