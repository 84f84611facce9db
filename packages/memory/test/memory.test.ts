import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { BufferMemory, CheckedView, checkRange, copyMemory, type Memory } from '../src/index.js';

/**
 * A memory whose accesses have an effect (like an MMIO window): it forwards to a BufferMemory and
 * logs every access, so a test sees whether a caller went through it.
 */
class LoggingMemory implements Memory {
  readonly log: string[] = [];
  readonly #inner: BufferMemory;
  constructor(inner: BufferMemory) {
    this.#inner = inner;
  }
  get byteLength(): number {
    return this.#inner.byteLength;
  }
  get shared(): boolean {
    return this.#inner.shared;
  }
  readU8(o: number): number {
    return this.#inner.readU8(o);
  }
  readU16(o: number): number {
    return this.#inner.readU16(o);
  }
  readU32(o: number): number {
    return this.#inner.readU32(o);
  }
  readU64(o: number): number {
    return this.#inner.readU64(o);
  }
  readBigU64(o: number): bigint {
    return this.#inner.readBigU64(o);
  }
  writeU8(o: number, v: number): void {
    this.#inner.writeU8(o, v);
  }
  writeU16(o: number, v: number): void {
    this.#inner.writeU16(o, v);
  }
  writeU32(o: number, v: number): void {
    this.#inner.writeU32(o, v);
  }
  writeU64(o: number, v: number): void {
    this.#inner.writeU64(o, v);
  }
  writeBigU64(o: number, v: bigint): void {
    this.#inner.writeBigU64(o, v);
  }
  loadU8(o: number): number {
    return this.#inner.loadU8(o);
  }
  storeU8(o: number, v: number): void {
    this.#inner.storeU8(o, v);
  }
  loadU16(o: number): number {
    return this.#inner.loadU16(o);
  }
  storeU16(o: number, v: number): void {
    this.#inner.storeU16(o, v);
  }
  loadU32(o: number): number {
    return this.#inner.loadU32(o);
  }
  storeU32(o: number, v: number): void {
    this.#inner.storeU32(o, v);
  }
  read(o: number, dst: Uint8Array): void {
    this.log.push(`read ${o} +${dst.length}`);
    this.#inner.read(o, dst);
  }
  write(o: number, src: Uint8Array): void {
    this.log.push(`write ${o} +${src.length}`);
    this.#inner.write(o, src);
  }
  fill(o: number, n: number, v: number): void {
    this.#inner.fill(o, n, v);
  }
  window(o: number, n: number): Memory {
    return new LoggingMemory(this.#inner.window(o, n));
  }
}

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

