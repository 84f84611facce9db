// The `wait` delivery loop's poll back-off: polls that find nothing make the next idle waits sleep
// at once (1, 2, 4, ... up to MAX_SPIN_SKIP of them), a poll that finds an interrupt ends it.
import { describe, expect, it } from '@jest/globals';
import { MAX_SPIN_SKIP, SpinBackoff } from '../src/irq.js';

/** How many idle waits sleep at once before the next poll. */
function skipped(b: SpinBackoff): number {
  let n = 0;
  while (!b.shouldPoll()) n++;
  return n;
}

describe('the interrupt loop poll back-off', () => {
  it('polls every idle wait while its polls find interrupts', () => {
    const b = new SpinBackoff();
    for (let i = 0; i < 10; i++) {
      expect(b.shouldPoll()).toBe(true);
      b.polled(true);
    }
    expect(b.skipping).toBe(0);
  });

  it('skips twice as many waits after each poll that found nothing, never more than the bound', () => {
    const b = new SpinBackoff();
    const runs: number[] = [];
    for (let i = 0; i < 10; i++) {
      expect(b.shouldPoll()).toBe(true);
      b.polled(false);
      runs.push(skipped(b));
    }
    expect(runs).toEqual([1, 2, 4, 8, 16, 32, 64, 64, 64, 64]);
    expect(MAX_SPIN_SKIP).toBe(64);
  });

  it('starts over after a poll that found an interrupt', () => {
    const b = new SpinBackoff();
    b.polled(false);
    expect(skipped(b)).toBe(1);
    b.polled(false);
    expect(skipped(b)).toBe(2);
    b.polled(true);
    expect(b.shouldPoll()).toBe(true);
    b.polled(false);
    expect(skipped(b)).toBe(1);
  });
});
