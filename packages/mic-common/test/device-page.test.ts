import { describe, expect, it } from '@jest/globals';
import { isMicError } from '@mic/errors';
import { BufferMemory, readBytes, type Memory } from '@mic/memory';
import fc from 'fast-check';
import {
  MIC_DP_SIZE,
  abortDpEntry,
  bootparamInit,
  configSpaceWindow,
  copyDpEntry,
  deviceCtrlInit,
  dpVqconfigOffset,
  encodeDescBlock,
  featureBitsToBytes,
  findDpSlot,
  loadDpType,
  micTotalDescSize,
  publishDpEntry,
  readBootparam,
  readDeviceCtrl,
  readVqconfig,
  removeDpEntry,
  walkDevicePage,
  type DpPendingEntry,
  type DpSlotKind,
  type DpWalk,
} from '../src/index.js';
import { RecordingMemory } from './recording-memory.js';

function newPage(shared = false): BufferMemory {
  const mem = BufferMemory.allocate(MIC_DP_SIZE, { shared });
  bootparamInit(mem, 1);
  return mem;
}

function template(type: number, numVq: number, featureLen: number, configLen: number, fill = 0): Uint8Array {
  return encodeDescBlock({
    type,
    vqconfigs: Array.from({ length: numVq }, () => ({ address: 0, usedAddress: 0, num: 128 })),
    hostFeatures: new Uint8Array(featureLen),
    config: new Uint8Array(configLen).fill(fill),
  });
}

const CONSOLE = template(3, 2, 4, 12);
const NET = encodeDescBlock({
  type: 1,
  vqconfigs: [
    { address: 0, usedAddress: 0, num: 128 },
    { address: 0, usedAddress: 0, num: 128 },
  ],
  hostFeatures: featureBitsToBytes(0x3c1n, 4),
  config: new Uint8Array(17),
});
const BLOCK = template(2, 1, 4, 60, 0xff);

function add(mem: Memory, block: Uint8Array): DpPendingEntry {
  const pending = copyDpEntry(mem, block);
  deviceCtrlInit(mem, pending.ctrlOffset);
  publishDpEntry(mem, pending);
  return pending;
}

const live = (w: DpWalk): number[][] => w.entries.filter((e) => e.type > 0).map((e) => [e.offset, e.type]);
const copyOf = (mem: Memory, offset: number, length: number): number[] => [...readBytes(mem, offset, length)];

