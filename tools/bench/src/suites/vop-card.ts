/**
 * The card code of the `vop` suite (it runs in the card's worker thread): the card's buses,
 * vop-card on the VOP bus with a virtio bus above it, a benchmark virtio driver bound to the
 * console device the host adds, then mic-card probed on the card view. The suite drives the driver
 * through the card's debug channel; each method runs one timed loop on the card and returns its
 * elapsed milliseconds.
 */
import { MbusBus } from '@mic/mic-bus';
import { MicCardDriver } from '@mic/mic-card';
import { ScifBus } from '@mic/scif-bus';
import {
  VIRTIO_DEV_ANY_ID,
  VIRTIO_ID,
  VirtioBus,
  type VirtioDevice,
  type VirtioDmaBuffer,
  type VirtioDriver,
  type VirtioQueue,
} from '@mic/virtio';
import { VopBus } from '@mic/vop-bus';
import { VopCardDriver } from '@mic/vop-card';
import type { CardDebugMethods, X100CardView } from '@mic/x100';
import { currentTid } from '../common.js';

/**
 * A console-type virtio driver for benchmarks: queue 0 receives (buffers kept posted), queue 1
 * transmits. Buffers are allocated per run and reused; tokens are buffer indices.
 */
class BenchDriver implements VirtioDriver {
  readonly name = 'vop-bench';
  readonly idTable = [
    { device: VIRTIO_ID.CONSOLE, vendor: VIRTIO_DEV_ANY_ID },
    { device: 0, vendor: 0 },
  ];
  readonly featureTable: number[] = [];
  vdev: VirtioDevice | null = null;
  rx: VirtioQueue<number> | null = null;
  tx: VirtioQueue<number> | null = null;
  onRx: (() => void) | null = null;
  onTx: (() => void) | null = null;

  async probe(vdev: VirtioDevice): Promise<void> {
    const [rx, tx] = await vdev.findVqs<number>([
      { name: 'rx', callback: () => this.onRx?.() },
      { name: 'tx', callback: () => this.onTx?.() },
    ]);
    this.vdev = vdev;
    this.rx = rx!;
    this.tx = tx!;
  }

  async remove(vdev: VirtioDevice): Promise<void> {
    this.vdev = null;
    await vdev.reset();
    await vdev.delVqs();
  }
}

function buffers(vdev: VirtioDevice, n: number, size: number): VirtioDmaBuffer[] {
  const bufs: VirtioDmaBuffer[] = [];
  for (let i = 0; i < n; i++) bufs.push(vdev.dma.alloc(size));
  return bufs;
}

