/**
 * Suite `vop`: a virtio device across VOP on the worker platform. The host (this thread) runs
 * mic-host with the DMA driver and vop-host; the card (its worker thread, vop-card.ts) runs
 * mic-card, vop-card and a console-type benchmark driver. Figures:
 *
 * - `vop-64B-echo`: request/response rate at 64 B with 32 in flight: the card sends a request on
 *   its transmit queue, the host's echo backend copies it out (`copyDesc` on vring 1) and back into
 *   a receive buffer (`copyDesc` on vring 0). Baseline: the plain SPSC SharedArrayBuffer ring pair
 *   of the `ring` suite at 64 B batch 32, in the same run (target: at least 0.25x), and the virtio
 *   ring loopback figure for reference.
 * - `vop-c2h-<size>` / `vop-h2c-<size>`: one-way throughput at 4 KiB, 64 KiB and 1 MiB, card →
 *   host (the host drains the card's transmit buffers) and host → card (the host fills the card's
 *   receive buffers), through the DMA path and the memcpy path. Baseline: `Uint8Array.set` of the
 *   same sizes between SharedArrayBuffers, in the same run (target from 64 KiB: at least 0.5x).
 *
 * The host backends keep their buffers in host DMA memory (`allocDmaBuffer`), as a real backend
 * would: the DMA path then moves chains zero-copy, engine ↔ buffer, and its one-way backends keep
 * {@link PIPELINE} copies in flight (each returns its vring lock while its DMA runs).
 */
import { isMicError } from '@mic/errors';
import { encodeDescBlock, featureBitsToBytes } from '@mic/mic-common';
import { VIRTIO_CONFIG_S, VIRTIO_ID } from '@mic/virtio';
import { VopHostDriver, type VopHostOptions, type VopVirtioHandle } from '@mic/vop-host';
import { type CardDebugHandle, createWorkerPlatform, type WorkerPlatform } from '@mic/x100';
import {
  currentTid,
  median,
  pinPair,
  placement,
  push,
  record,
  regimeOf,
  sizeLabel,
  type BenchRecord,
  type SuiteOptions,
} from '../common.js';
import { startHost } from './host.js';
import { plainRingRate, virtioRingRate } from './ring.js';

const MIB = 1 << 20;
const SIZES = [4096, 64 * 1024, MIB] as const;

interface Side {
  readonly platform: WorkerPlatform;
  readonly card: CardDebugHandle;
  readonly handle: VopVirtioHandle;
  readonly stop: AbortController;
  close(): Promise<void>;
}

function consoleBlock(): Uint8Array {
  return encodeDescBlock({
    type: VIRTIO_ID.CONSOLE,
    vqconfigs: [0, 1].map(() => ({ address: 0, usedAddress: 0, num: 128 })),
    hostFeatures: featureBitsToBytes(0n, 4),
    config: new Uint8Array(12),
  });
}

/** Boots a card with vop-host (options for the copy path) and adds the benchmark device. */
async function boot(vopOptions: VopHostOptions): Promise<Side> {
  const platform = createWorkerPlatform({
    cardModule: new URL('./vop-card.js', import.meta.url),
    cardMemorySize: 256 * MIB,
    hostRamSize: 64 * MIB,
    resetDelayMs: 20,
  });
  const vop = new VopHostDriver({ clock: platform.clock, ...vopOptions });
  const { driver } = await startHost(platform, {
    resetSleepMs: 10,
    prepare: (buses) => buses.vop.registerDriver(vop),
  }).catch(async (err: unknown) => {
    await platform.close();
    throw err;
  });
  const stop = new AbortController();
  try {
    const card = await platform.boot!;
    const handle = vop.control(0)!.open();
    await handle.addDevice(consoleBlock());
    for (
      let i = 0;
      !(await card.call('bound')) || (handle.info().status & VIRTIO_CONFIG_S.DRIVER_OK) === 0;
      i++
    ) {
      if (i > 10_000) throw new Error('the card did not bind the benchmark device');
      await new Promise((r) => setTimeout(r, 1));
    }
    return {
      platform,
      card,
      handle,
      stop,
      close: async () => {
        stop.abort();
        await driver.exit();
        await platform.close();
      },
    };
  } catch (err) {
    stop.abort();
    await driver.exit();
    await platform.close();
    throw err;
  }
}

