import { describe, expect, it } from '@jest/globals';
import { BufferMemory } from '@mic/memory';
import fc from 'fast-check';
import {
  MIC_DEVICE_CTRL_OFFSETS,
  MIC_DEVICE_CTRL_SIZE,
  MIC_DEVICE_DESC_OFFSETS,
  MIC_DEVICE_DESC_SIZE,
  MIC_VQCONFIG_OFFSETS,
  MIC_VQCONFIG_SIZE,
  checkDescHeader,
  decodeDescBlock,
  deviceCtrlInit,
  encodeDescBlock,
  featureBitsToBytes,
  featureBytesToBits,
  micAlignedDescSize,
  micDescSize,
  micDeviceCtrlOffset,
  micFeatureMask,
  micGuestAcksOffset,
  micTotalDescSize,
  micVqConfigOffset,
  micVqConfigspaceOffset,
  micVqFeaturesOffset,
  readDeviceCtrl,
  readDeviceDesc,
  readFeatureBits,
  readS8,
  readVqconfig,
  writeDeviceCtrl,
  writeDeviceDesc,
  writeFeatureBits,
  writeS8,
  writeVqconfig,
} from '../src/index.js';

const u8 = fc.nat({ max: 255 });
const s8 = fc.integer({ min: -128, max: 127 });

describe('struct layouts', () => {
  it('mic_device_desc, mic_vqconfig and mic_device_ctrl have the offsets of the reference tables', () => {
    expect(MIC_DEVICE_DESC_OFFSETS).toEqual({
      type: 0,
      numVq: 1,
      featureLen: 2,
      configLen: 3,
      status: 4,
      config: 8,
    });
    expect(MIC_DEVICE_DESC_SIZE).toBe(8);
    expect(MIC_VQCONFIG_OFFSETS).toEqual({ address: 0, usedAddress: 8, num: 16 });
    expect(MIC_VQCONFIG_SIZE).toBe(24);
    expect(MIC_DEVICE_CTRL_OFFSETS).toEqual({
      vdev: 0,
      configChange: 8,
      vdevReset: 9,
      guestAck: 10,
      hostAck: 11,
      usedAddressUpdated: 12,
      c2hVdevDb: 13,
      h2cVdevDb: 14,
    });
    expect(MIC_DEVICE_CTRL_SIZE).toBe(16);
  });
});