export async function cardMain(card: X100CardView): Promise<CardDebugMethods> {
  const buses = { mbus: new MbusBus(), scif: new ScifBus(), vop: new VopBus() };
  const virtioBus = new VirtioBus({ logger: card.logger });
  const bench = new BenchDriver();
  await virtioBus.registerDriver(bench);
  await buses.vop.registerDriver(new VopCardDriver({ virtioBus, logger: card.logger, clock: card.clock }));
  const driver = await MicCardDriver.init({ logger: card.logger });
  await driver.probe({ card, buses });

  const bound = (): { vdev: VirtioDevice; rx: VirtioQueue<number>; tx: VirtioQueue<number> } => {
    if (!bench.vdev || !bench.rx || !bench.tx) throw new Error('the benchmark device is not bound');
    return { vdev: bench.vdev, rx: bench.rx, tx: bench.tx };
  };
  /**
   * After a run: unbind the driver (its remove resets the device: the host stops touching the
   * buffers), free the run's buffers, bind again (new queues, relocated, DRIVER_OK) for the next.
   */
  const finish = async <T>(result: T, vdev: VirtioDevice, bufs: VirtioDmaBuffer[]): Promise<T> => {
    bench.onRx = null;
    bench.onTx = null;
    await virtioBus.unregisterDriver(bench);
    for (const b of bufs) vdev.dma.free(b);
    await virtioBus.registerDriver(bench);
    bound();
    return result;
  };

  return {
    tid: () => currentTid(),
    bound: () => bench.vdev !== null,

    /**
     * Request/response: `count` requests of `size` bytes, at most `depth` in flight; each is
     * complete when its echo arrived in a receive buffer. Transmit completions are collected
     * without interrupts (callbacks off on queue 1), and receive completions NAPI-style (callbacks
     * off while collecting, then on with a last look), as virtio-net does.
     */
    pingPong: (count: number, size: number, depth: number) => {
      const { vdev, rx, tx } = bound();
      const rxBufs = buffers(vdev, depth, Math.max(size, 64));
      const txBufs = buffers(vdev, depth, Math.max(size, 64));
      for (const b of txBufs) b.va.fill(0, size, 0x5a);
      const freeTx = txBufs.map((_, i) => i);
      rx.addMany(rxBufs.map((b, i) => ({ out: [], in: [{ addr: b.addr, len: size }], token: i })));
      rx.kick();
      tx.disableCb();
      let sent = 0;
      let received = 0;
      const post = (): void => {
        for (let u = tx.getBuf(); u; u = tx.getBuf()) freeTx.push(u.token);
        let n = 0;
        while (sent < count && sent - received < depth && freeTx.length > 0) {
          const i = freeTx.pop()!;
          tx.ring.add([{ addr: txBufs[i]!.addr, len: size }], [], i);
          sent++;
          n++;
        }
        if (n > 0) tx.kick();
      };
      return new Promise<number>((resolve) => {
        const t0 = performance.now();
        // NAPI-style, as virtio-net's receive: interrupts off while the callback collects, then
        // on again with a last look for echoes that came meanwhile (they came without one).
        bench.onRx = () => {
          rx.disableCb();
          for (;;) {
            let reposted = 0;
            for (let u = rx.getBuf(); u; u = rx.getBuf()) {
              received++;
              rx.ring.add([], [{ addr: rxBufs[u.token]!.addr, len: size }], u.token);
              reposted++;
            }
            if (reposted > 0) rx.kick();
            if (received >= count) {
              const ms = performance.now() - t0;
              bench.onRx = null;
              rx.enableCb();
              resolve(ms);
              return;
            }
            post();
            if (rx.enableCb()) return;
            rx.disableCb();
          }
        };
        post();
      }).then((ms) => finish(ms, vdev, [...rxBufs, ...txBufs]));
    },

    /** Card → host: keeps `depth` transmit buffers of `size` bytes in flight until `count` went. */
    stream: (count: number, size: number, depth: number) => {
      const { vdev, tx } = bound();
      const txBufs = buffers(vdev, depth, size);
      let sent = 0;
      let done = 0;
      return new Promise<number>((resolve) => {
        const t0 = performance.now();
        const post = (free: number[]): void => {
          let n = 0;
          for (const i of free) {
            if (sent >= count) break;
            tx.ring.add([{ addr: txBufs[i]!.addr, len: size }], [], i);
            sent++;
            n++;
          }
          if (n > 0) tx.kick();
        };
        bench.onTx = () => {
          const free: number[] = [];
          for (let u = tx.getBuf(); u; u = tx.getBuf()) {
            done++;
            free.push(u.token);
          }
          if (done >= count) {
            bench.onTx = null;
            resolve(performance.now() - t0);
            return;
          }
          post(free);
        };
        post(txBufs.map((_, i) => i));
      }).then((ms) => finish(ms, vdev, txBufs));
    },

    /** Host → card: keeps `depth` receive buffers of `size` bytes posted until `count` arrived. */
    sink: (count: number, size: number, depth: number) => {
      const { vdev, rx } = bound();
      const rxBufs = buffers(vdev, depth, size);
      let received = 0;
      let bytes = 0;
      return new Promise<{ ms: number; bytes: number }>((resolve) => {
        const t0 = performance.now();
        bench.onRx = () => {
          let reposted = 0;
          for (let u = rx.getBuf(); u; u = rx.getBuf()) {
            received++;
            bytes += u.len;
            rx.ring.add([], [{ addr: rxBufs[u.token]!.addr, len: size }], u.token);
            reposted++;
          }
          if (reposted > 0) rx.kick();
          if (received >= count) {
            bench.onRx = null;
            resolve({ ms: performance.now() - t0, bytes });
          }
        };
        rx.addMany(rxBufs.map((b, i) => ({ out: [], in: [{ addr: b.addr, len: size }], token: i })));
        rx.kick();
      }).then((r) => finish(r, vdev, rxBufs));
    },
  };
}
