/**
 * The in-process virtio transport: a {@link VirtioDevice} whose other end is a {@link Vringh} per
 * queue in the same thread, over one memory. Drivers run on it exactly as on VOP (they see only
 * the {@link VirtioDevice}), and a device implementation (a backend) serves the queues through the
 * device side of the transport. It is what the unit tests of drivers and backends use.
 *
 * Like a real device it is asynchronous: a kick reaches the device, and an interrupt reaches the
 * driver, in a later task (`setImmediate`), and several of them before delivery are coalesced.
 * Addresses the driver sees start at {@link InProcessTransportOptions.dmaBase} (not 0), so a driver
 * that confuses offsets in its buffers with device addresses fails here as it would on VOP.
 *
 * @see drivers/virtio/virtio_mmio.c for a transport of the same shape (features, status, config
 *      space, queue setup, notify, interrupt)
 */
import { RangeAllocator } from '@mic/bus-core';
import { MicError, checkInt } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { BufferMemory } from '@mic/memory';
import { VIRTIO_CONFIG_S, VIRTIO_F, hasFeature } from './constants.js';
import { checkQueueSize, vringLayout, vringSize } from './layout.js';
import {
  type VirtioConfigOps,
  type VirtioDevice,
  type VirtioDeviceParams,
  type VirtioDmaBuffer,
  type VirtioDmaOps,
  VirtioQueue,
  type VirtqueueInfo,
  vringTransportFeatures,
} from './virtio-bus.js';
import { Virtqueue } from './virtqueue.js';
import { Vringh } from './vringh.js';

/** Default address of the first byte of the transport's memory, as the driver sees it. */
export const IN_PROCESS_DMA_BASE = 0x1_0000_0000;

/** Options of an {@link InProcessTransport}. */
export interface InProcessTransportOptions {
  /** The virtio device type (`VIRTIO_ID.*`). */
  readonly deviceId: number;
  readonly vendor?: number;
  /** The features the device offers. */
  readonly features: bigint;
  /** The initial config space (default: empty). */
  readonly config?: Uint8Array;
  /** Size of each queue, one entry per queue (e.g. `[128, 128]`). */
  readonly queueSizes: readonly number[];
  /** Bytes of memory for rings and driver buffers (default 4 MiB). */
  readonly memorySize?: number;
  /** Driver-visible address of the memory's first byte (default {@link IN_PROCESS_DMA_BASE}). */
  readonly dmaBase?: number;
  /** Back the memory with a SharedArrayBuffer (default false). */
  readonly shared?: boolean;
  /**
   * Whether the device accepts the features the driver finalized; a device that does not clears
   * FEATURES_OK when the driver sets it (virtio 1.2 §3.1.1 step 6). Default: accepts any subset
   * of what it offered.
   */
  readonly acceptFeatures?: (features: bigint) => boolean;
  readonly logger?: Logger;
}

/** One queue as the device side of the transport holds it. */
export interface InProcessQueue {
  readonly index: number;
  readonly num: number;
  /** The device side of the ring, over the transport's memory. */
  readonly vringh: Vringh;
}

/** What the device side is told about. */
export type InProcessEvent =
  | { readonly type: 'kick'; readonly queue: number }
  | { readonly type: 'status'; readonly status: number }
  | { readonly type: 'reset' }
  | { readonly type: 'queues'; readonly queues: readonly InProcessQueue[] };

interface QueueState {
  readonly info: InProcessQueue;
  readonly vq: VirtioQueue;
  readonly ringOffset: number;
  readonly poolOffset: number | null;
}

/**
 * A virtio device and the device side of its queues in one thread. Register
 * {@link params} on a `VirtioBus`; serve the device through {@link queue}, {@link interrupt},
 * {@link setConfig} and the events of {@link subscribe}.
 *
 * @example
 * const t = new InProcessTransport({ deviceId: VIRTIO_ID.CONSOLE, features: 0n, queueSizes: [128, 128] });
 * t.subscribe((e) => {
 *   if (e.type !== 'kick') return;
 *   const q = t.queue(e.queue)!; // serve q.vringh: getDesc, pull/push, complete
 *   if (q.vringh.needNotify()) t.interrupt(e.queue);
 * });
 * const vdev = await bus.registerDevice(t.params());
 */
export class InProcessTransport {
  /** The memory rings and buffers live in. */
  readonly memory: BufferMemory;
  readonly dmaBase: number;
  readonly deviceFeatures: bigint;
  readonly #opts: InProcessTransportOptions;
  readonly #alloc: RangeAllocator;
  readonly #config: Uint8Array;
  readonly #log: Logger;
  readonly #listeners = new Set<(e: InProcessEvent) => void>();
  readonly #queues: (QueueState | null)[];
  readonly #pendingKicks = new Set<number>();
  readonly #pendingIrqs = new Set<number>();
  #kickScheduled = false;
  #irqScheduled = false;
  #status = 0;
  #driverFeatures = 0n;
  #generation = 0;
  #vdev: VirtioDevice | null = null;
  readonly dma: VirtioDmaOps;

