/**
 * The in-process adapter: {@link BackendTransport} over `@mic/virtio`'s `InProcessTransport`, whose
 * device side is a `Vringh` per queue in the same thread. Several chains of a queue may be open
 * at once and completed in any order (virtio 1.2 §2.7.8: the device may use buffers out of
 * order), so a backend's concurrency is tested for real. It is what the unit tests of every
 * backend run on, against a driver on a `VirtioBus`.
 */
import { MicError } from '@mic/errors';
import {
  InProcessTransport,
  type InProcessTransportOptions,
  type Vringh,
  VringhIov,
  checkQueueSize,
} from '@mic/virtio';
import type {
  BackendChain,
  BackendTransport,
  BackendTransportEvent,
  BackendTransportStats,
  VirtioDeviceDescription,
} from './transport.js';
import { checkDescription } from './transport.js';
import { WakeFlag } from './waiter.js';

/** Options of {@link InProcessBackendTransport.create}, on top of the device description. */
export type InProcessBackendOptions = Omit<
  InProcessTransportOptions,
  'deviceId' | 'features' | 'config' | 'queueSizes'
> & {
  /**
   * Offer direct access (`BackendChain.mapReadable` / `mapWritable`: views of the driver's
   * memory). Default true; false makes the backends use their copy path, as on a transport that
   * cannot map.
   */
  readonly mapping?: boolean;
};

/**
 * A {@link BackendTransport} on an `InProcessTransport`. Register {@link inProcess}`.params()` on
 * a `VirtioBus` so a driver binds; serve it with a backend.
 *
 * @example
 * const t = InProcessBackendTransport.create(backend.description);
 * await bus.registerDevice(t.inProcess.params()); // a driver binds
 * const serving = backend.serve(t, { signal });
 */
export class InProcessBackendTransport implements BackendTransport {
  /** The in-process device (the driver's side registers its params). */
  readonly inProcess: InProcessTransport;
  readonly deviceType: number;
  readonly numQueues: number;
  readonly offeredFeatures: bigint;
  readonly #sizes: readonly number[];
  readonly #open: Set<InProcessChain>[];
  readonly #wake = new WakeFlag();
  readonly #unsubscribe: () => void;
  readonly #stats: BackendTransportStats = { chains: 0, badChains: 0, resets: 0 };
  #generation = 0;
  #closed = false;
  /** Chains offer `mapReadable` / `mapWritable`. */
  readonly mapping: boolean;

