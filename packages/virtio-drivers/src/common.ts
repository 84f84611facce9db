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
 * What a driver's device object implements for {@link VirtioDriverBase}: set up (queues,
 * buffers; no notification yet), start after DRIVER_OK, follow config changes, tear down.
 */
export interface BoundDevice {
  readonly vdev: VirtioDevice;
  /** Queues and buffers (`init_vqs`); the device is not notified yet. */
  init(): Promise<void>;
  /** After DRIVER_OK: post the first buffers and notify (virtio 1.2 §3.1.1). */
  start(): void;
  /** The device changed its config space. */
  configChanged(): void;
  /** Reset the device, delete the queues, free every buffer, fail what is pending. */
  shutdown(): Promise<void>;
}

/**
 * The probe, remove, validate and config-change of the three drivers, and the devices a driver
 * bound (one object per virtio device, with `add` and `remove` events). A listener that throws is
 * logged, never propagated into probe or remove.
 */
export abstract class VirtioDriverBase<D extends BoundDevice> extends EventEmitter<VirtioDriverEvents<D>> {
  abstract readonly name: string;
  readonly #bound = new Map<VirtioDevice, D>();
  protected readonly log: Logger;

  protected constructor(log: Logger) {
    super();
    this.log = log;
  }

  /** The device object for `vdev` (not set up yet). */
  protected abstract create(vdev: VirtioDevice): D;

  /** Feature bits and the end of the config field each needs, for {@link validate}. */
  protected abstract readonly configFields: readonly (readonly [bit: number, end: number])[];

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

  /** Drops features whose config field lies outside the device's config space. */
  validate(vdev: VirtioDevice): void {
    const size = vdev.config.configSize;
    for (const [bit, end] of this.configFields) {
      if (vdev.hasFeature(bit) && end > size) {
        this.log.warn(
          `${this.name} ${vdev.name}: config space of ${size} bytes lacks the field of feature ${bit}`,
        );
        vdev.clearFeature(bit);
      }
    }
  }

  /** Sets the device up, sets DRIVER_OK, starts it, emits `add`; undoes the setup on failure. */
  async probe(vdev: VirtioDevice): Promise<void> {
    const d = this.create(vdev);
    try {
      await d.init();
    } catch (err) {
      await d.shutdown().catch((e: unknown) =>
        this.log.warn(`${this.name} ${vdev.name}: cleanup after a failed probe failed`, {
          error: errorMessage(e),
        }),
      );
      throw err;
    }
    vdev.ready();
    d.start();
    this.#bound.set(vdev, d);
    this.log.info(`${this.name} ${vdev.name}: bound, ${this.describe(d)}`);
    safeEmit(this.log, this, 'add', d);
  }

  /** What the probe log line says about a bound device. */
  protected abstract describe(device: D): string;

  /** Tears the device down (it resets the device) and emits `remove`. */
  async remove(vdev: VirtioDevice): Promise<void> {
    const d = this.#bound.get(vdev);
    this.#bound.delete(vdev);
    if (!d) {
      await vdev.reset();
      return;
    }
    try {
      await d.shutdown();
    } finally {
      safeEmit(this.log, this, 'remove', d);
    }
  }

