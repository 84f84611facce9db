/**
 * The serving loop every backend runs on a {@link BackendTransport}: wait for DRIVER_OK, then run
 * the backend's `pump` whenever the driver notified or the host side has something (a PTY read,
 * a frame, a finished file operation), one pump at a time, until the device is gone or the
 * caller's signal aborts. No busy waiting anywhere (mpssd spins in `spin_for_descriptors` while
 * the card has no buffers; here the loop sleeps until the driver's next notification).
 */
import { isMicError } from '@mic/errors';
import type { Logger } from '@mic/logger';
import type { BackendTransport, VirtioDeviceDescription } from './transport.js';
import { isDriverOk } from './transport.js';
import { WakeFlag } from './waiter.js';

/** Options of `serve`. */
export interface ServeOptions {
  /** Stops serving (the promise of `serve` resolves). */
  readonly signal?: AbortSignal;
}

/** A device implementation that any {@link BackendTransport} can carry. */
export interface VirtioBackend {
  /** The device it offers (type, features, config, queue sizes): what a transport adds. */
  readonly description: VirtioDeviceDescription;
  /**
   * Serves the device on `transport` until `signal` aborts or the device is gone (removed, the
   * card stopped). Resolves then; never rejects for what the driver did (a hostile driver's
   * requests fail with a status, a broken ring waits for a reset). One transport at a time.
   */
  serve(transport: BackendTransport, options?: ServeOptions): Promise<void>;
  /** Releases the host resources (files, PTYs, sockets, TAP). Idempotent. */
  close(): Promise<void>;
}

/**
 * Runs `pump(transport)` when there is work, as described in the module comment. A pump drains
 * what it can and returns; it calls {@link poke} (directly or through the host side) when more
 * work appears. A pump that throws is logged; an EIO (the driver broke a ring) parks the device
 * until the driver resets it.
 */
export class ServiceLoop {
  readonly #wake = new WakeFlag();
  readonly #log: Logger;
  readonly #name: string;
  #running = false;

  constructor(name: string, log: Logger) {
    this.#name = name;
    this.#log = log;
  }

  /** Asks for another pump (the host side has data, a request finished). */
  poke(): void {
    this.#wake.wake();
  }

  /** True while {@link run} runs. */
  get running(): boolean {
    return this.#running;
  }

  /** Serves until the device is gone or `signal` aborts. */
  async run(
    transport: BackendTransport,
    pump: (t: BackendTransport) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.#running) throw new Error(`${this.#name} is already serving a transport`);
    this.#running = true;
    const stop = new AbortController();
    const onAbort = (): void => stop.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) stop.abort(signal.reason);
    let gone = false;
    // The driver's events feed the same flag as the host side's.
    const driverEvents = (async () => {
      try {
        while (!stop.signal.aborted) {
          if ((await transport.wait(stop.signal)) === 'gone') break;
          this.#wake.wake();
        }
      } catch (err) {
        if (!isMicError(err, 'ECANCELED'))
          this.#log.warn(`${this.#name}: waiting for the driver failed`, { err });
      }
      gone = true;
      this.#wake.wake();
    })();
    let parkedAt: number | null = null;
    try {
      this.#wake.wake();
      while (!stop.signal.aborted) {
        await this.#wake.wait(stop.signal);
        if (gone) break;
        if (!isDriverOk(transport.status())) continue;
        if (parkedAt !== null && parkedAt === transport.generation) continue;
        parkedAt = null;
        try {
          await pump(transport);
        } catch (err) {
          if (isMicError(err, 'EIO')) {
            parkedAt = transport.generation;
            this.#log.error(`${this.#name}: the driver broke a ring; waiting for a reset`, { err });
          } else if (!isMicError(err, 'ENODEV')) {
            this.#log.warn(`${this.#name}: serving failed`, { err });
          }
        }
      }
    } catch (err) {
      if (!isMicError(err, 'ECANCELED')) throw err;
    } finally {
      stop.abort();
      signal?.removeEventListener('abort', onAbort);
      await driverEvents;
      this.#running = false;
    }
  }
}
