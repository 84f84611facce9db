/**
 * Suite `net`: virtio-net frames through the userspace switch on the x100 `worker` platform. The
 * card program of `@mic/demo` runs `@mic/virtio-drivers`' `VirtioNet` in the card's worker; the
 * host serves the NIC over VOP with `@mic/virtio-backends`' `NetBackend` on a `VirtualSwitch`,
 * whose host port sends and receives from this thread. Figures: 1514-byte frames card → host (the
 * card sends a burst, the time runs until the last frame reached the host port) and host → card
 * (the host port sends, never more than 128 frames ahead of what the backend put into the card's
 * receive buffers; the time runs until the card counted the last), in frames/s and Gbit/s.
 *
 * The NIC offers VIRTIO_F_RING_EVENT_IDX (`NetBackend`'s `eventIdx`): the card is interrupted
 * once per batch of transmitted frames and coalesces receive interrupts under load.
 *
 * Both directions run on two cards (one busy at a time): one with the rig's defaults (frames copied
 * by the DMA engine, as the kernel does) and one with `FAST_COPY_RIG` (memcpy, no polling).
 *
 * Baseline, measured in the same run, trial by trial: MessagePort carrying 1514-byte messages one
 * way between this thread and a plain worker (windowed, acknowledged every 64), in the same
 * direction. Target (issue 13): at least 3x the baseline's message rate.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import {
  type CardDevices,
  CardRig,
  type CardRigOptions,
  FAST_COPY_RIG,
  HOST_PORT,
  framesCardToHost,
  framesHostToCard,
  serveCard,
} from '@mic/demo';
import { type SwitchPort, parseMac } from '@mic/virtio-backends';
import {
  type BenchRecord,
  type SuiteOptions,
  currentTid,
  median,
  pinPair,
  placement,
  push,
  record,
  regimeOf,
} from '../common.js';
import { type PortStream, receiveStream, sendStream } from './net-port.js';

const FRAME = 1514;

/** Messages/s of a MessagePort stream of `s`, worker → main (`c2h`) or main → worker (`h2c`). */
async function portRate(worker: Worker, dir: 'c2h' | 'h2c', s: PortStream): Promise<number> {
  if (dir === 'c2h') {
    const received = receiveStream(worker, s);
    worker.postMessage({ send: s });
    return s.count / ((await received) / 1000);
  }
  const result = new Promise<number>((resolve) => {
    const onResult = (m: unknown): void => {
      if (m && typeof m === 'object' && 'ms' in m) {
        worker.off('message', onResult);
        resolve((m as { ms: number }).ms);
      }
    };
    worker.on('message', onResult);
  });
  worker.postMessage({ receive: s });
  await sendStream(worker, s);
  return s.count / ((await result) / 1000);
}

const gbits = (framesPerSecond: number): number => (framesPerSecond * FRAME * 8) / 1e9;

/**
 * The two rigs: the defaults (a 1514-byte frame goes by the DMA engine, as the kernel copies) and
 * {@link FAST_COPY_RIG} (memcpy, no polling); `frames` scales each one's burst to its speed.
 */
const VARIANTS: readonly {
  readonly prefix: string;
  readonly options: CardRigOptions;
  readonly frames: number;
}[] = [
  { prefix: 'net', options: {}, frames: 10_000 },
  { prefix: 'net-memcpy-nospin', options: FAST_COPY_RIG, frames: 100_000 },
];

interface Served {
  readonly prefix: string;
  readonly count: number;
  readonly rig: CardRig;
  readonly devices: CardDevices;
  port: SwitchPort | null;
  macs: { readonly card: Uint8Array; readonly port: Uint8Array } | null;
  tid: number;
}

