/**
 * The baselines of the `doorbell` suite: a ping-pong between the main thread and a plain worker
 * over one SharedArrayBuffer, measured the way shared/bench/anchors.mjs measures cross-thread
 * wake-ups:
 *
 * - `wait`: both sides sleep in `Atomics.wait` and wake each other with `Atomics.notify`;
 * - `spinThenWait`: both sides poll for up to 50 µs, then sleep in `Atomics.wait`.
 *
 * This module is both the worker (run as a script with `workerData.sab`) and the main side.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { currentTid } from '../common.js';

/** Int32 slots of the ping-pong buffer. */
const PING = 0;
const PONG = 1;
const MODE = 2;
/** Bytes of the ping-pong buffer. */
export const PINGPONG_BYTES = 64;

/** How each side waits. */
export const PINGPONG_MODE = { wait: 0, spinThenWait: 1 } as const;
export type PingPongMode = keyof typeof PINGPONG_MODE;

/** Poll budget of spin-then-wait, as anchors.mjs (µs). */
export const SPIN_US = 50;

const now = (): number => performance.now();

/** Polls `a[idx]` while it equals `value`, for at most `us`; returns the last value seen. */
function spinWhileEqual(a: Int32Array, idx: number, value: number, us: number): number {
  const deadline = now() + us / 1e3;
  for (let i = 1; ; i++) {
    const v = Atomics.load(a, idx);
    if (v !== value) return v;
    if ((i & 63) === 0 && now() > deadline) return v;
  }
}

/** Worker side: echoes every new PING into PONG, waiting as MODE says, until PING goes negative. */
function serve(a: Int32Array): void {
  let last = 0;
  for (;;) {
    let v =
      Atomics.load(a, MODE) === PINGPONG_MODE.spinThenWait
        ? spinWhileEqual(a, PING, last, SPIN_US)
        : Atomics.load(a, PING);
    while (v === last) {
      Atomics.wait(a, PING, last);
      v = Atomics.load(a, PING);
    }
    if (v < 0) return;
    last = v;
    Atomics.store(a, PONG, v);
    Atomics.notify(a, PONG, 1);
  }
}

/** The main side of the ping-pong with a worker serving `sab`. */
export class PingPong {
  readonly #a: Int32Array;
  #seq = 0;

  constructor(sab: SharedArrayBuffer) {
    this.#a = new Int32Array(sab);
  }

  /** Switches both sides to `mode` (one round trip that wakes the worker whatever it does). */
  setMode(mode: PingPongMode): void {
    const a = this.#a;
    Atomics.store(a, MODE, PINGPONG_MODE[mode]);
    const s = ++this.#seq;
    Atomics.store(a, PING, s);
    Atomics.notify(a, PING, 1);
    while (Atomics.load(a, PONG) !== s) Atomics.wait(a, PONG, s - 1, 1);
  }

  /** One round trip in the current mode. */
  roundTrip(mode: PingPongMode): void {
    const a = this.#a;
    const s = ++this.#seq;
    Atomics.store(a, PING, s);
    Atomics.notify(a, PING, 1);
    let v = mode === 'spinThenWait' ? spinWhileEqual(a, PONG, s - 1, SPIN_US) : Atomics.load(a, PONG);
    while (v !== s) {
      Atomics.wait(a, PONG, s - 1);
      v = Atomics.load(a, PONG);
    }
  }

  /** Round trips for about `ms`; returns the mean round trip in µs. */
  run(mode: PingPongMode, ms: number): number {
    const t0 = now();
    const end = t0 + ms;
    let n = 0;
    for (;;) {
      this.roundTrip(mode);
      n++;
      if ((n & 15) === 0 && now() >= end) break;
    }
    return ((now() - t0) * 1e3) / n;
  }

  /** Tells the worker to exit. */
  stop(): void {
    Atomics.store(this.#a, PING, -1);
    Atomics.notify(this.#a, PING, 1);
  }
}

if (!isMainThread && parentPort && (workerData as { role?: unknown } | null)?.role === 'pingpong') {
  parentPort.postMessage({ tid: currentTid() });
  serve(new Int32Array((workerData as { sab: SharedArrayBuffer }).sab));
}
