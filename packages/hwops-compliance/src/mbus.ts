/**
 * The compliance suite of `MbusHwOps` (and the `MbusDevice` fields).
 *
 * @see include/linux/mic_bus.h
 */
import assert from 'node:assert/strict';
import {
  IRQ_RETURN,
  type IrqHandler,
  MBUS_DEV_ANY_ID,
  MBUS_DEV_DMA_HOST,
  MBUS_DEV_DMA_MIC,
  type MbusDevice,
} from '@mic/mic-bus';
import { type TestApi, type TestSetup, throwsMicError, waitFor, withContext } from './api.js';

/** What {@link mbusHwOpsCompliance} gets for each test. */
export interface MbusTestContext {
  /** The mbus device under test, no driver bound; its `hwOps` are exercised in the test's thread. */
  readonly device: MbusDevice;
  /**
   * Makes the hardware raise interrupt source `intrSrc` of the device, as the DMA engine does when
   * a descriptor with the interrupt flag completes on that channel. Resolves once raised.
   */
  raise(intrSrc: number): Promise<void>;
  /** At least two valid interrupt sources of the device (x100: the channel numbers of its side). */
  readonly sources: readonly number[];
}

/** The setup of {@link mbusHwOpsCompliance}. */
export type MbusTestSetup = TestSetup<MbusTestContext>;

/**
 * Registers the `MbusHwOps` compliance tests for one implementation.
 *
 * @param name - what is tested, e.g. `mic-host on x100 (inProcess)`
 * @param setup - builds an {@link MbusTestContext} per test
 * @param api - the runner's `describe`, `it`, `beforeEach`, `afterEach`
 */
