/**
 * Suite `ring`: request/response through a virtqueue (driver in a worker, device in the main
 * thread, `@mic/loopback`) against two baselines run in the same process, the same way:
 * a plain SPSC SharedArrayBuffer ring pair and MessagePort. 64 B and 4 KiB payloads, batch 1
 * and 32. Targets (issue "Monorepo foundation and @mic/virtio"): at batch 32 at least 0.5x the
 * plain ring's messages per second; at least 10x MessagePort's for 64 B.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { loopbackLayout, runLoopbackDevice, type LoopbackConfig } from '@mic/loopback';
import {
  currentTid,
  median,
  pinPair,
  placement,
  record,
  regimeOf,
  sizeLabel,
  type BenchRecord,
  type SuiteOptions,
} from '../common.js';
import {
  plainRingSize,
  runPlainConsumer,
  servePort,
  type TrialResult,
  type TrialSpec,
} from './ring-baselines.js';

type Mode = 'virtio' | 'plain' | 'port';

const NUM = 256;

async function trial(
  mode: Mode,
  spec: TrialSpec,
  options: SuiteOptions,
): Promise<{ rate: number; place: string[] }> {
  const config: LoopbackConfig = { num: NUM, payload: spec.payload, eventIdx: true };
  const size = mode === 'virtio' ? loopbackLayout(config).size : mode === 'plain' ? plainRingSize(spec) : 8;
  const sab = new SharedArrayBuffer(size);
  const worker = new Worker(new URL('./ring-worker.js', import.meta.url), {
    workerData: { mode, sab, config, spec },
  });
  try {
    const [hello] = (await once(worker, 'message')) as [{ tid: number }];
    const mainTid = currentTid();
    const unpin = pinPair(options.pin, mainTid, hello.tid);
    const done = new Promise<TrialResult>((resolve, reject) => {
      worker.on('message', (m: unknown) => {
        if (m && typeof m === 'object' && 'elapsedMs' in m) resolve(m as TrialResult);
      });
      worker.once('error', reject);
    });
    const place = [placement(mainTid, hello.tid)];
    worker.postMessage('go');
    if (mode === 'virtio') await runLoopbackDevice(sab, config);
    else if (mode === 'plain') await runPlainConsumer(sab, spec);
    else servePort(worker);
    const r = await done;
    place.push(placement(mainTid, hello.tid));
    unpin();
    if (r.mismatches !== 0 || r.requests !== spec.requests) {
      throw new Error(
        `${mode} trial lost data: ${r.mismatches} mismatches, ${r.requests}/${spec.requests} requests`,
      );
    }
    return { rate: r.requests / (r.elapsedMs / 1000), place };
  } finally {
    await worker.terminate();
  }
}

/** One trial's rate (msg/s) of the ring loopback or the plain SAB ring, for other suites' baselines. */
async function rateOf(
  mode: 'virtio' | 'plain',
  payload: number,
  batch: number,
  options: SuiteOptions,
): Promise<number> {
  const requests = Math.max(1000, Math.round(400_000 * options.scale));
  const spec: TrialSpec = { payload, batch, requests, slots: NUM / 2, warmup: Math.max(1000, requests >> 2) };
  return (await trial(mode, spec, options)).rate;
}

/** The plain SPSC SharedArrayBuffer ring pair's rate, one trial (the `ring` suite's baseline). */
export function plainRingRate(payload: number, batch: number, options: SuiteOptions): Promise<number> {
  return rateOf('plain', payload, batch, options);
}

/** The `@mic/virtio` ring loopback's rate, one trial (the `ring` suite's figure). */
export function virtioRingRate(payload: number, batch: number, options: SuiteOptions): Promise<number> {
  return rateOf('virtio', payload, batch, options);
}

export async function ringSuite(options: SuiteOptions): Promise<BenchRecord[]> {
  const records: BenchRecord[] = [];
  for (const payload of [64, 4096]) {
    for (const batch of [1, 32]) {
      const base = batch === 1 ? 50_000 : payload === 64 ? 400_000 : 100_000;
      const requests = Math.max(1000, Math.round(base * options.scale));
      const warmup = Math.max(1000, Math.round(requests / 4));
      const spec: TrialSpec = { payload, batch, requests, slots: NUM / 2, warmup };
      const portRequests = Math.max(500, Math.round(requests / (batch === 1 ? 4 : 10)));
      const portSpec: TrialSpec = {
        ...spec,
        requests: portRequests,
        warmup: Math.max(500, Math.round(portRequests / 4)),
      };
      const rates: Record<Mode, number[]> = { virtio: [], plain: [], port: [] };
      const place: string[] = [];
      const label = `${sizeLabel(payload)} batch ${batch}`;
      for (let t = 0; t < options.trials; t++) {
        // Interleave the variants so drifts in machine load hit all of them alike.
        for (const mode of ['virtio', 'plain', 'port'] as const) {
          const r = await trial(mode, mode === 'port' ? portSpec : spec, options);
          rates[mode].push(r.rate);
          place.push(...r.place);
        }
        options.progress(
          `ring ${label} trial ${t + 1}/${options.trials}: virtio ${fmt(rates.virtio.at(-1)!)}, plain ring ${fmt(rates.plain.at(-1)!)}, MessagePort ${fmt(rates.port.at(-1)!)} msg/s`,
        );
      }
      const regime = regimeOf(place);
      const v = median(rates.virtio);
      const name = `virtio-${sizeLabel(payload)}-batch${batch}`;
      records.push(
        record(
          'ring',
          name,
          'msg/s',
          v,
          { name: `sab-ring-${sizeLabel(payload)}-batch${batch}`, value: median(rates.plain) },
          batch === 32 ? 0.5 : null,
          regime,
        ),
        record(
          'ring',
          name,
          'msg/s',
          v,
          { name: `messageport-${sizeLabel(payload)}-batch${batch}`, value: median(rates.port) },
          payload === 64 ? 10 : null,
          regime,
        ),
      );
    }
  }
  return records;
}

function fmt(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
}
