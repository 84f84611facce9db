import { describe, expect, it } from '@jest/globals';
import { BufferMemory } from '@mic/memory';
import { vringSize } from '@mic/virtio';
import {
  MIC_VIRTIO_RING_ALIGN,
  MIC_VRING_INFO_OFFSETS,
  MIC_VRING_INFO_SIZE,
  checkVringMagic,
  micVringLayout,
  micVringMagic,
  readVringInfo,
  writeVringInfo,
} from '../src/index.js';

describe('vring block layout', () => {
  it('for num 128 puts avail at 2048, used at 4096, info at 5128 and takes 8192 bytes', () => {
    expect(micVringLayout(128)).toEqual({
      num: 128,
      descOffset: 0,
      availOffset: 2048,
      usedOffset: 4096,
      vringSize: 5126,
      infoOffset: 5128,
      size: 8192,
    });
  });

  it('vring_size matches the region-by-region sum for every power-of-two num', () => {
    for (let num = 1; num <= 32768; num *= 2) {
      const l = micVringLayout(num);
      const availEnd = l.availOffset + 2 * (3 + num);
      expect(l.usedOffset).toBe(Math.ceil(availEnd / 4096) * 4096);
      expect(l.vringSize).toBe(l.usedOffset + 6 + 8 * num);
      expect(l.infoOffset % 4).toBe(0);
      expect(l.infoOffset - l.vringSize).toBeLessThan(4);
      expect(l.infoOffset - l.vringSize).toBeGreaterThanOrEqual(0);
      expect(l.size % 4096).toBe(0);
      expect(l.size).toBeGreaterThanOrEqual(l.infoOffset + 8);
      expect(l.size - (l.infoOffset + 8)).toBeLessThan(4096);
    }
  });

  it("the ring inside the block is virtio's vring_size at MIC_VIRTIO_RING_ALIGN", () => {
    for (let num = 1; num <= 32768; num *= 2) {
      expect(micVringLayout(num).vringSize).toBe(vringSize(num, MIC_VIRTIO_RING_ALIGN));
    }
  });

  it.each([0, 3, 100, 32769, 65536, 1.5])('refuses num %p with EINVAL as virtio does', (num) => {
    expect(() => micVringLayout(num)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining(`queue size ${num}`) }),
    );
  });
});

describe('_mic_vring_info and the per-vring magic', () => {
  it('has avail_idx at 0 and magic at 4 in 8 bytes', () => {
    expect(MIC_VRING_INFO_OFFSETS).toEqual({ availIdx: 0, magic: 4 });
    expect(MIC_VRING_INFO_SIZE).toBe(8);
  });

  it('magic is MIC_MAGIC + type + index: console 0xC0FFEE03/04, net 0xC0FFEE01/02, block 0xC0FFEE02', () => {
    expect([micVringMagic(3, 0), micVringMagic(3, 1)]).toEqual([0xc0ffee03, 0xc0ffee04]);
    expect([micVringMagic(1, 0), micVringMagic(1, 1)]).toEqual([0xc0ffee01, 0xc0ffee02]);
    expect(micVringMagic(2, 0)).toBe(0xc0ffee02);
    expect(micVringMagic(127, 255)).toBe(0xc0ffef7e);
  });

  it('checkVringMagic accepts the right magic and throws EIO naming both values', () => {
    const layout = micVringLayout(128);
    const mem = BufferMemory.allocate(layout.size);
    writeVringInfo(mem, layout.infoOffset, { availIdx: 7, magic: micVringMagic(3, 1) });
    expect(mem.readU32(5132)).toBe(0xc0ffee04);
    expect(readVringInfo(mem, layout.infoOffset)).toEqual({ availIdx: 7, magic: 0xc0ffee04 });
    expect(() => checkVringMagic(mem, layout.infoOffset, 3, 1)).not.toThrow();
    expect(() => checkVringMagic(mem, layout.infoOffset, 3, 0)).toThrow(
      expect.objectContaining({
        code: 'EIO',
        message: 'vring 0 magic mismatch: found 0xc0ffee04, expected 0xc0ffee03',
      }),
    );
  });
});