describe('device page with mpssd devices', () => {
  it('places console, net and block at 24, 120 and 224 with strides 96, 104 and 120', () => {
    const mem = newPage();
    const placed = [CONSOLE, NET, BLOCK].map((b) => add(mem, b));
    expect(placed.map((p) => [p.offset, p.totalDescSize, p.slot])).toEqual([
      [24, 96, 'end'],
      [120, 104, 'end'],
      [224, 120, 'end'],
    ]);
    const w = walkDevicePage(mem);
    expect(w.stop).toBe('end-of-list');
    expect(w.end).toBe(344);
    expect(w.entries.map((e) => [e.offset, e.type, e.descSize, e.alignedDescSize, e.totalDescSize])).toEqual([
      [24, 3, 76, 80, 96],
      [120, 1, 81, 88, 104],
      [224, 2, 100, 104, 120],
    ]);
    expect(
      w.entries.map((e) => [
        e.vqconfigOffset,
        e.featuresOffset,
        e.guestAcksOffset,
        e.configspaceOffset,
        e.ctrlOffset,
      ]),
    ).toEqual([
      [32, 80, 84, 88, 104],
      [128, 176, 180, 184, 208],
      [232, 256, 260, 264, 328],
    ]);
  });

  it('copies each block byte for byte and leaves the bootparam alone', () => {
    const mem = newPage();
    for (const block of [CONSOLE, NET, BLOCK]) {
      const p = add(mem, block);
      expect(copyOf(mem, p.offset, block.length)).toEqual([...block]);
      expect(readDeviceCtrl(mem, p.ctrlOffset)).toMatchObject({
        configChange: 0,
        c2hVdevDb: -1,
        h2cVdevDb: -1,
      });
    }
    expect(readBootparam(mem).magic).toBe(0xc0ffee00);
    expect(readBootparam(mem).h2cConfigDb).toBe(-1);
    expect(readVqconfig(mem, dpVqconfigOffset(walkDevicePage(mem).entries[1]!, 1)).num).toBe(128);
  });

  it('gives a bounded window on each config space', () => {
    const mem = newPage();
    const net = add(mem, NET);
    const cfg = configSpaceWindow(mem, net);
    expect(cfg.byteLength).toBe(17);
    cfg.writeU8(16, 0x42);
    expect(mem.readU8(net.configspaceOffset + 16)).toBe(0x42);
    expect(() => cfg.writeU8(17, 1)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => dpVqconfigOffset(net, 2)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('works the same on a SharedArrayBuffer page', () => {
    const mem = newPage(true);
    [CONSOLE, NET, BLOCK].forEach((b) => add(mem, b));
    expect(live(walkDevicePage(mem))).toEqual([
      [24, 3],
      [120, 1],
      [224, 2],
    ]);
    expect(loadDpType(mem, 120)).toBe(1);
  });
});

describe('publishing an entry', () => {
  it('keeps a copied entry invisible until publishDpEntry stores its type', () => {
    const mem = newPage();
    add(mem, CONSOLE);
    const p = copyDpEntry(mem, NET);
    expect(p).toMatchObject({ offset: 120, type: 1, slot: 'end' });
    expect(live(walkDevicePage(mem))).toEqual([[24, 3]]);
    expect(walkDevicePage(mem).end).toBe(120);
    publishDpEntry(mem, p);
    expect(live(walkDevicePage(mem))).toEqual([
      [24, 3],
      [120, 1],
    ]);
  });

  it('publishes with one aligned 32-bit store of the header word, after every other write', () => {
    const mem = new RecordingMemory(newPage(true));
    add(mem, CONSOLE);
    mem.accesses.length = 0;
    const p = copyDpEntry(mem, NET);
    deviceCtrlInit(mem, p.ctrlOffset);
    publishDpEntry(mem, p);
    const writes = mem.accesses.filter((a) => a.kind === 'write' || a.kind === 'store');
    const first = writes[0]!;
    const last = writes[writes.length - 1]!;
    expect(first).toMatchObject({ kind: 'store', offset: 120, length: 4 });
    expect([...first.data!]).toEqual([0, 2, 4, 17]);
    expect(last).toMatchObject({ kind: 'store', offset: 120, length: 4 });
    expect([...last.data!]).toEqual([1, 2, 4, 17]);
    const typeWrites = writes.filter((a) => a.offset <= 120 && a.offset + a.length > 120);
    expect(typeWrites.map((a) => a.kind)).toEqual(['store', 'store']);
  });

  it('readers take type and sizes with one acquire load before reading anything else of an entry', () => {
    const inner = newPage(true);
    [CONSOLE, NET, BLOCK].forEach((b) => add(inner, b));
    const mem = new RecordingMemory(inner);
    walkDevicePage(mem);
    expect(mem.accesses.map((a) => [a.kind, a.offset, a.length])).toEqual([
      ['load', 24, 4],
      ['read', 28, 1],
      ['load', 120, 4],
      ['read', 124, 1],
      ['load', 224, 4],
      ['read', 228, 1],
      ['load', 344, 4],
    ]);
  });

  it('rejects publishing twice, a type outside 1..127 or a slot that changed since the copy', () => {
    const mem = newPage();
    const p = copyDpEntry(mem, CONSOLE);
    expect(() => publishDpEntry(mem, { ...p, type: 0 })).toThrow(
      'device type 0 is not an integer in [1, 127]',
    );
    expect(() => publishDpEntry(mem, { ...p, type: -1 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => publishDpEntry(mem, { ...p, configLen: 13 })).toThrow('no longer holds this entry');
    expect(() => publishDpEntry(mem, { ...p, offset: 28 })).toThrow('is not an entry offset');
    publishDpEntry(mem, p);
    expect(() => publishDpEntry(mem, p)).toThrow('was already published (type 3)');
    expect(loadDpType(mem, 24)).toBe(3);
    expect(() => loadDpType(mem, 4096)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('removeDpEntry marks a device removed, is idempotent and refuses the list end', () => {
    const mem = newPage();
    const p = add(mem, CONSOLE);
    removeDpEntry(mem, p.offset);
    removeDpEntry(mem, p.offset);
    expect(loadDpType(mem, p.offset)).toBe(-1);
    expect(walkDevicePage(mem).entries.map((e) => [e.offset, e.type, e.totalDescSize])).toEqual([
      [24, -1, 96],
    ]);
    expect(() => removeDpEntry(mem, 120)).toThrow('holds no device (type 0)');
  });
});

describe('slot allocation', () => {
  function mpssdPage(): BufferMemory {
    const mem = newPage();
    [CONSOLE, NET, BLOCK].forEach((b) => add(mem, b));
    return mem;
  }

  it('reuses a removed slot of the same size in place (mpssd re-adding its device)', () => {
    const mem = mpssdPage();
    removeDpEntry(mem, 120);
    const block = copyOf(mem, 224, 120);
    const p = add(mem, NET);
    expect([p.offset, p.slot]).toEqual([120, 'exact']);
    expect(live(walkDevicePage(mem))).toEqual([
      [24, 3],
      [120, 1],
      [224, 2],
    ]);
    expect(copyOf(mem, 224, 120)).toEqual(block);
  });

  it('QUIRK fixed: skips a smaller removed slot instead of overwriting the next entry', () => {
    const mem = mpssdPage();
    removeDpEntry(mem, 24);
    const netAndBlock = copyOf(mem, 120, 224);
    // The kernel would put this 120-byte entry into the 96-byte slot at 24, over the net entry.
    const p = add(mem, BLOCK);
    expect([p.offset, p.slot]).toEqual([344, 'end']);
    expect(copyOf(mem, 120, 224)).toEqual(netAndBlock);
    expect(walkDevicePage(mem).entries.map((e) => [e.offset, e.type])).toEqual([
      [24, -1],
      [120, 1],
      [224, 2],
      [344, 2],
    ]);
  });

  it('splits a removed slot larger by 24 bytes or more, leaving a removed filler the walk steps over', () => {
    const mem = newPage();
    add(mem, BLOCK);
    add(mem, CONSOLE);
    removeDpEntry(mem, 24);
    const console = copyOf(mem, 144, 96);
    const p = add(mem, template(3, 2, 4, 12, 7));
    expect([p.offset, p.slot]).toEqual([24, 'split']);
    const w = walkDevicePage(mem);
    expect(w.stop).toBe('end-of-list');
    expect(w.entries.map((e) => [e.offset, e.type, e.totalDescSize])).toEqual([
      [24, 3, 96],
      [120, -1, 24],
      [144, 3, 96],
    ]);
    expect(copyOf(mem, 144, 96)).toEqual(console);
  });

  it('skips a removed slot larger by only 8 or 16 bytes, which could not hold a filler', () => {
    const mem = newPage();
    add(mem, NET);
    add(mem, CONSOLE);
    removeDpEntry(mem, 24);
    expect(findDpSlot(mem, { numVq: 2, featureLen: 4, configLen: 12 })).toEqual({
      offset: 224,
      kind: 'end',
      previousTotal: 0,
    });
    const eightSmaller = { numVq: 2, featureLen: 4, configLen: 4 };
    expect(micTotalDescSize(eightSmaller)).toBe(88);
    expect(findDpSlot(mem, eightSmaller).offset).toBe(224);
  });

  it('reuses the last removed entry for a larger device and terminates the list after it', () => {
    const mem = newPage();
    add(mem, CONSOLE);
    add(mem, NET);
    mem.fill(232, MIC_DP_SIZE - 232, 0x7f);
    removeDpEntry(mem, 120);
    const p = add(mem, BLOCK);
    expect([p.offset, p.slot]).toEqual([120, 'last']);
    const w = walkDevicePage(mem);
    expect([w.stop, w.end]).toEqual(['end-of-list', 240]);
    expect(live(w)).toEqual([
      [24, 3],
      [120, 2],
    ]);
  });

  it('reuses the last removed entry for a smaller device and terminates the list inside the old slot', () => {
    const mem = newPage();
    add(mem, CONSOLE);
    add(mem, BLOCK);
    removeDpEntry(mem, 120);
    expect(mem.readU8(216)).toBe(0xff);
    const p = add(mem, CONSOLE);
    expect([p.offset, p.slot]).toEqual([120, 'last']);
    const w = walkDevicePage(mem);
    expect([w.stop, w.end]).toEqual(['end-of-list', 216]);
    expect(live(w)).toEqual([
      [24, 3],
      [120, 3],
    ]);
  });

  it('reports a full page with EINVAL and keeps the kernel bound i < MIC_DP_SIZE - total', () => {
    const mem = newPage();
    const biggest = template(5, 4, 4, 144);
    for (let i = 0; i < 14; i++) expect(add(mem, biggest).offset).toBe(24 + i * 272);
    expect(() => copyDpEntry(mem, biggest)).toThrow('no free device page slot for an entry of 272 bytes');
    // 3832 + 264 = 4096 would fit exactly, but the kernel's strict bound refuses it.
    expect(() => findDpSlot(mem, { numVq: 4, featureLen: 4, configLen: 136 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(add(mem, template(5, 4, 4, 128)).offset).toBe(3832);
    expect(walkDevicePage(mem).entries).toHaveLength(15);
  });

  it('abortDpEntry gives the slot back as removed instead of ending the list there', () => {
    const mem = mpssdPage();
    removeDpEntry(mem, 120);
    const pending = copyDpEntry(mem, NET);
    abortDpEntry(mem, pending);
    expect(walkDevicePage(mem).entries.map((e) => [e.offset, e.type])).toEqual([
      [24, 3],
      [120, -1],
      [224, 2],
    ]);
    const atEnd = copyDpEntry(mem, CONSOLE);
    abortDpEntry(mem, atEnd);
    expect(walkDevicePage(mem).entries.map((e) => [e.offset, e.type])).toEqual([
      [24, 3],
      [120, -1],
      [224, 2],
      [344, -1],
    ]);
    expect(add(mem, CONSOLE).offset).toBe(344);
    expect(() => abortDpEntry(mem, atEnd)).toThrow('was already published (type 3)');
  });

  it('validates the block before touching the page', () => {
    const mem = mpssdPage();
    const before = copyOf(mem, 0, MIC_DP_SIZE);
    const withNum = (num: number): Uint8Array =>
      encodeDescBlock({
        type: 2,
        vqconfigs: [{ address: 0, usedAddress: 0, num }],
        hostFeatures: new Uint8Array(4),
        config: new Uint8Array(8),
      });
    expect(() => copyDpEntry(mem, withNum(256))).toThrow(
      'vqconfig[0].num 256 exceeds MIC_MAX_VRING_ENTRIES 128',
    );
    expect(() => copyDpEntry(mem, template(0, 1, 4, 8))).toThrow('device type 0');
    expect(() => copyDpEntry(mem, template(-1, 1, 4, 8))).toThrow('device type -1');
    expect(() => copyDpEntry(mem, template(1, 5, 0, 0))).toThrow('num_vq 5 exceeds MIC_MAX_VRINGS 4');
    expect(() => copyDpEntry(mem, template(1, 4, 4, 145))).toThrow('exceeds MIC_MAX_DESC_BLK_SIZE 256');
    expect(() => copyDpEntry(mem, CONSOLE.subarray(0, 40))).toThrow('shorter than its mic_desc_size 76');
    expect(copyOf(mem, 0, MIC_DP_SIZE)).toEqual(before);
  });

  it('refuses a memory smaller than a device page with EINVAL', () => {
    expect(() => walkDevicePage(BufferMemory.allocate(4095))).toThrow('a device page needs 4096');
    expect(() => copyDpEntry(BufferMemory.allocate(100), CONSOLE)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});

describe('entries are never seen torn', () => {
  type Scenario = [DpSlotKind, () => BufferMemory, Uint8Array];
  const scenarios: Scenario[] = [
    ['end', () => newPage(true), CONSOLE],
    [
      'exact',
      () => {
        const mem = newPage(true);
        [CONSOLE, NET, BLOCK].forEach((b) => add(mem, b));
        removeDpEntry(mem, 120);
        return mem;
      },
      template(1, 2, 4, 17, 9),
    ],
    [
      'last',
      () => {
        const mem = newPage(true);
        [CONSOLE, NET].forEach((b) => add(mem, b));
        removeDpEntry(mem, 120);
        return mem;
      },
      BLOCK,
    ],
    [
      'split',
      () => {
        const mem = newPage(true);
        [BLOCK, CONSOLE].forEach((b) => add(mem, b));
        removeDpEntry(mem, 24);
        return mem;
      },
      template(3, 2, 4, 12, 5),
    ],
  ];

  it.each(scenarios)(
    'taking a slot of kind %s: after every prefix of the writes a walk sees the old devices intact and the new one whole or not at all',
    (kind, setup, block) => {
      const initial = setup();
      const before = walkDevicePage(initial);
      const oldLive = before.entries.filter((e) => e.type > 0);
      const recorded = new RecordingMemory(setup());
      const p = copyDpEntry(recorded, block);
      deviceCtrlInit(recorded, p.ctrlOffset);
      publishDpEntry(recorded, p);
      expect(p.slot).toBe(kind);
      const final = copyOf(recorded, p.offset, p.totalDescSize);
      const writes = recorded.accesses.filter((a) => a.data !== undefined);
      for (let k = 0; k <= writes.length; k++) {
        const mem = setup();
        for (const w of writes.slice(0, k)) mem.write(w.offset, w.data!);
        const walk = walkDevicePage(mem);
        expect(walk.stop).not.toBe('malformed');
        for (const e of oldLive)
          expect(copyOf(mem, e.offset, e.totalDescSize)).toEqual(copyOf(initial, e.offset, e.totalDescSize));
        const seen = walk.entries.find((e) => e.offset === p.offset && e.type > 0);
        if (seen !== undefined) expect(copyOf(mem, p.offset, p.totalDescSize)).toEqual(final);
        expect(live(walk)).toEqual(
          [...oldLive.map((e) => [e.offset, e.type]), ...(seen ? [[p.offset, p.type]] : [])].sort(
            (a, b) => a[0]! - b[0]!,
          ),
        );
        if (k === writes.length) expect(seen).toBeDefined();
      }
    },
  );
});

describe('hostile device pages', () => {
  /** Mostly plausible headers, so walks go deep, with some wild ones. */
  const headerArb = fc.oneof(
    {
      weight: 30,
      arbitrary: fc.record({
        type: fc.constantFrom(-1, 1, 2, 3),
        numVq: fc.nat({ max: 4 }),
        featureLen: fc.nat({ max: 8 }),
        configLen: fc.nat({ max: 64 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.integer({ min: -128, max: 127 }),
        numVq: fc.nat({ max: 255 }),
        featureLen: fc.nat({ max: 255 }),
        configLen: fc.nat({ max: 255 }),
      }),
    },
  );

  /** Near-valid pages: a chain of plausible headers with random byte flips, or plain random bytes. */
  const pageArb = fc.oneof(
    fc.uint8Array({ minLength: MIC_DP_SIZE - 24, maxLength: MIC_DP_SIZE - 24 }).map((bytes) => {
      const mem = newPage();
      mem.write(24, bytes);
      return mem;
    }),
    fc
      .tuple(
        fc.array(headerArb, { maxLength: 200, size: 'max' }),
        fc.array(fc.tuple(fc.integer({ min: 24, max: MIC_DP_SIZE - 1 }), fc.nat({ max: 255 })), {
          maxLength: 6,
        }),
      )
      .map(([headers, flips]) => {
        const mem = newPage();
        let i = 24;
        for (const h of headers) {
          if (i + 8 > MIC_DP_SIZE) break;
          mem.write(i, Uint8Array.from([h.type & 0xff, h.numVq, h.featureLen, h.configLen]));
          i += micTotalDescSize(h);
        }
        for (const [at, value] of flips) mem.writeU8(at, value);
        return mem;
      }),
  );

  function checkWalk(w: DpWalk, mem: Memory): void {
    let expected = 24;
    for (const e of w.entries) {
      expect(e.offset).toBe(expected);
      expect(e.type === -1 || e.type > 0).toBe(true);
      expect(e.numVq).toBeLessThanOrEqual(4);
      expect(e.alignedDescSize).toBeLessThanOrEqual(256);
      expect(e.offset + e.totalDescSize).toBeLessThanOrEqual(MIC_DP_SIZE);
      expected += e.totalDescSize;
    }
    expect(w.end).toBe(expected);
    expect(w.entries.length).toBeLessThanOrEqual(169);
    if (w.stop === 'end-of-list') expect(mem.readU8(w.end)).toBe(0);
    if (w.stop === 'end-of-page') expect(w.end).toBe(MIC_DP_SIZE);
    if (w.stop === 'malformed') {
      expect(w.error).toMatchObject({ code: 'EIO' });
      expect(w.error?.message).toContain(`device page entry at offset ${w.end} `);
    } else {
      expect(w.error).toBeUndefined();
    }
  }

  it('the walker never throws, never reads outside the page and stops within 170 entries', () => {
    fc.assert(
      fc.property(pageArb, (inner) => {
        const mem = new RecordingMemory(inner);
        const w = walkDevicePage(mem);
        for (const a of mem.accesses) {
          expect(a.offset).toBeGreaterThanOrEqual(0);
          expect(a.offset + a.length).toBeLessThanOrEqual(MIC_DP_SIZE);
        }
        expect(mem.accesses.length).toBeLessThanOrEqual(2 * 170);
        checkWalk(w, inner);
      }),
      { numRuns: 500 },
    );
  });

  it('names the malformed entry, the field and the value', () => {
    const mem = newPage();
    add(mem, CONSOLE);
    mem.write(120, Uint8Array.from([1, 9, 4, 17]));
    expect(walkDevicePage(mem)).toMatchObject({
      stop: 'malformed',
      end: 120,
      error: {
        code: 'EIO',
        message: 'device page entry at offset 120 (type 1): num_vq 9 exceeds MIC_MAX_VRINGS 4',
      },
    });
    mem.write(120, Uint8Array.from([0xfe, 0, 0, 0]));
    expect(walkDevicePage(mem).error?.message).toContain('type -2 is neither a virtio device id nor -1');
    mem.write(120, Uint8Array.from([2, 4, 4, 145]));
    expect(walkDevicePage(mem).error?.message).toContain(
      'aligned desc size 264 exceeds MIC_MAX_DESC_BLK_SIZE 256',
    );
    const full = newPage();
    for (let i = 24; i < 4056; i += 24) full.write(i, Uint8Array.from([0xff, 0, 0, 0]));
    full.write(4056, Uint8Array.from([3, 0, 0, 17]));
    const w = walkDevicePage(full);
    expect(w.entries).toHaveLength(168);
    expect(w.error?.message).toBe(
      'device page entry at offset 4056 (type 3): its 48 bytes run past the end of the 4096-byte device page',
    );
  });

  it('allocation on a hostile page either fails with a MicError and no write, or disturbs no device the walk saw', () => {
    fc.assert(
      fc.property(pageArb, (mem) => {
        const before = copyOf(mem, 0, MIC_DP_SIZE);
        const w = walkDevicePage(mem);
        let p: DpPendingEntry;
        try {
          p = copyDpEntry(mem, CONSOLE);
        } catch (err) {
          expect(isMicError(err)).toBe(true);
          expect(['EINVAL', 'EIO']).toContain((err as { code: string }).code);
          expect(copyOf(mem, 0, MIC_DP_SIZE)).toEqual(before);
          return;
        }
        for (const e of w.entries.filter((x) => x.type > 0)) {
          expect(copyOf(mem, e.offset, e.totalDescSize)).toEqual(
            before.slice(e.offset, e.offset + e.totalDescSize),
          );
        }
        publishDpEntry(mem, p);
        const after = walkDevicePage(mem);
        expect(after.entries.some((e) => e.offset === p.offset && e.type === 3)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('any sequence of adds, aborts and removes', () => {
  const opArb = fc.oneof(
    fc
      .record({
        op: fc.constant('add' as const),
        type: fc.integer({ min: 1, max: 127 }),
        numVq: fc.nat({ max: 4 }),
        featureLen: fc.nat({ max: 8 }),
        configLen: fc.nat({ max: 140 }),
        fill: fc.nat({ max: 255 }),
        abort: fc.boolean(),
      })
      .filter((h) => micTotalDescSize(h) <= 272),
    fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }),
  );

  it('keeps every live device byte-identical, never overlaps two devices and keeps the page walkable', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        const mem = newPage();
        const model = new Map<number, { type: number; bytes: number[]; total: number }>();
        for (const op of ops) {
          if (op.op === 'remove') {
            const offsets = [...model.keys()];
            if (offsets.length === 0) continue;
            const at = offsets[op.pick % offsets.length]!;
            removeDpEntry(mem, at);
            model.delete(at);
          } else {
            const block = template(op.type, op.numVq, op.featureLen, op.configLen, op.fill);
            let p: DpPendingEntry;
            try {
              p = copyDpEntry(mem, block);
            } catch (err) {
              expect(err).toMatchObject({
                code: 'EINVAL',
                message: expect.stringContaining('no free device page slot'),
              });
              continue;
            }
            for (const [at, e] of model) {
              expect(p.offset + p.totalDescSize <= at || at + e.total <= p.offset).toBe(true);
            }
            if (op.abort) {
              abortDpEntry(mem, p);
            } else {
              deviceCtrlInit(mem, p.ctrlOffset);
              publishDpEntry(mem, p);
              model.set(p.offset, { type: op.type, bytes: [...block], total: p.totalDescSize });
            }
          }
          const w = walkDevicePage(mem);
          expect(w.stop).not.toBe('malformed');
          expect(live(w)).toEqual([...model].map(([at, e]) => [at, e.type]).sort((a, b) => a[0]! - b[0]!));
          for (const [at, e] of model) expect(copyOf(mem, at, e.bytes.length)).toEqual(e.bytes);
        }
      }),
      { numRuns: 300 },
    );
  });
});
