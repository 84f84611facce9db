/**
 * A hostile driver against Vringh: one table of malformed rings written with MockDriverRing, each
 * with the outcome vringh's contract asks for. A bad chain costs the driver that one request (the
 * head comes back with length 0 and the queue goes on); a broken ring is latched until reset.
 */
import { describe, expect, it } from '@jest/globals';
import { MicError, type ErrnoCode } from '@mic/errors';
import { BufferMemory } from '@mic/memory';
import {
  DESC,
  MockDriverRing,
  VRING_DESC_F,
  Vringh,
  VringhIov,
  vringLayout,
  type GetRange,
  type RawDesc,
  type VringLayout,
  type VringhOptions,
} from '../src/index.js';

const { NEXT, WRITE, INDIRECT } = VRING_DESC_F;

interface Geometry {
  readonly num: number;
  readonly memSize: number;
  /** Where MockDriverRing hands out data buffers. */
  readonly dataBase: number;
  readonly dataEnd: number;
}

/** 16 entries, ring at 0 (used at 4096), data in [8192, 12288), memory of exactly 16 KiB. */
const SMALL: Geometry = { num: 16, memSize: 16384, dataBase: 8192, dataEnd: 12288 };
/** 8192 entries in 1 MiB, for chains whose buffers add up to more than 4 GiB. */
const LARGE: Geometry = { num: 8192, memSize: 1 << 20, dataBase: 1 << 19, dataEnd: 1 << 20 };

/** Allowed guest ranges for the SMALL geometry: [0, 12288) and [13312, 16384); [12288, 13312) is a gap. */
const GAP_START = 12288;
const GAP_END = 13312;
const gapped: GetRange = (addr) =>
  addr < GAP_START
    ? { start: 0, end: GAP_START, offset: 0 }
    : addr >= GAP_END && addr < SMALL.memSize
      ? { start: GAP_END, end: SMALL.memSize, offset: 0 }
      : null;

interface Ctx {
  readonly num: number;
  readonly mem: BufferMemory;
  readonly ring: VringLayout;
  readonly drv: MockDriverRing;
  readonly vrh: Vringh;
  /** Writes descriptor `i` of the ring. */
  desc(i: number, d: RawDesc): void;
  /** Writes a raw 64-bit address into descriptor `i` of the ring (any u64). */
  rawAddr(i: number, addr: bigint): void;
  /** Writes descriptor `i` of the indirect table at `table`. */
  ind(table: number, i: number, d: RawDesc): void;
  /** A fresh data buffer of `len` bytes. */
  buf(len: number): number;
}

type Outcome = { readonly kind: 'bad-chain'; readonly code: ErrnoCode } | { readonly kind: 'broken' };

interface Case {
  readonly name: string;
  readonly geometry?: Geometry;
  readonly options?: Partial<Pick<VringhOptions, 'indirect' | 'getRange' | 'maxChainLength' | 'eventIdx'>>;
  /** Writes the hostile ring; for a bad chain, publishes it and returns its head. */
  readonly setup: (c: Ctx) => number | void;
  readonly expect: Outcome;
}

const badChain = (code: ErrnoCode): Outcome => ({ kind: 'bad-chain', code });
const BROKEN: Outcome = { kind: 'broken' };

/** Publishes a one-descriptor chain at `i`. */
function single(c: Ctx, i: number, d: RawDesc): number {
  c.desc(i, d);
  c.drv.pushAvail(i);
  return i;
}

/** Publishes an INDIRECT descriptor at ring index 0 pointing at `entries` written into a fresh table. */
function indirect(c: Ctx, entries: RawDesc[], len = entries.length * 16): number {
  const table = c.buf(Math.max(len, entries.length * 16));
  entries.forEach((d, k) => c.ind(table, k, d));
  return single(c, 0, { addr: table, len, flags: INDIRECT, next: 0 });
}

/** A linear chain over ring descriptors `from .. from + n - 1`, every one `len` bytes at `addr`. */
function linear(c: Ctx, from: number, n: number, addr: number, len: number, flags = 0): number {
  for (let k = 0; k < n; k++) {
    const last = k === n - 1;
    c.desc(from + k, { addr, len, flags: flags | (last ? 0 : NEXT), next: last ? 0 : from + k + 1 });
  }
  c.drv.pushAvail(from);
  return from;
}

