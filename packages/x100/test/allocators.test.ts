import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { RangeAllocator, X100Hardware, X100HostView } from '../src/index.js';

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
});

describe('host DMA buffers', () => {
  it('are zeroed, bounds-checked, never at DMA address 0, and seen by the host at their DMA address', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    const host = new X100HostView(hw, { delivery: 'microtask' });
    const a = host.allocDma(128);
    expect(a.dmaAddr).toBeGreaterThan(0);
    a.mem.fill(0, 128, 0xaa);
    expect(host.dmaWindow(a.dmaAddr, 128).readU8(127)).toBe(0xaa);
    expect(() => a.mem.readU8(128)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    host.freeDma(a);
    const b = host.allocDma(128);
    expect(b.dmaAddr).toBe(a.dmaAddr);
    expect(b.mem.readU8(5)).toBe(0);
    expect(host.dmaBytesInUse).toBe(128);
    expect(host.allocDma(4096, 4096).dmaAddr % 4096).toBe(0);
    expect(() => host.allocDma(1 << 20)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    expect(() => host.dmaWindow((1 << 20) - 4, 8)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => host.apertureWindow((1 << 20) - 4, 8)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
  });

  it('give back the DMA address of any window of host RAM, and refuse other memory', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    const host = new X100HostView(hw, { delivery: 'microtask' });
    const a = host.allocDma(256);
    expect(host.dmaAddrOf(a.mem)).toBe(a.dmaAddr);
    expect(host.dmaAddrOf(a.mem.window(64, 8))).toBe(a.dmaAddr + 64);
    expect(() => host.dmaAddrOf(host.aperture.window(0, 8))).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});
