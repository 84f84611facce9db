/**
 * A first-in first-out async mutex: the bus-wide lock that serializes device and driver
 * registration, probe and remove, like the driver core's device and bus locks, and the per-vring
 * locks of data paths. Taking a free lock allocates nothing beyond the caller's own promise, so it
 * is cheap enough for a per-request path.
 */
import { checkFunction } from '@mic/errors';

/** An async mutex. Waiters run in the order they called {@link AsyncMutex.run}. */
export class AsyncMutex {
  #held = false;
  readonly #waiters: (() => void)[] = [];

  /** True while a callback holds the lock or waits for it. */
  get locked(): boolean {
    return this.#held || this.#waiters.length > 0;
  }

  /**
   * Runs `fn` once every earlier caller is done, and resolves or rejects with its result. A free
   * lock runs `fn` at once (in this call); a held one queues it.
   * `fn` must not wait for another `run` of the same mutex: it would wait for itself.
   */
  async run<T>(fn: () => T | Promise<T>): Promise<T> {
    if (typeof fn !== 'function') checkFunction('mutex callback', fn);
    if (this.#held) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    else this.#held = true;
    try {
      return await fn();
    } finally {
      const next = this.#waiters.shift();
      // The lock passes straight to the next waiter; it stays held.
      if (next) next();
      else this.#held = false;
    }
  }
}