/** Copies on vring `vr` until the ring is empty; retries across the card's resets between runs. */
async function serveLoop(
  h: VopVirtioHandle,
  signal: AbortSignal,
  step: () => Promise<boolean>,
): Promise<void> {
  while (!signal.aborted) {
    try {
      if (await step()) continue;
      await h.poll({ signal, timeoutMs: 50 });
    } catch (err) {
      if (signal.aborted) return;
      // Between runs the card resets the device (status 0): wait for it to come back.
      if (isMicError(err, 'ENODEV')) await h.poll({ signal, timeoutMs: 50 }).catch(() => {});
      else throw err;
    }
  }
}

/**
 * Runs a backend with a buffer of `size` bytes in host DMA memory (`allocDmaBuffer`), as a real
 * backend keeps its I/O buffers: copies between it and the card's buffers go by the DMA engine
 * straight (zero-copy), without the bounce buffer.
 */
async function withDmaBuffer(
  h: VopVirtioHandle,
  size: number,
  fn: (buf: Uint8Array) => Promise<void>,
): Promise<void> {
  const buf = h.allocDmaBuffer(size);
  try {
    await fn(buf);
  } finally {
    h.freeDmaBuffer(buf);
  }
}

/** The host's echo backend: each chain from vring 1 copied into receive buffers of vring 0. */
function echo(h: VopVirtioHandle, signal: AbortSignal): Promise<void> {
  return withDmaBuffer(h, 2 * MIB, (buf) =>
    serveLoop(h, signal, async () => {
      const n = await h.copyDesc({ iov: [buf], vrIdx: 1, updateUsed: true });
      if (n === 0) return false;
      for (let sent = 0; sent < n && !signal.aborted;) {
        const m = await h.copyDesc({ iov: [buf.subarray(sent, n)], vrIdx: 0, updateUsed: true });
        sent += m;
        if (m === 0) await h.poll({ signal, timeoutMs: 50 });
      }
      return true;
    }),
  );
}

/**
 * Chains a one-way backend keeps in flight on its vring (one buffer slot each): half the ring
 * ({@link RING_DEPTH}), as vhost keeps up to `VHOST_MAX_PEND` (128) zero-copy transmits in flight.
 * On a busy 2-vCPU machine a thread that sleeps may wait a millisecond or more to run again; 64
 * chains of 64 KiB are ~0.5 ms of engine work, so the engine still has some when this thread
 * comes back, and the ring still has 64 chains for this thread while the card's thread waits
 * to refill it.
 */
const PIPELINE = 64;

/**
 * Buffers the card's driver keeps posted at 4 KiB and 64 KiB on the DMA path: the whole ring (128
 * entries), as virtio-net fills its receive ring and lets its transmit ring fill up, so that the
 * host's {@link PIPELINE} chains in flight leave the card as many to refill while its thread
 * waits to run. The memcpy path copies synchronously, one chain at a time: it keeps 32 (a
 * working set of 2 MiB at 64 KiB; the whole ring's 8 MiB measured slower there). At 1 MiB: 8.
 */
const RING_DEPTH = 128;
const MEMCPY_DEPTH = 32;

/**
 * Copies chains of vring `vrIdx` with up to one `copyDesc` per slot in flight, as a backend with a
 * few I/O buffers does: a zero-copy chain returns its vring lock while its DMA runs, so the next
 * chain's DMA is queued behind it on the engine. Polls when the ring is empty; retries across the
 * card's resets between runs.
 */