export async function netSuite(options: SuiteOptions): Promise<BenchRecord[]> {
  const worker = new Worker(new URL('./net-port.js', import.meta.url), { workerData: { role: 'net-port' } });
  const served: Served[] = [];
  try {
    const [{ tid: workerTid }] = (await once(worker, 'message')) as [{ tid: number }];
    for (const v of VARIANTS) {
      const rig = await CardRig.boot({ platform: 'worker', ...v.options });
      // EVENT_IDX: notifications once per batch both ways (VOP implements it; off by default).
      const devices = await serveCard(rig.control, { net: { eventIdx: true } });
      const count = Math.max(2000, Math.round(v.frames * options.scale));
      const s: Served = { prefix: v.prefix, count, rig, devices, port: null, macs: null, tid: -1 };
      served.push(s);
      const net = devices.net!;
      await net.waitDriverOk();
      const card = await rig.call<{ net: { mac: string } }>('waitDevices', ['net']);
      s.port = net.backend.switch!.port('host');
      s.macs = { card: parseMac(card.net.mac), port: parseMac(HOST_PORT.mac) };
      s.tid = await rig.call<number>('tid');
    }
    const mainTid = currentTid();
    const portCount = Math.max(2000, Math.round(100_000 * options.scale));
    const rates = new Map<string, number[]>();
    const place: string[] = [];
    for (let t = 0; t < options.trials; t++) {
      const line: string[] = [];
      for (const s of served) {
        const net = s.devices.net!;
        const unpinCard = pinPair(options.pin, mainTid, s.tid);
        try {
          await framesCardToHost(s.rig, s.port!, HOST_PORT.mac, s.count >> 3, FRAME);
          place.push(placement(mainTid, s.tid));
          const c2h = await framesCardToHost(s.rig, s.port!, HOST_PORT.mac, s.count, FRAME);
          place.push(placement(mainTid, s.tid));
          await framesHostToCard(s.rig, s.port!, net.backend, s.macs!, s.count >> 3, FRAME);
          const h2c = await framesHostToCard(s.rig, s.port!, net.backend, s.macs!, s.count, FRAME);
          place.push(placement(mainTid, s.tid));
          push(rates, `${s.prefix}-c2h`, c2h.frames / (c2h.ms / 1000));
          push(rates, `${s.prefix}-h2c`, h2c.frames / (h2c.ms / 1000));
          line.push(
            `${s.prefix} card -> host ${fmt(rates.get(`${s.prefix}-c2h`)!.at(-1)!)}, host -> card ${fmt(rates.get(`${s.prefix}-h2c`)!.at(-1)!)} frames/s`,
          );
        } finally {
          unpinCard();
        }
      }
      const unpinPort = pinPair(options.pin, mainTid, workerTid);
      await portRate(worker, 'c2h', { count: portCount >> 3, size: FRAME });
      const pc2h = await portRate(worker, 'c2h', { count: portCount, size: FRAME });
      const ph2c = await portRate(worker, 'h2c', { count: portCount, size: FRAME });
      unpinPort();
      push(rates, 'port-c2h', pc2h);
      push(rates, 'port-h2c', ph2c);
      options.progress(
        `net trial ${t + 1}/${options.trials}: ${line.join('; ')}; MessagePort worker -> main ${fmt(pc2h)}, main -> worker ${fmt(ph2c)} msg/s`,
      );
    }
    const regime = regimeOf(place);
    const out: BenchRecord[] = [];
    for (const s of served) {
      for (const [dirName, portName] of [
        ['c2h', 'messageport-1514B-worker-to-main'],
        ['h2c', 'messageport-1514B-main-to-worker'],
      ] as const) {
        const v = median(rates.get(`${s.prefix}-${dirName}`)!);
        const b = median(rates.get(`port-${dirName}`)!);
        out.push(
          record(
            'net',
            `${s.prefix}-${dirName}-1514B-frames`,
            'frames/s',
            v,
            { name: portName, value: b },
            3,
            regime,
          ),
          record(
            'net',
            `${s.prefix}-${dirName}-1514B-gbit`,
            'Gbit/s',
            gbits(v),
            { name: portName, value: gbits(b) },
            null,
            regime,
          ),
        );
      }
    }
    return out;
  } finally {
    for (const s of served) {
      await s.devices.stop().catch(() => {});
      await s.rig.stopCard().catch(() => {});
      await s.rig.close();
    }
    await worker.terminate();
  }
}

function fmt(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(1)}k`;
}
