import { describe, expect, it } from '@jest/globals';
import { createMemoryLogger } from '@mic/logger';
import { BufferMemory } from '@mic/memory';
import { DOORBELL_POLICY, IRQ_RETURN, MockDmaMapOps, MockIrqLines, MockRemapper } from '../src/index.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('MockIrqLines', () => {
  it('hands out doorbells round-robin over the line count', () => {
    const lines = new MockIrqLines({ count: 4 });
    expect(Array.from({ length: 9 }, () => lines.nextDb())).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0]);
  });

  it('hands out the least-used doorbell, the lowest index on a tie', () => {
    const lines = new MockIrqLines({ count: 3, policy: DOORBELL_POLICY.LEAST_USED });
    const cookies = [];
    for (let i = 0; i < 4; i++) {
      const db = lines.nextDb();
      cookies.push(lines.request(() => undefined, null, `h${i}`, i, db));
    }
    expect(cookies.map((c) => c.intrSrc)).toEqual([0, 1, 2, 0]);
    lines.free(cookies[1]!, 1);
    expect(lines.nextDb()).toBe(1);
    expect(lines.usage(0)).toBe(2);
  });

  it('delivers a raised line in a later task, to every handler with its data', async () => {
    const lines = new MockIrqLines({ count: 2 });
    const calls: unknown[] = [];
    lines.request((irq, data) => void calls.push([irq, data]), null, 'a', 'A', 1);
    lines.request((irq, data) => void calls.push([irq, data]), null, 'b', 'B', 1);
    lines.raise(1);
    expect(calls).toEqual([]);
    expect(lines.pending).toBe(1);
    await lines.flush();
    expect(calls).toEqual([
      [1, 'A'],
      [1, 'B'],
    ]);
    expect(lines.delivered).toBe(2);
  });

  it('coalesces rings of a line that is still latched', async () => {
    const lines = new MockIrqLines({ count: 1 });
    let n = 0;
    lines.request(() => void n++, null, 'a', null, 0);
    lines.raise(0);
    lines.raise(0);
    await lines.flush();
    expect(n).toBe(1);
    lines.raise(0);
    await lines.flush();
    expect(n).toBe(2);
  });

  it('runs the thread fn after the handler asks for it, and always when there is no handler', async () => {
    const lines = new MockIrqLines({ count: 2 });
    const order: string[] = [];
    lines.request(
      () => {
        order.push('hard');
        return IRQ_RETURN.WAKE_THREAD;
      },
      () => void order.push('thread'),
      'dma',
      null,
      0,
    );
    lines.request(
      () => IRQ_RETURN.HANDLED,
      () => void order.push('never'),
      'quiet',
      null,
      1,
    );
    lines.request(null, () => void order.push('thread only'), 'threaded', null, 1);
    lines.raise(0);
    lines.raise(1);
    await lines.flush();
    expect(order).toEqual(['hard', 'thread', 'thread only']);
  });

  it('does not call a handler freed before delivery and counts interrupts nobody handles as lost', async () => {
    const lines = new MockIrqLines({ count: 2 });
    let n = 0;
    const cookie = lines.request(() => void n++, null, 'a', 'd', 0);
    lines.raise(0);
    lines.free(cookie, 'd');
    await lines.flush();
    expect(n).toBe(0);
    expect(lines.lost).toBe(1);
    lines.request(() => void n++, null, 'b', 'd', 0);
    lines.raise(1);
    await lines.flush();
    expect(lines.lost).toBe(2);
    expect(n).toBe(0);
  });

  it('rejects bad lines, double frees, wrong data and requests without any handler with EINVAL', () => {
    const lines = new MockIrqLines({ count: 2 });
    const einval = expect.objectContaining({ code: 'EINVAL' });
    expect(() => lines.request(() => undefined, null, 'x', 0, 2)).toThrow(einval);
    expect(() => lines.request(() => undefined, null, 'x', 0, -1)).toThrow(einval);
    expect(() => lines.request(null, null, 'x', 0, 0)).toThrow(einval);
    expect(() => lines.raise(7)).toThrow(einval);
    const c = lines.request(() => undefined, null, 'x', 'data', 0);
    expect(() => lines.free(c, 'other')).toThrow(einval);
    lines.free(c, 'data');
    expect(() => lines.free(c, 'data')).toThrow(einval);
    expect(() => lines.free({ intrSrc: 0, name: 'forged' }, 'data')).toThrow(einval);
    expect(() => new MockIrqLines({ count: 0 })).toThrow(einval);
  });

  it('logs a handler that throws and keeps delivering to the others', async () => {
    const logger = createMemoryLogger();
    const lines = new MockIrqLines({ count: 1, logger });
    let n = 0;
    lines.request(
      () => {
        throw new Error('bug');
      },
      null,
      'bad',
      null,
      0,
    );
    lines.request(() => void n++, null, 'good', null, 0);
    lines.raise(0);
    await lines.flush();
    expect(n).toBe(1);
    expect(logger.records[0]?.msg).toBe('interrupt handler threw');
  });

  it('delivers a line raised by its own handler in a later task, not in a loop', async () => {
    const lines = new MockIrqLines({ count: 1 });
    let n = 0;
    lines.request(
      () => {
        n++;
        if (n < 3) lines.raise(0);
      },
      null,
      'again',
      null,
      0,
    );
    lines.raise(0);
    await tick();
    expect(n).toBe(1);
    await lines.flush();
    expect(n).toBe(3);
  });

  it('with auto-clear, masks a delivered line until an ack and then delivers what was rung meanwhile', async () => {
    const lines = new MockIrqLines({ count: 2, autoClear: true });
    let n = 0;
    lines.request(() => void n++, null, 'a', null, 0);
    lines.raise(0);
    await lines.flush();
    expect([n, lines.isMasked(0)]).toEqual([1, true]);
    lines.raise(0);
    await lines.flush();
    expect(n).toBe(1);
    expect(lines.pending).toBe(0);
    lines.ack(7);
    expect(lines.isMasked(0)).toBe(false);
    await lines.flush();
    expect(n).toBe(2);
  });

  it('records acknowledgements', () => {
    const lines = new MockIrqLines({ count: 1 });
    lines.ack(3);
    lines.ack(0);
    expect(lines.acks).toEqual([3, 0]);
  });
});