async function pipelined(
  h: VopVirtioHandle,
  signal: AbortSignal,
  vrIdx: number,
  slots: readonly Uint8Array[],
): Promise<void> {
  const free = [...slots];
  let inFlight = 0;
  let empty = false;
  let failure: unknown = null;
  let polling = false;
  // One waiter, woken by any completion or the end of a poll: no Promise.race over every copy in
  // flight (with 64 of them that cost more than the copy's own host work).
  let wake: (() => void) | null = null;
  const woken = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const waitWake = (): Promise<void> =>
    new Promise<void>((resolve) => {
      wake = resolve;
    });
  const start = (buf: Uint8Array): void => {
    inFlight++;
    void h
      .copyDesc({ iov: [buf], vrIdx, updateUsed: true })
      .then(
        (n) => {
          if (n === 0) empty = true;
        },
        (err: unknown) => {
          failure ??= err;
        },
      )
      .finally(() => {
        inFlight--;
        free.push(buf);
        woken();
      });
  };
  while (!signal.aborted) {
    while (free.length > 0 && !empty && failure === null) start(free.pop()!);
    if (inFlight > 0 || polling) {
      // The ring ran empty with copies still in flight: the card's next buffers come with a kick
      // (its kicks are on again since the empty fetch), and a backend takes them at once instead
      // of letting the engine run dry first (vhost goes on with its queue on each kick).
      if (empty && failure === null && !polling) {
        polling = true;
        void h
          .poll({ signal, timeoutMs: 50 })
          .then(
            () => {
              empty = false;
            },
            () => {},
          )
          .finally(() => {
            polling = false;
            woken();
          });
      }
      await waitWake();
      continue;
    }
    const err = failure;
    failure = null;
    empty = false;
    try {
      if (err !== null) {
        if (signal.aborted) break;
        // Between runs the card resets the device (status 0): wait for it to come back.
        if (!isMicError(err, 'ENODEV')) throw err;
      }
      await h.poll({ signal, timeoutMs: 50 });
    } catch (e) {
      if (signal.aborted) break;
      if (!isMicError(e, 'ENODEV')) throw e;
      await h.poll({ signal, timeoutMs: 50 }).catch(() => {});
    }
  }
  while (inFlight > 0 || polling) await waitWake();
}

/**
 * Card → host: drains vring 1 into `slots` scratch buffers of `size` bytes, one `copyDesc` each
 * in flight (one for the memcpy path, where copies are synchronous: its figure stays that of one
 * buffer hot in the cache).
 */
function drain(h: VopVirtioHandle, signal: AbortSignal, size: number, slots: number): Promise<void> {
  return withDmaBuffer(h, slots * size, (buf) =>
    pipelined(
      h,
      signal,
      1,
      Array.from({ length: slots }, (_, i) => buf.subarray(i * size, (i + 1) * size)),
    ),
  );
}

/** Host → card: fills vring 0's receive buffers with `size`-byte chunks, `slots` copies in flight. */
function source(h: VopVirtioHandle, signal: AbortSignal, size: number, slots: number): Promise<void> {
  return withDmaBuffer(h, size, (buf) => {
    buf.fill(0xa5);
    return pipelined(
      h,
      signal,
      0,
      Array.from({ length: slots }, () => buf),
    );
  });
}

/** Runs `fn` with a host backend serving until it resolves. */
async function withBackend<T>(
  side: Side,
  backend: (h: VopVirtioHandle, signal: AbortSignal) => Promise<void>,
  fn: () => Promise<T>,
): Promise<T> {
  const stop = new AbortController();
  const running = backend(side.handle, stop.signal);
  try {
    return await fn();
  } finally {
    stop.abort();
    await running;
  }
}

/** `Uint8Array.set` bandwidth (B/s) for `size`-byte copies between SharedArrayBuffers. */
function setBandwidth(size: number, scale: number): number {
  const window = 16 * MIB;
  const src = new Uint8Array(new SharedArrayBuffer(window)).fill(3);
  const dst = new Uint8Array(new SharedArrayBuffer(window));
  const count = Math.max(64, Math.round(((256 * MIB) / size) * scale));
  const run = (n: number): number => {
    const t0 = performance.now();
    for (let i = 0, off = 0; i < n; i++) {
      dst.set(src.subarray(off, off + size), off);
      off += size;
      if (off + size > window) off = 0;
    }
    return performance.now() - t0;
  };
  run(Math.max(1, count >> 2));
  return (count * size) / (run(count) / 1000);
}

function fmt(x: number): string {
  return x >= 1e9
    ? `${(x / 1e9).toFixed(2)}G`
    : x >= 1e6
      ? `${(x / 1e6).toFixed(2)}M`
      : `${(x / 1e3).toFixed(1)}k`;
}

