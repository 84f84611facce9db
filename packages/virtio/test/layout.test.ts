import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { BufferMemory } from '@mic/memory';
import {
  AVAIL,
  DESC,
  MockDeviceRing,
  USED,
  VIRTIO_F,
  VIRTQUEUE_MAX_SIZE,
  Virtqueue,
  Vringh,
  VringhIov,
  alignUp,
  availEventOffset,
  availRingSize,
  checkQueueSize,
  descTableSize,
  featureBit,
  features,
  hasFeature,
  isPowerOfTwo,
  ringWindows,
  usedEventOffset,
  usedRingSize,
  vringLayout,
  vringNeedEvent,
  vringSize,
} from '../src/index.js';

/** virtio 1.2 §2.7 / Linux `vring_size()`, written out independently of the code under test. */
const specVringSize = (num: number, align: number): number =>
  ((16 * num + 2 * (3 + num) + align - 1) & ~(align - 1)) + 6 + 8 * num;

describe('split ring layout (virtio 1.2 §2.7, legacy vring_init)', () => {
  it('gives 5126 bytes for the MIC ring of 128 entries aligned to 4096', () => {
    expect(vringSize(128, 4096)).toBe(5126);
  });

  it('places desc at 0, avail at 2048 and used at 4096 for 128 entries aligned to 4096', () => {
    expect(vringLayout(128, 4096)).toEqual({ num: 128, desc: 0, avail: 2048, used: 4096, size: 5126 });
  });

  it('puts used_event at 2308 and avail_event at 5124 for the 128-entry ring', () => {
    const l = vringLayout(128, 4096);
    expect(l.avail + usedEventOffset(128)).toBe(2308);
    expect(l.used + availEventOffset(128)).toBe(5124);
    // avail_event is the last field: the ring ends right after it.
    expect(l.used + availEventOffset(128) + 2).toBe(l.size);
  });

  it('computes the part sizes of the spec: 16·num, 6 + 2·num and 6 + 8·num', () => {
    expect(descTableSize(128)).toBe(2048);
    expect(availRingSize(128)).toBe(262);
    expect(usedRingSize(128)).toBe(1030);
    expect(usedEventOffset(4)).toBe(AVAIL.RING + 8);
    expect(availEventOffset(4)).toBe(USED.RING + 32);
  });

  it.each([
    [1, 2, 38],
    [1, 4096, 4110],
    [4, 16, 118],
    [8, 2, 220],
    [16, 64, 454],
    [128, 4096, 5126],
    [256, 4096, 10246],
    [1024, 4096, 28678],
    [32768, 2, 851980],
    [32768, 4096, 856070],
  ])('vringSize(%i, %i) is %i, as the spec formula gives', (num, align, size) => {
    expect(specVringSize(num, align)).toBe(size);
    expect(vringSize(num, align)).toBe(size);
  });

  it('agrees with the spec formula for every power-of-two size and alignment', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 1, max: 16 }), (k, a) => {
        const num = 2 ** k;
        const align = 2 ** a;
        const l = vringLayout(num, align);
        expect(vringSize(num, align)).toBe(specVringSize(num, align));
        expect(l.avail).toBe(16 * num);
        expect(l.used % align).toBe(0);
        expect(l.used).toBeGreaterThanOrEqual(l.avail + availRingSize(num));
        expect(l.used - (l.avail + availRingSize(num))).toBeLessThan(align);
        expect(l.used + usedRingSize(num)).toBe(l.size);
      }),
    );
  });

  it('shifts every part by the base address', () => {
    expect(vringLayout(128, 4096, 8192)).toEqual({
      num: 128,
      desc: 8192,
      avail: 8192 + 2048,
      used: 8192 + 4096,
      size: 5126,
    });
  });

  it('rejects a base that is not a multiple of the alignment', () => {
    expect(() => vringLayout(128, 4096, 100)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('ring base 100') }),
    );
    expect(() => vringLayout(128, 4096, -4096)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it.each([0, 1, 3, 6, 0.5, NaN])('rejects ring alignment %p with EINVAL naming it', (align) => {
    expect(() => vringSize(8, align)).toThrow(
      expect.objectContaining({
        code: 'EINVAL',
        message: expect.stringContaining(`ring alignment ${String(align)}`),
      }),
    );
  });

  it('rounds up to a power-of-two alignment', () => {
    expect(alignUp(0, 64)).toBe(0);
    expect(alignUp(1, 64)).toBe(64);
    expect(alignUp(64, 64)).toBe(64);
    expect(alignUp(5126, 4)).toBe(5128);
  });
});

