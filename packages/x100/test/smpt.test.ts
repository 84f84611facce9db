import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { SmptTable, X100_SMPT, X100Hardware, smptReg, smptRegValue } from '../src/index.js';

const { BASE, PAGE_SIZE, NUM_REG } = X100_SMPT;
const GIB = 2 ** 30;

function setup(): { hw: X100Hardware; smpt: SmptTable } {
  const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
  return { hw, smpt: new SmptTable(hw) };
}

describe('SmptTable', () => {
  it('starts with entry i pointing at host address i × 16 GiB, programmed as the kernel encodes it', () => {
    const { hw, smpt } = setup();
    expect(smpt.entries()[3]).toEqual({ dmaAddr: 3 * PAGE_SIZE, refCount: 0 });
    expect(hw.mmio.read32(smptReg(3))).toBe(3 << 2);
    expect(smptRegValue(0x3_0000_0000 + 5 * PAGE_SIZE)).toBe(5 << 2);
  });

  it('maps host addresses below 16 GiB through entry 0 and marks it valid until the last unmap', () => {
    const { hw, smpt } = setup();
    const a = smpt.map(0x2000, 4096);
    const b = smpt.map(0x10000, 64);
    expect(a).toBe(BASE + 0x2000);
    expect(b).toBe(BASE + 0x10000);
    expect(smpt.entries()[0]!.refCount).toBe(4096 + 64);
    expect(hw.smptValidMask).toBe(1);
    expect(hw.smptTranslate(a + 16, 8)).toBe(0x2010);
    smpt.unmap(a, 4096);
    expect(hw.smptValidMask).toBe(1);
    smpt.unmap(b, 64);
    expect(hw.smptValidMask).toBe(0);
    expect(() => hw.smptTranslate(a, 8)).toThrow('not mapped by any SMPT entry (entry 0)');
  });

  it('spans contiguous entries for a range that crosses a 16 GiB boundary', () => {
    const { hw, smpt } = setup();
    const mic = smpt.map(3 * PAGE_SIZE - 4096, 8192);
    expect(mic).toBe(BASE + 3 * PAGE_SIZE - 4096);
    expect(smpt.entries()[2]!.refCount).toBe(4096);
    expect(smpt.entries()[3]!.refCount).toBe(4096);
    expect(hw.smptValidMask).toBe(0b1100);
    expect(smpt.toDmaAddr(mic + 5000)).toBe(3 * PAGE_SIZE - 4096 + 5000);
  });

  it('reprograms a free entry for host memory above the identity-mapped 512 GiB', () => {
    const { hw, smpt } = setup();
    smpt.map(4096, 4096); // entry 0 busy
    const far = 40 * PAGE_SIZE + 123;
    const mic = smpt.map(far, 100);
    expect(mic).toBe(BASE + PAGE_SIZE + 123);
    expect(smpt.entries()[1]).toEqual({ dmaAddr: 40 * PAGE_SIZE, refCount: 100 });
    expect(hw.mmio.read32(smptReg(1))).toBe(40 << 2);
    expect(smpt.toDmaAddr(mic)).toBe(far);
    // the host address entry 1 used to cover now has no entry of its own: it takes the next free one
    expect(smpt.map(PAGE_SIZE, 8)).toBe(BASE + 2 * PAGE_SIZE);
  });

  it('fails with ENOSPC when no run of free entries is left, and with EINVAL for bad ranges', () => {
    const { smpt } = setup();
    for (let i = 0; i < NUM_REG; i++) smpt.map((100 + 2 * i) * PAGE_SIZE, 8);
    expect(() => smpt.map(1000 * PAGE_SIZE, 8)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(() => smpt.map(0, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => smpt.map(-1, 8)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => smpt.map(0, NUM_REG * PAGE_SIZE + 1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => smpt.unmap(BASE - 8, 8)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => smpt.toDmaAddr(12)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('refuses an unmap of more bytes than are mapped and leaves the counts alone', () => {
    const { smpt } = setup();
    const mic = smpt.map(8192, 100);
    expect(() => smpt.unmap(mic, 200)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(smpt.entries()[0]!.refCount).toBe(100);
    smpt.unmap(mic, 0);
    expect(smpt.entries()[0]!.refCount).toBe(100);
  });

  it('puts a zero-length range exactly at the end of the window outside it (EFAULT), never at host address 0', () => {
    const { hw, smpt } = setup();
    smpt.map(0x2000, 4096); // entry 0 mapped
    const end = BASE + NUM_REG * PAGE_SIZE;
    expect(() => hw.smptTranslate(end, 0)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(hw.smptResolve(end, 0)).toBe(-1);
    expect(() => hw.cardAddressWindow(end, 0)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    // the last byte of the window is inside it (unmapped here)
    expect(hw.smptResolve(end - 1, 1)).toBe(-1);
    expect(hw.smptResolve(BASE + 0x2000, 0)).toBe(0x2000);
  });

  it('refuses to unmap a range that was never mapped, and keeps the mapping that shares its entry', () => {
    const { hw, smpt } = setup();
    const mic = smpt.map(0x2000, 4096);
    expect(() => smpt.unmap(BASE + 0x10_0000, 4096)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => smpt.unmap(mic, 64)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => smpt.unmap(mic + 64, 4096 - 64)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(smpt.entries()[0]!.refCount).toBe(4096);
    expect(hw.smptTranslate(mic, 4096)).toBe(0x2000);
    smpt.unmap(mic, 4096);
    expect(() => smpt.unmap(mic, 4096)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(hw.smptValidMask).toBe(0);
  });

  it('counts a range mapped twice: it stays mapped until the second unmap', () => {
    const { hw, smpt } = setup();
    const a = smpt.map(0x2000, 4096);
    expect(smpt.map(0x2000, 4096)).toBe(a);
    smpt.unmap(a, 4096);
    expect(hw.smptTranslate(a, 4096)).toBe(0x2000);
    smpt.unmap(a, 4096);
    expect(hw.smptValidMask).toBe(0);
  });

  it('names the bad argument with EINVAL instead of throwing TypeError', () => {
    const { smpt } = setup();
    const bad = (fn: () => unknown, what: RegExp): void => {
      expect(fn).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(what) }));
    };
    bad(() => smpt.unmap(undefined as unknown as number, 4096), /card range undefined/);
    bad(() => smpt.unmap(BASE, null as unknown as number), /unmap size null/);
    bad(() => smpt.map(4096, 10n as unknown as number), /map size 10/);
    bad(() => smpt.map(4096, Number.NaN), /map size NaN/);
    bad(() => smpt.map({} as unknown as number, 8), /DMA address \[object Object\]/);
    bad(() => smpt.toDmaAddr(undefined as unknown as number), /card address undefined/);
  });

  it('refuses card ranges over entries that are not contiguous in host memory', () => {
    const { hw, smpt } = setup();
    smpt.map(PAGE_SIZE - 4096, 4096); // entry 0
    smpt.map(70 * PAGE_SIZE, 4096); // entry 1 → far away, reprogrammed
    expect(() => hw.smptTranslate(BASE + PAGE_SIZE - 8, 16)).toThrow('not contiguous');
  });

  it('keeps map and unmap consistent over random sequences', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            page: fc.integer({ min: 0, max: 60 }),
            offset: fc.integer({ min: 0, max: PAGE_SIZE - 1 }),
            size: fc.integer({ min: 1, max: 3 * 16 * GIB }),
          }),
          { maxLength: 40 },
        ),
        (requests) => {
          const { hw, smpt } = setup();
          const live: { mic: number; dma: number; size: number }[] = [];
          for (const r of requests) {
            const dma = r.page * PAGE_SIZE + r.offset;
            let mic: number;
            try {
              mic = smpt.map(dma, r.size);
            } catch (err) {
              expect(err).toMatchObject({ code: 'ENOSPC' });
              continue;
            }
            expect(mic % PAGE_SIZE).toBe(dma % PAGE_SIZE);
            expect(smpt.toDmaAddr(mic)).toBe(dma);
            expect(smpt.toDmaAddr(mic + r.size - 1)).toBe(dma + r.size - 1);
            live.push({ mic, dma, size: r.size });
          }
          // every live mapping still translates to its host range
          for (const m of live) expect(smpt.toDmaAddr(m.mic)).toBe(m.dma);
          const total = smpt.entries().reduce((n, e) => n + e.refCount, 0);
          expect(total).toBe(live.reduce((n, m) => n + m.size, 0));
          for (const m of live) smpt.unmap(m.mic, m.size);
          expect(smpt.entries().every((e) => e.refCount === 0)).toBe(true);
          expect(hw.smptValidMask).toBe(0);
        },
      ),
    );
  });
});
