/**
 * Suite `net`: virtio-net frames through the userspace switch on the x100 `worker` platform. The
 * card program of `@mic/demo` runs `@mic/virtio-drivers`' `VirtioNet` in the card's worker; the
 * host serves the NIC over VOP with `@mic/virtio-backends`' `NetBackend` on a `VirtualSwitch`,
 * whose host port sends and receives from this thread. Figures: 1514-byte frames card → host (the
 * card sends a burst, the time runs until the last frame reached the host port) and host → card
 * (the host port sends, never more than 128 frames ahead of what the backend put into the card's
 * receive buffers; the time runs until the card counted the last), in frames/s and Gbit/s.
 *
 * Baseline, measured in the same run, trial by trial: MessagePort carrying 1514-byte messages one
 * way between this thread and a plain worker (windowed, acknowledged every 64), in the same
 * direction. Target (issue 13): at least 3x the baseline's message rate.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { CardRig, HOST_PORT, framesCardToHost, framesHostToCard, serveCard } from '@mic/demo';
import { parseMac } from '@mic/virtio-backends';
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

export async function netSuite(options: SuiteOptions): Promise<BenchRecord[]> {
  const worker = new Worker(new URL('./net-port.js', import.meta.url), { workerData: { role: 'net-port' } });
  let rig: CardRig | null = null;
  try {
    const [{ tid: workerTid }] = (await once(worker, 'message')) as [{ tid: number }];
    rig = await CardRig.boot({ platform: 'worker' });
    const devices = await serveCard(rig.control, { net: {} });
    const net = devices.net!;
    await net.waitDriverOk();
    const card = await rig.call<{ net: { mac: string } }>('waitDevices', ['net']);
    const port = net.backend.switch!.port('host');
    const macs = { card: parseMac(card.net.mac), port: parseMac(HOST_PORT.mac) };
    const mainTid = currentTid();
    const cardTid = await rig.call<number>('tid');
    const count = Math.max(2000, Math.round(100_000 * options.scale));
    const rates = new Map<string, number[]>();
    const place: string[] = [];
    for (let t = 0; t < options.trials; t++) {
      const unpinCard = pinPair(options.pin, mainTid, cardTid);
      await framesCardToHost(rig, port, HOST_PORT.mac, count >> 3, FRAME);
      place.push(placement(mainTid, cardTid));
      const c2h = await framesCardToHost(rig, port, HOST_PORT.mac, count, FRAME);
      place.push(placement(mainTid, cardTid));
      await framesHostToCard(rig, port, net.backend, macs, count >> 3, FRAME);
      const h2c = await framesHostToCard(rig, port, net.backend, macs, count, FRAME);
      place.push(placement(mainTid, cardTid));
      unpinCard();
      const unpinPort = pinPair(options.pin, mainTid, workerTid);
      await portRate(worker, 'c2h', { count: count >> 3, size: FRAME });
      const pc2h = await portRate(worker, 'c2h', { count, size: FRAME });
      const ph2c = await portRate(worker, 'h2c', { count, size: FRAME });
      unpinPort();
      push(rates, 'c2h', c2h.frames / (c2h.ms / 1000));
      push(rates, 'h2c', h2c.frames / (h2c.ms / 1000));
      push(rates, 'port-c2h', pc2h);
      push(rates, 'port-h2c', ph2c);
      options.progress(
        `net trial ${t + 1}/${options.trials}: card -> host ${fmt(rates.get('c2h')!.at(-1)!)} frames/s, host -> card ${fmt(rates.get('h2c')!.at(-1)!)} frames/s; MessagePort worker -> main ${fmt(pc2h)}, main -> worker ${fmt(ph2c)} msg/s`,
      );
    }
    await devices.stop();
    const regime = regimeOf(place);
    const out: BenchRecord[] = [];
    for (const [dirName, portName] of [
      ['c2h', 'messageport-1514B-worker-to-main'],
      ['h2c', 'messageport-1514B-main-to-worker'],
    ] as const) {
      const v = median(rates.get(dirName)!);
      const b = median(rates.get(`port-${dirName}`)!);
      out.push(
        record('net', `net-${dirName}-1514B-frames`, 'frames/s', v, { name: portName, value: b }, 3, regime),
        record(
          'net',
          `net-${dirName}-1514B-gbit`,
          'Gbit/s',
          gbits(v),
          { name: portName, value: gbits(b) },
          null,
          regime,
        ),
      );
    }
    return out;
  } finally {
    if (rig) {
      await rig.stopCard().catch(() => {});
      await rig.close();
    }
    await worker.terminate();
  }
}

function fmt(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(1)}k`;
}
