import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { BufferMemory, checkRange, copyMemory } from '../src/index.js';

describe('BufferMemory', () => {
  it('reads and writes little-endian integers of every width', () => {
    const mem = BufferMemory.allocate(32);
    mem.writeU16(0, 0x1234);
    mem.writeU32(4, 0xc0ffee00);
    mem.writeU64(8, 2 ** 40 + 5);
    mem.writeBigU64(16, 0xfedcba9876543210n);
    expect([...mem.bytes(0, 2)]).toEqual([0x34, 0x12]);
    expect([...mem.bytes(4, 4)]).toEqual([0x00, 0xee, 0xff, 0xc0]);
    expect(mem.readU32(4)).toBe(0xc0ffee00);
    expect(mem.readU64(8)).toBe(2 ** 40 + 5);
    expect(mem.readBigU64(16)).toBe(0xfedcba9876543210n);
    expect(mem.readU64(16)).toBeGreaterThanOrEqual(2 ** 53);
  });

  it('rejects every access outside the view with EFAULT naming the range', () => {
    const mem = BufferMemory.allocate(16);
    expect(() => mem.readU32(13)).toThrow('range [13, +4) is outside 16 bytes');
    expect(() => mem.readU8(-1)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => mem.write(10, new Uint8Array(7))).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => mem.readU16(1.5)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => mem.window(8, 9)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
  });

  it('a window cannot reach outside itself and shares the bytes', () => {
    const mem = BufferMemory.allocate(64, { shared: true });
    const w = mem.window(16, 16);
    w.writeU32(0, 7);
    expect(mem.readU32(16)).toBe(7);
    expect(() => w.readU8(16)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(w.shared).toBe(true);
  });

  it('atomic accesses need natural alignment in the underlying buffer', () => {
    const mem = BufferMemory.allocate(64, { shared: true });
    mem.storeU16(2, 0xbeef);
    expect(mem.loadU16(2)).toBe(0xbeef);
    expect(mem.readU16(2)).toBe(0xbeef);
    mem.storeU32(8, 0xdeadbeef);
    expect(mem.readU32(8)).toBe(0xdeadbeef);
    expect(() => mem.loadU16(3)).toThrow('not aligned');
    expect(() => mem.window(1, 8).loadU16(0)).toThrow('not aligned');
    const plain = BufferMemory.allocate(8);
    plain.storeU32(0, 9);
    expect(plain.loadU32(0)).toBe(9);
  });

  it('rejects u64 values that are not safe integers', () => {
    expect(() => BufferMemory.allocate(8).writeU64(0, 2 ** 53)).toThrow('not a non-negative safe integer');
  });

  it('copyMemory behaves like memmove inside one buffer', () => {
    fc.assert(
      fc.property(fc.nat(48), fc.nat(48), fc.nat(16), (src, dst, len) => {
        const mem = BufferMemory.allocate(64);
        for (let i = 0; i < 64; i++) mem.writeU8(i, i);
        const expected = Uint8Array.from({ length: 64 }, (_, i) => i);
        expected.copyWithin(dst, src, src + len);
        copyMemory(mem, dst, mem, src, len);
        expect([...mem.bytes(0, 64)]).toEqual([...expected]);
      }),
    );
  });

  it('checkRange accepts exact fits and rejects one byte more', () => {
    expect(() => checkRange('x', 0, 16, 16)).not.toThrow();
    expect(() => checkRange('x', 1, 16, 16)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => checkRange('x', 2 ** 60, 1, 16)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
  });
});
