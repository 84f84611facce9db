/**
 * Clocks for the MIC stack. The kernel's handshakes poll with fixed timeouts (10 s for a config
 * change, 15 s for a hot-unplug, 5 s to drain a DMA channel); every library takes a {@link Clock}
 * so tests run those timeouts on a {@link VirtualClock} in no real time.
 */
import { MicError } from '@mic/errors';

/** Time as the stack sees it. */
export interface Clock {
  /** Milliseconds since an arbitrary origin; never goes back. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds of this clock's time. Rejects with `ECANCELED` when
   * `signal` aborts first.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function checkDelay(ms: number): void {
  if (!(ms >= 0) || !Number.isFinite(ms)) {
    throw new MicError('EINVAL', `sleep of ${String(ms)} ms is not a finite non-negative number`);
  }
}

function cancelled(signal: AbortSignal): MicError {
  return new MicError('ECANCELED', 'sleep was cancelled', { cause: signal.reason });
}

/** The wall clock: `performance.now()` and `setTimeout`. */
export const realClock: Clock = {
  now: () => performance.now(),
  sleep(ms, signal) {
    checkDelay(ms);
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(cancelled(signal!));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly resolve: () => void;
}

/** Options of a {@link VirtualClock}. */
export interface VirtualClockOptions {
  /** Start time in ms (default 0). */
  readonly start?: number;
  /**
   * When true (the default), the clock jumps to the next timer by itself once the current task
   * and its microtasks are done (checked with `setImmediate`), so code that sleeps runs in no
   * real time. When false, time moves only through {@link VirtualClock.advance}.
   */
  readonly autoAdvance?: boolean;
}

/**
 * A deterministic clock for tests: time moves only when every pending piece of work has run
 * (auto-advance) or when the test calls {@link advance}. Timers due at the same time fire in the
 * order they were set.
 *
 * @example
 * const clock = new VirtualClock();
 * await clock.sleep(10_000); // returns at once, clock.now() === 10_000
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];
  #scheduled = false;
  readonly #auto: boolean;

  constructor(options: VirtualClockOptions = {}) {
    this.#now = options.start ?? 0;
    this.#auto = options.autoAdvance ?? true;
  }

  now(): number {
    return this.#now;
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    checkDelay(ms);
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    return new Promise((resolve, reject) => {
      const timer: Timer = {
        at: this.#now + ms,
        seq: this.#seq++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        reject(cancelled(signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#timers.push(timer);
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      this.#schedule();
    });
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  advance(ms: number): void {
    checkDelay(ms);
    const end = this.#now + ms;
    for (;;) {
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.resolve();
    }
    this.#now = end;
  }

  #schedule(): void {
    if (!this.#auto || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const next = this.#timers.shift();
      if (!next) return;
      this.#now = Math.max(this.#now, next.at);
      next.resolve();
      if (this.#timers.length > 0) this.#schedule();
    });
  }
}

/**
 * Polls `check` every `intervalMs` until it returns true or `timeoutMs` has passed on `clock`,
 * like the kernel's `for (i = 0; i < N; i++) { if (cond) break; msleep(...); }` loops.
 * @returns true when `check` held, false on timeout
 */
export async function pollUntil(
  clock: Clock,
  check: () => boolean,
  timeoutMs: number,
  intervalMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (clock.now() >= deadline) return false;
    await clock.sleep(Math.min(intervalMs, Math.max(0, deadline - clock.now())), signal);
  }
}
