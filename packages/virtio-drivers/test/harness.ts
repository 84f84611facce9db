// The test harness: a virtio bus with an in-process transport, DMA ops that count live buffers,
// and a helper that serves a transport queue's chains like a device backend does.
import {
  InProcessTransport,
  type InProcessTransportOptions,
  VirtioBus,
  type VirtioDevice,
  type VirtioDmaBuffer,
  type VirtioDriver,
  VirtioQueue,
  VringhIov,
} from '@mic/virtio';

/** A bus with one in-process device whose DMA buffers are counted. */
export interface Rig {
  readonly bus: VirtioBus;
  readonly t: InProcessTransport;
  /** DMA buffers the driver holds now. */
  readonly live: Set<VirtioDmaBuffer>;
  vdev: VirtioDevice;
  /** Unregisters the device (the driver's remove runs). */
  unplug(): Promise<void>;
}

/** Registers `driver`, then a device on `t` with counted DMA ops. */
export async function rig(driver: VirtioDriver, options: InProcessTransportOptions): Promise<Rig> {
  const bus = new VirtioBus();
  const t = new InProcessTransport(options);
  const params = t.params();
  const live = new Set<VirtioDmaBuffer>();
  await bus.registerDriver(driver);
  const vdev = await bus.registerDevice({
    ...params,
    dma: {
      alloc: (n) => {
        const b = params.dma.alloc(n);
        live.add(b);
        return b;
      },
      free: (b) => {
        if (!live.delete(b)) throw new Error('freeing a buffer that is not live');
        params.dma.free(b);
      },
    },
  });
  return { bus, t, live, vdev, unplug: () => bus.unregisterDevice(vdev) };
}

/** One chain as a device handler sees it. */
export interface Chain {
  readonly head: number;
  /** Device-readable segment lengths. */
  readonly readable: readonly number[];
  /** Device-writable segment lengths. */
  readonly writable: readonly number[];
  /** Copies readable bytes at the cursor. */
  pull(n: number): Uint8Array;
  /** Copies into writable bytes at the cursor; returns bytes copied. */
  push(bytes: Uint8Array): number;
  /** Skips writable bytes. */
  skipWritable(n: number): number;
  readonly readableTotal: number;
  readonly writableTotal: number;
}

/**
 * What a handler returns: the used length to complete with now, or `'hold'` to complete later
 * with the function given to {@link serveQueue}'s `held` list.
 */
export type ChainResult = number | 'hold';

/** A device side serving queue `index` of `t`: every kicked chain goes to `handle`. */
export interface Served {
  /** Chains completed so far. */
  completed: number;
  /** Chains held: complete them with {@link release}. */
  readonly held: { head: number; len: number }[];
  /** Completes held chains (all, or the first `n`) and interrupts. */
  release(n?: number): void;
  /** Stops serving (kicks are ignored until {@link resume}). */
  pause(): void;
  /** Serves again, including what was made available meanwhile. */
  resume(): void;
  /** Serves what is available now (as a kick would). */
  poll(): void;
}

/** Serves queue `index` of `t` with `handle`, like a backend's poll loop. */
export function serveQueue(
  t: InProcessTransport,
  index: number,
  handle: (chain: Chain) => ChainResult | { len: number; hold: true },
): Served {
  const riov = new VringhIov();
  const wiov = new VringhIov();
  let paused = false;
  const served: Served = {
    completed: 0,
    held: [],
    release(n = served.held.length) {
      const q = t.queue(index);
      if (!q) return;
      for (const h of served.held.splice(0, n)) {
        q.vringh.complete(h.head, h.len);
        served.completed++;
      }
      if (q.vringh.needNotify()) t.interrupt(index);
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      served.poll();
    },
    poll() {
      const q = t.queue(index);
      if (!q || paused) return;
      const vrh = q.vringh;
      for (;;) {
        const r = vrh.getDesc(riov, wiov);
        if (r.status !== 'chain') break;
        const chain: Chain = {
          head: r.head,
          readable: riov.lengths.slice(0, riov.count),
          writable: wiov.lengths.slice(0, wiov.count),
          readableTotal: riov.total,
          writableTotal: wiov.total,
          pull: (n) => {
            const b = new Uint8Array(Math.min(n, riov.remaining));
            vrh.pull(riov, b);
            return b;
          },
          push: (bytes) => vrh.push(wiov, bytes),
          skipWritable: (n) => vrh.skip(wiov, n),
        };
        const res = handle(chain);
        if (res === 'hold') {
          served.held.push({ head: r.head, len: wiov.done });
        } else if (typeof res === 'object') {
          served.held.push({ head: r.head, len: res.len });
        } else {
          vrh.complete(r.head, res);
          served.completed++;
        }
      }
      if (vrh.needNotify()) t.interrupt(index);
    },
  };
  t.subscribe((e) => {
    if (e.type === 'kick' && e.queue === index) served.poll();
  });
  return served;
}

/** Waits (in event-loop turns, never by time) until `cond` holds; fails after `turns` turns. */
export async function until(t: InProcessTransport, cond: () => boolean, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await t.flush();
  }
  throw new Error('condition not reached');
}

/** The error `p` rejects with; fails when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/**
 * Counts the notifications the driver sends (`VirtioQueue.notify`) and the interrupts the device
 * raises (`t.interrupt`), per queue index. `restore()` undoes the wrapping.
 */
export function countSignals(t: InProcessTransport): {
  readonly kicks: number[];
  readonly irqs: number[];
  restore(): void;
} {
  const kicks: number[] = [];
  const irqs: number[] = [];
  const notify = VirtioQueue.prototype.notify;
  VirtioQueue.prototype.notify = function (this: VirtioQueue) {
    kicks[this.index] = (kicks[this.index] ?? 0) + 1;
    return notify.call(this);
  };
  const interrupt = t.interrupt.bind(t);
  t.interrupt = (index: number): void => {
    irqs[index] = (irqs[index] ?? 0) + 1;
    interrupt(index);
  };
  return {
    kicks,
    irqs,
    restore: () => {
      VirtioQueue.prototype.notify = notify;
      t.interrupt = interrupt;
    },
  };
}