  /**
   * Wraps an existing in-process device; `queueSizes` are its queue sizes; `mapping` offers direct
   * access (default true).
   */
  constructor(
    inProcess: InProcessTransport,
    deviceType: number,
    queueSizes: readonly number[],
    mapping = true,
  ) {
    for (const n of queueSizes) checkQueueSize(n);
    this.mapping = mapping;
    this.inProcess = inProcess;
    this.deviceType = deviceType;
    this.numQueues = queueSizes.length;
    this.offeredFeatures = inProcess.deviceFeatures;
    this.#sizes = [...queueSizes];
    this.#open = queueSizes.map(() => new Set());
    this.#unsubscribe = inProcess.subscribe((e) => {
      if (e.type === 'reset') {
        this.#generation++;
        this.#stats.resets++;
        for (const set of this.#open) set.clear();
      }
      this.#wake.wake();
    });
  }

  /** Makes the in-process device a description asks for, and the adapter on it. */
  static create(
    description: VirtioDeviceDescription,
    options: InProcessBackendOptions = {},
  ): InProcessBackendTransport {
    checkDescription(description);
    const { mapping, ...rest } = options;
    const inProcess = new InProcessTransport({
      ...rest,
      deviceId: description.deviceType,
      features: description.features,
      config: description.config,
      queueSizes: description.queueSizes,
    });
    return new InProcessBackendTransport(
      inProcess,
      description.deviceType,
      description.queueSizes,
      mapping ?? true,
    );
  }

  get generation(): number {
    return this.#generation;
  }

  maxInFlight(q: number): number {
    return this.#size(q);
  }

  negotiatedFeatures(): bigint {
    return this.inProcess.driverFeatures;
  }

  status(): number {
    return this.inProcess.status;
  }

  config(): Uint8Array {
    return this.inProcess.configBytes();
  }

  configChange(bytes: Uint8Array): Promise<void> {
    const size = this.inProcess.configBytes().length;
    if (!(bytes instanceof Uint8Array) || bytes.length !== size) {
      return Promise.reject(
        new MicError('EINVAL', `a config change takes exactly the ${size}-byte config space`, {
          details: { size },
        }),
      );
    }
    this.inProcess.setConfig(0, bytes);
    return Promise.resolve();
  }

  nextChain(q: number): Promise<BackendChain | null> {
    try {
      return Promise.resolve(this.#next(q));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #next(q: number): BackendChain | null {
    const max = this.#size(q);
    if (this.#closed) throw new MicError('ENODEV', 'the in-process device is closed');
    if (this.inProcess.status === 0) throw new MicError('ENODEV', 'the device is down (status 0)');
    const queue = this.inProcess.queue(q);
    if (queue === null) return null;
    const open = this.#open[q]!;
    if (open.size >= max) {
      throw new MicError('EBUSY', `queue ${q} has ${open.size} chains open, its most`, {
        details: { queue: q, open: open.size },
      });
    }
    const vrh = queue.vringh;
    for (;;) {
      const riov = new VringhIov();
      const wiov = new VringhIov();
      const r = vrh.getDesc(riov, wiov);
      switch (r.status) {
        case 'empty':
          return null;
        case 'broken':
          this.inProcess.needsReset();
          throw new MicError('EIO', `queue ${q}: ${r.error.message}`, {
            cause: r.error,
            details: { queue: q },
          });
        case 'bad-chain':
          // getDesc returned it with length 0; tell the driver if it wants to know.
          this.#stats.badChains++;
          if (vrh.needNotify()) this.inProcess.interrupt(q);
          continue;
        case 'chain': {
          this.#stats.chains++;
          const chain = this.mapping
            ? new MappingInProcessChain(this, q, r.head, vrh, riov, wiov, this.#generation)
            : new InProcessChain(this, q, r.head, vrh, riov, wiov, this.#generation);
          open.add(chain);
          return chain;
        }
      }
    }
  }

  wait(signal?: AbortSignal): Promise<BackendTransportEvent> {
    if (this.#closed) return Promise.resolve('gone');
    return this.#wake.wait(signal).then(() => (this.#closed ? 'gone' : 'event'));
  }

  stats(): BackendTransportStats {
    return { ...this.#stats };
  }

  /** Ends the adapter: waiters get `'gone'`, later fetches ENODEV. The in-process device stays. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#wake.wake();
  }

  /** @internal a chain finished */
  release(chain: BackendChain): void {
    this.#open[chain.queue]?.delete(chain as InProcessChain);
  }

  /** @internal whether a chain of `generation` is still live */
  live(generation: number): boolean {
    return !this.#closed && generation === this.#generation;
  }

  #size(q: number): number {
    const n = this.#sizes[q];
    if (!Number.isInteger(q) || n === undefined) {
      throw new MicError('EINVAL', `queue ${String(q)} is not below the ${this.numQueues} queues`, {
        details: { queue: q },
      });
    }
    return n;
  }
}

/** A chain of the in-process transport: cursors over its `VringhIov`s. */
class InProcessChain implements BackendChain {
  readonly queue: number;
  readonly head: number;
  readonly readable: number;
  readonly writable: number;
  readonly #t: InProcessBackendTransport;
  protected readonly vrh: Vringh;
  protected readonly riov: VringhIov;
  protected readonly wiov: VringhIov;
  readonly #generation: number;
  #done = false;

  constructor(
    t: InProcessBackendTransport,
    queue: number,
    head: number,
    vrh: Vringh,
    riov: VringhIov,
    wiov: VringhIov,
    generation: number,
  ) {
    this.#t = t;
    this.queue = queue;
    this.head = head;
    this.vrh = vrh;
    this.riov = riov;
    this.wiov = wiov;
    this.readable = riov.total;
    this.writable = wiov.total;
    this.#generation = generation;
  }

  get bytesRead(): number {
    return this.riov.done;
  }

  get bytesWritten(): number {
    return this.wiov.done;
  }

  get done(): boolean {
    if (!this.#done && !this.#t.live(this.#generation)) this.#finish();
    return this.#done;
  }

  read(dst: Uint8Array): Promise<number> {
    if (this.done) return Promise.resolve(0);
    return Promise.resolve(this.vrh.pull(this.riov, dst));
  }

  write(src: Uint8Array): Promise<number> {
    if (this.done) return Promise.resolve(0);
    this.vrh.skip(this.riov, this.riov.remaining);
    return Promise.resolve(this.vrh.push(this.wiov, src));
  }

  complete(): Promise<void> {
    if (this.done) return Promise.resolve();
    this.#finish();
    this.vrh.complete(this.head, this.wiov.done);
    if (this.vrh.needNotify()) this.#t.inProcess.interrupt(this.queue);
    return Promise.resolve();
  }

  #finish(): void {
    this.#done = true;
    this.#t.release(this);
  }
}

/**
 * A chain with direct access: views of the driver's memory (the `Vringh`'s data memory, which its
 * segments were checked against when the chain was fetched). Unlike VOP, a reset here does not
 * wait for mapped chains: this transport runs driver and device in one thread for tests, where a
 * backend's late write into a reset driver's buffer is the test's to see.
 */
class MappingInProcessChain extends InProcessChain {
  mapReadable(n: number): readonly Uint8Array[] {
    if (this.done) return [];
    return this.#map(this.riov, n);
  }

  mapWritable(n: number): readonly Uint8Array[] {
    if (this.done) return [];
    this.vrh.skip(this.riov, this.riov.remaining);
    return this.#map(this.wiov, n);
  }

  #map(iov: VringhIov, n: number): Uint8Array[] {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new MicError('EINVAL', `cannot map ${String(n)} bytes of chain ${this.head}`);
    }
    const mem = this.vrh.dataMem;
    const out: Uint8Array[] = [];
    let mapped = 0;
    while (mapped < n && iov.i < iov.count) {
      const k = Math.min(iov.lengths[iov.i]! - iov.consumed, n - mapped);
      out.push(mem.bytes(iov.offsets[iov.i]! + iov.consumed, k));
      this.vrh.skip(iov, k);
      mapped += k;
    }
    return out;
  }
}