  /** Passes a config change to the device object. */
  configChanged(vdev: VirtioDevice): void {
    this.#bound.get(vdev)?.configChanged();
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
 * One notification for every chain posted in the same turn of the event loop's microtask queue
 * (the `bd->last` of blk-mq's `virtio_queue_rq`, the `xmit_more` of `start_xmit`): {@link request}
 * asks for a kick, the first request of a turn queues it, the kick runs once after every caller of
 * that turn posted its chain. Requests whose completions ran in one interrupt and that each post
 * their next chain (lanes of a block burst, frames sent in a loop) thus ring the device once, not
 * once each: every kick may cost a wake-up of the other side.
 */
export class DeferredKick {
  readonly #kick: () => void;
  #queued = false;

  /** @param kick - notifies the device (`virtqueue_kick`, with its failure handling) */
  constructor(kick: () => void) {
    this.#kick = kick;
  }

  /** Kicks once at the end of this microtask turn (a no-op when a kick is queued already). */
  request(): void {
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(this.#run);
  }

  readonly #run = (): void => {
    this.#queued = false;
    this.#kick();
  };
}

/**
 * Posts parked receive slots to `vq` as device-writable chains (`bufsOf(slot)`) while they fit,
 * newest first; returns how many were posted (the caller kicks once).
 */
export function postParked(
  vq: VirtioQueue<number>,
  parked: number[],
  bufsOf: (slot: number) => readonly { addr: number; len: number }[],
): number {
  let posted = 0;
  while (parked.length > 0 && !vq.broken) {
    const slot = parked[parked.length - 1]!;
    if (!tryAdd(vq, [], bufsOf(slot), slot)) break;
    parked.pop();
    posted++;
  }
  return posted;
}

/** Options of {@link QueuePair.open}. */
export interface QueuePairOptions {
  /** `virtio-console`, `virtio-net`: for messages. */
  readonly what: string;
  /** Names of the receive and transmit queues. */
  readonly names: readonly [rx: string, tx: string];
  /** Receive slots: how many and how large, given the receive queue. */
  readonly rxSlots: (rx: VirtioQueue<number>) => { readonly count: number; readonly size: number };
  /** Transmit slots: how many and how large, given the transmit queue. */
  readonly txSlots: (tx: VirtioQueue<number>) => { readonly count: number; readonly size: number };
  /** A receive buffer came back with `len` bytes (clamped by the ring); its slot is parked. */
  readonly onRx: (slot: number, len: number) => void;
  /** After the used receive buffers were collected (and the queue is sound): refill or not. */
  readonly afterRx: () => void;
  /** A transmit buffer came back, before its slot is freed. */
  readonly onTxDone?: (slot: number) => void;
  /** After transmit buffers came back and waiting chains were let in. */
  readonly afterTx?: () => void;
  /**
   * Transmit completions without interrupts, as `virtio_net`'s `start_xmit` without napi_tx: the
   * transmit queue's callbacks stay disabled (VRING_AVAIL_F_NO_INTERRUPT, virtio 1.2 §2.7.7, or
   * `used_event` half the index space behind with EVENT_IDX), finished buffers are collected when
   * a chain is posted (`free_old_xmit_skbs`), and an interrupt is asked for only while a chain
   * waits for room (`virtqueue_enable_cb_delayed`). {@link onTxDone} and {@link afterTx} then run
   * when buffers are collected, not when the device returns them. Default false.
   */
  readonly lazyTxReclaim?: boolean;
  /** A queue broke or the device could not be notified. */
  readonly onBroken: (err: MicError) => void;
}

/**
 * The receive and transmit queues of console and net (queues 0 and 1, virtio 1.2 §5.1.2 and
 * §5.3.2) with their buffer slabs: receive slots parked until posted, transmit slots behind a
 * {@link RoomQueue}. Tokens are slot numbers.
 */
export class QueuePair {
  readonly rx: VirtioQueue<number>;
  readonly tx: VirtioQueue<number>;
  readonly rxSlab: DmaSlab;
  readonly txSlab: DmaSlab;
  readonly room: RoomQueue;
  /** Receive slots not posted (not yet, or held back). */
  readonly parked: number[] = [];
  readonly #vdev: VirtioDevice;
  readonly #o: QueuePairOptions;
  readonly #rxKick: DeferredKick;
  readonly #txKick: DeferredKick;
  #released = false;

  private constructor(
    vdev: VirtioDevice,
    rx: VirtioQueue<number>,
    tx: VirtioQueue<number>,
    o: QueuePairOptions,
  ) {
    this.#vdev = vdev;
    this.#o = o;
    this.rx = rx;
    this.tx = tx;
    const r = o.rxSlots(rx);
    const t = o.txSlots(tx);
    this.rxSlab = new DmaSlab(vdev.dma, r.count, r.size);
    try {
      this.txSlab = new DmaSlab(vdev.dma, t.count, t.size);
    } catch (err) {
      this.rxSlab.release(vdev.dma);
      throw err;
    }
    // Chains posted in one turn (a loop of sends, a refill) notify the device once.
    this.#rxKick = new DeferredKick(() => this.#deferredKick(rx));
    this.#txKick = new DeferredKick(() => this.#deferredKick(tx));
    this.room = new RoomQueue({
      what: `${o.what} ${vdev.name} ${o.names[1]}`,
      fits: (need) => this.#txFits(need),
      kick: () => this.#txKick.request(),
    });
    for (let s = this.rxSlab.take(); s >= 0; s = this.rxSlab.take()) this.parked.push(s);
    if (o.lazyTxReclaim) tx.disableCb();
  }

  /** Sets up both queues and their slabs; nothing is posted yet (see {@link refill}). */
  static async open(vdev: VirtioDevice, o: QueuePairOptions): Promise<QueuePair> {
    let pair: QueuePair | null = null;
    const [rx, tx] = await vdev.findVqs<number>([
      { name: o.names[0], callback: () => pair && pair.#rxDone() },
      { name: o.names[1], callback: () => pair && pair.#txDone() },
    ]);
    if (!rx || !tx)
      throw new MicError('ENOENT', `${o.what} ${vdev.name}: needs a receive and a transmit queue`);
    pair = new QueuePair(vdev, rx, tx, o);
    return pair;
  }

  /** Receive buffers posted now. */
  get rxPosted(): number {
    return this.rxSlab.count - this.parked.length;
  }

  /** Transmit slots the device holds now (finished ones are collected first). */
  get txInFlight(): number {
    if (this.#o.lazyTxReclaim) this.#reclaimTx();
    return this.txSlab.count - this.txSlab.free;
  }

  /** Notifies the device (`virtqueue_kick`); a failed notification breaks the pair. */
  kick(vq: VirtioQueue<number>): void {
    if (!vq.kick())
      this.#o.onBroken(
        new MicError('EIO', `${this.#o.what} ${this.#vdev.name}: the device cannot be notified`),
      );
  }

  /** A kick queued by a {@link DeferredKick}; none once the queue broke or the pair was released. */
  #deferredKick(vq: VirtioQueue<number>): void {
    if (this.#released || vq.broken) return;
    this.kick(vq);
  }

  /**
   * Posts parked receive slots (`bufsOf(slot)`, device-writable) while they fit; one kick at the
   * end of the turn.
   */
  refill(bufsOf: (slot: number) => readonly { addr: number; len: number }[]): void {
    if (postParked(this.rx, this.parked, bufsOf) > 0) this.#rxKick.request();
  }

  /**
   * Takes a transmit slot, lets `fill` write it and name its device-readable buffers, adds the
   * chain. Returns the slot, or -1 when there was no room (the slot goes back).
   */
  postTx(fill: (slot: number) => readonly { addr: number; len: number }[]): number {
    const slot = this.txSlab.take();
    if (slot < 0) return -1;
    if (!tryAdd(this.tx, fill(slot), [], slot)) {
      this.txSlab.put(slot);
      return -1;
    }
    return slot;
  }

  /** Frees both slabs (after the device was reset and the queues deleted). */
  release(): void {
    this.#released = true;
    this.rxSlab.release(this.#vdev.dma);
    this.txSlab.release(this.#vdev.dma);
    this.parked.length = 0;
  }

  #rxDone(): void {
    const rx = this.rx;
    drainUsed(rx, (slot, len) => {
      this.parked.push(slot);
      this.#o.onRx(slot, len);
    });
    if (rx.broken) this.#o.onBroken(this.#brokenError(rx, 'receive'));
    else this.#o.afterRx();
  }

  #txDone(): void {
    const tx = this.tx;
    if (this.#o.lazyTxReclaim) {
      // `skb_xmit_done`: callbacks off again; whoever waits for room re-arms them in #txFits.
      tx.disableCb();
      this.#reclaimTx();
    } else {
      drainUsed(tx, (slot) => this.#txFreed(slot));
    }
    if (tx.broken) {
      this.#o.onBroken(this.#brokenError(tx, 'transmit'));
      return;
    }
    this.room.pump();
    this.#o.afterTx?.();
  }

  #txFreed(slot: number): void {
    this.#o.onTxDone?.(slot);
    this.txSlab.put(slot);
  }

  /**
   * Collects finished transmit buffers without touching the callbacks (none once the pair was
   * released: the ring is gone). @returns how many
   */
  #reclaimTx(): number {
    if (this.#released) return 0;
    let n = 0;
    for (let u = this.tx.getBuf(); u !== null; u = this.tx.getBuf()) {
      this.#txFreed(u.token);
      n++;
    }
    return n;
  }

  /**
   * Whether a transmit chain of `need` buffers has room (a slot and descriptors). With
   * {@link QueuePairOptions.lazyTxReclaim} it collects finished buffers first and, when there is
   * still no room, arms the interrupt for when most chains in flight are back (`start_xmit`'s
   * `netif_stop_subqueue` and `virtqueue_enable_cb_delayed`), collecting again if they came back
   * meanwhile.
   */
  #txFits(need: number): boolean {
    const tx = this.tx;
    const descs = descriptorsFor(this.#vdev, need);
    for (;;) {
      if (this.txSlab.free > 0 && tx.numFree >= descs) return true;
      if (!this.#o.lazyTxReclaim || tx.broken) return false;
      if (this.#reclaimTx() > 0) continue;
      if (tx.broken) {
        // Reported after the caller queued its request, so that the failure reaches it.
        queueMicrotask(() => this.#o.onBroken(this.#brokenError(tx, 'transmit')));
        return false;
      }
      if (tx.enableCbDelayed()) return false;
      tx.disableCb();
    }
  }

  #brokenError(vq: VirtioQueue<number>, which: string): MicError {
    return (
      vq.ring.broken ?? new MicError('EIO', `${this.#o.what} ${this.#vdev.name}: the ${which} queue broke`)
    );
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
