// The `wait` delivery loop's poll: it runs only once the code its handlers woke has run. (Its
// back-off, `PollBackoff`, is tested in @mic/notify.)
import { describe, expect, it } from '@jest/globals';
import { nullLogger } from '@mic/logger';
import { InterruptLine, IrqController } from '../src/irq.js';

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
