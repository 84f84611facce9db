/**
 * A first-in first-out async mutex: the bus-wide lock that serializes device and driver
 * registration, probe and remove, like the driver core's device and bus locks.
 */

/** An async mutex. Waiters run in the order they called {@link AsyncMutex.run}. */
export class AsyncMutex {
  #tail: Promise<void> = Promise.resolve();
  #held = 0;

  /** True while a callback holds the lock or waits for it. */
  get locked(): boolean {
    return this.#held > 0;
  }

  /**
   * Runs `fn` once every earlier caller is done, and resolves or rejects with its result.
   * `fn` must not wait for another `run` of the same mutex: it would wait for itself.
   */
  async run<T>(fn: () => T | Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#held++;
    try {
      await previous;
      return await fn();
    } finally {
      this.#held--;
      release();
    }
  }
}
