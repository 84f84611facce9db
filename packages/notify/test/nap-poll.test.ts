// napPoll: a bounded poll that spins first, then naps between polls, and never sleeps on a word a
// signaller must wake. No assertion depends on how fast this machine is, except the loose upper
// bounds that show the poll is bounded.
import { describe, expect, it } from '@jest/globals';
import { Worker } from 'node:worker_threads';
import { DEFAULT_SPIN_NS, napPoll } from '../src/index.js';

describe('napPoll', () => {
  it('checks once, without reading the clock, when the condition holds at once or the budget is 0', () => {
    let polls = 0;
    expect(napPoll(() => ++polls > 0, 1_000_000)).toBe(true);
    expect(polls).toBe(1);
    polls = 0;
    expect(
      napPoll(() => {
        polls++;
        return false;
      }, 0),
    ).toBe(false);
    expect(polls).toBe(1);
  });

  it('returns true at the poll where the condition starts to hold', () => {
    let polls = 0;
    expect(napPoll(() => ++polls >= 100, 10_000_000_000)).toBe(true);
    expect(polls).toBe(100);
  });

  it('gives up once the budget passed, napping (few polls) instead of spinning past spinNs', () => {
    let polls = 0;
    const t0 = performance.now();
    const never = (): boolean => {
      polls++;
      return false;
    };
    expect(napPoll(never, 5_000_000, { spinNs: 0 })).toBe(false);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(5);
    // bounded: the budget plus one nap, far below this on any machine
    expect(ms).toBeLessThan(5_000);
    // a 5 ms spin polls millions of times; each nap asks for 1 µs (~50 µs with the timer slack),
    // so the napping poll makes at most ~5,000 polls (loose bound: timers differ between hosts)
    expect(polls).toBeLessThan(200_000);
  });

  it('spins for spinNs before the first nap (default 50 µs), never longer than the budget', () => {
    let polls = 0;
    const never = (): boolean => {
      polls++;
      return false;
    };
    const t0 = performance.now();
    expect(napPoll(never, DEFAULT_SPIN_NS)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(DEFAULT_SPIN_NS / 1e6);
    // the whole budget was a spin (no nap): after the first check, the clock is read every 64
    // polls only, and the poll ended at such a read
    expect((polls - 1) % 64).toBe(0);
  });

  it('sees an event another thread publishes while it naps, without being notified', async () => {
    const sab = new SharedArrayBuffer(4);
    const flag = new Int32Array(sab);
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const f = new Int32Array(workerData);
       setTimeout(() => Atomics.store(f, 0, 1), 20);`,
      { eval: true, workerData: sab },
    );
    try {
      // spin 0: the poll naps from the start, so the worker gets the CPU even on one vCPU
      expect(napPoll(() => Atomics.load(flag, 0) === 1, 30_000_000_000, { spinNs: 0 })).toBe(true);
    } finally {
      await worker.terminate();
    }
  });
});
