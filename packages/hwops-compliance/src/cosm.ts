/**
 * The compliance suite of `CosmHwOps`.
 *
 * @see drivers/misc/mic/bus/cosm_bus.h
 */
import assert from 'node:assert/strict';
import { COSM_FAMILY, COSM_STEPPINGS, type CosmBootConfig, type CosmDevice } from '@mic/cosm-bus';
import { type TestApi, type TestSetup, rejectsMicError, withContext } from './api.js';

/** The clock the suite polls `ready()` on; `Clock` of `@mic/clock` fits. */
export interface SuiteClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** What {@link cosmHwOpsCompliance} gets for each test. */
export interface CosmTestContext {
  /** The COSM device under test, no driver bound, its card ready (firmware ready, not booted). */
  readonly device: CosmDevice;
  /** The clock the device's ops wait on; the suite polls `ready()` on it. */
  readonly clock: SuiteClock;
  /** Boot settings with which `start` succeeds on this platform. */
  readonly boot: CosmBootConfig;
}

/** The setup of {@link cosmHwOpsCompliance}. */
export type CosmTestSetup = TestSetup<CosmTestContext>;

/** How long COSM waits for a card to become ready after a reset (`cosm_hw_reset`: 45 × 1 s). */
const READY_TIMEOUT_MS = 45_000;
const READY_POLL_MS = 100;

async function readyWithin(ctx: CosmTestContext): Promise<boolean> {
  const end = ctx.clock.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (ctx.device.hwOps.ready()) return true;
    if (ctx.clock.now() >= end) return false;
    await ctx.clock.sleep(READY_POLL_MS);
  }
}

const MIC_STATES = [0, 1, 2, 3, 4, 5];

/**
 * Registers the `CosmHwOps` compliance tests for one implementation.
 *
 * @param name - what is tested, e.g. `mic-host on x100 (worker)`
 * @param setup - builds a {@link CosmTestContext} per test
 * @param api - the runner's `describe`, `it`, `beforeEach`, `afterEach`
 */
export function cosmHwOpsCompliance(name: string, setup: CosmTestSetup, api: TestApi): void {
  api.describe(`CosmHwOps compliance: ${name}`, () => {
    const { ctx } = withContext(api, setup);
    // A reset polls up to 45 s of the device's clock, which may be a real clock.
    const testTimeout = 2 * READY_TIMEOUT_MS + (setup.timeoutMs ?? 5000) * 4 + 10_000;

    api.it(
      'names a known family and stepping, without a newline',
      async () => {
        const ops = ctx().device.hwOps;
        assert.ok(
          Object.values(COSM_FAMILY).includes(ops.family() as never),
          `family ${JSON.stringify(ops.family())}`,
        );
        const steppings = [...Object.values(COSM_STEPPINGS), '??'];
        assert.ok(steppings.includes(ops.stepping()), `stepping ${JSON.stringify(ops.stepping())}`);
      },
      testTimeout,
    );

    api.it(
      'returns the same aperture on every call, a window whose view has len bytes',
      async () => {
        const ops = ctx().device.hwOps;
        const a = ops.aper();
        const b = ops.aper();
        if (a === null) {
          assert.equal(b, null);
          return;
        }
        assert.ok(b !== null && a.pa === b.pa && a.len === b.len, 'aper() changed between calls');
        assert.ok(a.len > 0 && a.va.byteLength === a.len, 'aperture len and view differ');
      },
      testTimeout,
    );

    api.it(
      'reports the card ready at setup, and ready again within 45 s after reset',
      async () => {
        const c = ctx();
        assert.equal(c.device.hwOps.ready(), true, 'the card is not ready at setup');
        await c.device.hwOps.reset();
        assert.ok(await readyWithin(c), 'the card did not become ready within 45 s after reset');
      },
      testTimeout,
    );

    api.it(
      'makes the card ready again within 45 s after forceReset',
      async () => {
        const c = ctx();
        await c.device.hwOps.forceReset();
        assert.ok(await readyWithin(c), 'the card did not become ready within 45 s after forceReset');
      },
      testTimeout,
    );

    api.it(
      'boots with start, and after stop and reset the card is ready again',
      async () => {
        const c = ctx();
        const ops = c.device.hwOps;
        await ops.start(c.device.index, c.boot);
        await ops.stop(false);
        await ops.reset();
        assert.ok(await readyWithin(c), 'the card did not become ready after start, stop and reset');
      },
      testTimeout,
    );

    api.it(
      'accepts a forced stop of a booted card',
      async () => {
        const c = ctx();
        const ops = c.device.hwOps;
        await ops.start(c.device.index, c.boot);
        await ops.stop(true);
        await ops.forceReset();
        assert.ok(await readyWithin(c), 'the card did not become ready after a forced stop and reset');
      },
      testTimeout,
    );

    api.it(
      'rejects start in flash boot mode with EINVAL and stays usable',
      async () => {
        const c = ctx();
        const ops = c.device.hwOps;
        await rejectsMicError(
          () => ops.start(c.device.index, { ...c.boot, bootmode: 'flash' }),
          'EINVAL',
          'flash',
        );
        await ops.start(c.device.index, c.boot);
        await ops.stop(false);
      },
      testTimeout,
    );

    api.it(
      'accepts every card state in postReset, when the hardware has it',
      async () => {
        const ops = ctx().device.hwOps;
        if (ops.postReset === undefined) return;
        for (const state of MIC_STATES) ops.postReset(state);
      },
      testTimeout,
    );
  });
}