describe('size helpers', () => {
  it.each([
    ['console', { numVq: 2, featureLen: 4, configLen: 12 }, 76, 80, 96],
    ['net', { numVq: 2, featureLen: 4, configLen: 17 }, 81, 88, 104],
    ['block', { numVq: 1, featureLen: 4, configLen: 60 }, 100, 104, 120],
    ['empty', { numVq: 0, featureLen: 0, configLen: 0 }, 8, 8, 24],
  ])('give the %s entry of mpssd its desc, aligned and total sizes', (_name, d, size, aligned, total) => {
    expect(micDescSize(d)).toBe(size);
    expect(micAlignedDescSize(d)).toBe(aligned);
    expect(micTotalDescSize(d)).toBe(total);
    expect(micDeviceCtrlOffset(d)).toBe(aligned);
  });

  it('place vqconfigs, features, acks and config space in the fixed order', () => {
    const d = { numVq: 2, featureLen: 4, configLen: 12 };
    expect(micVqConfigOffset()).toBe(8);
    expect(micVqConfigOffset(1)).toBe(32);
    expect(micVqFeaturesOffset(d)).toBe(56);
    expect(micGuestAcksOffset(d)).toBe(60);
    expect(micVqConfigspaceOffset(d)).toBe(64);
    expect(micVqConfigspaceOffset(d) + d.configLen).toBe(micDescSize(d));
  });

  it('the aligned size is the desc size rounded up to 8 for every header', () => {
    fc.assert(
      fc.property(u8, u8, u8, (numVq, featureLen, configLen) => {
        const d = { numVq, featureLen, configLen };
        const size = 8 + numVq * 24 + featureLen * 2 + configLen;
        expect(micDescSize(d)).toBe(size);
        expect(micAlignedDescSize(d) % 8).toBe(0);
        expect(micAlignedDescSize(d) - size).toBeGreaterThanOrEqual(0);
        expect(micAlignedDescSize(d) - size).toBeLessThan(8);
        expect(micTotalDescSize(d)).toBe(micAlignedDescSize(d) + 16);
      }),
    );
  });

  it('checkDescHeader enforces num_vq <= 4 and aligned size <= 256 with EINVAL', () => {
    expect(() => checkDescHeader({ numVq: 4, featureLen: 4, configLen: 144 })).not.toThrow();
    expect(() => checkDescHeader({ numVq: 5, featureLen: 0, configLen: 0 })).toThrow(
      'num_vq 5 exceeds MIC_MAX_VRINGS 4',
    );
    expect(() => checkDescHeader({ numVq: 4, featureLen: 4, configLen: 145 })).toThrow(
      'aligned desc size 264 exceeds MIC_MAX_DESC_BLK_SIZE 256',
    );
    expect(() => checkDescHeader({ numVq: 0, featureLen: 256, configLen: 0 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});

describe('feature bits', () => {
  it('put bit i in byte i/8 at bit i%8', () => {
    expect([...featureBitsToBytes(0x3c1n, 4)]).toEqual([0xc1, 0x03, 0, 0]);
    expect([...featureBitsToBytes(1n << 29n, 4)]).toEqual([0, 0, 0, 0x20]);
    expect(featureBytesToBits(Uint8Array.from([0x04, 0, 0, 0]))).toBe(4n);
  });

  it('carry only bits below min(feature_len, 8) * 8: VERSION_1 never fits in mpssd feature_len 4', () => {
    expect(micFeatureMask(4)).toBe(0xffffffffn);
    expect(micFeatureMask(12)).toBe(0xffffffffffffffffn);
    expect(micFeatureMask(0)).toBe(0n);
    expect(() => featureBitsToBytes(1n << 32n, 4)).toThrow('do not fit in feature_len 4');
    expect(() => featureBitsToBytes(-1n, 8)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const mem = BufferMemory.allocate(16);
    mem.fill(0, 16, 0xff);
    expect(readFeatureBits(mem, 0, 16)).toBe(0xffffffffffffffffn);
    expect(readFeatureBits(mem, 0, 3)).toBe(0xffffffn);
  });

  it('writeFeatureBits clears the whole half, including bytes past 8, then sets the bits', () => {
    const mem = BufferMemory.allocate(12);
    mem.fill(0, 12, 0xff);
    writeFeatureBits(mem, 1, 10, 0x8001n);
    expect([...mem.bytes(0, 12)]).toEqual([0xff, 0x01, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]);
    expect(readFeatureBits(mem, 1, 10)).toBe(0x8001n);
  });

  it('round-trip every u64 through feature_len 8 and more', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.integer({ min: 8, max: 32 }),
        (bits, len) => {
          expect(featureBytesToBits(featureBitsToBytes(bits, len))).toBe(bits);
        },
      ),
    );
  });
});

describe('field codecs', () => {
  it('read __s8 fields with their sign: 0xff is -1', () => {
    const mem = BufferMemory.allocate(2);
    writeS8(mem, 0, -1);
    expect(mem.readU8(0)).toBe(0xff);
    expect(readS8(mem, 0)).toBe(-1);
    expect(() => writeS8(mem, 1, 128)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('round-trip mic_device_desc with a signed type', () => {
    fc.assert(
      fc.property(fc.record({ type: s8, numVq: u8, featureLen: u8, configLen: u8, status: u8 }), (d) => {
        const mem = BufferMemory.allocate(8);
        writeDeviceDesc(mem, 0, d);
        expect(readDeviceDesc(mem, 0)).toEqual(d);
      }),
    );
  });

  it('round-trip mic_vqconfig', () => {
    fc.assert(
      fc.property(
        fc.record({ address: fc.maxSafeNat(), usedAddress: fc.maxSafeNat(), num: fc.nat({ max: 0xffff }) }),
        (v) => {
          const mem = BufferMemory.allocate(24);
          writeVqconfig(mem, 0, v);
          expect(readVqconfig(mem, 0)).toEqual(v);
          expect(mem.readU16(16)).toBe(v.num);
        },
      ),
    );
  });

  it('round-trip mic_device_ctrl with signed doorbells', () => {
    fc.assert(
      fc.property(
        fc.record({
          vdev: fc.maxSafeNat(),
          configChange: u8,
          vdevReset: u8,
          guestAck: u8,
          hostAck: u8,
          usedAddressUpdated: u8,
          c2hVdevDb: s8,
          h2cVdevDb: s8,
        }),
        (c) => {
          const mem = BufferMemory.allocate(16);
          writeDeviceCtrl(mem, 0, c);
          expect(readDeviceCtrl(mem, 0)).toEqual(c);
        },
      ),
    );
  });

  it('deviceCtrlInit clears every flag, sets both doorbells to -1 and keeps vdev', () => {
    const mem = BufferMemory.allocate(16);
    mem.fill(0, 16, 0x11);
    mem.writeU64(0, 0x1234_5678_9abc);
    deviceCtrlInit(mem, 0);
    expect(readDeviceCtrl(mem, 0)).toEqual({
      vdev: 0x1234_5678_9abc,
      configChange: 0,
      vdevReset: 0,
      guestAck: 0,
      hostAck: 0,
      usedAddressUpdated: 0,
      c2hVdevDb: -1,
      h2cVdevDb: -1,
    });
    expect(mem.readU8(15)).toBe(0x11);
  });
});

describe('desc blocks', () => {
  it('encode mpssd console template with each part where the size helpers say', () => {
    const block = encodeDescBlock({
      type: 3,
      vqconfigs: [
        { address: 0, usedAddress: 0, num: 128 },
        { address: 0, usedAddress: 0, num: 128 },
      ],
      hostFeatures: featureBitsToBytes(0x5n, 4),
      config: Uint8Array.from({ length: 12 }, (_, i) => i + 1),
    });
    expect(block.length).toBe(76);
    expect([...block.subarray(0, 8)]).toEqual([3, 2, 4, 12, 0, 0, 0, 0]);
    expect(block[8 + 16]).toBe(128);
    expect(block[32 + 16]).toBe(128);
    expect([...block.subarray(56, 64)]).toEqual([5, 0, 0, 0, 0, 0, 0, 0]);
    expect([...block.subarray(64)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('round-trip through decodeDescBlock', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -128, max: 127 }),
        u8,
        fc.array(
          fc.record({ address: fc.maxSafeNat(), usedAddress: fc.maxSafeNat(), num: fc.nat({ max: 0xffff }) }),
          {
            maxLength: 6,
          },
        ),
        fc
          .nat({ max: 20 })
          .chain((n) =>
            fc.tuple(
              fc.uint8Array({ minLength: n, maxLength: n }),
              fc.uint8Array({ minLength: n, maxLength: n }),
            ),
          ),
        fc.uint8Array({ maxLength: 255 }),
        (type, status, vqconfigs, [hostFeatures, guestAcks], config) => {
          const block = { type, status, vqconfigs, hostFeatures, guestAcks, config };
          expect(decodeDescBlock(encodeDescBlock(block))).toEqual(block);
        },
      ),
    );
  });

  it('decodeDescBlock rejects input shorter than its header or its mic_desc_size with EINVAL', () => {
    expect(() => decodeDescBlock(new Uint8Array(7))).toThrow('shorter than the 8-byte header');
    expect(() => decodeDescBlock(Uint8Array.from([3, 1, 0, 0, 0, 0, 0, 0]))).toThrow(
      'desc block of 8 bytes is shorter than its mic_desc_size 32',
    );
  });

  it('encodeDescBlock rejects feature halves of different lengths and oversize parts', () => {
    const base = { type: 1, vqconfigs: [], hostFeatures: new Uint8Array(4), config: new Uint8Array(0) };
    expect(() => encodeDescBlock({ ...base, guestAcks: new Uint8Array(2) })).toThrow(
      'guest acks have 2 bytes but host features have 4',
    );
    expect(() => encodeDescBlock({ ...base, config: new Uint8Array(256) })).toThrow('config_len 256');
  });
});