export async function vopSuite(options: SuiteOptions): Promise<BenchRecord[]> {
  const records: BenchRecord[] = [];
  const trials = options.trials;
  // One card per copy path: DMA whenever it applies (the default threshold), or memcpy only.
  const paths = [
    ['dma', {}],
    ['memcpy', { noDma: true }],
  ] as const;
  const rates: number[] = [];
  const ringRates: number[] = [];
  const plainRates: number[] = [];
  const tput = new Map<string, number[]>();
  const setBw = new Map<number, number[]>();
  const place: string[] = [];
  for (const [path, vopOptions] of paths) {
    const slots = path === 'dma' ? PIPELINE : 1;
    const side = await boot(vopOptions);
    const mainTid = currentTid();
    const cardTid = (await side.card.call('tid')) as number;
    const unpin = pinPair(options.pin, mainTid, cardTid);
    try {
      for (let t = 0; t < trials; t++) {
        place.push(placement(mainTid, cardTid));
        if (path === 'dma') {
          const count = Math.max(2000, Math.round(100_000 * options.scale));
          await withBackend(side, echo, () => side.card.call('pingPong', Math.max(500, count >> 3), 64, 32));
          const ms = (await withBackend(side, echo, () =>
            side.card.call('pingPong', count, 64, 32),
          )) as number;
          rates.push(count / (ms / 1000));
          plainRates.push(await plainRingRate(64, 32, options));
          ringRates.push(await virtioRingRate(64, 32, options));
          options.progress(
            `vop 64B echo trial ${t + 1}/${trials}: ${fmt(rates.at(-1)!)} req/s, plain SAB ring ${fmt(plainRates.at(-1)!)}, virtio ring ${fmt(ringRates.at(-1)!)}`,
          );
        }
        for (const size of SIZES) {
          const count = Math.max(16, Math.round(((size === MIB ? 256 : 128) * MIB * options.scale) / size));
          const depth = size === MIB ? 8 : path === 'dma' ? RING_DEPTH : MEMCPY_DEPTH;
          const c2hMs = (await withBackend(
            side,
            (h, s) => drain(h, s, size, Math.min(slots, depth)),
            () => side.card.call('stream', count, size, depth),
          )) as number;
          const h2c = (await withBackend(
            side,
            (h, s) => source(h, s, size, Math.min(slots, depth)),
            () => side.card.call('sink', count, size, depth),
          )) as { ms: number; bytes: number };
          const c2h = (count * size) / (c2hMs / 1000);
          const h2cBw = h2c.bytes / (h2c.ms / 1000);
          const bw = setBandwidth(size, options.scale);
          push(tput, `${path}-c2h-${size}`, c2h);
          push(tput, `${path}-h2c-${size}`, h2cBw);
          push(setBw, size, bw);
          options.progress(
            `vop ${path} ${sizeLabel(size)} trial ${t + 1}/${trials}: c2h ${fmt(c2h)}B/s, h2c ${fmt(h2cBw)}B/s, set ${fmt(bw)}B/s`,
          );
        }
      }
    } finally {
      unpin();
      await side.close();
    }
  }
  const regime = regimeOf(place);
  const rate = median(rates);
  records.push(
    record(
      'vop',
      'vop-64B-echo-depth32',
      'req/s',
      rate,
      { name: 'sab-ring-64B-batch32', value: median(plainRates) },
      0.25,
      regime,
    ),
    record(
      'vop',
      'vop-64B-echo-depth32',
      'req/s',
      rate,
      { name: 'virtio-ring-64B-batch32', value: median(ringRates) },
      null,
      regime,
    ),
  );
  for (const [path] of paths) {
    for (const dir of ['c2h', 'h2c'] as const) {
      for (const size of SIZES) {
        records.push(
          record(
            'vop',
            `vop-${path}-${dir}-${sizeLabel(size)}`,
            'B/s',
            median(tput.get(`${path}-${dir}-${size}`)!),
            { name: `set-${sizeLabel(size)}`, value: median(setBw.get(size)!) },
            size >= 64 * 1024 ? 0.5 : null,
            regime,
          ),
        );
      }
    }
  }
  return records;
}
