/**
 * What every suite takes: the test functions of the runner (so the suites work with jest, vitest or
 * `node:test`), and the {@link TestSetup} of the implementation under test.
 */
import { AssertionError } from 'node:assert/strict';
import { isMicError, type ErrnoCode } from '@mic/errors';

/**
 * The test API a suite registers its tests with. Pass jest's:
 * `import { describe, it, beforeEach, afterEach } from '@jest/globals'`.
 */
export interface TestApi {
  describe(name: string, fn: () => void): void;
  /** `timeout` is in milliseconds, as jest's third argument. */
  it(name: string, fn: () => Promise<void>, timeout?: number): void;
  beforeEach(fn: () => Promise<void>): void;
  afterEach(fn: () => Promise<void>): void;
}

/**
 * How a suite gets a fresh implementation for each test (libp2p's interface-compliance-tests
 * shape). `setup` runs before every test and `teardown` after it, even when the test failed.
 */
export interface TestSetup<C> {
  /** Builds what one test needs. */
  setup(): Promise<C>;
  /** Releases it (unregister devices, stop platforms, free memory). */
  teardown(ctx: C): Promise<void>;
  /**
   * Upper bound, in real milliseconds, for anything the suite waits for: an interrupt to arrive
   * (it may come from another thread) or a write to show on the other side. Default 5000. Only a
   * failing implementation ever waits this long.
   */
  readonly timeoutMs?: number;
}

/** Default of {@link TestSetup.timeoutMs}. */
export const DEFAULT_TIMEOUT_MS = 5000;

/**
 * Waits until `cond()` holds (it may be async), checking every millisecond of real time so tasks
 * and messages from other threads get to run; fails with an assertion naming `what` after
 * `timeoutMs`.
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (performance.now() > deadline) {
      throw new AssertionError({ message: `timed out after ${timeoutMs} ms waiting for ${what}` });
    }
    await new Promise<void>((resolve) => setTimeout(resolve, 1));
  }
}

function checkError(err: unknown, code: ErrnoCode, what: string): void {
  if (!isMicError(err, code)) {
    const got = isMicError(err)
      ? err.code
      : err instanceof Error
        ? `${err.name}: ${err.message}`
        : String(err);
    throw new AssertionError({ message: `${what}: expected a MicError ${code}, got ${got}`, actual: err });
  }
}

/** Asserts that `fn()` throws a `MicError` with `code`. */
export function throwsMicError(fn: () => unknown, code: ErrnoCode, what: string): void {
  try {
    fn();
  } catch (err) {
    checkError(err, code, what);
    return;
  }
  throw new AssertionError({ message: `${what}: expected a MicError ${code}, but it returned` });
}

/** Asserts that `fn()` rejects (or throws) with a `MicError` with `code`. */
export async function rejectsMicError(
  fn: () => Promise<unknown>,
  code: ErrnoCode,
  what: string,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    checkError(err, code, what);
    return;
  }
  throw new AssertionError({ message: `${what}: expected a MicError ${code}, but it resolved` });
}

/**
 * Registers `beforeEach`/`afterEach` hooks that build a fresh context per test from `setup` and
 * tear it down; returns a getter for the current context and the wait bound.
 */
export function withContext<C>(
  api: TestApi,
  setup: TestSetup<C>,
): { readonly ctx: () => C; readonly timeoutMs: number } {
  let current: C | undefined;
  api.beforeEach(async () => {
    current = await setup.setup();
  });
  api.afterEach(async () => {
    const c = current;
    current = undefined;
    if (c !== undefined) await setup.teardown(c);
  });
  return {
    ctx: () => {
      if (current === undefined) throw new AssertionError({ message: 'the test setup did not run' });
      return current;
    },
    timeoutMs: setup.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  };
}
