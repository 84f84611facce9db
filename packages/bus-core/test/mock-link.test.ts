import { describe, expect, it } from '@jest/globals';
import { BufferMemory } from '@mic/memory';
import { MockLinkEnd, type MockLinkEndOptions } from '../src/index.js';

class End extends MockLinkEnd {
  constructor(options: MockLinkEndOptions) {
    super('test', options);
  }
  static connect(a: End, b: End): void {
    super.join(a, b);
  }
}

describe('MockLinkEnd', () => {
  it('has x100 doorbells by role and rings the joined peer', async () => {
    const host = new End({ role: 'host' });
    const card = new End({ role: 'card' });
    expect([host.lines.count, card.lines.count, card.lines.allocatable]).toEqual([4, 16, 8]);
    expect([host.lines.autoClear, card.lines.autoClear]).toEqual([true, false]);
    End.connect(host, card);
    const got: number[] = [];
    card.requestIrq((db) => void got.push(db), 'x', null, 5);
    host.sendIntr(5);
    await card.flush();
    expect(got).toEqual([5]);
    expect(host.sentInterrupts).toEqual([5]);
  });

  it('refuses a bad role, joining two sides of one role, and handlers that are not functions', () => {
    expect(() => new End({ role: 'peer' as 'host' })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: 'mock test role "peer" is not host or card' }),
    );
    expect(() => End.connect(new End({ role: 'card' }), new End({ role: 'card' }))).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    const alone = new End({ role: 'card' });
    expect(() => alone.requestIrq(null as never, 'x', null, 0)).toThrow("test irq 'x' has no handler");
    expect(() => alone.sendIntr(-1)).toThrow('test send_intr: doorbell -1 is not an integer in [0, 63]');
    alone.sendIntr(3);
    expect(alone.sentInterrupts).toEqual([3]);
  });

  it('remaps inside its regions and counts live mappings', () => {
    const pool = BufferMemory.allocate(4096);
    const end = new End({ role: 'host', remap: [{ base: 0x1000, pool }] });
    const va = end.remap(0x1100, 16);
    expect([(va as BufferMemory).byteOffset, va.byteLength, end.liveMappings]).toEqual([0x100, 16, 1]);
    end.unmap(va);
    expect(end.liveMappings).toBe(0);
    expect(() => end.remap(0x3000, 16)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
  });
});
