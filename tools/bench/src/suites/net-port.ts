/**
 * The baseline of the `net` suite: MessagePort carrying `size`-byte messages one way between the
 * main thread and a worker, as fast as the receiver takes them (the sender keeps at most
 * {@link WINDOW} unacknowledged; the receiver acknowledges every {@link ACK_EVERY}). This module
 * is both the worker (with `workerData.role === 'net-port'`) and the main side.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { currentTid } from '../common.js';

/** Messages the sender may have unacknowledged. */
export const WINDOW = 256;
/** The receiver acknowledges every this many messages. */
export const ACK_EVERY = 64;

/** What both ends need of a port (a `MessagePort`, a `Worker`, `parentPort`). */
export interface PortLike {
  postMessage(m: unknown): void;
  on(e: 'message', f: (m: unknown) => void): unknown;
  off(e: 'message', f: (m: unknown) => void): unknown;
}

/** A stream to run: `count` messages of `size` bytes. */
export interface PortStream {
  readonly count: number;
  readonly size: number;
}

/** Sends `s.count` messages of `s.size` bytes on `port`, windowed; resolves when all were acknowledged. */
export function sendStream(port: PortLike, s: PortStream): Promise<void> {
  return new Promise((resolve) => {
    const msg = new Uint8Array(s.size).fill(0x5a);
    let sent = 0;
    let acked = 0;
    const pump = (): void => {
      while (sent < s.count && sent - acked < WINDOW) {
        msg[0] = sent & 0xff;
        port.postMessage(msg);
        sent++;
      }
    };
    const onAck = (m: unknown): void => {
      if (typeof m !== 'number') return;
      acked = m;
      if (acked >= s.count) {
        port.off('message', onAck);
        resolve();
      } else pump();
    };
    port.on('message', onAck);
    pump();
  });
}

/** Receives `s.count` messages on `port`, acknowledging; resolves with the elapsed ms from the first. */
export function receiveStream(port: PortLike, s: PortStream): Promise<number> {
  return new Promise((resolve) => {
    let got = 0;
    let t0 = 0;
    const onMsg = (m: unknown): void => {
      if (!(m instanceof Uint8Array)) return;
      if (got === 0) t0 = performance.now();
      got++;
      if (got % ACK_EVERY === 0 || got === s.count) port.postMessage(got);
      if (got === s.count) {
        port.off('message', onMsg);
        resolve(performance.now() - t0);
      }
    };
    port.on('message', onMsg);
  });
}

if (!isMainThread && parentPort && (workerData as { role?: unknown } | null)?.role === 'net-port') {
  const port = parentPort;
  port.postMessage({ tid: currentTid() });
  // Commands from the main side: { send: PortStream } or { receive: PortStream }.
  port.on('message', (m: unknown) => {
    if (!m || typeof m !== 'object') return;
    const cmd = m as { send?: PortStream; receive?: PortStream };
    if (cmd.send) void sendStream(port, cmd.send);
    if (cmd.receive) void receiveStream(port, cmd.receive).then((ms) => port.postMessage({ ms }));
  });
}