/** A chain that walks `path` (ring indices) and then jumps back to `loopTo`. */
function cycle(c: Ctx, path: number[], loopTo: number): number {
  const data = c.buf(8);
  path.forEach((i, k) => c.desc(i, { addr: data, len: 8, flags: NEXT, next: path[k + 1] ?? loopTo }));
  c.drv.pushAvail(path[0]!);
  return path[0]!;
}

/** Serves `n` good one-descriptor chains (ring index 13) so the indices are not at 0. */
function serveGood(c: Ctx, n: number): void {
  const data = c.buf(4);
  const riov = new VringhIov();
  const wiov = new VringhIov();
  for (let k = 0; k < n; k++) {
    c.desc(13, { addr: data, len: 4, flags: 0, next: 0 });
    c.drv.pushAvail(13);
    const r = c.vrh.getDesc(riov, wiov);
    expect(r).toEqual({ status: 'chain', head: 13 });
    c.vrh.complete(13, 0);
    c.vrh.needNotify();
  }
}

const CASES: Case[] = [
  // ---- Direct chains: structure ----
  {
    name: 'a next index equal to the queue size',
    setup: (c) => single(c, 0, { addr: c.buf(8), len: 8, flags: NEXT, next: c.num }),
    expect: badChain('EINVAL'),
  },
  {
    name: 'a next index of 0xffff',
    setup: (c) => single(c, 3, { addr: c.buf(8), len: 8, flags: NEXT, next: 0xffff }),
    expect: badChain('EINVAL'),
  },
  {
    name: 'a descriptor whose next is itself',
    setup: (c) => cycle(c, [0], 0),
    expect: badChain('ELOOP'),
  },
  {
    name: 'a two-descriptor cycle',
    setup: (c) => cycle(c, [0, 1], 0),
    expect: badChain('ELOOP'),
  },
  {
    name: 'a cycle through all fourteen free descriptors',
    setup: (c) => cycle(c, [...Array(14).keys()], 0),
    expect: badChain('ELOOP'),
  },
  {
    name: 'a cycle entered after a tail (0 → 1 → 2 → 1)',
    setup: (c) => cycle(c, [0, 1, 2], 1),
    expect: badChain('ELOOP'),
  },
  {
    name: 'a loop-free chain longer than the maximum chain length',
    options: { maxChainLength: 4 },
    setup: (c) => linear(c, 0, 5, c.buf(4), 4),
    expect: badChain('ELOOP'),
  },
  {
    name: 'a readable descriptor after a writable one',
    setup: (c) => {
      c.desc(0, { addr: c.buf(8), len: 8, flags: WRITE | NEXT, next: 1 });
      c.desc(1, { addr: c.buf(8), len: 8, flags: 0, next: 0 });
      c.drv.pushAvail(0);
      return 0;
    },
    expect: badChain('EINVAL'),
  },
  {
    name: 'a readable descriptor after a zero-length writable one',
    setup: (c) => {
      c.desc(0, { addr: c.buf(8), len: 0, flags: WRITE | NEXT, next: 1 });
      c.desc(1, { addr: c.buf(8), len: 8, flags: 0, next: 0 });
      c.drv.pushAvail(0);
      return 0;
    },
    expect: badChain('EINVAL'),
  },
  // ---- Indirect tables ----
  {
    name: 'an INDIRECT descriptor when indirect descriptors were not negotiated',
    options: { indirect: false },
    setup: (c) => indirect(c, [{ addr: c.buf(8), len: 8, flags: 0, next: 0 }]),
    expect: badChain('EINVAL'),
  },
  {
    name: 'an INDIRECT descriptor inside an indirect table (nested)',
    setup: (c) => {
      const inner = c.buf(16);
      c.ind(inner, 0, { addr: c.buf(8), len: 8, flags: 0, next: 0 });
      return indirect(c, [{ addr: inner, len: 16, flags: INDIRECT, next: 0 }]);
    },
    expect: badChain('EINVAL'),
  },
  {
    name: 'an INDIRECT descriptor that also sets NEXT',
    setup: (c) => {
      const table = c.buf(16);
      c.ind(table, 0, { addr: c.buf(8), len: 8, flags: 0, next: 0 });
      c.desc(1, { addr: c.buf(8), len: 8, flags: 0, next: 0 });
      return single(c, 0, { addr: table, len: 16, flags: INDIRECT | NEXT, next: 1 });
    },
    expect: badChain('EINVAL'),
  },
  {
    name: 'an indirect table of length 0',
    setup: (c) => indirect(c, [{ addr: c.buf(8), len: 8, flags: 0, next: 0 }], 0),
    expect: badChain('EINVAL'),
  },
  {
    name: 'an indirect table length that is not a multiple of 16 (24)',
    setup: (c) =>
      indirect(
        c,
        [
          { addr: c.buf(8), len: 8, flags: 0, next: 0 },
          { addr: 0, len: 0, flags: 0, next: 0 },
        ],
        24,
      ),
    expect: badChain('EINVAL'),
  },
  {
    name: 'an indirect table starting past the end of memory',
    setup: (c) => single(c, 0, { addr: c.mem.byteLength, len: 32, flags: INDIRECT, next: 0 }),
    expect: badChain('EFAULT'),
  },
  {
    name: 'an indirect table running past the end of memory',
    setup: (c) => single(c, 0, { addr: c.mem.byteLength - 16, len: 32, flags: INDIRECT, next: 0 }),
    expect: badChain('EFAULT'),
  },
  {
    name: 'an indirect table at an address of 2^64 - 16',
    setup: (c) => {
      c.desc(0, { addr: 0, len: 16, flags: INDIRECT, next: 0 });
      c.rawAddr(0, 2n ** 64n - 16n);
      c.drv.pushAvail(0);
      return 0;
    },
    expect: badChain('EFAULT'),
  },
  {
    name: 'an indirect table in the gap between allowed ranges',
    options: { getRange: gapped },
    setup: (c) => {
      c.mem.fill(GAP_START, 64, 0); // zeroed descriptors: would be valid if they were read
      return single(c, 0, { addr: GAP_START, len: 32, flags: INDIRECT, next: 0 });
    },
    expect: badChain('EFAULT'),
  },
  {
    name: 'a two-entry cycle inside an indirect table',
    setup: (c) => {
      const d = c.buf(8);
      return indirect(c, [
        { addr: d, len: 8, flags: NEXT, next: 1 },
        { addr: d, len: 8, flags: NEXT, next: 0 },
      ]);
    },
    expect: badChain('ELOOP'),
  },
  {
    name: 'an indirect entry whose next is itself',
    setup: (c) => indirect(c, [{ addr: c.buf(8), len: 8, flags: NEXT, next: 0 }]),
    expect: badChain('ELOOP'),
  },
  {
    name: 'an indirect entry whose next is outside the table',
    setup: (c) => {
      const d = c.buf(8);
      return indirect(c, [
        { addr: d, len: 8, flags: NEXT, next: 2 },
        { addr: d, len: 8, flags: 0, next: 0 },
      ]);
    },
    expect: badChain('EINVAL'),
  },
  {
    name: 'a readable entry after a writable one inside an indirect table',
    setup: (c) =>
      indirect(c, [
        { addr: c.buf(8), len: 8, flags: WRITE | NEXT, next: 1 },
        { addr: c.buf(8), len: 8, flags: 0, next: 0 },
      ]),
    expect: badChain('EINVAL'),
  },
  {
    name: 'a readable indirect entry after a writable direct descriptor',
    setup: (c) => {
      const table = c.buf(16);
      c.ind(table, 0, { addr: c.buf(8), len: 8, flags: 0, next: 0 });
      c.desc(0, { addr: c.buf(8), len: 8, flags: WRITE | NEXT, next: 1 });
      c.desc(1, { addr: table, len: 16, flags: INDIRECT, next: 0 });
      c.drv.pushAvail(0);
      return 0;
    },
    expect: badChain('EINVAL'),
  },
  {
    name: 'a loop-free indirect chain longer than the queue (17 entries)',
    setup: (c) => {
      const d = c.buf(4);
      return indirect(
        c,
        Array.from({ length: 17 }, (_, k) => ({ addr: d, len: 4, flags: k < 16 ? NEXT : 0, next: k + 1 })),
      );
    },
    expect: badChain('ELOOP'),
  },
  {
    name: 'an indirect entry pointing past the end of memory',
    setup: (c) => indirect(c, [{ addr: c.mem.byteLength - 4, len: 8, flags: 0, next: 0 }]),
    expect: badChain('EFAULT'),
  },
  // ---- Lengths ----
  {
    name: 'a total length of 2^32 (1 byte, then 0xffffffff bytes)',
    setup: (c) => {
      c.desc(0, { addr: c.buf(1), len: 1, flags: NEXT, next: 1 });
      c.desc(1, { addr: c.buf(8), len: 0xffffffff, flags: 0, next: 0 });
      c.drv.pushAvail(0);
      return 0;
    },
    expect: badChain('EOVERFLOW'),
  },
  {
    name: 'a single 0xffffffff-byte descriptor followed by another',
    setup: (c) => {
      c.desc(0, { addr: c.buf(8), len: 0xffffffff, flags: NEXT, next: 1 });
      c.desc(1, { addr: c.buf(8), len: 8, flags: 0, next: 0 });
      c.drv.pushAvail(0);
      return 0;
    },
    // The first buffer alone does not fit in memory, which is found before the sum.
    expect: badChain('EFAULT'),
  },
  {
    name: 'valid buffers adding up to more than 2^32 - 1 bytes (4097 × 1 MiB of real memory)',
    geometry: LARGE,
    setup: (c) => linear(c, 0, 4097, 0, c.mem.byteLength),
    expect: badChain('EOVERFLOW'),
  },
  {
    name: 'writable entries of an indirect table adding up to 2^32 bytes',
    setup: (c) =>
      indirect(c, [
        { addr: c.buf(8), len: 8, flags: WRITE | NEXT, next: 1 },
        { addr: c.buf(8), len: 0xfffffff8, flags: WRITE, next: 0 },
      ]),
    expect: badChain('EOVERFLOW'),
  },
  // ---- Addresses ----
  {
    name: 'a readable buffer starting at the end of memory',
    setup: (c) => single(c, 0, { addr: c.mem.byteLength, len: 1, flags: 0, next: 0 }),
    expect: badChain('EFAULT'),
  },
  {
    name: 'a buffer whose address + length crosses the end of memory',
    setup: (c) => single(c, 0, { addr: c.mem.byteLength - 8, len: 9, flags: 0, next: 0 }),
    expect: badChain('EFAULT'),
  },
  {
    name: 'a writable buffer crossing the end of memory after a good readable one',
    setup: (c) => {
      c.desc(0, { addr: c.buf(8), len: 8, flags: NEXT, next: 1 });
      c.desc(1, { addr: c.mem.byteLength - 4, len: 64, flags: WRITE, next: 0 });
      c.drv.pushAvail(0);
      return 0;
    },
    expect: badChain('EFAULT'),
  },
  {
    name: 'an address of exactly 2^53',
    setup: (c) => single(c, 0, { addr: 2 ** 53, len: 8, flags: 0, next: 0 }),
    expect: badChain('EFAULT'),
  },
  {
    name: 'an address of 2^64 - 1 (u64 max)',
    setup: (c) => {
      c.desc(0, { addr: 0, len: 1, flags: WRITE, next: 0 });
      c.rawAddr(0, 2n ** 64n - 1n);
      c.drv.pushAvail(0);
      return 0;
    },
    expect: badChain('EFAULT'),
  },
  {
    name: 'an address whose low 32 bits name valid memory (2^32 + 8192)',
    setup: (c) => single(c, 0, { addr: 2 ** 32 + 8192, len: 8, flags: 0, next: 0 }),
    expect: badChain('EFAULT'),
  },
  {
    name: 'an address in the gap between allowed ranges',
    options: { getRange: gapped },
    setup: (c) => single(c, 0, { addr: GAP_START + 100, len: 8, flags: 0, next: 0 }),
    expect: badChain('EFAULT'),
  },
  {
    name: 'a buffer crossing from an allowed range into the gap',
    options: { getRange: gapped },
    setup: (c) => single(c, 0, { addr: GAP_START - 8, len: 16, flags: WRITE, next: 0 }),
    expect: badChain('EFAULT'),
  },
  {
    name: 'a buffer spanning the whole gap between two allowed ranges',
    options: { getRange: gapped },
    setup: (c) => single(c, 0, { addr: GAP_START - 8, len: GAP_END - GAP_START + 16, flags: 0, next: 0 }),
    expect: badChain('EFAULT'),
  },
  // ---- The avail ring itself: broken ----
  {
    name: 'a head index equal to the queue size',
    setup: (c) => c.drv.pushAvail(c.num),
    expect: BROKEN,
  },
  {
    name: 'a head index of 0xffff',
    setup: (c) => c.drv.pushAvail(0xffff),
    expect: BROKEN,
  },
  {
    name: 'avail.idx jumping by num + 1',
    setup: (c) => c.drv.setAvailIdx(c.num + 1),
    expect: BROKEN,
  },
  {
    name: 'avail.idx jumping by 0x8000',
    setup: (c) => c.drv.setAvailIdx(0x8000),
    expect: BROKEN,
  },
  {
    name: 'avail.idx moving one step backwards (a forward jump of 0xffff)',
    setup: (c) => c.drv.setAvailIdx(0xffff),
    expect: BROKEN,
  },
  {
    name: 'avail.idx rewound after three chains were served',
    setup: (c) => {
      serveGood(c, 3);
      c.drv.setAvailIdx(1);
    },
    expect: BROKEN,
  },
  {
    name: 'an avail ring full of garbage',
    setup: (c) => {
      for (let s = 0; s < c.num; s++) c.drv.writeAvailSlot(s, 0xbeef ^ (s * 0x1111));
      c.drv.setAvailIdx(c.num);
    },
    expect: BROKEN,
  },
  {
    name: 'a bad head after good chains were served',
    setup: (c) => {
      serveGood(c, 2);
      c.drv.pushAvail(40000);
    },
    expect: BROKEN,
  },
];