describe('MockDmaMapOps', () => {
  it('allocates zeroed, aligned buffers whose DMA address is base plus pool offset', () => {
    const pool = BufferMemory.allocate(1 << 16);
    pool.fill(0, pool.byteLength, 0xaa);
    const dma = new MockDmaMapOps({ pool, base: 0x80_0000_0000 });
    const small = dma.alloc(100);
    const page = dma.alloc(8192);
    const bytes = new Uint8Array(100);
    small.va.read(0, bytes);
    expect(bytes.every((b) => b === 0)).toBe(true);
    expect(small.dmaAddr % 64).toBe(0);
    expect(page.dmaAddr % 4096).toBe(0);
    expect((page.va as BufferMemory).byteOffset).toBe(page.dmaAddr - 0x80_0000_0000);
    expect(small.dmaAddr).toBeGreaterThanOrEqual(0x80_0000_0000 + 4096);
    dma.free(small);
    expect(() => dma.free(small)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => dma.alloc(0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => dma.alloc(1 << 20)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
  });

  it('maps views of its pool and rejects other memory', () => {
    const pool = BufferMemory.allocate(1 << 16);
    const dma = new MockDmaMapOps({ pool, base: 0x1000_0000 });
    const buf = dma.alloc(4096);
    const addr = dma.mapSingle(buf.va.window(100, 50));
    expect(addr).toBe(buf.dmaAddr + 100);
    expect(dma.liveMappings).toBe(1);
    dma.unmapSingle(addr, 50);
    expect(() => dma.unmapSingle(addr, 50)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => dma.mapSingle(BufferMemory.allocate(64))).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});

describe('MockRemapper', () => {
  it('maps addresses inside a region to windows of its pool', () => {
    const pool = BufferMemory.allocate(8192);
    const r = new MockRemapper([{ base: 0x10000, pool }]);
    const m = r.remap(0x10010, 16);
    expect((m as BufferMemory).byteOffset).toBe(0x10);
    expect(m.byteLength).toBe(16);
    expect(r.live).toBe(1);
    r.unmap(m);
    expect(() => r.unmap(m)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('rejects unreachable ranges with EFAULT and bad arguments with EINVAL', () => {
    const r = new MockRemapper([{ base: 0x10000, pool: BufferMemory.allocate(4096) }]);
    expect(() => r.remap(0x10000 + 4000, 200)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => r.remap(0, 16)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(() => r.remap(0x10000, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => r.remap(-1, 4)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
