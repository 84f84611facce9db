/**
 * Wait queues in the kernel's style (`wait_event_timeout`, `wait_event_interruptible`): a waiter
 * sleeps until its condition holds after a wake-up, a timeout passes on the injected clock, or its
 * `AbortSignal` fires (the kernel's "interrupted by a signal", `EINTR`).
 */
import type { Clock } from '@mic/clock';
import { MicError } from '@mic/errors';
import { PollBackoff } from '@mic/notify';

/** How long and how interruptibly to wait. */
export interface WaitOptions {
  /** Give up after this many ms of the clock (default: never). */
  readonly timeoutMs?: number;
  /** Aborting it ends the wait with `EINTR`. */
  readonly signal?: AbortSignal | undefined;
}

/** The error an aborted wait throws. */
export function interrupted(what: string, signal: AbortSignal): MicError {
  return new MicError('EINTR', `${what} was interrupted`, { cause: signal.reason });
}

/**
 * A wait queue. `wake()` re-checks every waiter's condition (waiters whose condition still fails
 * keep waiting). A queue may forward its wake-ups to another (an endpoint's queues all wake its
 * poll queue).
 */
export class WaitQueue {
  readonly #waiters = new Set<() => void>();
  readonly #forward: WaitQueue | undefined;

  constructor(forward?: WaitQueue) {
    this.#forward = forward;
  }

  /** Waiters currently asleep. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Calls `cb` at the next wake-up (once). Returns a function that cancels it. For waiting on
   * several queues at once (`scif_poll`).
   */
  once(cb: () => void): () => void {
    const w = (): void => {
      this.#waiters.delete(w);
      cb();
    };
    this.#waiters.add(w);
    return () => this.#waiters.delete(w);
  }

  /** `wake_up`: every waiter re-checks its condition. */
  wake(): void {
    if (this.#waiters.size > 0) for (const w of [...this.#waiters]) w();
    this.#forward?.wake();
  }

  /**
   * Waits until `cond()` is true. Resolves true when it holds, false on timeout; rejects with
   * `EINTR` when `signal` aborts.
   */
  wait(clock: Clock, cond: () => boolean, what: string, options: WaitOptions = {}): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    const { timeoutMs, signal } = options;
    if (signal?.aborted) return Promise.reject(interrupted(what, signal));
    if (timeoutMs !== undefined && timeoutMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      let timer: AbortController | undefined;
      const finish = (): void => {
        this.#waiters.delete(check);
        signal?.removeEventListener('abort', onAbort);
        timer?.abort();
      };
      const check = (): void => {
        let ok: boolean;
        try {
          ok = cond();
        } catch (err) {
          finish();
          reject(err);
          return;
        }
        if (ok) {
          finish();
          resolve(true);
        }
      };
      const onAbort = (): void => {
        finish();
        reject(interrupted(what, signal!));
      };
      this.#waiters.add(check);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
        timer = new AbortController();
        clock.sleep(timeoutMs, timer.signal).then(
          () => {
            if (!this.#waiters.has(check)) return;
            finish();
            resolve(cond());
          },
          () => undefined,
        );
      }
    });
  }
}

/**
 * Waits in slices of `sliceMs` while `alive()` holds, like the kernel's
 * `retry: err = wait_event_timeout(...); if (!err && scifdev_alive(ep)) goto retry;`.
 * Resolves true when `cond` held, false when a slice ran out with the peer dead.
 */
export async function waitWhileAlive(
  wq: WaitQueue,
  clock: Clock,
  cond: () => boolean,
  alive: () => boolean,
  sliceMs: number,
  what: string,
  signal?: AbortSignal,
): Promise<boolean> {
  for (;;) {
    if (await wq.wait(clock, () => cond() || !alive(), what, { timeoutMs: sliceMs, signal })) {
      if (cond()) return true;
      if (!alive()) return false;
    } else if (!alive()) {
      return cond();
    }
  }
}

/**
 * A first-in first-out exclusive section for calls that must not interleave (the kernel's
 * `sendlock`/`recvlock` mutexes around a blocking `scif_send`/`scif_recv`). Unlike an async
 * mutex it costs no promise turn: a free lock runs the caller's `start` inside {@link enter}, and
 * {@link release} starts the next caller inside the releasing call, so a call that completes in
 * an interrupt handler hands its result to the user at once.
 */
export class CallLock {
  #held = false;
  readonly #queue: (() => void)[] = [];

  /** True while a call holds the lock or waits for it. */
  get locked(): boolean {
    return this.#held || this.#queue.length > 0;
  }

  /** Runs `start` now when the lock is free, else after the earlier holders released it. */
  enter(start: () => void): void {
    if (this.#held) {
      this.#queue.push(start);
      return;
    }
    this.#held = true;
    start();
  }

  /** Ends the holder's section: the next caller starts now. */
  release(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#held = false;
  }

  /** Resolves once every call that held or waited for the lock at this time has released it. */
  idle(): Promise<void> {
    return new Promise<void>((resolve) =>
      this.enter(() => {
        this.release();
        resolve();
      }),
    );
  }
}

/**
 * A gap between two of a {@link BusyPoller}'s clock reads (16 polls, well under 1 µs apart while
 * it runs) this long means the thread was descheduled: 10 µs.
 */
const PREEMPTED_MS = 0.01;

/**
 * A bounded busy poll (the kernel's `SO_BUSY_POLL` / `sk_busy_loop`) that learns when polling does
 * not pay. {@link poll} calls `ready()` until it is true or `us` µs of real time have passed,
 * without yielding the thread (real time, not the injected clock: the bound must hold whatever a
 * test clock does).
 *
 * A poll only pays while the peer runs meanwhile on another CPU. When both share one (a 2-vCPU
 * machine with other work, or threads pinned together), the peer cannot run until the poller
 * gives the CPU up, so every poll is lost whole and delays the peer by its length. So a poll that
 * ended without `ready()` makes the next waits sleep at once: 1, then 2, 4, ... up to
 * `MAX_POLL_SKIP` of them between two polls that fail (`@mic/notify`'s `PollBackoff`), at most one lost poll in 64
 * waits. A poll that found `ready()` ends the back-off, unless the poller was descheduled
 * meanwhile (its clock reads lie far apart, or it found it only after its bound): then the peer
 * most likely ran on the poller's CPU, and the poll only kept it waiting.
 */
export class BusyPoller {
  readonly #backoff = new PollBackoff();

  /** Polls `ready` for at most `us` µs (none while backing off); true when it held. */
  poll(us: number, ready: () => boolean): boolean {
    if (us <= 0) return false;
    if (!this.#backoff.shouldPoll()) return false;
    let last = performance.now();
    const end = last + us / 1000;
    // Set when two clock reads lie far apart: the thread was descheduled meanwhile.
    let preempted = false;
    for (;;) {
      // The clock is read every 16 polls (a read costs as much as several polls).
      for (let i = 0; i < 16; i++) {
        if (ready()) {
          const t = performance.now();
          this.#backoff.polled(!preempted && t - last < PREEMPTED_MS && t <= end);
          return true;
        }
      }
      const t = performance.now();
      if (t - last >= PREEMPTED_MS) preempted = true;
      last = t;
      if (t >= end) {
        this.#backoff.polled(false);
        return ready();
      }
    }
  }

  /** Waits left that sleep at once (for tests). */
  get skipping(): number {
    return this.#backoff.skipping;
  }
}