export function mbusHwOpsCompliance(name: string, setup: MbusTestSetup, api: TestApi): void {
  api.describe(`MbusHwOps compliance: ${name}`, () => {
    const { ctx, timeoutMs } = withContext(api, setup);
    const testTimeout = timeoutMs * 4 + 10_000;
    const until = (cond: () => boolean, what: string): Promise<void> => waitFor(cond, timeoutMs, what);
    const twoSources = (): [number, number] => {
      const [a, b] = ctx().sources;
      assert.ok(a !== undefined && b !== undefined && a !== b, 'the setup must give two distinct sources');
      return [a, b];
    };

    api.it(
      'describes a DMA device (host or card) with vendor ANY named mbus-dev<index> and its MMIO',
      async () => {
        const { device } = ctx();
        assert.ok(
          device.id.device === MBUS_DEV_DMA_HOST || device.id.device === MBUS_DEV_DMA_MIC,
          `device id ${device.id.device}`,
        );
        assert.equal(device.id.vendor, MBUS_DEV_ANY_ID);
        assert.equal(device.name, `mbus-dev${device.index}`);
        assert.ok(device.mmioVa.byteLength > 0, 'the MMIO view is empty');
      },
      testTimeout,
    );

    api.it(
      'invokes the handler with the source and data when the source fires, each time it fires',
      async () => {
        const { device, raise } = ctx();
        const [src] = twoSources();
        const data = { channel: src };
        const calls: [number, unknown][] = [];
        const cookie = device.hwOps.requestThreadedIrq(
          (irq, d) => {
            device.hwOps.ackInterrupt(irq);
            calls.push([irq, d]);
            return IRQ_RETURN.HANDLED;
          },
          null,
          'compliance',
          data,
          src,
        );
        try {
          await raise(src);
          await until(() => calls.length >= 1, `the handler of source ${src}`);
          assert.deepEqual(calls[0], [src, data]);
          await raise(src);
          await until(() => calls.length >= 2, `a second interrupt of source ${src}`);
        } finally {
          device.hwOps.freeIrq(cookie, data);
        }
      },
      testTimeout,
    );

    api.it(
      'runs the thread fn after a handler that returns IRQ_WAKE_THREAD, with the same data',
      async () => {
        const { device, raise } = ctx();
        const [src] = twoSources();
        const order: string[] = [];
        const data = { tag: 'dma' };
        let threadData: unknown;
        const cookie = device.hwOps.requestThreadedIrq(
          (irq) => {
            device.hwOps.ackInterrupt(irq);
            order.push('handler');
            return IRQ_RETURN.WAKE_THREAD;
          },
          (_irq, d) => {
            order.push('thread');
            threadData = d;
          },
          'compliance',
          data,
          src,
        );
        try {
          await raise(src);
          await until(() => order.includes('thread'), `the thread fn of source ${src}`);
          assert.deepEqual(order.slice(0, 2), ['handler', 'thread']);
          assert.equal(threadData, data);
        } finally {
          device.hwOps.freeIrq(cookie, data);
        }
      },
      testTimeout,
    );

    api.it(
      'runs a thread fn requested without a handler, and not the thread fn of a handler that returns HANDLED',
      async () => {
        const { device, raise } = ctx();
        const [a, b] = twoSources();
        let quietThread = 0;
        let quietHandler = 0;
        let threadOnly = 0;
        const ca = device.hwOps.requestThreadedIrq(
          (irq) => {
            device.hwOps.ackInterrupt(irq);
            quietHandler++;
            return IRQ_RETURN.HANDLED;
          },
          () => void quietThread++,
          'compliance quiet',
          'a',
          a,
        );
        const cb = device.hwOps.requestThreadedIrq(
          null,
          () => void threadOnly++,
          'compliance thread',
          'b',
          b,
        );
        try {
          await raise(a);
          await until(() => quietHandler >= 1, `the handler of source ${a}`);
          await raise(b);
          await until(() => threadOnly >= 1, `the thread fn of source ${b}`);
          assert.equal(quietThread, 0, 'a thread fn ran although its handler returned IRQ_HANDLED');
        } finally {
          device.hwOps.freeIrq(ca, 'a');
          device.hwOps.freeIrq(cb, 'b');
        }
      },
      testTimeout,
    );

    api.it(
      'lets the handler acknowledge the interrupt with ackInterrupt',
      async () => {
        const { device, raise } = ctx();
        const [src] = twoSources();
        const outcome: unknown[] = [];
        const handler: IrqHandler<null> = (irq) => {
          try {
            device.hwOps.ackInterrupt(irq);
            outcome.push('acked');
          } catch (err) {
            outcome.push(err);
          }
          return IRQ_RETURN.HANDLED;
        };
        const cookie = device.hwOps.requestThreadedIrq(handler, null, 'compliance ack', null, src);
        try {
          await raise(src);
          await until(() => outcome.length >= 1, `the handler of source ${src}`);
          assert.equal(outcome[0], 'acked', `ackInterrupt threw inside the handler: ${String(outcome[0])}`);
        } finally {
          device.hwOps.freeIrq(cookie, null);
        }
      },
      testTimeout,
    );

    api.it(
      'stops invoking the functions of a freed request',
      async () => {
        const { device, raise } = ctx();
        const [a, b] = twoSources();
        let freed = 0;
        let sentinel = 0;
        const ca = device.hwOps.requestThreadedIrq(
          (irq) => {
            device.hwOps.ackInterrupt(irq);
            freed++;
            return IRQ_RETURN.WAKE_THREAD;
          },
          () => void freed++,
          'compliance freed',
          'a',
          a,
        );
        const cb = device.hwOps.requestThreadedIrq(
          null,
          () => void sentinel++,
          'compliance sentinel',
          'b',
          b,
        );
        try {
          device.hwOps.freeIrq(ca, 'a');
          await raise(a);
          await raise(b);
          await until(() => sentinel >= 1, `the sentinel on source ${b}`);
          assert.equal(freed, 0, 'a freed request ran');
        } finally {
          device.hwOps.freeIrq(cb, 'b');
        }
        throwsMicError(() => device.hwOps.freeIrq(ca, 'a'), 'EINVAL', 'a second freeIrq');
      },
      testTimeout,
    );

    api.it(
      'rejects a request with neither handler nor thread fn, or on a source it does not have, with EINVAL',
      async () => {
        const { device } = ctx();
        const [src] = twoSources();
        throwsMicError(
          () => device.hwOps.requestThreadedIrq(null, null, 'compliance', null, src),
          'EINVAL',
          'a request without functions',
        );
        for (const bad of [-1, 1 << 16]) {
          throwsMicError(
            () => device.hwOps.requestThreadedIrq(() => IRQ_RETURN.HANDLED, null, 'compliance', null, bad),
            'EINVAL',
            `a request on source ${bad}`,
          );
        }
      },
      testTimeout,
    );
  });
}
