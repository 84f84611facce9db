// A virtio-console device for the driver's tests: takes what the card transmits on vring 1 and
// fills the card's receive buffers on vring 0 with what the host sends (optionally an echo of
// what it received), as mpssd's console thread moves bytes (mic-vop.md §7.8).
import { type InProcessTransport, VringhIov } from '@mic/virtio';
import { type Served, serveQueue } from './harness.js';

export interface ConsoleDevice {
  /** What the card sent, chain by chain. */
  readonly chains: Uint8Array[];
  /** Bytes waiting for a receive buffer. */
  pendingBytes(): number;
  /** Times the device had bytes to deliver and no receive buffer. */
  starved: number;
  /** Receive buffers filled. */
  delivered: number;
  /** Queues bytes for the card and delivers what fits. */
  send(bytes: Uint8Array): void;
  /** The transmit side (pause it to stop taking chains). */
  readonly tx: Served;
  /** Everything the card sent, joined. */
  text(): string;
}

export function consoleDevice(
  t: InProcessTransport,
  options: { echo?: boolean; maxPerBuffer?: number } = {},
): ConsoleDevice {
  const pending: Uint8Array[] = [];
  const riov = new VringhIov();
  const wiov = new VringhIov();
  const deliver = (): void => {
    const q = t.queue(0);
    if (!q) return;
    while (pending.length > 0) {
      const r = q.vringh.getDesc(riov, wiov);
      if (r.status !== 'chain') {
        dev.starved++;
        break;
      }
      let room = Math.min(wiov.total, options.maxPerBuffer ?? Infinity);
      let n = 0;
      while (room > 0 && pending.length > 0) {
        const head = pending[0]!;
        const k = Math.min(room, head.length);
        n += q.vringh.push(wiov, head.subarray(0, k));
        room -= k;
        if (k === head.length) pending.shift();
        else pending[0] = head.subarray(k);
      }
      q.vringh.complete(r.head, n);
      dev.delivered++;
    }
    if (q.vringh.needNotify()) t.interrupt(0);
  };
  const dev: ConsoleDevice = {
    chains: [],
    starved: 0,
    delivered: 0,
    pendingBytes: () => pending.reduce((a, b) => a + b.length, 0),
    send(bytes) {
      pending.push(bytes.slice());
      deliver();
    },
    tx: serveQueue(t, 1, (c) => {
      const b = c.pull(c.readableTotal);
      dev.chains.push(b);
      if (options.echo) {
        pending.push(b);
        // Deliver after this chain is completed, as a backend would in its next loop turn.
        setImmediate(deliver);
      }
      return 0;
    }),
    text: () => Buffer.concat(dev.chains).toString('latin1'),
  };
  t.subscribe((e) => {
    if (e.type === 'kick' && e.queue === 0) deliver();
  });
  return dev;
}