  it('byte loads and stores (the flags of ioread8/iowrite8) work shared and plain, at any offset', () => {
    for (const shared of [true, false]) {
      const mem = BufferMemory.allocate(16, { shared });
      const w = mem.window(3, 8);
      w.storeU8(5, 0x1ab);
      expect(mem.readU8(8)).toBe(0xab);
      expect(w.loadU8(5)).toBe(0xab);
      expect(() => w.loadU8(8)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
      expect(() => w.storeU8(-1, 0)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    }
  });

  it('rejects u64 values that are not safe integers', () => {
    expect(() => BufferMemory.allocate(8).writeU64(0, 2 ** 53)).toThrow('not a non-negative safe integer');
  });

  it('small and large reads give the same bytes whatever the alignment and however often a buffer comes back', () => {
    // Reads of up to 64 bytes take word paths when aligned (and a kept word view of a destination
    // that comes twice in a row); every path must give the bytes a plain copy gives.
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.record({ off: fc.nat(200), dst: fc.nat(7), viaView: fc.boolean() }), { maxLength: 40 }),
        (shared, reads) => {
          const mem = BufferMemory.allocate(512, { shared });
          for (let i = 0; i < 512; i++) mem.writeU8(i, (i * 37 + 11) & 0xff);
          const expected = Uint8Array.from({ length: 512 }, (_, i) => (i * 37 + 11) & 0xff);
          const other = new ArrayBuffer(256);
          const dsts = [
            new Uint8Array(64),
            new Uint8Array(16),
            new Uint8Array(5),
            new Uint8Array(other, 1, 8), // misaligned
            new Uint8Array(other, 16, 64),
            new Uint8Array(100), // above the small-copy size
            mem.bytes(300, 64), // inside the memory read from, apart from every source range
            new Uint8Array(new SharedArrayBuffer(64)),
          ];
          const view = new CheckedView(mem, 0, 280);
          for (const r of reads) {
            const dst = dsts[r.dst]!;
            const off = Math.min(r.off, 280 - dst.length);
            if (r.viaView) view.read(off, dst);
            else mem.read(off, dst);
            expect([...dst]).toEqual([...expected.subarray(off, off + dst.length)]);
          }
        },
      ),
    );
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

  it('copyMemory goes through read and write of a memory that is not buffer-backed', () => {
    const a = BufferMemory.allocate(64);
    for (let i = 0; i < 64; i++) a.writeU8(i, i);
    const logged = new LoggingMemory(BufferMemory.allocate(64));
    copyMemory(logged, 8, a, 4, 16);
    expect(logged.log).toEqual(['write 8 +16']);
    expect(logged.readU32(8)).toBe(0x07060504);
    copyMemory(a, 40, logged, 8, 16);
    expect(logged.log).toEqual(['write 8 +16', 'read 8 +16']);
    expect(a.readU32(40)).toBe(0x07060504);
    expect(() => copyMemory(logged, 60, a, 0, 8)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(logged.log).toHaveLength(2);
  });

  it('copyMemory through read and write is a memmove too when both sides alias one buffer', () => {
    fc.assert(
      fc.property(fc.nat(48), fc.nat(48), fc.nat(16), (src, dst, len) => {
        const mem = BufferMemory.allocate(64);
        for (let i = 0; i < 64; i++) mem.writeU8(i, i);
        const expected = Uint8Array.from({ length: 64 }, (_, i) => i);
        expected.copyWithin(dst, src, src + len);
        copyMemory(new LoggingMemory(mem), dst, mem, src, len);
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

describe('CheckedView', () => {
  it('is checked once when made: EFAULT for a range outside the memory', () => {
    const mem = BufferMemory.allocate(64);
    expect(() => new CheckedView(mem, 60, 8)).toThrow('checked view: range [60, +8) is outside 64 bytes');
    expect(() => new CheckedView(mem.window(16, 16), 0, 17)).toThrow(
      expect.objectContaining({ code: 'EFAULT' }),
    );
    expect(new CheckedView(mem).byteLength).toBe(64);
    expect(new CheckedView(mem, 8).byteLength).toBe(56);
  });

  it('reads and writes the same little-endian bytes as the memory it views', () => {
    const mem = BufferMemory.allocate(64, { shared: true });
    const v = new CheckedView(mem.window(16, 32), 8, 24); // bytes [24, 48) of mem
    v.writeU16(0, 0x1234);
    v.writeU32(4, 0xc0ffee00);
    v.writeU64(8, 2 ** 40 + 5);
    v.writeU64(16, 0xfffffffe);
    expect([...mem.bytes(24, 2)]).toEqual([0x34, 0x12]);
    expect(mem.readU32(28)).toBe(0xc0ffee00);
    expect(mem.readU64(32)).toBe(2 ** 40 + 5);
    expect(mem.readU64(40)).toBe(0xfffffffe);
    expect(v.readU64(8)).toBe(2 ** 40 + 5);
    v.writeU8(23, 0xab);
    expect(v.readU8(23)).toBe(0xab);
    expect(mem.readU8(47)).toBe(0xab);
  });

  it('u64 writes match Memory.writeU64 across the 32-bit boundary', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (value) => {
        const a = BufferMemory.allocate(8);
        const b = BufferMemory.allocate(8);
        a.writeU64(0, value);
        new CheckedView(b).writeU64(0, value);
        expect([...b.bytes(0, 8)]).toEqual([...a.bytes(0, 8)]);
        expect(new CheckedView(a).readU64(0)).toBe(value);
      }),
    );
  });

  it('never reaches a byte outside itself, even at a wrong offset', () => {
    const mem = BufferMemory.allocate(64, { shared: true });
    mem.fill(0, 64, 0x5a);
    const v = new CheckedView(mem, 16, 16);
    expect(() => v.readU32(14)).toThrow(RangeError);
    expect(() => v.writeU8(16, 1)).toThrow(RangeError);
    expect(() => v.storeU16(16, 1)).toThrow(RangeError);
    expect(() => v.read(12, new Uint8Array(8))).toThrow(
      'checked view read: range [12, +8) is outside 16 bytes',
    );
    expect(() => v.write(-1, new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => v.fill(8, 9, 0)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(mem.bytes(0, 64).every((b) => b === 0x5a)).toBe(true);
  });

  it('copies small and large ranges both ways and fills', () => {
    const mem = BufferMemory.allocate(4096, { shared: true });
    const v = new CheckedView(mem, 1024, 2048);
    for (const n of [1, 3, 64, 65, 1000]) {
      const src = Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff);
      v.write(5, src);
      expect(mem.bytes(1029, n)).toEqual(src);
      const back = new Uint8Array(n);
      v.read(5, back);
      expect(back).toEqual(src);
    }
    v.fill(0, 2048, 0);
    expect(mem.bytes(1024, 2048).every((b) => b === 0)).toBe(true);
  });

  it('atomics need natural alignment on shared memory and are plain accesses otherwise', () => {
    const shared = BufferMemory.allocate(64, { shared: true });
    const v = new CheckedView(shared, 4, 32);
    v.storeU16(2, 0xbeef);
    v.storeU32(8, 0xdeadbeef);
    expect(shared.readU16(6)).toBe(0xbeef);
    expect(v.loadU16(2)).toBe(0xbeef);
    expect(v.loadU32(8)).toBe(0xdeadbeef);
    expect(() => v.loadU16(1)).toThrow('atomic 16-bit access at offset 1 is not aligned');
    expect(() => v.storeU32(2, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const odd = new CheckedView(shared, 1, 32);
    expect(() => odd.loadU16(0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const plain = new CheckedView(BufferMemory.allocate(64), 1, 32);
    plain.storeU16(0, 0x1234);
    plain.storeU32(3, 0x89abcdef);
    expect([plain.loadU16(0), plain.loadU32(3)]).toEqual([0x1234, 0x89abcdef]);
  });

  it('takes only buffer-backed memory: a memory with effects cannot be wrapped', () => {
    const logged: Memory = new LoggingMemory(BufferMemory.allocate(64));
    // @ts-expect-error a Memory is not a BufferMemory: the checked view would bypass its accesses
    expect(() => new CheckedView(logged)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('needs a BufferMemory') }),
    );
  });
});
