// The host RAM allocator of mic-host (the host OS's kzalloc / __get_free_pages over the x100's RAM).
import { describe, expect, it } from '@jest/globals';
import { hostRam } from '../src/index.js';
import { bareHost } from './helpers.js';

describe('hostRam', () => {
  it('is one allocator per host view, handing out zeroed pieces that are never at DMA address 0', () => {
    const host = bareHost();
    const ram = hostRam(host);
    expect(hostRam(host)).toBe(ram);
    expect(hostRam(bareHost())).not.toBe(ram);
    host.ram.fill(0, host.ram.byteLength, 0xaa);
    const a = ram.alloc(128, 64);
    expect(a.offset).toBeGreaterThanOrEqual(4096);
    expect(host.dmaAddrOf(a.mem)).toBe(a.offset);
    expect(a.mem.readU8(127)).toBe(0);
    a.mem.fill(0, 128, 0x55);
    expect(host.dmaWindow(a.offset, 128).readU8(127)).toBe(0x55);
    expect(() => a.mem.readU8(128)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    ram.free(a.offset);
    const b = ram.alloc(128, 64);
    expect(b.offset).toBe(a.offset);
    expect(b.mem.readU8(5)).toBe(0);
    expect(ram.usedBytes).toBe(128);
    expect(ram.alloc(4096, 4096).offset % 4096).toBe(0);
    expect(() => ram.alloc(1 << 20)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    expect(() => ram.free(b.offset + 8)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
