import type { DevicePage, X100Platform } from '../src/index.js';
import { hostDpInit, writeDpAddress } from '../src/index.js';

/** Where the platform tests' card code lives. */
export const ECHO_CARD = new URL('./fixtures/card-echo.mjs', import.meta.url);

/**
 * What the host driver does before a boot: interrupts on, device page allocated, mapped,
 * initialised and published in SPAD14/15.
 */
export function prepareHost(platform: X100Platform, nodeId = 1): DevicePage {
  platform.host.enableInterrupts();
  const dp = hostDpInit(platform.host, nodeId);
  writeDpAddress(platform.host, dp.micAddr);
  return dp;
}

/** Polls `check` (real time) until it holds; fails after `timeoutMs`. */
export async function eventually(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Lets every queued microtask run (in-process interrupt delivery). */
export async function flush(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}
