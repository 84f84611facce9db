import { describe, expect, it } from '@jest/globals';
import { BufferMemory } from '@mic/memory';
import fc from 'fast-check';
import {
  MIC_BOOTPARAM_LEGACY_OFFSETS,
  MIC_BOOTPARAM_LEGACY_SIZE,
  MIC_BOOTPARAM_OFFSETS,
  MIC_BOOTPARAM_SIZE,
  MIC_DP_SIZE,
  bootparamCheckMagic,
  bootparamInit,
  readBootparam,
  readBootparamLegacy,
  writeBootparam,
} from '../src/index.js';

describe('mic_bootparam', () => {
  it('has the final 24-byte layout of the reference table', () => {
    expect(MIC_BOOTPARAM_OFFSETS).toEqual({
      magic: 0,
      h2cConfigDb: 4,
      nodeId: 5,
      h2cScifDb: 6,
      c2hScifDb: 7,
      scifHostDmaAddr: 8,
      scifCardDmaAddr: 16,
    });
    expect(MIC_BOOTPARAM_SIZE).toBe(24);
  });

  it('bootparamInit writes the defaults of mic_bootparam_init byte for byte', () => {
    const mem = BufferMemory.allocate(MIC_DP_SIZE);
    mem.fill(0, 24, 0xaa);
    bootparamInit(mem, 1);
    expect([...mem.bytes(0, 24)]).toEqual([
      0x00, 0xee, 0xff, 0xc0, 0xff, 0x01, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expect(readBootparam(mem)).toEqual({
      magic: 0xc0ffee00,
      h2cConfigDb: -1,
      nodeId: 1,
      h2cScifDb: -1,
      c2hScifDb: -1,
      scifHostDmaAddr: 0,
      scifCardDmaAddr: 0,
    });
  });

  it('bootparamInit leaves the device entries after the bootparam alone', () => {
    const mem = BufferMemory.allocate(MIC_DP_SIZE);
    mem.fill(24, MIC_DP_SIZE - 24, 0x5a);
    bootparamInit(mem, 3);
    expect(mem.bytes(24, MIC_DP_SIZE - 24).every((b) => b === 0x5a)).toBe(true);
    expect(() => bootparamInit(mem, 256)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('bootparamCheckMagic accepts MIC_MAGIC and throws EIO naming the value found otherwise', () => {
    const mem = BufferMemory.allocate(MIC_DP_SIZE);
    bootparamInit(mem, 1);
    expect(() => bootparamCheckMagic(mem)).not.toThrow();
    mem.writeU32(0, 0xdeadbeef);
    expect(() => bootparamCheckMagic(mem)).toThrow(
      expect.objectContaining({
        code: 'EIO',
        message: 'bootparam magic mismatch: found 0xdeadbeef, expected 0xc0ffee00',
      }),
    );
    mem.writeU32(0, 0);
    expect(() => bootparamCheckMagic(mem)).toThrow('found 0x0');
  });

  it('round-trips every valid bootparam', () => {
    const s8 = fc.integer({ min: -128, max: 127 });
    fc.assert(
      fc.property(
        fc.record({
          magic: fc.nat({ max: 0xffffffff }),
          h2cConfigDb: s8,
          nodeId: fc.nat({ max: 255 }),
          h2cScifDb: s8,
          c2hScifDb: s8,
          scifHostDmaAddr: fc.maxSafeNat(),
          scifCardDmaAddr: fc.maxSafeNat(),
        }),
        fc.nat({ max: 8 }),
        (bp, at) => {
          const mem = BufferMemory.allocate(64);
          writeBootparam(mem, bp, at);
          expect(readBootparam(mem, at)).toEqual(bp);
        },
      ),
    );
  });

  it('rejects a field that does not fit before writing anything', () => {
    const mem = BufferMemory.allocate(24);
    const bp = readBootparam(mem);
    expect(() => writeBootparam(mem, { ...bp, magic: 0x1, h2cConfigDb: 128 })).toThrow('h2c_config_db 128');
    expect(mem.readU32(0)).toBe(0);
    expect(() => writeBootparam(mem, { ...bp, scifHostDmaAddr: -1 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});

describe('legacy mic_bootparam (v3.13)', () => {
  it('reads the 16-byte layout with its shutdown fields', () => {
    expect(MIC_BOOTPARAM_LEGACY_SIZE).toBe(16);
    const mem = BufferMemory.allocate(16);
    mem.write(0, Uint8Array.from([0x00, 0xee, 0xff, 0xc0, 0xff, 0x02, 0x03, 0x01, 0x01]));
    expect(readBootparamLegacy(mem)).toEqual({
      magic: 0xc0ffee00,
      c2hShutdownDb: -1,
      h2cShutdownDb: 2,
      h2cConfigDb: 3,
      shutdownStatus: 1,
      shutdownCard: 1,
    });
    expect(MIC_BOOTPARAM_LEGACY_OFFSETS.shutdownCard).toBe(8);
  });
});
