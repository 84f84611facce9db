// The two ends of the echo device used by the VOP end-to-end tests: a virtio driver on the card
// that sends on queue 1 and keeps receive buffers posted on queue 0 (as virtio-console does), and
// a host backend that copies each chain the card sends back into a receive buffer (as mpssd's
// console thread moves bytes, but to the card itself).
import { isMicError } from '@mic/errors';
import {
  VIRTIO_CONFIG_S,
  VIRTIO_DEV_ANY_ID,
  type VirtioDevice,
  type VirtioDmaBuffer,
  type VirtioDriver,
  type VirtioQueue,
} from '@mic/virtio';
import type { VopVirtioHandle } from '@mic/vop-host';

/** Bytes of each receive buffer the echo driver posts. */
export const ECHO_RX_BUF = 4096;

interface Bound {
  readonly rx: VirtioQueue<VirtioDmaBuffer>;
  readonly tx: VirtioQueue<VirtioDmaBuffer>;
  readonly extra: (VirtioQueue<VirtioDmaBuffer> | null)[];
  readonly received: Uint8Array[];
  readonly waiters: (() => void)[];
  readonly live: Set<VirtioDmaBuffer>;
}

/** A card-side echo client for devices of `type` with `queues` queues (2 or more). */
export class EchoCardDriver implements VirtioDriver {
  readonly name = 'e2e-echo';
  readonly idTable;
  readonly featureTable: number[] = [];
  readonly probed: VirtioDevice[] = [];
  readonly removed: VirtioDevice[] = [];
  readonly configChanges: VirtioDevice[] = [];
  readonly #bound = new Map<VirtioDevice, Bound>();
  readonly #queues: number;

  constructor(type: number, queues = 2) {
    this.idTable = [
      { device: type, vendor: VIRTIO_DEV_ANY_ID },
      { device: 0, vendor: 0 },
    ];
    this.#queues = queues;
  }

  async probe(vdev: VirtioDevice): Promise<void> {
    const infos = Array.from({ length: this.#queues }, (_, i) => ({
      name: i === 0 ? 'rx' : i === 1 ? 'tx' : `q${i}`,
      callback: (vq: VirtioQueue) => this.#onUsed(vdev, vq),
    }));
    const queues = await vdev.findVqs<VirtioDmaBuffer>(infos);
    const bound: Bound = {
      rx: queues[0]!,
      tx: queues[1]!,
      extra: queues.slice(2),
      received: [],
      waiters: [],
      live: new Set(),
    };
    this.#bound.set(vdev, bound);
    for (let i = 0; i < Math.min(8, bound.rx.num); i++) this.#postRx(vdev, bound);
    bound.rx.kick();
    this.probed.push(vdev);
  }

  async remove(vdev: VirtioDevice): Promise<void> {
    this.removed.push(vdev);
    await vdev.reset();
    await vdev.delVqs();
    const bound = this.#bound.get(vdev);
    this.#bound.delete(vdev);
    if (bound) {
      for (const b of bound.live) vdev.dma.free(b);
      for (const w of bound.waiters) w();
    }
  }

  configChanged(vdev: VirtioDevice): void {
    this.configChanges.push(vdev);
  }

  /** The devices bound now. */
  devices(): VirtioDevice[] {
    return [...this.#bound.keys()];
  }

  /** What `vdev` received so far. */
  received(vdev: VirtioDevice): Uint8Array[] {
    return this.#bound.get(vdev)?.received ?? [];
  }

  /** The queues beyond rx and tx. */
  extraQueues(vdev: VirtioDevice): (VirtioQueue<VirtioDmaBuffer> | null)[] {
    return this.#bound.get(vdev)?.extra ?? [];
  }

  /** Sends `data` on queue `q` (default tx) and kicks. */
  send(vdev: VirtioDevice, data: Uint8Array, q?: VirtioQueue<VirtioDmaBuffer>): void {
    const bound = this.#bound.get(vdev);
    if (!bound) throw new Error(`${vdev.name} is not bound`);
    const buf = vdev.dma.alloc(Math.max(1, data.length));
    buf.va.write(0, data);
    bound.live.add(buf);
    const vq = q ?? bound.tx;
    vq.add([{ addr: buf.addr, len: data.length }], [], buf);
    vq.kick();
  }

  /** Resolves once `vdev` received `count` buffers (or it was removed). */
  async waitReceived(vdev: VirtioDevice, count: number): Promise<Uint8Array[]> {
    for (;;) {
      const bound = this.#bound.get(vdev);
      if (!bound || bound.received.length >= count) return this.received(vdev);
      await new Promise<void>((r) => bound.waiters.push(r));
    }
  }

  #postRx(vdev: VirtioDevice, bound: Bound): void {
    const buf = vdev.dma.alloc(ECHO_RX_BUF);
    bound.live.add(buf);
    bound.rx.add([], [{ addr: buf.addr, len: ECHO_RX_BUF }], buf);
  }

  #onUsed(vdev: VirtioDevice, vq: VirtioQueue): void {
    const bound = this.#bound.get(vdev);
    if (!bound) return;
    const q = vq as VirtioQueue<VirtioDmaBuffer>;
    let reposted = false;
    for (let u = q.getBuf(); u; u = q.getBuf()) {
      bound.live.delete(u.token);
      if (q === bound.rx) {
        const data = new Uint8Array(u.len);
        u.token.va.read(0, data);
        bound.received.push(data);
        this.#postRx(vdev, bound);
        reposted = true;
      }
      vdev.dma.free(u.token);
    }
    if (reposted) bound.rx.kick();
    const waiters = bound.waiters.splice(0);
    for (const w of waiters) w();
  }
}

/** What the echo backend did. */
export interface EchoStats {
  chains: number;
  bytes: number;
}

/**
 * The host end: waits for the card (poll), drains vring `from` (default 1, the card's transmit
 * queue) and copies each chain into the next receive buffer of vring `to` (default 0). Runs until
 * `signal` aborts or the device goes away.
 */
export async function echoBackend(
  handle: VopVirtioHandle,
  signal: AbortSignal,
  stats: EchoStats = { chains: 0, bytes: 0 },
  { from = 1, to = 0 }: { from?: number; to?: number } = {},
): Promise<EchoStats> {
  const buf = new Uint8Array(1 << 20);
  try {
    while (!signal.aborted) {
      const ev = await handle.poll({ signal, timeoutMs: 200 });
      if (ev.err) return stats;
      if ((handle.info().status & VIRTIO_CONFIG_S.DRIVER_OK) === 0) continue;
      for (;;) {
        const n = await handle.copyDesc({ iov: [buf], vrIdx: from, updateUsed: true });
        if (n === 0) break;
        stats.chains++;
        stats.bytes += n;
        for (;;) {
          const m = await handle.copyDesc({ iov: [buf.subarray(0, n)], vrIdx: to, updateUsed: true });
          if (m > 0 || signal.aborted) break;
          const again = await handle.poll({ signal, timeoutMs: 200 });
          if (again.err) return stats;
        }
      }
    }
  } catch (err) {
    // The end of the device (card stop, hot-unplug, cancel) ends the backend.
    if (isMicError(err) && ['ENODEV', 'ECANCELED', 'EBADF'].includes(err.code)) return stats;
    throw err;
  }
  return stats;
}
