import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { BufferMemory } from '@mic/memory';
import { MemoryPool, RangeAllocator } from '../src/index.js';

describe('RangeAllocator', () => {
  it('hands out aligned ranges first fit and reuses freed space after coalescing', () => {
    const a = new RangeAllocator(4096, 4096 + 16384, 'test RAM');
    const x = a.alloc(100);
    const y = a.alloc(4096, 4096);
    expect(x).toBe(4096);
    expect(y).toBe(8192);
    expect(a.alloc(10, 64)).toBe(4096 + 128);
    a.free(x);
    expect(a.alloc(64)).toBe(4096);
    a.reset();
    expect(a.alloc(16384)).toBe(4096);
    expect(a.freeBytes).toBe(0);
  });

  it('fails with ENOMEM when nothing fits and EINVAL for bad requests', () => {
    const a = new RangeAllocator(0, 8192, 'test RAM');
    a.alloc(4096, 4096);
    expect(() => a.alloc(8192)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    expect(() => a.alloc(0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => a.alloc(8, 3)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => a.free(1234)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('never overlaps, stays in bounds and respects alignment over random sequences', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('alloc' as const),
              size: fc.integer({ min: 1, max: 3000 }),
              shift: fc.nat(8),
            }),
            fc.record({ op: fc.constant('free' as const), pick: fc.nat() }),
          ),
          { maxLength: 80 },
        ),
        (ops) => {
          const start = 4096;
          const end = start + 32768;
          const a = new RangeAllocator(start, end, 'test RAM');
          const live = new Map<number, number>();
          for (const op of ops) {
            if (op.op === 'alloc') {
              const align = 2 ** op.shift;
              let at: number;
              try {
                at = a.alloc(op.size, align);
              } catch (err) {
                expect(err).toMatchObject({ code: 'ENOMEM' });
                continue;
              }
              expect(at % align).toBe(0);
              expect(at).toBeGreaterThanOrEqual(start);
              expect(at + op.size).toBeLessThanOrEqual(end);
              for (const [s, n] of live) expect(at + op.size <= s || s + n <= at).toBe(true);
              live.set(at, op.size);
            } else if (live.size > 0) {
              const keys = [...live.keys()];
              const k = keys[op.pick % keys.length]!;
              a.free(k);
              live.delete(k);
            }
            expect(a.usedBytes).toBe([...live.values()].reduce((s, n) => s + n, 0));
          }
          for (const k of live.keys()) a.free(k);
          expect(a.alloc(32768)).toBe(start);
        },
      ),
    );
  });

  it('allocates aligned, disjoint ranges and reuses freed space', () => {
    const a = new RangeAllocator(4096, 65536);
    const x = a.alloc(100, 64);
    const y = a.alloc(4096, 4096);
    expect(x % 64).toBe(0);
    expect(y % 4096).toBe(0);
    expect(y >= x + 100 || y + 4096 <= x).toBe(true);
    a.free(x);
    expect(a.alloc(100, 64)).toBe(x);
    expect(() => a.free(12345)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => a.alloc(1 << 20)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
  });

  it('never hands out overlapping ranges and gets all space back after freeing everything', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3000 }), fc.constantFrom(1, 64, 4096), fc.boolean()), {
          maxLength: 40,
        }),
        (ops) => {
          const a = new RangeAllocator(0, 1 << 16);
          const live: [number, number][] = [];
          for (const [size, align, freeOne] of ops) {
            if (freeOne && live.length > 0) {
              const [off] = live.splice(0, 1)[0]!;
              a.free(off);
              continue;
            }
            let off: number;
            try {
              off = a.alloc(size, align);
            } catch {
              continue;
            }
            expect(off % align).toBe(0);
            for (const [o, s] of live) expect(off + size <= o || o + s <= off).toBe(true);
            live.push([off, size]);
          }
          for (const [off] of live) a.free(off);
          expect(a.usedBytes).toBe(0);
          expect(a.count).toBe(0);
          expect(a.alloc(1 << 16)).toBe(0);
        },
      ),
    );
  });

  it('names the range in its errors and refuses alignments that are not powers of two', () => {
    expect(() => new RangeAllocator(10, 5, 'card memory')).toThrow('card memory: range [10, 5) is not valid');
    const a = new RangeAllocator(0, 4096, 'card memory');
    expect(() => a.alloc(8192)).toThrow(
      expect.objectContaining({ code: 'ENOMEM', message: expect.stringContaining('card memory') }),
    );
    expect(() => a.free(64)).toThrow('card memory: 0x40 is not an allocated address');
    for (const align of [0, 3, 96, 2 ** 31 + 2 ** 30, 0.5]) {
      expect(() => a.alloc(8, align)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(a.alloc(8, 2 ** 40)).toBe(0);
    expect([a.count, a.usedBytes, a.sizeOf(0), a.sizeOf(8)]).toEqual([1, 8, 8, undefined]);
  });
});

describe('MemoryPool', () => {
  it('hands out zeroed windows past its reserve and takes them back', () => {
    const mem = BufferMemory.allocate(1 << 16);
    mem.fill(0, mem.byteLength, 0xaa);
    const pool = new MemoryPool(mem, { name: 'test RAM' });
    const a = pool.alloc(100, 64);
    expect(a.offset).toBe(4096);
    expect(a.mem.byteLength).toBe(100);
    expect([a.mem.readU8(0), a.mem.readU8(99), mem.readU8(4096 + 100)]).toEqual([0, 0, 0xaa]);
    expect(() => a.mem.readU8(100)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect([pool.usedBytes, pool.count, pool.sizeOf(a.offset)]).toEqual([100, 1, 100]);
    pool.free(a.offset);
    expect(() => pool.free(a.offset)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(pool.alloc(60 * 1024, 4096).offset).toBe(4096);
    expect(() => pool.alloc(8192)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    expect(new MemoryPool(mem, { reserve: 0 }).alloc(8).offset).toBe(0);
    expect(() => new MemoryPool(mem, { reserve: -1 })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
