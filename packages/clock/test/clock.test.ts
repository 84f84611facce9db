import { describe, expect, it } from '@jest/globals';
import { isMicError } from '@mic/errors';
import { pollUntil, realClock, VirtualClock } from '../src/index.js';

describe('VirtualClock', () => {
  it('runs a long sleep in no real time', async () => {
    const clock = new VirtualClock();
    const t0 = performance.now();
    await clock.sleep(15_000);
    expect(clock.now()).toBe(15_000);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it('fires timers in time order, ties in the order they were set', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const order: string[] = [];
    const all = Promise.all([
      clock.sleep(30).then(() => order.push('c')),
      clock.sleep(10).then(() => order.push('a')),
      clock.sleep(10).then(() => order.push('b')),
    ]);
    clock.advance(5);
    await Promise.resolve();
    expect(order).toEqual([]);
    clock.advance(100);
    await all;
    expect(order).toEqual(['a', 'b', 'c']);
    expect(clock.now()).toBe(105);
  });

  it('cancels a sleep through an AbortSignal', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const ac = new AbortController();
    const p = clock.sleep(1000, ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(clock.pending).toBe(0);
  });

  it('rejects negative and non-finite delays', () => {
    const clock = new VirtualClock();
    expect(() => clock.sleep(-1)).toThrow('sleep of -1 ms');
    expect(() => clock.sleep(Number.NaN)).toThrow('sleep of NaN ms');
  });

  it('pollUntil gives up after the timeout and succeeds when the condition turns true', async () => {
    const clock = new VirtualClock();
    expect(await pollUntil(clock, () => false, 10_000, 100)).toBe(false);
    expect(clock.now()).toBe(10_000);
    let n = 0;
    expect(await pollUntil(clock, () => ++n === 3, 10_000, 100)).toBe(true);
    expect(clock.now()).toBe(10_200);
  });
});

describe('realClock', () => {
  it('sleeps and can be cancelled', async () => {
    const t0 = realClock.now();
    await realClock.sleep(5);
    expect(realClock.now()).toBeGreaterThanOrEqual(t0 + 4);
    const ac = new AbortController();
    const p = realClock.sleep(10_000, ac.signal);
    ac.abort();
    const err = await p.catch((e: unknown) => e);
    expect(isMicError(err, 'ECANCELED')).toBe(true);
  });
});
