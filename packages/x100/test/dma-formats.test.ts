// DMA descriptor and ring register formats, and the MMIO register file as a Memory.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { BufferMemory } from '@mic/memory';
import {
  MmioMemory,
  X100_DMA_BIT,
  X100_DMA_DESC,
  X100_DMA_REG,
  X100_REG,
  X100_SMPT,
  X100Hardware,
  decodeDmaRing,
  dmaChanReg,
  dmaDcrEnableBit,
  dmaDcrOwnerBit,
  encodeDmaRing,
  readDmaDesc,
  writeDmaMemcpyDesc,
  writeDmaStatusDesc,
} from '../src/index.js';

describe('DMA descriptors', () => {
  it('encode a MEMCPY with the length in 64-byte units above bit 46, as mic_dma_memcpy_desc does', () => {
    const mem = BufferMemory.allocate(16);
    writeDmaMemcpyDesc(mem, 0, 0x80_0000_1040, 0x2_0000, 0x10_0040);
    expect(mem.readBigU64(0)).toBe(0x80_0000_1040n | (BigInt(0x10_0040 / 64) << 46n));
    expect(mem.readBigU64(8)).toBe((1n << 60n) | 0x2_0000n);
    expect(readDmaDesc(mem, 0)).toEqual({
      type: 'memcpy',
      src: 0x80_0000_1040,
      dst: 0x2_0000,
      length: 0x10_0040,
    });
  });

  it('encode a STATUS with its value in qw0 and the interrupt in bit 59', () => {
    const mem = BufferMemory.allocate(32);
    writeDmaStatusDesc(mem, 16, 0x3f_ffff_fff8, 0xfedc_ba98_7654_3210n, true);
    expect(mem.readBigU64(16)).toBe(0xfedc_ba98_7654_3210n);
    expect(mem.readBigU64(24)).toBe((2n << 60n) | (1n << 59n) | 0x3f_ffff_fff8n);
    expect(readDmaDesc(mem, 16)).toEqual({
      type: 'status',
      dst: 0x3f_ffff_fff8,
      value: 0xfedc_ba98_7654_3210n,
      interrupt: true,
    });
    expect(readDmaDesc(mem, 0)).toEqual({ type: 'nop' });
  });

  it('round-trip any MEMCPY the engine can carry', () => {
    const mem = BufferMemory.allocate(16);
    const addr = fc.integer({ min: 0, max: 2 ** 40 - 1 }).map((a) => a * 64);
    fc.assert(
      fc.property(addr, addr, fc.integer({ min: 0, max: 2 ** 18 - 1 }), (src, dst, units) => {
        writeDmaMemcpyDesc(mem, 0, src, dst, units * 64);
        expect(readDmaDesc(mem, 0)).toEqual({ type: 'memcpy', src, dst, length: units * 64 });
      }),
    );
  });

  it('refuse lengths and addresses the descriptor cannot carry', () => {
    const mem = BufferMemory.allocate(16);
    expect(() => writeDmaMemcpyDesc(mem, 0, 0, 0, 100)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => writeDmaMemcpyDesc(mem, 0, 0, 0, 16 * 1024 * 1024)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => writeDmaMemcpyDesc(mem, 0, 2 ** 46, 0, 64)).toThrow(/46 address bits/);
    expect(() => writeDmaStatusDesc(mem, 0, -8, 0n, false)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });

  it('report unknown types with their raw words', () => {
    const mem = BufferMemory.allocate(16);
    mem.writeU32(12, 0x9000_0000);
    expect(readDmaDesc(mem, 0)).toEqual({ type: 'unknown', code: 9, qw0: 0n, qw1: 0x9000_0000_0000_0000n });
  });
});

describe('DMA ring registers', () => {
  it('mark a ring in host memory SYS with its SMPT entry in bits 25:21, as mic_dma_chan_set_desc_ring does', () => {
    const addr = X100_SMPT.BASE + 3 * X100_SMPT.PAGE_SIZE + 0x2_0000_1000;
    const { drarLo, drarHi } = encodeDmaRing(addr, X100_DMA_DESC.KERNEL_RING_ENTRIES);
    expect(drarLo).toBe(0x1000);
    expect(drarHi).toBe(
      ((X100_DMA_DESC.KERNEL_RING_ENTRIES << 4) | X100_DMA_BIT.DRAR_HI_SYS | (3 << 21) | 2) >>> 0,
    );
    expect(decodeDmaRing(drarLo, drarHi)).toEqual({
      addr,
      entries: X100_DMA_DESC.KERNEL_RING_ENTRIES,
      system: true,
    });
  });

  it('give a ring in card memory its address bits 35:32 in bits 3:0', () => {
    const { drarLo, drarHi } = encodeDmaRing(0x5_0000_4000, 64);
    expect(drarHi).toBe((64 << 4) | 5);
    expect(decodeDmaRing(drarLo, drarHi)).toEqual({ addr: 0x5_0000_4000, entries: 64, system: false });
  });

  it('refuse sizes the 17-bit field cannot hold and addresses neither form carries', () => {
    expect(() => encodeDmaRing(0, 0x20000)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => encodeDmaRing(2 ** 37, 8)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('put the owner in the even DCR bit and the enable in the odd one, as the kernel code does', () => {
    expect(dmaDcrOwnerBit(4)).toBe(1 << 8);
    expect(dmaDcrEnableBit(4)).toBe(1 << 9);
    expect(dmaDcrEnableBit(7)).toBe(1 << 15);
    expect(() => dmaDcrEnableBit(8)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});

describe('the MMIO register file as a Memory', () => {
  it('runs write handlers on 32-bit writes and reads the stored values', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    const seen: number[] = [];
    const dhpr = dmaChanReg(0, X100_DMA_REG.DHPR);
    hw.mmio.setWriteHandler(dhpr, (v) => {
      seen.push(v);
      hw.mmio.store32(dhpr, v + 1);
    });
    const regs = new MmioMemory(hw.mmio);
    regs.writeU32(dhpr, 5);
    regs.storeU32(dhpr, 7);
    expect(seen).toEqual([5, 7]);
    expect(regs.readU32(dhpr)).toBe(8);
    expect(regs.loadU32(dhpr)).toBe(8);
    expect(regs.readU8(dhpr)).toBe(8);
    expect(regs.loadU8(dhpr)).toBe(8);
    const block = regs.window(dmaChanReg(0, 0), 0x40);
    block.writeU32(X100_DMA_REG.DHPR, 9);
    expect(seen).toEqual([5, 7, 9]);
    regs.writeBigU64(X100_REG.DCR, 0x1_0000_0002n);
    expect(regs.readBigU64(X100_REG.DCR)).toBe(0x1_0000_0002n);
    expect(regs.readU64(X100_REG.DCR)).toBe(0x1_0000_0002);
  });

  it('refuses narrow writes, unaligned accesses and ranges outside the registers', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    const regs = new MmioMemory(hw.mmio, X100_REG.DCR, 64);
    expect(() => regs.writeU8(0, 1)).toThrow(/32-bit writes only/);
    expect(() => regs.writeU16(0, 1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => regs.storeU8(0, 1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => regs.write(0, new Uint8Array(4))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => regs.fill(0, 4, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => regs.writeU32(2, 1)).toThrow(/not 32-bit aligned/);
    expect(() => regs.readU32(64)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => new MmioMemory(hw.mmio, 2, 8)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(regs.byteLength).toBe(64);
    expect(regs.shared).toBe(true);
  });
});
