/**
 * Worker entry of {@link runLoopback}: runs the driver half and posts its result.
 * @internal
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runLoopbackDriver, type LoopbackConfig, type LoopbackDriverOptions } from './loopback.js';

const data = workerData as { sab: SharedArrayBuffer; config: LoopbackConfig; options: LoopbackDriverOptions };
parentPort?.postMessage(runLoopbackDriver(data.sab, data.config, data.options));
