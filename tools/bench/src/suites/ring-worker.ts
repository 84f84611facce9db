/**
 * The worker half of the `ring` suite: the virtio driver, the plain ring's producer, or the
 * MessagePort client. It reports its thread id, waits for 'go' (so the main thread can pin it),
 * runs one trial and posts the result.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runLoopbackDriver, type LoopbackConfig } from '@mic/loopback';
import { currentTid } from '../common.js';
import { runPlainProducer, runPortClient, type TrialSpec } from './ring-baselines.js';

const port = parentPort!;
const data = workerData as {
  mode: 'virtio' | 'plain' | 'port';
  sab: SharedArrayBuffer;
  config: LoopbackConfig;
  spec: TrialSpec;
};
port.postMessage({ tid: currentTid() });
port.once('message', () => {
  const { mode, sab, config, spec } = data;
  if (mode === 'virtio') {
    const r = runLoopbackDriver(sab, config, {
      requests: spec.requests,
      batch: spec.batch,
      verify: false,
      warmup: spec.warmup,
    });
    port.postMessage({ elapsedMs: r.elapsedMs, requests: r.requests, mismatches: r.mismatches });
  } else if (mode === 'plain') {
    port.postMessage(runPlainProducer(sab, spec));
  } else {
    void runPortClient(port, spec).then((r) => port.postMessage(r));
  }
});
