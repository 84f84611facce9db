/**
 * An edge-triggered wake-up flag with waiters: what both transports use to implement
 * `BackendTransport.wait`, and what the serving loop uses for host-side events.
 */
import { MicError } from '@mic/errors';

/** A flag that {@link wake} sets and {@link wait} consumes. */
export class WakeFlag {
  #pending = false;
  #waiters = new Set<() => void>();

  /** Sets the flag and wakes every waiter. */
  wake(): void {
    this.#pending = true;
    const list = [...this.#waiters];
    this.#waiters.clear();
    for (const w of list) w();
  }

  /** True when a wake-up is pending (does not consume it). */
  get pending(): boolean {
    return this.#pending;
  }

  /**
   * Resolves once the flag is set (at once if it already is), consuming it.
   * @throws MicError ECANCELED when `signal` aborts first
   */
  wait(signal?: AbortSignal): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#waiters.delete(waiter);
        reject(cancelled(signal!));
      };
      const waiter = (): void => {
        signal?.removeEventListener('abort', onAbort);
        this.#pending = false;
        resolve();
      };
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function cancelled(signal: AbortSignal): MicError {
  return new MicError('ECANCELED', 'the wait was cancelled', { cause: signal.reason });
}