describe('queue sizes', () => {
  it.each(Array.from({ length: 16 }, (_, k) => 2 ** k))('accepts %i', (num) => {
    expect(() => checkQueueSize(num)).not.toThrow();
    expect(isPowerOfTwo(num)).toBe(true);
    expect(vringSize(num, 4096)).toBe(specVringSize(num, 4096));
  });

  it('has a maximum of 32768', () => {
    expect(VIRTQUEUE_MAX_SIZE).toBe(32768);
  });

  it.each([0, 3, 100, 65536, 1.5, -2, NaN, Infinity, -Infinity, 2 ** 31, 32767, 32769])(
    'rejects %p with EINVAL naming the value',
    (num) => {
      const expected = expect.objectContaining({
        code: 'EINVAL',
        message: expect.stringContaining(`queue size ${String(num)} `),
        details: { num },
      });
      expect(() => checkQueueSize(num)).toThrow(expected);
      expect(() => vringSize(num, 4096)).toThrow(expected);
      expect(() => vringLayout(num, 4096)).toThrow(expected);
    },
  );

  it('is refused by both ring sides when it is not a power of two', () => {
    const mem = BufferMemory.allocate(1 << 16);
    const parts = { num: 100, mem, desc: 0, avail: 2048, used: 4096 };
    expect(() => new Vringh(parts)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => new Virtqueue(parts)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});

describe('ring windows', () => {
  const mem = BufferMemory.allocate(8192);

  it('refuse a descriptor table that is not 16-byte aligned', () => {
    expect(() => ringWindows({ num: 8, mem, desc: 8, avail: 256, used: 512 })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('descriptor table at 8') }),
    );
  });

  it('refuse an odd avail ring and a used ring that is not 4-byte aligned', () => {
    expect(() => ringWindows({ num: 8, mem, desc: 0, avail: 129, used: 512 })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('avail ring') }),
    );
    expect(() => ringWindows({ num: 8, mem, desc: 0, avail: 128, used: 514 })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('used ring') }),
    );
  });

  it('refuse a part that does not fit in its memory with EFAULT', () => {
    expect(() => ringWindows({ num: 8, mem, desc: 0, avail: 128, used: 8192 - 8 * 8 - 4 })).toThrow(
      expect.objectContaining({ code: 'EFAULT', message: expect.stringContaining('used ring') }),
    );
    expect(() => ringWindows({ num: 1024, mem, desc: 0, avail: 0, used: 0 })).toThrow(
      expect.objectContaining({ code: 'EFAULT', message: expect.stringContaining('descriptor table') }),
    );
  });

  it('cannot reach outside their part of the ring', () => {
    const w = ringWindows({ num: 8, mem, desc: 0, avail: 128, used: 256 });
    expect(w.desc.byteLength).toBe(128);
    expect(w.avail.byteLength).toBe(22);
    expect(w.used.byteLength).toBe(70);
    // Accesses skip per-call checks; the view's own bounds are the backstop.
    expect(() => w.avail.readU16(22)).toThrow(RangeError);
    expect(() => w.desc.readU64(128)).toThrow(RangeError);
  });

  it('may put the used ring in another memory, as VOP relocates it to card memory', () => {
    const card = BufferMemory.allocate(4096);
    const host = BufferMemory.allocate(4096);
    const parts = { num: 4, mem: host, desc: 0, avail: 64, used: 128, usedMem: card };
    const vq = new Virtqueue<string>(parts);
    const vrh = new Vringh({ ...parts, dataMem: host });
    vq.add([{ addr: 1024, len: 4 }], [], 'a');
    const riov = new VringhIov();
    const wiov = new VringhIov();
    const r = vrh.getDesc(riov, wiov);
    expect(r).toEqual({ status: 'chain', head: 0 });
    vrh.complete(0, 0);
    expect(card.readU16(128 + USED.IDX)).toBe(1);
    expect(host.readU16(128 + USED.IDX)).toBe(0);
    expect(vq.getBuf()).toEqual({ token: 'a', len: 0 });
  });
});

