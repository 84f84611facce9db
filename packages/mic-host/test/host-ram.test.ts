// The host RAM allocator of mic-host (the host OS's kzalloc / __get_free_pages over the x100's RAM).
import { describe, expect, it } from '@jest/globals';
import { pollUntil } from '@mic/clock';
import { createInProcessPlatform } from '@mic/x100';
import { HostDmaMapOps, hostRam } from '../src/index.js';
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

describe('HostDmaMapOps.free of a buffer a window of the card still reaches', () => {
  it('gives the RAM back only once the card can no longer reach it (issue 10: no write into RAM handed out again)', async () => {
    const platform = createInProcessPlatform({
      cardMemorySize: 1 << 20,
      hostRamSize: 1 << 20,
      dmaEngine: false,
      resetDelayMs: 0,
      cardMain: () => ({}),
    });
    try {
      await platform.startCard();
      const card = platform.cardView!;
      const ops = new HostDmaMapOps(platform.host);
      const ram = hostRam(platform.host);
      const given = ops.alloc(4096);
      card.cardUnmap(card.cardMap(given.dmaAddr, 4096)); // given back first: freed at once
      ops.free(given);
      expect(ram.usedBytes).toBe(0);
      const buf = ops.alloc(4096);
      const offset = platform.host.dmaAddrOf(buf.va);
      card.cardMap(buf.dmaAddr, 4096); // kept
      ops.free(buf);
      expect(ram.usedBytes).toBe(4096); // still held for the card
      expect(ram.alloc(4096, 4096).offset).not.toBe(offset);
      // the grace period ends: the card is stopped, then the RAM comes back
      await pollUntil(
        platform.clock,
        () => ram.usedBytes === 4096 && platform.cardState === 'halted',
        10_000,
        5,
      );
      expect(platform.cardState).toBe('halted');
      expect(ram.usedBytes).toBe(4096); // only the piece allocated above
    } finally {
      await platform.close();
    }
  });
});
