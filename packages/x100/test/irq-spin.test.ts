// The `wait` delivery loop's poll back-off: polls that find nothing make the next idle waits sleep
// at once (1, 2, 4, ... up to MAX_SPIN_SKIP of them), a poll that finds an interrupt ends it.
import { describe, expect, it } from '@jest/globals';
import { nullLogger } from '@mic/logger';
import { InterruptLine, IrqController, MAX_SPIN_SKIP, SpinBackoff } from '../src/irq.js';

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

describe('the wait delivery loop', () => {
  it("runs the code a handler woke before it polls again (no poll ahead of the handler's continuations)", async () => {
    const sab = new SharedArrayBuffer(64);
    const line = new InterruptLine('card', { sab, status: 0, enable: 4, wordSab: sab, wordOffset: 16 });
    line.enable(1);
    // Counts the loop's looks at the line: a poll ahead of the continuation would make thousands.
    let looks = 0;
    const deliverable = line.deliverable.bind(line);
    line.deliverable = (): number => {
      looks++;
      return deliverable();
    };
    // A poll of up to 10 s: one that ran ahead of the continuation below would hold it that long.
    const ctl = new IrqController(line, {
      delivery: 'wait',
      validSources: 1,
      spinNs: 10e9,
      logger: nullLogger,
    });
    let atHandler = -1;
    let atContinuation = -1;
    let calls = 0;
    const done = new Promise<void>((resolve) => {
      ctl.requestIrq(0, () => {
        calls++;
        if (calls > 1) {
          resolve();
          return;
        }
        atHandler = looks;
        // The woken caller's code, two promise turns after the handler, as an awaited recv's is;
        // it raises the next interrupt, which ends the loop's poll.
        void Promise.resolve()
          .then(() => undefined)
          .then(() => {
            atContinuation = looks;
            line.raise(0);
          });
      });
    });
    line.raise(0);
    await done;
    await ctl.close();
    expect(calls).toBe(2);
    // One look in the microtask after the handler; the poll itself runs later.
    expect(atContinuation - atHandler).toBeLessThanOrEqual(1);
  });
});
