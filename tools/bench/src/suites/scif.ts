/**
 * Suite `scif`: SCIF between the host (main thread) and a card (the x100 `worker` platform's card
 * thread), through the real drivers: `@mic/mic-host` starts the card (with mic-dma's host channels
 * for SCIF), the card's code probes `@mic/mic-card` with `@mic/scif` on its SCIF bus.
 *
 * - `send-recv-64B-round-trip`: a 64-byte `send` + `recv` (both blocking) against a card echo,
 *   against a Unix-socket ping-pong and a MessagePort ping-pong with a worker thread.
 * - `stream-64KiB-writes`: `ScifStream` writes of 64 KiB to a card sink that acks every 1 MiB,
 *   against the same over a Unix socket to a worker.
 * - `rma-writeto-*` / `rma-readfrom-*` (SYNC, host DMA channel): 4 KiB, 64 KiB, 1 MiB, 8 MiB
 *   between host RAM and card memory, against `Uint8Array.set` between the same memories.
 *
 * Targets (issue 14): round trip at most 0.2x the Unix socket's; stream at least 2x; RMA from
 * 64 KiB at least 0.8x `set`. All baselines measured in the same run, trials interleaved, after an
 * untimed warm-up of every path as long as one trial (the records are medians of the trials).
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { asBufferMemory } from '@mic/memory';
import { MicError } from '@mic/errors';
import {
  SCIF_MAP_FIXED,
  SCIF_PROT_READ,
  SCIF_PROT_WRITE,
  SCIF_RECV_BLOCK,
  SCIF_RMA_SYNC,
  SCIF_SEND_BLOCK,
  Scif,
  type ScifEndpoint,
  ScifStream,
} from '@mic/scif';
import { createWorkerPlatform } from '@mic/x100';
import { type BenchHost, startHost } from './host.js';
import {
  type BenchRecord,
  type SuiteOptions,
  currentTid,
  median,
  placement,
  record,
  recordTime,
  regimeOf,
  sizeLabel,
} from '../common.js';

const MIB = 1 << 20;
const CHUNK = 64 * 1024;
/**
 * Endpoint rings of 4 MiB on both sides (the kernel default is 4 KiB; Linux's largest default TCP
 * send buffer, `tcp_wmem`, is 4 MiB): the stream's sender and the sink hand the ring over less
 * often (measured on 2 vCPUs: 256 KiB 3.7 ms of CPU per MB, 1 MiB 2.7, 4 MiB 1.9).
 */
const RING = 1 << 22;
const ACK_EVERY = MIB;
const STREAM_HWM = MIB;
const RMA_SIZES = [4096, 64 * 1024, MIB, 8 * MIB] as const;
const now = (): number => performance.now();

/**
 * Mean µs of `fn` round trips over about `ms`; pushes the median round trip (µs) to `medians`
 * when given (a diagnostic: on a shared machine a few descheduled round trips of milliseconds
 * make most of the mean).
 */
async function loop(ms: number, fn: () => Promise<void>, medians?: number[]): Promise<number> {
  let n = 0;
  const t0 = now();
  const end = t0 + ms;
  const each: number[] = [];
  let last = t0;
  while (now() < end || n < 16) {
    await fn();
    n++;
    if (medians) {
      const t = now();
      each.push((t - last) * 1e3);
      last = t;
    }
  }
  if (medians) medians.push(median(each));
  return ((now() - t0) * 1e3) / n;
}

/** Bytes per second writing `total` bytes in 64 KiB writes to `w`, waiting for the sink's acks. */
async function streamRate(
  total: number,
  write: (b: Buffer) => Promise<void>,
  acks: () => Promise<void>,
): Promise<number> {
  const buf = Buffer.alloc(CHUNK, 0x5a);
  const t0 = now();
  const done = acks();
  for (let at = 0; at < total; at += CHUNK) await write(buf);
  await done;
  return total / ((now() - t0) / 1e3) / 1e6;
}

/** Waits for `n` ack bytes on a readable. */
function ackWaiter(on: (cb: (d: Buffer) => void) => () => void): (n: number) => Promise<void> {
  return (n) =>
    new Promise<void>((resolve) => {
      let got = 0;
      const off = on((d) => {
        got += d.length;
        if (got >= n) {
          off();
          resolve();
        }
      });
    });
}

