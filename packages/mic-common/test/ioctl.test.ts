import { describe, expect, it } from '@jest/globals';
import { BufferMemory } from '@mic/memory';
import fc from 'fast-check';
import {
  MIC_COPY_DESC_OFFSETS,
  MIC_VIRTIO_ADD_DEVICE,
  MIC_VIRTIO_CONFIG_CHANGE,
  MIC_VIRTIO_COPY_DESC,
  MIC_VIRTIO_IOCTL_ILP32,
  ioctlIowr,
  readCopyDesc,
  writeCopyDesc,
  type MicAbi,
} from '../src/index.js';

describe('ioctl numbers', () => {
  it('are _IOWR(s, nr, pointer) with the pointer size in the size field', () => {
    expect(MIC_VIRTIO_ADD_DEVICE).toBe(0xc0087301);
    expect(MIC_VIRTIO_COPY_DESC).toBe(0xc0087302);
    expect(MIC_VIRTIO_CONFIG_CHANGE).toBe(0xc0087305);
    expect(ioctlIowr('s', 1, 8)).toBe(MIC_VIRTIO_ADD_DEVICE);
    expect(ioctlIowr('s', 2, 8)).toBe(MIC_VIRTIO_COPY_DESC);
    expect(ioctlIowr('s', 5, 8)).toBe(MIC_VIRTIO_CONFIG_CHANGE);
    expect(MIC_VIRTIO_IOCTL_ILP32).toEqual({
      ADD_DEVICE: ioctlIowr('s', 1, 4),
      COPY_DESC: ioctlIowr('s', 2, 4),
      CONFIG_CHANGE: ioctlIowr('s', 5, 4),
    });
    expect(MIC_VIRTIO_IOCTL_ILP32.COPY_DESC).toBe(0xc0047302);
  });

  it('rejects a type that is not one character and a size that does not fit 14 bits', () => {
    expect(() => ioctlIowr('st', 1, 8)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => ioctlIowr('s', 1, 0x4000)).toThrow('ioctl size 16384');
  });
});

describe('mic_copy_desc', () => {
  it('lays out LP64 in 24 bytes and ILP32 in 16, as the reference table', () => {
    expect(MIC_COPY_DESC_OFFSETS.lp64).toEqual({
      iov: 0,
      iovcnt: 8,
      vrIdx: 12,
      updateUsed: 13,
      outLen: 16,
      size: 24,
    });
    expect(MIC_COPY_DESC_OFFSETS.ilp32).toEqual({
      iov: 0,
      iovcnt: 4,
      vrIdx: 8,
      updateUsed: 9,
      outLen: 12,
      size: 16,
    });
  });

  it('writes each field at its offset, little-endian', () => {
    const mem = BufferMemory.allocate(24);
    writeCopyDesc(mem, 0, { iov: 0x1122334455, iovcnt: 2, vrIdx: 1, updateUsed: 1, outLen: 0x10203 });
    expect([...mem.bytes(0, 24)]).toEqual([
      0x55, 0x44, 0x33, 0x22, 0x11, 0, 0, 0, 2, 0, 0, 0, 1, 1, 0, 0, 0x03, 0x02, 0x01, 0, 0, 0, 0, 0,
    ]);
    const ilp = BufferMemory.allocate(16);
    writeCopyDesc(ilp, 0, { iov: 0x11223344, iovcnt: 2, vrIdx: 1, updateUsed: 0, outLen: 7 }, 'ilp32');
    expect([...ilp.bytes(0, 16)]).toEqual([0x44, 0x33, 0x22, 0x11, 2, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0]);
    expect(() =>
      writeCopyDesc(ilp, 0, { iov: 2 ** 32, iovcnt: 0, vrIdx: 0, updateUsed: 0, outLen: 0 }, 'ilp32'),
    ).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('round-trips every valid value in both data models', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<MicAbi>('lp64', 'ilp32'),
        fc.record({
          iov: fc.nat({ max: 0xffffffff }),
          iovcnt: fc.nat({ max: 0xffffffff }),
          vrIdx: fc.nat({ max: 255 }),
          updateUsed: fc.nat({ max: 255 }),
          outLen: fc.nat({ max: 0xffffffff }),
        }),
        (abi, v) => {
          const mem = BufferMemory.allocate(MIC_COPY_DESC_OFFSETS[abi].size);
          writeCopyDesc(mem, 0, v, abi);
          expect(readCopyDesc(mem, 0, abi)).toEqual(v);
        },
      ),
    );
  });
});
