/**
 * What the three drivers share: the set of devices a driver bound (with `add`/`remove` events
 * and a bounded wait for the next one), a FIFO of requests waiting for ring room, a slab of
 * equal DMA slots, and the used-buffer loop of Linux's virtio drivers.
 *
 * @see drivers/block/virtio_blk.c `virtblk_done`, drivers/net/virtio_net.c `virtnet_poll`
 */
import { EventEmitter } from 'node:events';
import { MicError, checkInt, errorMessage, isMicError } from '@mic/errors';
import type { Logger } from '@mic/logger';
import type { Memory } from '@mic/memory';
import {
  VIRTIO_F,
  type VirtioDevice,
  type VirtioDmaBuffer,
  type VirtioDmaOps,
  type VirtioQueue,
} from '@mic/virtio';

/** Events of a driver: a device was bound (`add`) or unbound (`remove`). */
export type VirtioDriverEvents<D> = {
  add: [device: D];
  remove: [device: D];
};

/** Options of {@link VirtioDriverBase.waitForDevice}. */
export interface WaitForDeviceOptions {
  /** Ends the wait with `ECANCELED`. Without it the wait lasts until a device is bound. */
  readonly signal?: AbortSignal;
}

/**
 * The devices a driver bound, one object per virtio device, with `add` and `remove` events. A
 * listener that throws is logged, never propagated into probe or remove.
 */
export abstract class VirtioDriverBase<D extends { readonly vdev: VirtioDevice }> extends EventEmitter<
  VirtioDriverEvents<D>