describe('the byte positions both sides write (virtio 1.2 §2.7)', () => {
  it('match the spec offsets of the 128-entry ring', () => {
    const mem = BufferMemory.allocate(16384);
    const l = vringLayout(128, 4096);
    const parts = { num: 128, mem, desc: l.desc, avail: l.avail, used: l.used, eventIdx: true };
    const vq = new Virtqueue<number>(parts);
    const vrh = new Vringh(parts);
    vq.add([{ addr: 8192, len: 0x10 }], [{ addr: 8448, len: 0x20 }], 7);
    // Descriptor 0 at 0: le64 addr, le32 len, le16 flags (NEXT), le16 next = 1.
    expect(mem.readU64(0 + DESC.ADDR)).toBe(8192);
    expect(mem.readU32(0 + DESC.LEN)).toBe(0x10);
    expect(mem.readU16(0 + DESC.FLAGS)).toBe(1);
    expect(mem.readU16(0 + DESC.NEXT)).toBe(1);
    // Descriptor 1 at 16: WRITE, no NEXT.
    expect(mem.readU64(16)).toBe(8448);
    expect(mem.readU32(24)).toBe(0x20);
    expect(mem.readU16(28)).toBe(2);
    // avail.idx at 2050, avail.ring[0] at 2052.
    expect(mem.readU16(2050)).toBe(1);
    expect(mem.readU16(2052)).toBe(0);
    vq.disableCb();
    expect(mem.readU16(2308)).toBe(0x8000); // used_event, half the index space behind
    vq.enableCb();
    expect(mem.readU16(2308)).toBe(0);
    const riov = new VringhIov();
    const wiov = new VringhIov();
    vrh.getDesc(riov, wiov);
    vrh.complete(0, 0x18);
    // used.idx at 4098, used.ring[0] = { id, len } at 4100.
    expect(mem.readU16(4098)).toBe(1);
    expect(mem.readU32(4100)).toBe(0);
    expect(mem.readU32(4104)).toBe(0x18);
    vrh.notifyEnable();
    expect(mem.readU16(5124)).toBe(1); // avail_event = next avail index the device will read
    expect(vq.getBuf()).toEqual({ token: 7, len: 0x18 });
    expect(mem.readU16(2308)).toBe(1); // used_event follows the driver's last used index
    // The mock device reads the same bytes.
    expect(new MockDeviceRing(parts).availIdx).toBe(1);
  });
});

describe('vringNeedEvent', () => {
  it.each([
    // event, new, old, expected
    [0, 1, 0, true],
    [1, 1, 0, false],
    [0, 0, 0, false],
    [5, 10, 0, true],
    [9, 10, 0, true],
    [10, 10, 0, false],
    [11, 10, 0, false],
    [0xffff, 10, 0, false],
    [4, 5, 4, true],
    [3, 5, 4, false],
    // wrap-around of the 16-bit indices
    [0xfffe, 1, 0xfffe, true],
    [0xffff, 1, 0xfffe, true],
    [0, 1, 0xfffe, true],
    [1, 1, 0xfffe, false],
    [0xfffd, 1, 0xfffe, false],
    [0xffff, 0, 0xffff, true],
    [0, 0, 0xffff, false],
  ])('event %i, new %i, old %i → %p', (event, newIdx, oldIdx, expected) => {
    expect(vringNeedEvent(event, newIdx, oldIdx)).toBe(expected);
  });

  it('is true exactly when the event index lies in [old, new) modulo 2^16', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        (event, oldIdx, step) => {
          const newIdx = (oldIdx + step) & 0xffff;
          const inWindow = ((event - oldIdx) & 0xffff) < step;
          expect(vringNeedEvent(event, newIdx, oldIdx)).toBe(inWindow);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('feature bits', () => {
  it('build and test 64-bit feature sets', () => {
    const f = features(VIRTIO_F.RING_INDIRECT_DESC, VIRTIO_F.RING_EVENT_IDX, VIRTIO_F.VERSION_1);
    expect(f).toBe((1n << 28n) | (1n << 29n) | (1n << 32n));
    expect(hasFeature(f, VIRTIO_F.VERSION_1)).toBe(true);
    expect(hasFeature(f, VIRTIO_F.RING_PACKED)).toBe(false);
    expect(featureBit(63)).toBe(0x8000000000000000n);
  });
});
