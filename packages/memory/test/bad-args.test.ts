import { describe, expect, it } from '@jest/globals';
import {
  badArgCoverage,
  optionsParam,
  sweepBadArguments,
  type BadArgEntry,
  type BadParam,
} from '@mic/errors';
import * as memory from '../src/index.js';
import {
  BufferMemory,
  CheckedView,
  asBufferMemory,
  checkRange,
  copyMemory,
  ChunkArena,
  readBytes,
} from '../src/index.js';

const mem = BufferMemory.allocate(4096, { shared: true });
const OFFSET = /offset|range/;
const LENGTH = /length|range/;

const offsetOnly = (name: string, call: (off: unknown) => unknown): BadArgEntry => ({
  name: `BufferMemory#${name}`,
  call: (a) => call(a[0]),
  args: [0],
  params: [{ at: 0, names: OFFSET }],
});
const offsetValue = (
  name: string,
  good: unknown,
  call: (a: unknown[]) => unknown,
  value?: BadParam,
): BadArgEntry => ({
  name: `BufferMemory#${name}`,
  call,
  args: [0, good],
  params: value === undefined ? [{ at: 0, names: OFFSET }] : [{ at: 0, names: OFFSET }, value],
});

const TABLE: BadArgEntry[] = [
  {
    name: 'new ChunkArena',
    call: (a) => new ChunkArena(a[0] as never),
    args: [4096],
    params: [{ at: 0, names: /chunkBytes/, valid: [undefined] }],
  },
  {
    name: 'ChunkArena#take',
    call: (a) => new ChunkArena().take(a[0] as never, a[1] as never),
    args: [100, 0],
    params: [
      { at: 0, names: /length/ },
      { at: 1, names: /phase/, valid: [undefined] },
    ],
  },
  {
    name: 'new BufferMemory',
    call: (a) => new BufferMemory(a[0] as never, a[1] as never, a[2] as never),
    args: [new ArrayBuffer(64), 0, 64],
    params: [
      { at: 0, names: /buffer/ },
      { at: 1, names: OFFSET, valid: [undefined] },
      { at: 2, names: LENGTH, valid: [undefined] },
    ],
  },
  {
    name: 'BufferMemory.allocate',
    call: (a) => BufferMemory.allocate(a[0] as never, a[1] as never),
    args: [64, {}],
    // 2^32 + 1 bytes would be a real allocation on a 64-bit Node: not tried.
    params: [{ at: 0, names: /size/, valid: [2 ** 32 + 1] }, optionsParam(1)],
  },
  ...(['readU8', 'readU16', 'readU32', 'readU64', 'readBigU64', 'loadU8', 'loadU16', 'loadU32'] as const).map(
    (m) => offsetOnly(m, (off) => mem[m](off as never)),
  ),
  // u8/u16/u32 values are taken modulo 2^n (a register write); u64 values are checked.
  ...(['writeU8', 'writeU16', 'writeU32', 'storeU8', 'storeU16', 'storeU32'] as const).map((m) =>
    offsetValue(m, 1, (a) => mem[m](a[0] as never, a[1] as never)),
  ),
  offsetValue('writeU64', 1, (a) => mem.writeU64(a[0] as never, a[1] as never), {
    at: 1,
    names: /value/,
    valid: [2 ** 32 + 1],
  }),
  offsetValue('writeBigU64', 1n, (a) => mem.writeBigU64(a[0] as never, a[1] as never), {
    at: 1,
    names: /value/,
    valid: [10n],
  }),
  offsetValue('read', new Uint8Array(4), (a) => mem.read(a[0] as never, a[1] as never), {
    at: 1,
    names: /destination/,
  }),
  offsetValue('write', new Uint8Array(4), (a) => mem.write(a[0] as never, a[1] as never), {
    at: 1,
    names: /source/,
  }),
  {
    name: 'BufferMemory#fill',
    call: (a) => mem.fill(a[0] as never, a[1] as never, a[2] as never),
    args: [0, 16, 0],
    // the fill value is taken modulo 256, as Uint8Array.fill does
    params: [
      { at: 0, names: OFFSET },
      { at: 1, names: LENGTH },
    ],
  },
  ...(['bytes', 'window'] as const).map((m): BadArgEntry => ({
    name: `BufferMemory#${m}`,
    call: (a) => mem[m](a[0] as never, a[1] as never),
    args: [0, 16],
    params: [
      { at: 0, names: OFFSET },
      { at: 1, names: LENGTH },
    ],
  })),
  {
    name: 'new CheckedView',
    call: (a) => new CheckedView(a[0] as never, a[1] as never, a[2] as never),
    args: [mem, 0, 64],
    params: [
      { at: 0, names: /BufferMemory/ },
      { at: 1, names: OFFSET, valid: [undefined] },
      { at: 2, names: LENGTH, valid: [undefined] },
    ],
  },
  {
    name: 'asBufferMemory',
    call: (a) => asBufferMemory(a[0] as never, 'ring'),
    args: [mem],
    params: [{ at: 0, names: /ring/ }],
  },
  {
    name: 'checkMemory',
    call: (a) => memory.checkMemory('ring', a[0]),
    args: [mem],
    params: [{ at: 0, names: /ring/ }],
  },
  {
    name: 'checkRange',
    call: (a) => checkRange('access', a[0] as never, a[1] as never, a[2] as never),
    args: [0, 16, 64],
    params: [
      { at: 0, names: OFFSET },
      { at: 1, names: LENGTH },
      { at: 2, names: /size/, valid: [2 ** 32 + 1] },
    ],
  },
  {
    name: 'copyMemory',
    call: (a) => copyMemory(a[0] as never, a[1] as never, a[2] as never, a[3] as never, a[4] as never),
    args: [mem, 0, mem, 64, 16],
    params: [
      { at: 0, names: /destination/ },
      { at: 1, names: OFFSET },
      { at: 2, names: /source/ },
      { at: 3, names: OFFSET },
      { at: 4, names: LENGTH },
    ],
  },
  {
    name: 'readBytes',
    call: (a) => readBytes(a[0] as never, a[1] as never, a[2] as never),
    args: [mem, 0, 16],
    params: [
      { at: 0, names: /memory/ },
      { at: 1, names: OFFSET },
      { at: 2, names: LENGTH },
    ],
  },
];

const UNCHECKED =
  'a checked-once view: its accessors skip checks by design (the range was checked when it was made)';
const NOT_SWEPT: Record<string, string> = Object.fromEntries(
  ['readU8', 'readU16', 'readU32', 'readU64', 'writeU8', 'writeU16', 'writeU32', 'writeU64']
    .concat(['loadU16', 'storeU16', 'loadU32', 'storeU32', 'read', 'write', 'fill'])
    .map((m) => [`CheckedView#${m}`, UNCHECKED]),
);

describe('bad arguments (issue 10, defect 5)', () => {
  it('every public function of @mic/memory refuses each bad argument with a MicError naming it', async () => {
    expect(badArgCoverage(memory, TABLE, NOT_SWEPT)).toEqual({ missing: [], unknown: [] });
    expect(await sweepBadArguments(TABLE)).toEqual([]);
  });
});