  constructor(options: InProcessTransportOptions) {
    checkInt('virtio device id', options.deviceId, 1, 0xffffffff);
    if (!Array.isArray(options.queueSizes) || options.queueSizes.length === 0) {
      throw new MicError('EINVAL', 'an in-process device needs at least one queue size');
    }
    for (const num of options.queueSizes) checkQueueSize(num);
    const size = options.memorySize ?? 4 << 20;
    checkInt('in-process memory size', size, 4096, 2 ** 31);
    this.dmaBase = options.dmaBase ?? IN_PROCESS_DMA_BASE;
    checkInt('in-process DMA base', this.dmaBase, 0, Number.MAX_SAFE_INTEGER - size);
    this.#opts = options;
    this.deviceFeatures = options.features;
    this.memory = BufferMemory.allocate(size, { shared: options.shared ?? false });
    // The first page is never handed out: no buffer has address dmaBase.
    this.#alloc = new RangeAllocator(4096, size);
    this.#config = new Uint8Array(options.config ?? new Uint8Array(0));
    this.#log = options.logger ?? nullLogger;
    this.#queues = options.queueSizes.map(() => null);
    this.dma = {
      alloc: (n: number): VirtioDmaBuffer => {
        const off = this.#alloc.alloc(n, n >= 4096 ? 4096 : 64);
        this.memory.fill(off, n, 0);
        return Object.freeze({ va: this.memory.window(off, n), addr: this.dmaBase + off, size: n });
      },
      free: (buf: VirtioDmaBuffer): void => {
        const off = buf.addr - this.dmaBase;
        if (this.#alloc.sizeOf(off) !== buf.size) {
          throw new MicError('EINVAL', `in-process buffer at 0x${buf.addr.toString(16)} is not live`);
        }
        this.#alloc.free(off);
      },
    };
  }

