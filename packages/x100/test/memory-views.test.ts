// Host RAM and card memory as the views show them: windows at DMA / card physical addresses and
// the address of any view. (Allocating either is the drivers' business: @mic/mic-host, @mic/mic-card.)
import { describe, expect, it } from '@jest/globals';
import { X100Hardware, X100HostView } from '../src/index.js';

function bareHost(): X100HostView {
  const hw = X100Hardware.create({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
  return new X100HostView(hw, { delivery: 'microtask' });
}

describe('host RAM and the aperture', () => {
  it('are bounds-checked windows at DMA and card addresses', () => {
    const host = bareHost();
    const a = host.dmaWindow(0x2000, 128);
    a.fill(0, 128, 0xaa);
    expect(host.ram.readU8(0x2000 + 127)).toBe(0xaa);
    expect(host.ram.readU8(0x2000 + 128)).toBe(0);
    expect(() => a.readU8(128)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    host.apertureWindow(0x3000, 8).writeU8(7, 9);
    expect(host.aperture.readU8(0x3007)).toBe(9);
    expect(() => host.dmaWindow((1 << 20) - 4, 8)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => host.apertureWindow((1 << 20) - 4, 8)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
  });

  it('give back the DMA address of any window of host RAM, and refuse other memory', () => {
    const host = bareHost();
    const a = host.dmaWindow(0x4000, 256);
    expect(host.dmaAddrOf(a)).toBe(0x4000);
    expect(host.dmaAddrOf(a.window(64, 8))).toBe(0x4000 + 64);
    expect(() => host.dmaAddrOf(host.aperture.window(0, 8))).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});
