/**
 * Baselines of the `ring` suite, doing the same request/response work as the virtio loopback
 * (copy the request in, copy it out, invert it, copy the response in, copy it out; closed-loop
 * batches, the producer publishing its index every {@link PUBLISH_EVERY} requests as the
 * loopback driver does; spin then sleep with the same event words):
 *
 * - a plain single-producer single-consumer ring pair in one SharedArrayBuffer (fixed slots,
 *   head/tail indices, no descriptors) — what a hand-written shared-memory channel costs;
 * - MessagePort: `postMessage` of each request and each response.
 */
import type { MessagePort } from 'node:worker_threads';
import { EventWord, EVENT_WORD_BYTES } from '@mic/notify';

/** One trial. */
export interface TrialSpec {
  readonly payload: number;
  readonly batch: number;
  readonly requests: number;
  readonly slots: number;
  /** Untimed requests first (JIT warm-up). */
  readonly warmup: number;
}

export interface TrialResult {
  readonly elapsedMs: number;
  readonly requests: number;
  readonly mismatches: number;
}

// Plain ring layout: [0,8) request word, [8,16) response word, then 4 Int32 indices
// (reqTail, reqHead, respTail, respHead), then the request slots, then the response slots.
const REQ_WORD = 0;
const RESP_WORD = EVENT_WORD_BYTES;
const IDX = 2 * EVENT_WORD_BYTES;
const REQ_TAIL = 0;
const REQ_HEAD = 1;
const RESP_TAIL = 2;
const RESP_HEAD = 3;
const STOP = 4;
const DATA = 64;
/** The producer stores its tail once per this many requests of a batch (the loopback's figure). */
export const PUBLISH_EVERY = 8;

export function plainRingSize(spec: TrialSpec): number {
  return DATA + 2 * spec.slots * spec.payload;
}

/** Producer (worker thread): posts `batch` requests, then collects their responses. */
export function runPlainProducer(sab: SharedArrayBuffer, spec: TrialSpec): TrialResult {
  const idx = new Int32Array(sab, IDX, 5);
  const reqWord = new EventWord(sab, REQ_WORD);
  const respWord = new EventWord(sab, RESP_WORD);
  const u8 = new Uint8Array(sab);
  const reqBase = DATA;
  const respBase = DATA + spec.slots * spec.payload;
  const msg = new Uint8Array(spec.payload).fill(0x5a);
  const back = new Uint8Array(spec.payload);
  const batch = Math.min(spec.batch, spec.slots);
  let sent = 0;
  let received = 0;
  let mismatches = 0;
  const total = spec.requests + spec.warmup;
  let t0 = performance.now();
  while (received < total) {
    if (received === spec.warmup) t0 = performance.now();
    let tail = Atomics.load(idx, REQ_TAIL);
    let n = 0;
    while (n < batch && sent < total && (sent !== spec.warmup || received === sent)) {
      u8.set(msg, reqBase + (tail % spec.slots) * spec.payload);
      tail++;
      n++;
      sent++;
      if (n % PUBLISH_EVERY === 0) Atomics.store(idx, REQ_TAIL, tail);
    }
    Atomics.store(idx, REQ_TAIL, tail);
    reqWord.signal();
    let head = Atomics.load(idx, RESP_HEAD);
    while (received < sent) {
      if (Atomics.load(idx, RESP_TAIL) === head) {
        respWord.waitSync(() => Atomics.load(idx, RESP_TAIL) !== head);
        continue;
      }
      const at = respBase + (head % spec.slots) * spec.payload;
      back.set(u8.subarray(at, at + spec.payload));
      if (back[0] !== 0xa5) mismatches++;
      head++;
      received++;
      Atomics.store(idx, RESP_HEAD, head);
    }
  }
  const elapsedMs = performance.now() - t0;
  Atomics.store(idx, STOP, 1);
  reqWord.signal();
  return { elapsedMs, requests: received - spec.warmup, mismatches };
}

/** Consumer (main thread): answers every request with its inverse until the producer stops. */
export async function runPlainConsumer(sab: SharedArrayBuffer, spec: TrialSpec): Promise<void> {
  const idx = new Int32Array(sab, IDX, 5);
  const reqWord = new EventWord(sab, REQ_WORD);
  const respWord = new EventWord(sab, RESP_WORD);
  const u8 = new Uint8Array(sab);
  const reqBase = DATA;
  const respBase = DATA + spec.slots * spec.payload;
  const buf = new Uint32Array(spec.payload / 4);
  const bytes = new Uint8Array(buf.buffer);
  const ready = (): boolean =>
    Atomics.load(idx, REQ_TAIL) !== Atomics.load(idx, REQ_HEAD) || Atomics.load(idx, STOP) !== 0;
  for (;;) {
    let head = Atomics.load(idx, REQ_HEAD);
    const tail = Atomics.load(idx, REQ_TAIL);
    if (head === tail) {
      if (Atomics.load(idx, STOP) !== 0) return;
      await reqWord.waitAsync(ready);
      continue;
    }
    let respTail = Atomics.load(idx, RESP_TAIL);
    while (head !== tail) {
      const at = reqBase + (head % spec.slots) * spec.payload;
      bytes.set(u8.subarray(at, at + spec.payload));
      for (let i = 0; i < buf.length; i++) buf[i] = ~buf[i]!;
      u8.set(bytes, respBase + (respTail % spec.slots) * spec.payload);
      head++;
      respTail++;
    }
    Atomics.store(idx, REQ_HEAD, head);
    Atomics.store(idx, RESP_TAIL, respTail);
    respWord.signal();
  }
}

/** MessagePort client (worker thread): posts `batch` requests, awaits their replies. */
export function runPortClient(port: MessagePort, spec: TrialSpec): Promise<TrialResult> {
  return new Promise((resolve) => {
    const msg = new Uint8Array(spec.payload).fill(0x5a);
    let sent = 0;
    let received = 0;
    let outstanding = 0;
    let mismatches = 0;
    const total = spec.requests + spec.warmup;
    let t0 = performance.now();
    const sendBatch = (): void => {
      if (sent === spec.warmup) t0 = performance.now();
      for (let n = 0; n < spec.batch && sent < total && (n === 0 || sent !== spec.warmup); n++, sent++) {
        port.postMessage(msg);
        outstanding++;
      }
    };
    port.on('message', (reply: Uint8Array) => {
      if (reply[0] !== 0xa5) mismatches++;
      received++;
      if (--outstanding === 0) {
        if (received >= total) {
          port.removeAllListeners('message');
          port.postMessage('stop');
          resolve({ elapsedMs: performance.now() - t0, requests: received - spec.warmup, mismatches });
        } else {
          sendBatch();
        }
      }
    });
    sendBatch();
  });
}

/** MessagePort server (main thread side of the worker's port): inverts and replies. */
export function servePort(port: {
  on(ev: 'message', fn: (m: unknown) => void): void;
  postMessage(m: unknown): void;
}): void {
  port.on('message', (m) => {
    if (!(m instanceof Uint8Array)) return;
    const buf = new Uint32Array(m.buffer, m.byteOffset, m.byteLength / 4);
    for (let i = 0; i < buf.length; i++) buf[i] = ~buf[i]!;
    port.postMessage(m);
  });
}
