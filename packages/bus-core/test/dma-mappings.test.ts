import { describe, expect, it } from '@jest/globals';
import { DmaMappingCounts } from '../src/index.js';

describe('DmaMappingCounts', () => {
  it('counts mappings per address and length and refuses one that is not live', () => {
    const m = new DmaMappingCounts('test dma');
    m.add(0x1000, 64);
    m.add(0x1000, 64);
    m.add(0x1000, 128);
    expect(m.live).toBe(3);
    m.release(0x1000, 64);
    m.release(0x1000, 64);
    expect(() => m.release(0x1000, 64)).toThrow(
      expect.objectContaining({
        code: 'EINVAL',
        message: 'test dma: no mapping of 64 bytes at DMA address 0x1000',
      }),
    );
    expect(m.live).toBe(1);
  });

  it('keeps a mapping live when its hardware unmap throws, and forgets it after one that succeeds', () => {
    const m = new DmaMappingCounts('test dma');
    m.add(0x2000, 32);
    expect(() =>
      m.release(0x2000, 32, () => {
        throw new Error('smpt busy');
      }),
    ).toThrow('smpt busy');
    expect(m.live).toBe(1);
    const undone: number[] = [];
    m.release(0x2000, 32, () => undone.push(0x2000));
    expect(undone).toEqual([0x2000]);
    expect(m.live).toBe(0);
  });
});
