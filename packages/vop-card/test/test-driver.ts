/**
 * A virtio driver for the card's tests: binds console, net and block devices, sets up their
 * queues, keeps receive buffers posted on queue 0 and sends on queue 1, and records what happened.
 */
import { readBytes } from '@mic/memory';
import {
  VIRTIO_DEV_ANY_ID,
  VIRTIO_ID,
  type VirtioDevice,
  type VirtioDmaBuffer,
  type VirtioDriver,
  type VirtioQueue,
} from '@mic/virtio';

/** Queue names per device type: receive first, as virtio-console and virtio-net have them. */
const QUEUES: Record<number, readonly string[]> = {
  [VIRTIO_ID.NET]: ['rx', 'tx'],
  [VIRTIO_ID.BLOCK]: ['req'],
  [VIRTIO_ID.CONSOLE]: ['rx', 'tx'],
};

/** Bytes of each receive buffer. */
export const RX_BUF = 256;
/** Receive buffers kept posted (fewer on a smaller queue). */
export const RX_COUNT = 4;

interface Bound {
  readonly queues: (VirtioQueue<VirtioDmaBuffer> | null)[];
  readonly bufs: Set<VirtioDmaBuffer>;
  readonly received: Uint8Array[];
}

export class TestDriver implements VirtioDriver {
  readonly name = 'vop-card-test';
  readonly idTable = [
    { device: VIRTIO_ID.NET, vendor: VIRTIO_DEV_ANY_ID },
    { device: VIRTIO_ID.BLOCK, vendor: VIRTIO_DEV_ANY_ID },
    { device: VIRTIO_ID.CONSOLE, vendor: VIRTIO_DEV_ANY_ID },
    { device: 0, vendor: 0 },
  ];
  featureTable: number[];
  readonly probed: VirtioDevice[] = [];
  readonly removed: VirtioDevice[] = [];
  readonly configChanges: VirtioDevice[] = [];
  readonly #bound = new Map<VirtioDevice, Bound>();
  /** When set, remove does not reset the device (a buggy driver). */
  skipResetOnRemove = false;

  constructor(featureTable: number[] = []) {
    this.featureTable = featureTable;
  }

  async probe(vdev: VirtioDevice): Promise<void> {
    const names = QUEUES[vdev.id.device] ?? [];
    const bound: Bound = { queues: [], bufs: new Set(), received: [] };
    const queues = await vdev.findVqs<VirtioDmaBuffer>(
      names.map((name, i) => ({
        name,
        callback: (vq: VirtioQueue) => (i === 0 ? this.#onRx(vdev, vq) : this.#onTx(vdev, vq)),
      })),
    );
    bound.queues.push(...queues);
    this.#bound.set(vdev, bound);
    const rx = queues[0];
    if (rx && names.length > 1) {
      for (let i = 0; i < Math.min(RX_COUNT, rx.num); i++) this.#postRx(vdev, rx);
    }
    this.probed.push(vdev);
  }

  async remove(vdev: VirtioDevice): Promise<void> {
    this.removed.push(vdev);
    if (!this.skipResetOnRemove) await vdev.reset();
    await vdev.delVqs();
    const bound = this.#bound.get(vdev);
    if (bound) for (const b of bound.bufs) vdev.dma.free(b);
    this.#bound.delete(vdev);
  }

  configChanged(vdev: VirtioDevice): void {
    this.configChanges.push(vdev);
  }

  /** The queues of `vdev`. */
  queues(vdev: VirtioDevice): (VirtioQueue<VirtioDmaBuffer> | null)[] {
    return this.#bound.get(vdev)?.queues ?? [];
  }

  /** What `vdev` received on queue 0, in order. */
  received(vdev: VirtioDevice): Uint8Array[] {
    return this.#bound.get(vdev)?.received ?? [];
  }

  /** Sends `data` on queue 1 (or queue 0 for a one-queue device) and kicks. */
  send(vdev: VirtioDevice, data: Uint8Array): void {
    const bound = this.#bound.get(vdev)!;
    const vq = bound.queues[bound.queues.length > 1 ? 1 : 0]!;
    const buf = vdev.dma.alloc(data.length);
    buf.va.write(0, data);
    bound.bufs.add(buf);
    vq.add([{ addr: buf.addr, len: data.length }], [], buf);
    vq.kick();
  }

  #postRx(vdev: VirtioDevice, vq: VirtioQueue<VirtioDmaBuffer>): void {
    const buf = vdev.dma.alloc(RX_BUF);
    this.#bound.get(vdev)!.bufs.add(buf);
    vq.add([], [{ addr: buf.addr, len: RX_BUF }], buf);
    vq.kick();
  }

  #onRx(vdev: VirtioDevice, vq: VirtioQueue): void {
    const bound = this.#bound.get(vdev);
    if (!bound) return;
    const rx = vq as VirtioQueue<VirtioDmaBuffer>;
    for (let u = rx.getBuf(); u; u = rx.getBuf()) {
      bound.received.push(readBytes(u.token.va, 0, u.len).slice());
      bound.bufs.delete(u.token);
      vdev.dma.free(u.token);
      this.#postRx(vdev, rx);
    }
  }

  #onTx(vdev: VirtioDevice, vq: VirtioQueue): void {
    const bound = this.#bound.get(vdev);
    if (!bound) return;
    const tx = vq as VirtioQueue<VirtioDmaBuffer>;
    for (let u = tx.getBuf(); u; u = tx.getBuf()) {
      bound.bufs.delete(u.token);
      vdev.dma.free(u.token);
    }
  }
}