function makeCtx(row: Case): Ctx & { riov: VringhIov; wiov: VringhIov } {
  const g = row.geometry ?? SMALL;
  const ring = vringLayout(g.num, 4096);
  const mem = BufferMemory.allocate(g.memSize); // exact: any read outside it throws
  const parts = { num: g.num, mem, desc: ring.desc, avail: ring.avail, used: ring.used };
  const drv = new MockDriverRing({ ...parts, dataBase: g.dataBase, dataEnd: g.dataEnd });
  const vrh = new Vringh({ ...parts, indirect: true, ...row.options });
  return {
    num: g.num,
    mem,
    ring,
    drv,
    vrh,
    riov: new VringhIov(),
    wiov: new VringhIov(),
    desc: (i, d) => drv.writeDesc(i, d),
    rawAddr: (i, addr) => mem.writeBigU64(ring.desc + 16 * i + DESC.ADDR, addr),
    ind: (table, i, d) => drv.writeIndirectDesc(table, i, d),
    buf: (len) => drv.alloc(len),
  };
}

const title = (row: Case): string =>
  row.expect.kind === 'broken'
    ? `${row.name} breaks the ring (EIO)`
    : `${row.name} is a bad chain (${row.expect.code})`;

describe('Vringh against a hostile driver', () => {
  it('has at least 30 cases with distinct names', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    expect(new Set(CASES.map((r) => r.name)).size).toBe(CASES.length);
  });

  it.each(CASES.map((row) => [title(row), row] as const))('%s', (_title, row) => {
    const c = makeCtx(row);
    const { vrh, drv, riov, wiov, num, mem } = c;
    const badHead = row.setup(c);
    const usedBefore = drv.usedIdx;
    const availBefore = vrh.state().lastAvailIdx;
    const first = vrh.getDesc(riov, wiov);

    if (row.expect.kind === 'broken') {
      expect(first.status).toBe('broken');
      if (first.status !== 'broken') return;
      expect(first.error).toBeInstanceOf(MicError);
      expect(first.error.code).toBe('EIO');
      expect(vrh.broken).toBe(first.error);
      // Latched: the same error every time, nothing pending, nothing consumed or completed,
      // even when a good chain is published afterwards.
      drv.setAvailIdx(availBefore);
      drv.addChain([Uint8Array.of(1, 2, 3)], [8]);
      for (let k = 0; k < 3; k++) {
        const again = vrh.getDesc(riov, wiov);
        expect(again).toEqual({ status: 'broken', error: first.error });
        if (again.status === 'broken') expect(again.error).toBe(first.error);
        expect(vrh.pending()).toBe(0);
      }
      expect(riov.count + wiov.count).toBe(0);
      expect(vrh.state().lastAvailIdx).toBe(availBefore);
      expect(drv.usedIdx).toBe(usedBefore);
      expect(vrh.state().completed).toBe(0);
      expect(vrh.badChains).toBe(0);
      return;
    }

    // Bad chain: this head is consumed and returned with length 0, and the queue goes on.
    expect(first.status).toBe('bad-chain');
    if (first.status !== 'bad-chain') return;
    expect(typeof badHead).toBe('number');
    expect(first.head).toBe(badHead);
    expect(first.error).toBeInstanceOf(MicError);
    expect(first.error.code).toBe(row.expect.code);
    expect(first.error.message).toMatch(/^bad chain: /);
    expect(riov.count).toBe(0);
    expect(wiov.count).toBe(0);
    expect(vrh.state().lastAvailIdx).toBe((availBefore + 1) & 0xffff);
    expect(drv.usedIdx).toBe((usedBefore + 1) & 0xffff);
    expect(drv.readUsed(usedBefore)).toEqual({ id: badHead, len: 0 });
    expect(vrh.badChains).toBe(1);
    expect(vrh.broken).toBeNull();
    expect(vrh.pending()).toBe(0);

    // A good chain published after the bad one is served normally.
    const request = Uint8Array.from({ length: 16 }, (_, i) => 0x30 + i);
    const reqAddr = drv.alloc(16);
    const respAddr = drv.alloc(32);
    mem.write(reqAddr, request);
    drv.writeDesc(num - 2, { addr: reqAddr, len: 16, flags: NEXT, next: num - 1 });
    drv.writeDesc(num - 1, { addr: respAddr, len: 32, flags: WRITE, next: 0 });
    drv.pushAvail(num - 2);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head: num - 2 });
    const got = new Uint8Array(16);
    expect(vrh.pull(riov, got)).toBe(16);
    expect(got).toEqual(request);
    expect(vrh.push(wiov, request)).toBe(16);
    vrh.complete(num - 2, 16);
    expect(drv.readUsed(usedBefore + 1)).toEqual({ id: num - 2, len: 16 });
    expect(mem.bytes(respAddr, 16)).toEqual(request);
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'empty' });
    expect(vrh.badChains).toBe(1);
  });
});

