import { describe, expect, it } from '@jest/globals';
import { createMemoryLogger } from '@mic/logger';
import { IRQ_RETURN, ThreadedIrqTable, type IrqSourceOps } from '../src/index.js';

/** A hardware interrupt controller stand-in: installed handlers by source, fired by hand. */
class FakeHw implements IrqSourceOps<{ src: number; fn: () => void }> {
  readonly installed: { src: number; fn: () => void; name: string }[] = [];
  failNext = false;
  requestIrq(src: number, fn: () => void, name: string): { src: number; fn: () => void } {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('controller closed');
    }
    const c = { src, fn, name };
    this.installed.push(c);
    return c;
  }
  freeIrq(cookie: { src: number; fn: () => void }): void {
    const i = this.installed.indexOf(cookie as never);
    if (i < 0) throw new Error('not installed');
    this.installed.splice(i, 1);
  }
  fire(src: number): void {
    for (const c of [...this.installed]) if (c.src === src) c.fn();
  }
}

const nextTask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function make() {
  const hw = new FakeHw();
  const logger = createMemoryLogger();
  const table = new ThreadedIrqTable<'doorbell' | 'dma', { src: number; fn: () => void }>({
    side: 'host',
    hw,
    kinds: { doorbell: { count: 4, src: (n) => n }, dma: { count: 8, src: (n) => 8 + n } },
    logger,
  });
  return { hw, logger, table };
}

describe('ThreadedIrqTable', () => {
  it('installs on the mapped source and calls the handler with the number and data', () => {
    const { hw, table } = make();
    const calls: [number, string][] = [];
    const cookie = table.request(
      'dma',
      (num, data: string) => void calls.push([num, data]),
      null,
      'ch2',
      'd',
      2,
    );
    expect(hw.installed.map((c) => [c.src, c.name])).toEqual([[10, 'ch2']]);
    expect(cookie).toMatchObject({ intrSrc: 2, name: 'ch2' });
    hw.fire(10);
    expect(calls).toEqual([[2, 'd']]);
    expect(table.live).toBe(1);
    expect(table.free(cookie, 'd')).toEqual({ type: 'dma', num: 2 });
    expect(hw.installed).toEqual([]);
    expect(table.live).toBe(0);
  });

  it('runs the thread function in a later task when woken, or always without a handler', async () => {
    const { hw, table } = make();
    const seen: string[] = [];
    table.request(
      'doorbell',
      () => {
        seen.push('handler');
        return IRQ_RETURN.WAKE_THREAD;
      },
      () => void seen.push('thread'),
      'a',
      null,
      1,
    );
    table.request('doorbell', null, () => void seen.push('thread only'), 'b', null, 3);
    table.request(
      'doorbell',
      () => IRQ_RETURN.HANDLED,
      () => void seen.push('never'),
      'c',
      null,
      3,
    );
    hw.fire(1);
    hw.fire(3);
    expect(seen).toEqual(['handler']);
    await nextTask();
    expect(seen).toEqual(['handler', 'thread', 'thread only']);
  });

  it('calls nothing of a request freed before delivery or before its thread function ran', async () => {
    const { hw, table } = make();
    let threads = 0;
    const cookie = table.request(
      'doorbell',
      () => IRQ_RETURN.WAKE_THREAD,
      () => void threads++,
      'a',
      7,
      0,
    );
    const [installed] = hw.installed;
    hw.fire(0);
    table.free(cookie, 7);
    installed!.fn(); // a delivery already under way when the request was freed
    await nextTask();
    expect(threads).toBe(0);
  });

  it('refuses bad numbers, requests without functions and frees with other data or twice', () => {
    const { hw, table } = make();
    expect(() => table.request('doorbell', () => {}, null, 'x', null, 4)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: 'host doorbell 4 is not an integer in [0, 3]' }),
    );
    expect(() => table.request('dma', () => {}, null, 'x', null, 1.5)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => table.request('dma', null, null, 'x', null, 1)).toThrow(
      expect.objectContaining({
        code: 'EINVAL',
        message: expect.stringContaining('neither handler nor thread fn'),
      }),
    );
    const cookie = table.request('doorbell', () => {}, null, 'x', 'mine', 0);
    expect(() => table.free(cookie, 'other')).toThrow(
      expect.objectContaining({
        code: 'EINVAL',
        message: expect.stringContaining('other data than requested'),
      }),
    );
    table.free(cookie, 'mine');
    expect(() => table.free(cookie, 'mine')).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: "host interrupt cookie 'x' (0) is not live" }),
    );
    expect(hw.installed).toEqual([]);
  });

  it('registers nothing when the controller refuses, and logs a thread function that throws', async () => {
    const { hw, logger, table } = make();
    hw.failNext = true;
    expect(() => table.request('doorbell', () => {}, null, 'x', null, 0)).toThrow('controller closed');
    expect(table.live).toBe(0);
    table.request(
      'doorbell',
      null,
      () => {
        throw new Error('boom');
      },
      'y',
      null,
      2,
    );
    hw.fire(2);
    await nextTask();
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        level: 'error',
        msg: 'interrupt thread fn threw',
        fields: expect.objectContaining({ type: 'doorbell', num: 2, name: 'y', error: 'boom' }),
      }),
    );
  });
});
