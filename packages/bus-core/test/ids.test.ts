import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ANY_ID, checkDeviceId, formatModalias, idAttributes, matchIdTable } from '../src/index.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });

describe('id table matching', () => {
  it.each([
    ['exact device and vendor', [{ device: 1, vendor: 7 }], { device: 1, vendor: 7 }, true],
    ['exact device, ANY vendor', [{ device: 1, vendor: ANY_ID }], { device: 1, vendor: ANY_ID }, true],
    ['ANY device, ANY vendor', [{ device: ANY_ID, vendor: ANY_ID }], { device: 9, vendor: 3 }, true],
    ['other device', [{ device: 2, vendor: ANY_ID }], { device: 1, vendor: ANY_ID }, false],
    ['vendor differs and entry is not ANY', [{ device: 1, vendor: 7 }], { device: 1, vendor: 8 }, false],
    ['entry vendor set, device vendor ANY', [{ device: 1, vendor: 7 }], { device: 1, vendor: ANY_ID }, false],
    [
      'an entry after the device-0 terminator is never reached',
      [
        { device: 0, vendor: 0 },
        { device: 1, vendor: ANY_ID },
      ],
      { device: 1, vendor: ANY_ID },
      false,
    ],
    ['an empty table matches nothing', [], { device: 1, vendor: ANY_ID }, false],
  ])('%s', (_what, table, id, expected) => {
    expect(matchIdTable(table, id) !== undefined).toBe(expected);
  });

  it('returns the first matching entry', () => {
    const table = [
      { device: 5, vendor: ANY_ID },
      { device: ANY_ID, vendor: ANY_ID },
      { device: 1, vendor: ANY_ID },
    ];
    expect(matchIdTable(table, { device: 1, vendor: ANY_ID })).toBe(table[1]);
  });

  it('an ANY/ANY entry matches every device id, and a device 0 entry stops the walk', () => {
    fc.assert(
      fc.property(u32, u32, (device, vendor) => {
        expect(matchIdTable([{ device: ANY_ID, vendor: ANY_ID }], { device, vendor })).toBeDefined();
        expect(
          matchIdTable(
            [
              { device: 0, vendor: ANY_ID },
              { device: ANY_ID, vendor: ANY_ID },
            ],
            { device, vendor },
          ),
        ).toBeUndefined();
      }),
    );
  });

  it('matches exactly when the kernel rule holds', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 3, ANY_ID),
        fc.constantFrom(1, 7, ANY_ID),
        fc.constantFrom(1, 2, 3),
        fc.constantFrom(1, 7, ANY_ID),
        (ed, ev, dd, dv) => {
          const rule = (ed === dd || ed === ANY_ID) && (ev === ANY_ID || ev === dv);
          expect(matchIdTable([{ device: ed, vendor: ev }], { device: dd, vendor: dv }) !== undefined).toBe(
            rule,
          );
        },
      ),
    );
  });
});

describe('modalias and id attributes', () => {
  it('formats the modalias as prefix:d%08Xv%08X', () => {
    expect(formatModalias('vop', { device: 1, vendor: ANY_ID })).toBe('vop:d00000001vFFFFFFFF');
    expect(formatModalias('mbus', { device: 3, vendor: ANY_ID })).toBe('mbus:d00000003vFFFFFFFF');
    expect(formatModalias('scif', { device: 0xabc, vendor: 0x8086 })).toBe('scif:d00000ABCv00008086');
  });

  it('formats the device and vendor attributes as 0x%04x', () => {
    expect(idAttributes('vop', { device: 1, vendor: ANY_ID })).toEqual({
      device: '0x0001',
      vendor: '0xffffffff',
      modalias: 'vop:d00000001vFFFFFFFF',
    });
  });

  it('rejects ids that are not pairs of u32 with EINVAL', () => {
    expect(() => checkDeviceId('id', { device: -1, vendor: 0 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => checkDeviceId('id', { device: 1, vendor: 2 ** 32 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => checkDeviceId('id', { device: 1, vendor: ANY_ID })).not.toThrow();
  });
});
