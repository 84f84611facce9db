/**
 * `@mic/loopback`: the loopback demo transport, a virtio driver in a worker thread and the device
 * in this thread over one SharedArrayBuffer (see loopback.ts), and the `mic-loopback` program
 * (cli.ts) that runs it. The `ring` benchmark of `@mic/bench` runs the same two halves.
 */
export {
  loopbackLayout,
  loopbackPattern,
  runLoopbackDriver,
  runLoopbackDevice,
  runLoopback,
  type LoopbackConfig,
  type LoopbackLayout,
  type LoopbackDriverOptions,
  type LoopbackDriverResult,
  type LoopbackDeviceStats,
  type LoopbackOptions,
  type LoopbackResult,
} from './loopback.js';
