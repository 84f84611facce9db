// A driver double for the backends' tests: a virtio driver on a VirtioBus that posts exactly the
// chains a test asks for (well-formed or not) and hands back what the device wrote, plus a rig
// that serves a backend on the in-process adapter with this driver bound.
import { MicError, isMicError } from '@mic/errors';
import {
  VIRTIO_DEV_ANY_ID,
  VirtioBus,
  type VirtioDevice,
  type VirtioDmaBuffer,
  type VirtioDriver,
  type VirtioQueue,
} from '@mic/virtio';
import { InProcessBackendTransport, type VirtioBackend } from '../src/index.js';

/** What came back for a chain: the used length and each writable buffer. */
export interface Used {
  readonly len: number;
  readonly written: Uint8Array[];
}

interface Token {
  readonly bufs: VirtioDmaBuffer[];
  readonly writable: { buf: VirtioDmaBuffer; len: number }[];
  readonly resolve: (u: Used) => void;
}

/** Binds to one device id, sets up `queues` queues, posts chains on request. */
export class DriverDouble implements VirtioDriver {
  readonly name = 'driver-double';
  readonly idTable;
  readonly featureTable: number[];
  vdev: VirtioDevice | null = null;
  queues: VirtioQueue<Token>[] = [];
  readonly #numQueues: number;
  readonly #ready: Promise<void>;
  #readyResolve!: () => void;

  constructor(deviceId: number, featureTable: number[], numQueues: number) {
    this.idTable = [
      { device: deviceId, vendor: VIRTIO_DEV_ANY_ID },
      { device: 0, vendor: 0 },
    ];
    this.featureTable = featureTable;
    this.#numQueues = numQueues;
    this.#ready = new Promise((r) => (this.#readyResolve = r));
  }

  /** Resolves once probed. */
  ready(): Promise<void> {
    return this.#ready;
  }

  async probe(vdev: VirtioDevice): Promise<void> {
    this.vdev = vdev;
    const qs = await vdev.findVqs<Token>(
      Array.from({ length: this.#numQueues }, (_, i) => ({
        name: `q${i}`,
        callback: (vq: VirtioQueue) => this.#used(vq),
      })),
    );
    this.queues = qs.map((q) => q!);
    this.#readyResolve();
  }

  async remove(vdev: VirtioDevice): Promise<void> {
    await vdev.reset();
    await vdev.delVqs();
    this.vdev = null;
  }

  /**
   * Posts one chain on queue `q`: each readable buffer one descriptor, then one writable
   * descriptor per length. Resolves when the device returns it.
   */
  post(q: number, readable: readonly Uint8Array[], writableLens: readonly number[]): Promise<Used> {
    const vdev = this.vdev;
    if (!vdev) throw new MicError('ENODEV', 'driver double not bound');
    const vq = this.queues[q]!;
    const bufs: VirtioDmaBuffer[] = [];
    const out = readable.map((b) => {
      const buf = vdev.dma.alloc(Math.max(1, b.length));
      buf.va.write(0, b);
      bufs.push(buf);
      return { addr: buf.addr, len: b.length };
    });
    const writable = writableLens.map((len) => {
      const buf = vdev.dma.alloc(Math.max(1, len));
      buf.va.fill(0, Math.max(1, len), 0xee); // poison: what the device did not write stays 0xee
      bufs.push(buf);
      return { buf, len };
    });
    return new Promise<Used>((resolve) => {
      const add = (): void => {
        vq.add(
          out,
          writable.map((w) => ({ addr: w.buf.addr, len: w.len })),
          { bufs, writable, resolve },
        );
        vq.kick();
      };
      // A full ring: wait for the device to return buffers, as a real driver does.
      if (vq.numFree < out.length + writable.length || this.#waiting[q]?.length) {
        (this.#waiting[q] ??= []).push({ need: out.length + writable.length, add });
      } else add();
    });
  }

  readonly #waiting: { need: number; add: () => void }[][] = [];

  #used(vq: VirtioQueue): void {
    const q = vq as VirtioQueue<Token>;
    for (let u = q.getBuf(); u; u = q.getBuf()) {
      const t = u.token;
      const written = t.writable.map((w) => {
        const b = new Uint8Array(w.len);
        w.buf.va.read(0, b);
        return b;
      });
      for (const b of t.bufs) this.vdev?.dma.free(b);
      t.resolve({ len: u.len, written });
    }
    const waiting = this.#waiting[q.index] ?? [];
    while (waiting.length > 0 && q.numFree >= waiting[0]!.need) waiting.shift()!.add();
  }
}

/** A backend served on the in-process adapter with a {@link DriverDouble} bound. */
export interface Rig {
  readonly transport: InProcessBackendTransport;
  readonly driver: DriverDouble;
  readonly bus: VirtioBus;
  readonly serving: Promise<void>;
  /** Stops serving, unregisters the device and closes the backend. */
  stop(): Promise<void>;
}

export async function rig(
  backend: VirtioBackend,
  featureTable: number[],
  memorySize = 32 << 20,
  options: { readonly mapping?: boolean } = {},
): Promise<Rig> {
  const d = backend.description;
  const transport = InProcessBackendTransport.create(d, { memorySize, ...options });
  const bus = new VirtioBus();
  const driver = new DriverDouble(d.deviceType, featureTable, d.queueSizes.length);
  await bus.registerDriver(driver);
  const stop = new AbortController();
  const serving = backend.serve(transport, { signal: stop.signal });
  const vdev = await bus.registerDevice(transport.inProcess.params());
  await driver.ready();
  let stopped = false;
  return {
    transport,
    driver,
    bus,
    serving,
    async stop() {
      if (stopped) return;
      stopped = true;
      stop.abort();
      await serving;
      await bus.unregisterDevice(vdev);
      transport.close();
      await backend.close();
    },
  };
}

/** Concatenates buffers. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Resolves when `check` holds, letting timers and I/O run (bounded generously). */
export async function until(check: () => boolean, what: string, limitMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The MicError code a promise rejects with ('resolved' when it does not); closes what it resolves to. */
export async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    const v = await p;
    if (v && typeof (v as { close?: unknown }).close === 'function')
      await (v as { close(): unknown }).close();
    return 'resolved';
  } catch (err) {
    if (!isMicError(err)) throw err;
    return err.code;
  }
}
