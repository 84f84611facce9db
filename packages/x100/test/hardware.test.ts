import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  X100_CARD_STATE,
  X100_DMA,
  X100_DMA_REG,
  X100_MMIO_SIZE,
  X100_REG,
  X100_SMPT,
  X100_SPAD,
  X100Hardware,
  X100HostView,
  apicIcrReg,
  decodeSpad2,
  dmaChanReg,
  hostDmaSrc,
  encodeSpad2,
  rdmasrReg,
  resolveX100Config,
  sdbicReg,
  smptReg,
  spadReg,
} from '../src/index.js';
import { flush, hostBuffer } from './helpers.js';

describe('the register map', () => {
  it('places the registers where the kernel drivers write them', () => {
    expect(spadReg(14)).toBe(0x10000 + 0xab20 + 56);
    expect(smptReg(31)).toBe(0x10000 + 0x3100 + 124);
    expect(apicIcrReg(7)).toBe(X100_REG.APICICR7);
    expect(sdbicReg(3)).toBe(0x10000 + 0xcc90 + 12);
    expect(X100_REG.SICR0).toBe(0x19004);
    expect(X100_REG.RGCR).toBe(0x14010);
    expect(dmaChanReg(0, X100_DMA_REG.DCAR)).toBe(0x1a000);
    expect(dmaChanReg(5, X100_DMA_REG.DSTAT)).toBe(0x1a000 + 5 * 0x40 + 32);
    expect(X100_REG.DCR).toBe(0x1a280);
    expect(rdmasrReg(17)).toBe(0x10000 + 0xb180 + 68);
  });

  it('keeps every DMA channel block inside the register file and clear of the other registers', () => {
    const last = dmaChanReg(X100_DMA.MAX_NUM_CHAN - 1, X100_DMA_REG.DCHERRMSK);
    expect(last + 4).toBeLessThanOrEqual(X100_REG.DCR);
    expect(X100_REG.SDBIC0 + 16).toBeLessThanOrEqual(X100_MMIO_SIZE);
    expect(() => dmaChanReg(8, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => spadReg(16)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => sdbicReg(4)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('encodes and decodes scratchpad 2 losslessly', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.integer({ min: 0, max: 0x1ff }),
        fc.integer({ min: 0, max: 0xfffff }),
        (r, a, p) => {
          const spad2 = { ready: r, apicId: a, bootAddr: p * 4096 };
          expect(decodeSpad2(encodeSpad2(spad2))).toEqual(spad2);
        },
      ),
    );
    expect(() => encodeSpad2({ ready: true, apicId: 0, bootAddr: 100 })).toThrow('boot address 100');
  });
});

describe('X100Hardware', () => {
  it('powers on with the firmware ready and every other register zero', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    expect(hw.cardState).toBe(X100_CARD_STATE.READY);
    expect(decodeSpad2(hw.mmio.read32(spadReg(X100_SPAD.DOWNLOAD_INFO)))).toEqual({
      ready: true,
      apicId: 0,
      bootAddr: 256 * 1024,
    });
    expect(hw.mmio.read32(X100_REG.SICE0)).toBe(0);
    expect(hw.smptValidMask).toBe(0);
  });

  it('checks its configuration', () => {
    expect(() => resolveX100Config({ cardMemorySize: 1000 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => resolveX100Config({ bootAddr: 64 * 1024 * 1024 })).toThrow('inside');
    expect(() => resolveX100Config({ deviceId: 0x1234 })).toThrow(
      expect.objectContaining({ code: 'ENODEV' }),
    );
    expect(resolveX100Config({ cardMemorySize: 1 << 30 }).bootAddr).toBe(64 * 1024 * 1024);
  });

  it('shares memory and registers with an attached instance', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    const other = X100Hardware.attach(hw.buffers, hw.config);
    hw.cardMemory.writeU32(64, 0x1234);
    other.mmio.write32(spadReg(3), 77);
    expect(other.cardMemory.readU32(64)).toBe(0x1234);
    expect(hw.mmio.read32(spadReg(3))).toBe(77);
    other.mmio.write32(sdbicReg(2), 0x80000000);
    expect(hw.hostLine.pending()).toBe(0b100);
    expect(hw.mmio.read32(sdbicReg(2))).toBe(0);
  });

  it('rejects unaligned and out-of-range register accesses with EFAULT', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    expect(() => hw.mmio.read32(2)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => hw.mmio.write32(X100_MMIO_SIZE, 0)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => hw.mmio.read32(-4)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
  });

  it('settles a register only when its value changes, and removes write handlers', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    const reg = spadReg(5);
    hw.mmio.settle32(reg, 0xdeadbeef);
    expect(hw.mmio.read32(reg)).toBe(0xdeadbeef);
    hw.mmio.settle32(reg, 0xdeadbeef);
    expect(hw.mmio.read32(reg)).toBe(0xdeadbeef);
    hw.mmio.settle32(reg, 1);
    expect(hw.mmio.read32(reg)).toBe(1);
    expect(() => hw.mmio.settle32(3, 0)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    const writes: number[] = [];
    hw.mmio.setWriteHandler(reg, (v) => writes.push(v));
    expect(hw.mmio.hasWriteHandler(reg)).toBe(true);
    hw.mmio.write32(reg, 7);
    hw.mmio.setWriteHandler(reg, undefined);
    expect(hw.mmio.hasWriteHandler(reg)).toBe(false);
    hw.mmio.write32(reg, 8);
    expect(writes).toEqual([7]);
    expect(hw.mmio.read32(reg)).toBe(8);
  });

  it('tells the current generation from an older one', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    const g = hw.generation;
    expect(hw.isCurrentGeneration(g)).toBe(true);
    expect(hw.bumpGeneration()).toBe(g + 1);
    expect(hw.isCurrentGeneration(g)).toBe(false);
    expect(hw.isCurrentGeneration(g + 1)).toBe(true);
  });

  it('lets a DMA engine model hook channel registers and raise DMA interrupts', async () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    const host = new X100HostView(hw, { delivery: 'microtask' });
    host.enableInterrupts({ autoClear: false });
    const dhpr = dmaChanReg(2, X100_DMA_REG.DHPR);
    const dstat = dmaChanReg(2, X100_DMA_REG.DSTAT);
    // a toy engine: completes every descriptor up to the new head at once
    hw.mmio.setWriteHandler(dhpr, (head) => {
      hw.mmio.store32(dhpr, head);
      hw.mmio.store32(dstat, head);
      hw.raiseHostInterrupt(hostDmaSrc(2));
    });
    expect(() => hw.mmio.setWriteHandler(dhpr, () => {})).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    const seen: number[] = [];
    host.requestIrq(hostDmaSrc(2), (src) => {
      seen.push(src, hw.mmio.read32(dstat));
    });
    host.mmio.write32(dhpr, 5);
    expect(seen).toEqual([]);
    await flush();
    expect(seen).toEqual([10, 5]);
    await host.close();
  });

  it('resolves card physical addresses to card memory below the SMPT window and to host RAM inside it', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    const host = new X100HostView(hw, { delivery: 'microtask' });
    const buf = hostBuffer(host, 128);
    const micAddr = host.mapSingle(buf.dmaAddr, 128);
    hw.cardAddressWindow(micAddr, 128).writeU8(3, 9);
    expect(buf.mem.readU8(3)).toBe(9);
    hw.cardAddressWindow(4096, 8).writeU8(0, 4);
    expect(hw.cardMemory.readU8(4096)).toBe(4);
    expect(() => hw.cardAddressWindow((1 << 20) - 4, 8)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => hw.cardAddressWindow(X100_SMPT.BASE - 8, 4)).toThrow(
      expect.objectContaining({ code: 'EFAULT' }),
    );
  });
});