> {
  readonly #bound = new Map<VirtioDevice, D>();
  protected readonly log: Logger;

  protected constructor(log: Logger) {
    super();
    this.log = log;
  }

  /** The devices bound now, in bind order. */
  devices(): D[] {
    return [...this.#bound.values()];
  }

  /** The device object of `vdev`, if this driver bound it. */
  deviceOf(vdev: VirtioDevice): D | undefined {
    return this.#bound.get(vdev);
  }

  /** The first device bound now, or the next one to be bound. */
  waitForDevice(options: WaitForDeviceOptions = {}): Promise<D> {
    const first = this.#bound.values().next();
    if (!first.done) return Promise.resolve(first.value);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(cancelled(signal, 'waiting for a device'));
    return new Promise<D>((resolve, reject) => {
      const onAdd = (d: D): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(d);
      };
      const onAbort = (): void => {
        this.off('add', onAdd);
        reject(cancelled(signal!, 'waiting for a device'));
      };
      this.once('add', onAdd);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Records `device` as bound to `vdev` and emits `add`. */
  protected bind(vdev: VirtioDevice, device: D): void {
    this.#bound.set(vdev, device);
    safeEmit(this.log, this, 'add', device);
  }

  /** Forgets the device of `vdev` and returns it (emit `remove` once it is torn down). */
  protected unbind(vdev: VirtioDevice): D | undefined {
    const d = this.#bound.get(vdev);
    this.#bound.delete(vdev);
    return d;
  }
}

/**
 * Emits `event` and logs (instead of throwing) what a listener threw: drivers emit from probe,
 * remove and interrupt callbacks, where a user's exception must not break the device.
 */
export function safeEmit(
  log: Logger,
  emitter: { emit(event: string, ...args: unknown[]): boolean },
  event: string,
  ...args: unknown[]
): void {
  try {
    emitter.emit(event, ...args);
  } catch (err) {
    log.warn(`a '${event}' listener threw`, { error: errorMessage(err) });
  }
}

/** `ECANCELED` for an aborted `signal`, with the reason as cause. */
export function cancelled(signal: AbortSignal, what: string): MicError {
  return new MicError('ECANCELED', `${what} was cancelled`, { cause: signal.reason });
}

/**
 * Descriptors a chain of `total` buffers takes in the ring: one when indirect descriptors were
 * negotiated (the ring then puts the chain in a table), else `total`.
 */
export function descriptorsFor(vdev: VirtioDevice, total: number): number {
  return total > 1 && vdev.hasFeature(VIRTIO_F.RING_INDIRECT_DESC) ? 1 : total;
}

/**
 * Adds a chain to `vq`. Returns false when the ring has no room for it now (`ENOSPC` while other
 * chains are in flight, so a completion will make room); throws when it can never fit or for any
 * other error.
 */
export function tryAdd<T>(
  vq: VirtioQueue<T>,
  out: readonly { addr: number; len: number }[],
  inBufs: readonly { addr: number; len: number }[],
  token: T,
): boolean {
  try {
    vq.add(out, inBufs, token);
    return true;
  } catch (err) {
    if (isMicError(err, 'ENOSPC') && vq.numFree < vq.num) return false;
    throw err;
  }
}

/**
 * Collects every used buffer of `vq` with callbacks disabled, then enables them again and
 * repeats if more arrived meanwhile (the loop of `virtblk_done`). Stops when the queue broke:
 * the caller checks `vq.broken` afterwards.
 */
export function drainUsed<T>(vq: VirtioQueue<T>, onUsed: (token: T, len: number) => void): void {
  do {
    vq.disableCb();
    for (let u = vq.getBuf(); u !== null; u = vq.getBuf()) onUsed(u.token, u.len);
    if (vq.broken) return;
  } while (!vq.enableCb());
}

interface RoomWaiter {
  readonly need: number;
  readonly post: () => boolean;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/** Options of a {@link RoomQueue}. */
export interface RoomQueueOptions {
  /** Whether a chain of `need` buffers has room now (ring descriptors and driver buffers). */
  readonly fits: (need: number) => boolean;
  /** Notifies the device after chains were posted (`virtqueue_kick`). */
  readonly kick: () => void;
  /** What waits, for error messages (`virtio-blk request`, `virtio-net frame`). */
  readonly what: string;
}

/**
 * Requests waiting for room in a ring, served strictly in order (a large request is not starved
 * by smaller ones behind it). {@link run} posts at once when there is room and nobody waits;
 * otherwise the request waits until {@link pump} (called after completions) finds room for it,
 * or its signal aborts. `post` adds the chain and returns false when the ring had no room after
 * all (the request keeps its place).
 */
export class RoomQueue {
  readonly #opts: RoomQueueOptions;
  readonly #waiters: RoomWaiter[] = [];
  #failed: MicError | null = null;

  constructor(options: RoomQueueOptions) {
    this.#opts = options;
  }

  /** Requests waiting now. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Runs `post` once a chain of `need` buffers fits, in order with the requests before it, and
   * kicks. Resolves once posted; rejects with `post`'s error, the failure given to {@link fail},
   * or `ECANCELED` when `signal` aborts first.
   */
  run(need: number, post: () => boolean, signal?: AbortSignal): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (signal?.aborted) return Promise.reject(cancelled(signal, this.#opts.what));
    if (this.#waiters.length === 0 && this.#opts.fits(need)) {
      try {
        if (post()) {
          this.#opts.kick();
          return Promise.resolve();
        }
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return new Promise<void>((resolve, reject) => {
      const w: RoomWaiter = {
        need,
        post,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.#waiters.indexOf(w);
          if (i < 0) return;
          this.#waiters.splice(i, 1);
          reject(cancelled(signal!, this.#opts.what));
          // The next one may fit where this one did not.
          if (i === 0) this.pump();
        },
      };
      this.#waiters.push(w);
      signal?.addEventListener('abort', w.onAbort, { once: true });
    });
  }

  /** Posts waiting requests in order while they fit, then kicks once. */
  pump(): void {
    let posted = 0;
    while (this.#waiters.length > 0 && !this.#failed) {
      const w = this.#waiters[0]!;
      if (!this.#opts.fits(w.need)) break;
      let ok: boolean;
      try {
        ok = w.post();
      } catch (err) {
        this.#take(w);
        w.reject(err);
        continue;
      }
      if (!ok) break;
      this.#take(w);
      posted++;
      w.resolve();
    }
    if (posted > 0) this.#opts.kick();
  }

  /** Rejects every waiting request and every later one with `err`. */
  fail(err: MicError): void {
    this.#failed ??= err;
    for (const w of this.#waiters.splice(0)) {
      w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(err);
    }
  }

  #take(w: RoomWaiter): void {
    this.#waiters.shift();
    w.signal?.removeEventListener('abort', w.onAbort);
  }
}

/**
 * `count` equal slots of `slotSize` bytes in one DMA buffer, for buffers a driver posts again and
 * again (receive buffers, transmit buffers, request headers). One allocation at probe, one free
 * at remove.
 */
export class DmaSlab {
  readonly count: number;
  readonly slotSize: number;
  readonly #buf: VirtioDmaBuffer;
  readonly #free: number[];
  readonly #inUse: Uint8Array;

  constructor(dma: VirtioDmaOps, count: number, slotSize: number) {
    checkInt('slab slot count', count, 1, 1 << 16);
    checkInt('slab slot size', slotSize, 1, 1 << 24);
    this.count = count;
    this.slotSize = slotSize;
    this.#buf = dma.alloc(count * slotSize);
    this.#inUse = new Uint8Array(count);
    this.#free = [];
    for (let i = count - 1; i >= 0; i--) this.#free.push(i);
  }

  /** The CPU view of the whole slab. */
  get va(): Memory {
    return this.#buf.va;
  }

  /** Slots not taken. */
  get free(): number {
    return this.#free.length;
  }

  /** Takes a free slot, or -1 when all are taken. */
  take(): number {
    const i = this.#free.pop();
    if (i === undefined) return -1;
    this.#inUse[i] = 1;
    return i;
  }

  /** Gives slot `i` back. Throws `EINVAL` for a slot that is not taken (a driver bug). */
  put(i: number): void {
    if (this.#inUse[i] !== 1) throw new MicError('EINVAL', `slab slot ${i} is not taken`);
    this.#inUse[i] = 0;
    this.#free.push(i);
  }

  /** Offset of slot `i` in {@link va}. */
  offset(i: number): number {
    return i * this.slotSize;
  }

  /** The device address of slot `i` (plus `at` bytes). */
  addr(i: number, at = 0): number {
    return this.#buf.addr + i * this.slotSize + at;
  }

  /** Frees the slab's memory. */
  release(dma: VirtioDmaOps): void {
    dma.free(this.#buf);
  }
}
