// PollBackoff: polls that did not pay make the next waits sleep at once (1, 2, 4, ... up to
// MAX_POLL_SKIP of them), a poll that paid ends it.
import { describe, expect, it } from '@jest/globals';
import { MAX_POLL_SKIP, PollBackoff } from '../src/index.js';

/** How many waits sleep at once before the next poll. */
function skipped(b: PollBackoff): number {
  let n = 0;
  while (!b.shouldPoll()) n++;
  return n;
}

describe('PollBackoff', () => {
  it('polls every wait while its polls pay', () => {
    const b = new PollBackoff();
    for (let i = 0; i < 10; i++) {
      expect(b.shouldPoll()).toBe(true);
      b.polled(true);
    }
    expect(b.skipping).toBe(0);
  });

  it('skips twice as many waits after each poll that did not pay, never more than the bound', () => {
    const b = new PollBackoff();
    const runs: number[] = [];
    for (let i = 0; i < 10; i++) {
      expect(b.shouldPoll()).toBe(true);
      b.polled(false);
      runs.push(skipped(b));
    }
    expect(runs).toEqual([1, 2, 4, 8, 16, 32, 64, 64, 64, 64]);
    expect(MAX_POLL_SKIP).toBe(64);
  });

  it('starts over after a poll that paid', () => {
    const b = new PollBackoff();
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