describe('after a bad chain or a broken ring', () => {
  it('counts every bad chain and serves the good chains between them', () => {
    const c = makeCtx({ name: 'mixed', setup: () => undefined, expect: BROKEN });
    const { drv, vrh, riov, wiov } = c;
    const good = () => drv.addChain([Uint8Array.of(9)], [4]).head;
    const heads: number[] = [];
    heads.push(single(c, 10, { addr: c.buf(4), len: 4, flags: NEXT, next: 10 }));
    drv.addChain([Uint8Array.of(9)], [4]);
    heads.push(single(c, 11, { addr: c.mem.byteLength, len: 4, flags: 0, next: 0 }));
    good();
    const seen: string[] = [];
    for (let r = vrh.getDesc(riov, wiov); r.status !== 'empty'; r = vrh.getDesc(riov, wiov)) {
      seen.push(r.status);
      if (r.status === 'chain') vrh.complete(r.head, 0);
    }
    expect(seen).toEqual(['bad-chain', 'chain', 'bad-chain', 'chain']);
    expect(vrh.badChains).toBe(2);
    expect(drv.usedIdx).toBe(4);
    expect(drv.readUsed(0)).toEqual({ id: heads[0], len: 0 });
    expect(drv.readUsed(2)).toEqual({ id: heads[1], len: 0 });
  });

  it('a reset clears the broken latch, and the next ring set-up is served', () => {
    const c = makeCtx({ name: 'reset', setup: () => undefined, expect: BROKEN });
    const { drv, vrh, riov, wiov } = c;
    drv.setAvailIdx(0x8000);
    expect(vrh.getDesc(riov, wiov).status).toBe('broken');
    vrh.reset();
    expect(vrh.broken).toBeNull();
    drv.setAvailIdx(0);
    const head = drv.addChain([Uint8Array.of(1, 2)], []).head;
    expect(vrh.getDesc(riov, wiov)).toEqual({ status: 'chain', head });
  });
});