describe('InterruptLine', () => {
  function host(): X100Hardware {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    hw.hostLine.setEnabled(0xf);
    return hw;
  }

  it('claims with take() exactly the enabled pending sources, or those of the candidates given', () => {
    const hw = host();
    const line = hw.hostLine;
    line.raise(0);
    line.raise(2);
    line.raise(9); // not enabled
    expect(line.deliverable()).toBe(0b101);
    expect(line.take(0b100)).toBe(0b100);
    expect(line.pending()).toBe((1 << 9) | 0b1);
    expect(line.take()).toBe(0b1);
    expect(line.take()).toBe(0);
    expect(line.pending()).toBe(1 << 9);
    // a candidate that is no longer pending is not claimed
    expect(line.take(0b10)).toBe(0);
  });

  it('holds auto-cleared sources until ack, or writes them to the enable word on commit', () => {
    const hw = host();
    const line = hw.hostLine;
    line.setAutoClear(0b11);
    line.raise(0);
    line.raise(2);
    expect(line.take()).toBe(0b101);
    // source 0 is held in this instance only; source 2 has no auto-clear
    expect(line.enabled()).toBe(0b1110);
    expect(hw.mmio.read32(X100_REG.SICE0)).toBe(0xf);
    line.raise(0);
    expect(line.deliverable()).toBe(0);
    line.ack();
    expect(line.deliverable()).toBe(0b1);
    expect(line.take()).toBe(0b1);
    line.commitAutoClear();
    expect(hw.mmio.read32(X100_REG.SICE0)).toBe(0b1110);
    expect(line.enabled()).toBe(0b1110);
    line.ack();
    expect(hw.mmio.read32(X100_REG.SICE0)).toBe(0xf);
    // an explicit disable wins over a later ack
    line.raise(1);
    expect(line.take()).toBe(0b10);
    line.disable(0b10);
    line.ack();
    line.commitAutoClear();
    expect(line.enabled()).toBe(0b1101);
  });

  it('has no auto-clear on the card side', () => {
    const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    expect(hw.cardLine.autoClearMask()).toBe(0);
    expect(() => hw.cardLine.setAutoClear(1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    hw.cardLine.setEnabled(0b1);
    hw.cardLine.raise(0);
    expect(hw.cardLine.take()).toBe(1);
    expect(hw.cardLine.enabled()).toBe(1);
  });
});