export async function scifSuite(options: SuiteOptions): Promise<BenchRecord[]> {
  const trialMs = Math.max(50, Math.round(300 * options.scale));
  const streamBytes = Math.max(4, Math.round(32 * options.scale)) * MIB;
  const mainTid = currentTid();
  const platform = createWorkerPlatform({ cardModule: new URL('./scif-card.js', import.meta.url) });
  const scif = new Scif({ clock: platform.clock, tunables: { qpPollMs: 5, endpointQpSize: RING } });
  let host: BenchHost | undefined;
  const dir = tmpdir();
  const tag = `${process.pid}-${Date.now()}`;
  const echoPath = join(dir, `mic-scif-bench-echo-${tag}.sock`);
  const sinkPath = join(dir, `mic-scif-bench-sink-${tag}.sock`);
  const worker = new Worker(new URL('./scif-baselines.js', import.meta.url), {
    workerData: { echoPath, sinkPath, chunk: ACK_EVERY },
  });
  const sockets: Socket[] = [];
  try {
    const [{ tid: workerTid }] = (await once(worker, 'message')) as [{ tid: number }];
    host = await startHost(platform, {
      resetSleepMs: 0,
      prepare: (buses) => buses.scif.registerDriver(scif.driver),
    });
    const { buses } = host;
    const card = await platform.boot!;
    const cardTid = (await card.call('tid')) as number;
    const t0 = now();
    while (!scif.isAlive(1) || !((await card.call('hostAlive')) as boolean)) {
      if (now() - t0 > 30_000) throw new MicError('ETIMEDOUT', 'scif node 1 did not come up');
      await new Promise((r) => setTimeout(r, 2));
    }
    await card.call('echo', 2000);
    await card.call('sink', 2001, ACK_EVERY);
    const ep: ScifEndpoint = scif.open();
    await ep.connect({ node: 1, port: 2000 });
    const sinkEp = scif.open();
    await sinkEp.connect({ node: 1, port: 2001 });
    // 1 MiB buffered before backpressure: writes made while a send runs go out together
    // (`_writev`) instead of one `drain` wait per 64 KiB write.
    const stream = new ScifStream(sinkEp, { highWaterMark: STREAM_HWM });
    const scifAcks = ackWaiter((cb) => {
      stream.on('data', cb);
      return () => stream.off('data', cb);
    });

    // Baseline connections.
    const unixEcho = connect(echoPath);
    const unixSink = connect(sinkPath);
    sockets.push(unixEcho, unixSink);
    await Promise.all([once(unixEcho, 'connect'), once(unixSink, 'connect')]);
    unixEcho.setNoDelay(true);
    const unixAcks = ackWaiter((cb) => {
      unixSink.on('data', cb);
      return () => unixSink.off('data', cb);
    });

    // RMA windows: 8 MiB of host RAM (SMPT-mapped) and 8 MiB of card memory.
    const sdev = buses.scif.devices()[0]!;
    const hostBuf = sdev.dmaOps.alloc(8 * MIB);
    await ep.register(hostBuf.va, 0, SCIF_PROT_READ | SCIF_PROT_WRITE, SCIF_MAP_FIXED);
    const cardAddr = (await card.call('register', 8 * MIB)) as number;
    const cardView = platform.host.apertureWindow(cardAddr, 8 * MIB);
    const hostBytes = asBufferMemory(hostBuf.va, 'bench memory').bytes(0, 8 * MIB);
    const cardBytes = asBufferMemory(cardView, 'bench memory').bytes(0, 8 * MIB);

    const ping = new Uint8Array(64);
    const pong = new Uint8Array(64);
    const rtt = { scif: [] as number[], unix: [] as number[], port: [] as number[] };
    const rttMedian = { scif: [] as number[], unix: [] as number[], port: [] as number[] };
    const rate = { scif: [] as number[], unix: [] as number[] };
    const rma: Record<string, number[]> = {};
    const place: string[] = [];
    const pingUnix = (): Promise<void> =>
      new Promise<void>((resolve) => {
        let got = 0;
        const on = (d: Buffer): void => {
          got += d.length;
          if (got >= 64) {
            unixEcho.off('data', on);
            resolve();
          }
        };
        unixEcho.on('data', on);
        unixEcho.write(ping);
      });
    const pingPort = async (): Promise<void> => {
      const back = once(worker, 'message');
      worker.postMessage(ping);
      await back;
    };
    const rmaRate = async (size: number, op: () => Promise<void>): Promise<number> => {
      const count = Math.max(4, Math.round(((size >= MIB ? 64 : 256) * MIB * options.scale) / size / 4));
      await op();
      const t = now();
      for (let i = 0; i < count; i++) await op();
      return (size * count) / ((now() - t) / 1e3) / 1e6;
    };
    // The measured operations, the same in the warm-up and the trials.
    const scifStream = (bytes: number): Promise<number> =>
      streamRate(
        bytes,
        async (b) => {
          if (!stream.write(b)) await once(stream, 'drain');
        },
        () => scifAcks(bytes / ACK_EVERY),
      );
    const unixStream = (bytes: number): Promise<number> =>
      streamRate(
        bytes,
        async (b) => {
          if (!unixSink.write(b)) await once(unixSink, 'drain');
        },
        () => unixAcks(bytes / ACK_EVERY),
      );
    const writeto = (size: number) => (): Promise<void> => ep.writeto(0, size, 0, SCIF_RMA_SYNC);
    const readfrom = (size: number) => (): Promise<void> => ep.readfrom(0, size, 0, SCIF_RMA_SYNC);
    // Untimed warm-up of every path before the first trial (a trial's length; half for the
    // streams): the first trial would otherwise measure V8 compiling the SCIF, ring, DMA and
    // socket code (and the engine and card threads' idle polls adapting), not the steady state
    // the later trials see.
    const scifRtt = async (): Promise<void> => {
      await ep.send(ping, SCIF_SEND_BLOCK);
      await ep.recv(pong, SCIF_RECV_BLOCK);
    };
    await loop(trialMs, scifRtt);
    await loop(trialMs, pingUnix);
    await loop(trialMs, pingPort);
    const warmBytes = Math.max(ACK_EVERY, Math.round(streamBytes / 2 / ACK_EVERY) * ACK_EVERY);
    await scifStream(warmBytes);
    await unixStream(warmBytes);
    for (const size of RMA_SIZES) {
      await rmaRate(size, writeto(size));
      await rmaRate(size, readfrom(size));
    }
    for (let t = 0; t < options.trials; t++) {
      rtt.scif.push(await loop(trialMs, scifRtt, rttMedian.scif));
      place.push(placement(mainTid, cardTid));
      rtt.unix.push(await loop(trialMs, pingUnix, rttMedian.unix));
      rtt.port.push(await loop(trialMs, pingPort, rttMedian.port));
      place.push(placement(mainTid, workerTid));
      rate.scif.push(await scifStream(streamBytes));
      rate.unix.push(await unixStream(streamBytes));
      for (const size of RMA_SIZES) {
        const k = sizeLabel(size);
        (rma[`w${k}`] ??= []).push(await rmaRate(size, writeto(size)));
        (rma[`r${k}`] ??= []).push(await rmaRate(size, readfrom(size)));
        (rma[`s${k}`] ??= []).push(
          await rmaRate(size, async () => {
            cardBytes.subarray(0, size).set(hostBytes.subarray(0, size));
          }),
        );
      }
      options.progress(
        `scif trial ${t + 1}/${options.trials}: 64 B round trip ${rtt.scif.at(-1)!.toFixed(1)} µs (unix ${rtt.unix.at(-1)!.toFixed(1)}, MessagePort ${rtt.port.at(-1)!.toFixed(1)}); stream ${rate.scif.at(-1)!.toFixed(0)} MB/s (unix ${rate.unix.at(-1)!.toFixed(0)}); writeto 1 MiB ${rma['w1MiB']?.at(-1)?.toFixed(0)} MB/s (set ${rma['s1MiB']?.at(-1)?.toFixed(0)})`,
      );
    }
    const regime = regimeOf(place);
    const out: BenchRecord[] = [
      recordTime(
        'scif',
        'send-recv-64B-round-trip',
        'µs',
        median(rtt.scif),
        { name: 'unix-socket-ping-pong', value: median(rtt.unix) },
        0.2,
        regime,
      ),
      recordTime(
        'scif',
        'send-recv-64B-round-trip',
        'µs',
        median(rtt.scif),
        { name: 'messageport-ping-pong', value: median(rtt.port) },
        null,
        regime,
      ),
      // Diagnostic: the median of each trial's round trips (the targets stay on the means).
      recordTime(
        'scif',
        'send-recv-64B-round-trip-median',
        'µs',
        median(rttMedian.scif),
        { name: 'unix-socket-ping-pong-median', value: median(rttMedian.unix) },
        null,
        regime,
      ),
      recordTime(
        'scif',
        'send-recv-64B-round-trip-median',
        'µs',
        median(rttMedian.scif),
        { name: 'messageport-ping-pong-median', value: median(rttMedian.port) },
        null,
        regime,
      ),
      record(
        'scif',
        'stream-64KiB-writes',
        'MB/s',
        median(rate.scif),
        { name: 'unix-socket-stream', value: median(rate.unix) },
        2,
        regime,
      ),
    ];
    for (const size of RMA_SIZES) {
      const k = sizeLabel(size);
      const target = size >= 64 * 1024 ? 0.8 : null;
      const base = { name: 'uint8array-set', value: median(rma[`s${k}`]!) };
      out.push(record('scif', `rma-writeto-${k}`, 'MB/s', median(rma[`w${k}`]!), base, target, regime));
      out.push(record('scif', `rma-readfrom-${k}`, 'MB/s', median(rma[`r${k}`]!), base, target, regime));
    }
    stream.destroy();
    await ep.close();
    return out;
  } finally {
    for (const s of sockets) s.destroy();
    worker.postMessage('close');
    await worker.terminate();
    await host?.driver.exit().catch(() => undefined);
    await platform.close();
  }
}