  /** What `VirtioBus.registerDevice` takes. */
  params(): VirtioDeviceParams {
    return {
      id: { device: this.#opts.deviceId, vendor: this.#opts.vendor ?? 0 },
      config: this.#ops(),
      dma: this.dma,
      parent: 'in-process',
    };
  }

  /** The status byte the driver wrote. */
  get status(): number {
    return this.#status;
  }

  /** The features the driver finalized (0 before). */
  get driverFeatures(): bigint {
    return this.#driverFeatures;
  }

  /** The device side of queue `index`, or null until the driver set it up. */
  queue(index: number): InProcessQueue | null {
    return this.#queues[index]?.info ?? null;
  }

  /** The config space as the device holds it (a copy). */
  configBytes(): Uint8Array {
    return this.#config.slice();
  }

  /**
   * Changes config space from the device side and tells the driver (a config interrupt):
   * `configChanged` of its driver runs in a later task.
   */
  setConfig(offset: number, bytes: Uint8Array): void {
    this.#checkConfig(offset, bytes.length);
    this.#config.set(bytes, offset);
    this.#generation++;
    setImmediate(() => this.#vdev?.configChanged());
  }

  /** Signals queue `index` (the device's used-buffer notification). */
  interrupt(index: number): void {
    checkInt('queue index', index, 0, this.#queues.length - 1);
    this.#pendingIrqs.add(index);
    if (this.#irqScheduled) return;
    this.#irqScheduled = true;
    setImmediate(() => {
      this.#irqScheduled = false;
      const list = [...this.#pendingIrqs];
      this.#pendingIrqs.clear();
      for (const i of list) this.#queues[i]?.vq.interrupt();
    });
  }

  /** Sets NEEDS_RESET (virtio 1.2 §2.1.2) and tells the driver through a config interrupt. */
  needsReset(): void {
    this.#status |= VIRTIO_CONFIG_S.NEEDS_RESET;
    setImmediate(() => this.#vdev?.configChanged());
  }

  /** Reports kicks, status writes, resets and queue setup to the device side. */
  subscribe(listener: (e: InProcessEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves after kicks and interrupts scheduled so far were delivered. */
  flush(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  #emit(e: InProcessEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#log.warn('in-process virtio listener failed', { event: e.type, err });
      }
    }
  }

  #checkConfig(offset: number, length: number): void {
    if (
      !Number.isInteger(offset) ||
      !Number.isInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > this.#config.length
    ) {
      throw new MicError(
        'EINVAL',
        `config access [${String(offset)}, +${String(length)}) is outside the ${this.#config.length}-byte config space`,
        { details: { offset, length, size: this.#config.length } },
      );
    }
  }

  #kick(index: number): boolean {
    if (this.#queues[index] === null) return false;
    this.#pendingKicks.add(index);
    if (!this.#kickScheduled) {
      this.#kickScheduled = true;
      setImmediate(() => {
        this.#kickScheduled = false;
        const list = [...this.#pendingKicks];
        this.#pendingKicks.clear();
        for (const queue of list) if (this.#queues[queue]) this.#emit({ type: 'kick', queue });
      });
    }
    return true;
  }

  #ops(): VirtioConfigOps {
    const config = this.#config;
    return {
      configSize: config.length,
      attach: (vdev) => {
        this.#vdev = vdev;
      },
      getFeatures: () => this.deviceFeatures,
      finalizeFeatures: (f) => {
        const finalized = vringTransportFeatures(f) & this.deviceFeatures;
        this.#driverFeatures = finalized;
        return finalized;
      },
      getConfig: (offset, length) => {
        this.#checkConfig(offset, length);
        return this.#config.slice(offset, offset + length);
      },
      setConfig: (offset, bytes) => {
        this.#checkConfig(offset, bytes.length);
        this.#config.set(bytes, offset);
      },
      generation: () => this.#generation,
      getStatus: () => this.#status,
      setStatus: (status) => {
        checkInt('virtio status', status, 0, 0xff);
        let s = status;
        if (s & VIRTIO_CONFIG_S.FEATURES_OK && !(this.#status & VIRTIO_CONFIG_S.FEATURES_OK)) {
          const accept = this.#opts.acceptFeatures ?? ((f: bigint) => (f & ~this.deviceFeatures) === 0n);
          if (!accept(this.#driverFeatures)) s &= ~VIRTIO_CONFIG_S.FEATURES_OK;
        }
        this.#status = s;
        this.#emit({ type: 'status', status: s });
      },
      reset: () => {
        this.#status = 0;
        this.#driverFeatures = 0n;
        for (const q of this.#queues) q?.info.vringh.reset();
        this.#emit({ type: 'reset' });
        return Promise.resolve();
      },
      findVqs: (vdev, infos) => Promise.resolve(this.#findVqs(vdev, infos)),
      delVqs: () => {
        this.#delVqs();
        return Promise.resolve();
      },
    };
  }

  #findVqs(vdev: VirtioDevice, infos: readonly VirtqueueInfo[]): (VirtioQueue | null)[] {
    const named = infos.filter((i) => i.name !== null).length;
    if (named > this.#queues.length) {
      throw new MicError('ENOENT', `${named} queues asked for, the device has ${this.#queues.length}`, {
        details: { asked: named, queues: this.#queues.length },
      });
    }
    if (this.#queues.some((q) => q !== null)) {
      throw new MicError('EBUSY', 'queues are already set up; delete them first');
    }
    const features = this.#driverFeatures;
    const eventIdx = hasFeature(features, VIRTIO_F.RING_EVENT_IDX);
    const indirect = hasFeature(features, VIRTIO_F.RING_INDIRECT_DESC);
    const result: (VirtioQueue | null)[] = [];
    let index = 0;
    try {
      for (const info of infos) {
        if (info.name === null) {
          result.push(null);
          continue;
        }
        const num = this.#opts.queueSizes[index]!;
        const ringOffset = this.#alloc.alloc(vringSize(num, 4096), 4096);
        this.memory.fill(ringOffset, vringSize(num, 4096), 0);
        const layout = vringLayout(num, 4096, ringOffset);
        const maxEntries = Math.min(num, 32);
        const poolOffset = indirect && num >= 2 ? this.#alloc.alloc(num * maxEntries * 16, 64) : null;
        const ring = new Virtqueue<unknown>({
          mem: this.memory,
          ...layout,
          eventIdx,
          ...(poolOffset === null
            ? {}
            : {
                indirect: {
                  mem: this.memory,
                  base: poolOffset,
                  dmaAddr: this.dmaBase + poolOffset,
                  maxEntries,
                },
              }),
        });
        const vringh = new Vringh({
          mem: this.memory,
          ...layout,
          eventIdx,
          indirect,
          dataMem: this.memory,
          getRange: (addr) =>
            addr >= this.dmaBase && addr < this.dmaBase + this.memory.byteLength
              ? { start: this.dmaBase, end: this.dmaBase + this.memory.byteLength, offset: -this.dmaBase }
              : null,
        });
        const i = index;
        const vq = new VirtioQueue<unknown>({
          vdev,
          index: i,
          name: info.name,
          ring,
          notify: () => this.#kick(i),
          callback: info.callback ?? null,
        });
        this.#queues[i] = { info: Object.freeze({ index: i, num, vringh }), vq, ringOffset, poolOffset };
        result.push(vq);
        index++;
      }
    } catch (err) {
      this.#delVqs();
      throw err;
    }
    this.#emit({ type: 'queues', queues: this.#queues.flatMap((q) => (q ? [q.info] : [])) });
    return result;
  }

  #delVqs(): void {
    for (let i = 0; i < this.#queues.length; i++) {
      const q = this.#queues[i];
      if (!q) continue;
      q.vq.breakQueue();
      this.#alloc.free(q.ringOffset);
      if (q.poolOffset !== null) this.#alloc.free(q.poolOffset);
      this.#queues[i] = null;
    }
    this.#pendingKicks.clear();
    this.#pendingIrqs.clear();
  }
}
