/**
 * The DMA engine's thread on the `worker` platform (run as `dist/dma-engine-worker.js`, never
 * imported): attaches to the shared hardware and steps the engine while any channel has work;
 * when none has, it polls for `spinNs` (longer, up to 400 µs, while a driver streams: see
 * {@link IdleSpin}), napping between the polls past the first 50 µs (`napPoll` of `@mic/notify`), then
 * sleeps on the DMA event word, which every DMA register write that may give it work signals (a
 * notify only when it said it sleeps). It stops when the platform asks
 * (`DmaSharedState.requestStop`). The engine's warnings (a fault of the model on a channel) are
 * posted to the platform, which logs them under `dma`.
 */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '@mic/logger';
import type { LogLevel, LogRecord } from '@mic/logger';
import { DEFAULT_SPIN_NS, napPoll } from '@mic/notify';
import { X100DmaEngine } from './dma-engine.js';
import { IdleSpin } from './dma-idle.js';
import { X100Hardware } from './hardware.js';
import type { X100Buffers, X100Config } from './hardware.js';

/** What the platform hands the engine thread. */
export interface DmaEngineWorkerData {
  readonly buffers: X100Buffers;
  readonly config: X100Config;
  readonly chunkBytes: number | undefined;
  readonly spinNs: number | undefined;
}

/** What the engine thread posts to the platform: that it runs (its thread id), log records. */
export type DmaEngineMessage =
  | { readonly type: 'ready'; readonly tid: number }
  | {
      readonly type: 'log';
      readonly level: LogLevel;
      /** The record's component below `dma` (`iommu` for IOMMU faults), '' for the engine's own. */
      readonly component: string;
      readonly msg: string;
      readonly fields: LogRecord['fields'];
    };

/** Linux: this thread's kernel id (for benchmarks that report where threads ran), or -1. */
function threadId(): number {
  try {
    return Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ', 1)[0]);
  } catch {
    return -1;
  }
}

function main(data: DmaEngineWorkerData): void {
  const hw = X100Hardware.attach(data.buffers, data.config);
  const logger = createLogger((record) => {
    const msg: DmaEngineMessage = {
      type: 'log',
      level: record.level,
      component: record.component,
      msg: record.msg,
      fields: record.fields,
    };
    parentPort?.postMessage(msg);
  }, 'warn');
  hw.iommu.setLogger(logger.child('iommu'));
  const engine = new X100DmaEngine(hw, {
    logger,
    ...(data.chunkBytes === undefined ? {} : { chunkBytes: data.chunkBytes }),
  });
  const state = engine.state;
  const idle = new IdleSpin(data.spinNs ?? DEFAULT_SPIN_NS);
  const options = { spinNs: 0 };
  const workOrStop = (): boolean => state.stopRequested || engine.hasWork();
  const ready: DmaEngineMessage = { type: 'ready', tid: threadId() };
  parentPort?.postMessage(ready);
  while (!state.stopRequested) {
    if (engine.step()) continue;
    const t0 = performance.now();
    // Poll (naps past the first 50 µs: a driver sharing this CPU gets it), then sleep until a
    // register write.
    if (!napPoll(workOrStop, idle.spinNs)) state.word.waitSync(workOrStop, options);
    idle.idled((performance.now() - t0) * 1e6);
  }
}

main(workerData as DmaEngineWorkerData);
