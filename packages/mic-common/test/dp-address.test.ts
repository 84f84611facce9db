import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodeDpAddress, encodeDpAddress } from '../src/index.js';

describe('the device page address in SPAD14/15', () => {
  it('splits into the low and high 32 bits and joins back', () => {
    expect(encodeDpAddress(0x80_1234_5000)).toEqual({ lo: 0x1234_5000, hi: 0x80 });
    expect(decodeDpAddress(0x1234_5000, 0x80)).toBe(0x80_1234_5000);
    fc.assert(
      fc.property(fc.maxSafeNat(), (addr) => {
        const { lo, hi } = encodeDpAddress(addr);
        expect(lo).toBeLessThan(2 ** 32);
        expect(decodeDpAddress(lo, hi)).toBe(addr);
      }),
    );
  });

  it('refuses addresses that are not non-negative safe integers and reads registers as u32', () => {
    for (const bad of [-1, 0.5, 2 ** 53, NaN]) {
      expect(() => encodeDpAddress(bad)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(decodeDpAddress(-1, 0)).toBe(0xffff_ffff);
  });
});
