// A virtio-net device for the driver's tests: takes the card's frames from vring 1 and fills the
// card's receive buffers on vring 0 with frames the host sends (optionally the card's own frames
// looped back), like mpssd's net thread between the rings and a TAP (mic-vop.md §7.7).
import { type InProcessTransport, VringhIov } from '@mic/virtio';
import { type Served, serveQueue } from './harness.js';

/** A frame the card sent, with its header. */
export interface SentFrame {
  readonly hdr: Uint8Array;
  readonly frame: Uint8Array;
  /** Readable descriptors of the chain. */
  readonly segments: readonly number[];
}

/** How the device writes one received frame (for misbehaving on purpose). */
export interface DeliverOptions {
  readonly flags?: number;
  readonly gsoType?: number;
  /** `num_buffers` to claim instead of the true count (12-byte headers). */
  readonly numBuffers?: number;
  /** Used length to report for the first buffer instead of the bytes written. */
  readonly usedLen?: number;
  /** Most bytes per buffer (header included), to spread a frame over mergeable buffers. */
  readonly maxPerBuffer?: number;
}

export interface NetDevice {
  readonly sent: SentFrame[];
  readonly tx: Served;
  /** Frames waiting for receive buffers. */
  pending(): number;
  /** Queues a frame for the card and delivers what fits. */
  send(frame: Uint8Array, options?: DeliverOptions): void;
  /** Times a frame found too few receive buffers. */
  starved: number;
}

export function netDevice(
  t: InProcessTransport,
  hdrSize: 10 | 12,
  options: { loop?: boolean; mergeable?: boolean } = {},
): NetDevice {
  const queue: { frame: Uint8Array; o: DeliverOptions }[] = [];
  const deliverOne = (frame: Uint8Array, o: DeliverOptions): boolean => {
    const q = t.queue(0)!;
    const vrh = q.vringh;
    const hdr = new Uint8Array(10);
    hdr[0] = o.flags ?? 0;
    hdr[1] = o.gsoType ?? 0;
    const all = new Uint8Array(hdrSize + frame.length);
    all.set(hdr.subarray(0, 10), 0);
    all.set(frame, hdrSize);
    const used: { head: number; len: number }[] = [];
    let off = 0;
    while (off < all.length) {
      const riov = new VringhIov();
      const wiov = new VringhIov();
      const r = vrh.getDesc(riov, wiov);
      if (r.status !== 'chain') {
        vrh.abandon(used.length);
        return false;
      }
      const cap = Math.min(wiov.total, o.maxPerBuffer ?? Infinity);
      if (used.length === 0 && hdrSize === 12) {
        const count = options.mergeable ? Math.ceil(all.length / cap) : 1;
        new DataView(all.buffer).setUint16(10, o.numBuffers ?? count, true);
      }
      const n = vrh.push(wiov, all.subarray(off, off + (options.mergeable ? cap : all.length)));
      used.push({ head: r.head, len: n });
      off += n;
      if (!options.mergeable) break;
    }
    used.forEach((u, k) => vrh.complete(u.head, k === 0 && o.usedLen !== undefined ? o.usedLen : u.len));
    return true;
  };
  const deliver = (): void => {
    const q = t.queue(0);
    if (!q) return;
    while (queue.length > 0) {
      const next = queue[0]!;
      if (!deliverOne(next.frame, next.o)) {
        dev.starved++;
        break;
      }
      queue.shift();
    }
    if (q.vringh.needNotify()) t.interrupt(0);
  };
  const dev: NetDevice = {
    sent: [],
    starved: 0,
    pending: () => queue.length,
    send(frame, o = {}) {
      queue.push({ frame: frame.slice(), o });
      deliver();
    },
    tx: serveQueue(t, 1, (c) => {
      const hdr = c.pull(hdrSize);
      const frame = c.pull(c.readableTotal - hdrSize);
      dev.sent.push({ hdr, frame, segments: c.readable });
      if (options.loop) {
        queue.push({ frame, o: {} });
        setImmediate(deliver);
      }
      return 0;
    }),
  };
  t.subscribe((e) => {
    if (e.type === 'kick' && e.queue === 0) deliver();
  });
  return dev;
}
