import { describe, expect, it } from '@jest/globals';
import { IRQ_RETURN, MOCK_MBUS_SOURCES, MockMbusHardware, MockMbusHwOps } from '../src/index.js';

describe('MockMbusHwOps', () => {
  it('runs the hard handler, then the thread fn it woke, with the channel data', async () => {
    const ops = new MockMbusHwOps();
    const order: string[] = [];
    ops.requestThreadedIrq(
      (irq, ch: { n: number }) => {
        ops.ackInterrupt(irq);
        order.push(`hard ${irq} ${ch.n}`);
        return IRQ_RETURN.WAKE_THREAD;
      },
      (irq, ch) => void order.push(`thread ${irq} ${ch.n}`),
      'mic dma-channel3',
      { n: 3 },
      3,
    );
    ops.raiseInterrupt(3);
    await ops.flush();
    expect(order).toEqual(['hard 3 3', 'thread 3 3']);
    expect(ops.acks).toEqual([3]);
  });

  it('has the 8 DMA channel sources of an x100 by default', () => {
    const ops = new MockMbusHwOps();
    expect(ops.lines.count).toBe(MOCK_MBUS_SOURCES);
    expect(() => ops.requestThreadedIrq(null, () => undefined, 'x', null, 8)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });

  it('stops calling freed requests', async () => {
    const ops = new MockMbusHwOps({ sources: 2 });
    let n = 0;
    const cookie = ops.requestThreadedIrq(null, () => void n++, 'x', 'd', 1);
    ops.raiseInterrupt(1);
    await ops.flush();
    ops.freeIrq(cookie, 'd');
    ops.raiseInterrupt(1);
    await ops.flush();
    expect(n).toBe(1);
    expect(ops.usage(1)).toBe(0);
  });
});

describe('MockMbusHardware', () => {
  it('maps host RAM through the SMPT window and card RAM directly', () => {
    const host = new MockMbusHardware({ role: 'host' });
    const card = new MockMbusHardware({ role: 'card' });
    const ring = host.dmaOps.alloc(4096);
    expect(ring.dmaAddr).toBeGreaterThanOrEqual(0x80_0000_0000);
    expect(card.dmaOps.alloc(64).dmaAddr).toBeLessThan(card.ram.byteLength);
    expect(host.mmio.byteLength).toBe(0x20000);
    expect(card.params().id).toBe(3);
  });
});
