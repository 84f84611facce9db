/**
 * Suite `dma`: the X100 DMA engine moving bytes host → card and card → host on the worker
 * platform (the engine in a thread of its own), driven through `@mic/mic-dma` from the main thread
 * on the host channel `@mic/mic-host` gave its VOP device when it started the card (see
 * dma-host.ts), against `Uint8Array.set` of the same sizes between the same memories (host RAM
 * and card memory, both SharedArrayBuffers), measured in the same run, trial by trial.
 *
 * Each trial queues `count` transfers of one size at offsets cycling through a 16 MiB window,
 * issuing as the driver does (automatically past 4 pending descriptors), the last one with
 * `INTERRUPT`, and sleeps until its completion callback (a full ring is waited out by polling the
 * completion count). Sizes: 64 B, 4 KiB, 64 KiB, 1 MiB, 8 MiB; host
 * channels split descriptors at 512 KiB. Target (issue "@mic/mic-dma"): at least 0.8x the
 * baseline bandwidth from 64 KiB up; at 64 B the descriptor rate is reported as well.
 */
import { MicError } from '@mic/errors';
import { BufferMemory, type Memory } from '@mic/memory';
import { DMA_PREP, DMA_STATUS } from '@mic/mic-dma';
import type { DmaTxResult, MicDmaChan } from '@mic/mic-dma';
import { createWorkerPlatform } from '@mic/x100';
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
import { type DmaHost, startDmaHost } from './dma-host.js';

const MIB = 1024 * 1024;
const WINDOW = 16 * MIB;
/** Where the card side of the window lives in card memory. */
const CARD_WINDOW = 32 * MIB;
const SIZES = [64, 4096, 64 * 1024, MIB, 8 * MIB] as const;

type Dir = 'h2c' | 'c2h';

/** The first `length` raw bytes of a buffer-backed memory, which the `set` baseline copies directly. */
function rawBytes(mem: Memory, length: number, what: string): Uint8Array {
  if (!(mem instanceof BufferMemory)) {
    throw new MicError('EINVAL', `${what} is not buffer-backed memory: the set baseline needs its bytes`);
  }
  return mem.bytes(0, length);
}

/** Transfers per trial: ~12.8 MB at 64 B, 128 MiB at 4 KiB, 256 MiB from 64 KiB up. */
function plan(size: number, scale: number): number {
  const base = size === 64 ? 200_000 : size === 4096 ? 32_768 : (256 * MIB) / size;
  return Math.max(size >= MIB ? 4 : 64, Math.round(base * scale));
}

/**
 * Queues `count` transfers, the last one with `INTERRUPT`, and waits for its completion callback
 * (the main thread sleeps meanwhile); returns the elapsed ms. When the ring is full it polls the
 * completion count until there is room.
 */
async function dmaRun(
  chan: MicDmaChan,
  dst: number,
  src: number,
  size: number,
  count: number,
): Promise<number> {
  const need = Math.floor(size / chan.maxXferSize) + 4;
  let last = 0;
  let done: Promise<DmaTxResult> | undefined;
  const t0 = performance.now();
  for (let i = 0, off = 0; i < count; i++) {
    while (chan.freeDescriptors < need) {
      chan.issuePending();
      chan.txStatus(last);
    }
    if (i === count - 1) {
      const tx = chan.prepMemcpy(dst + off, src + off, size, DMA_PREP.INTERRUPT);
      done = new Promise<DmaTxResult>((resolve) => {
        tx.callback = resolve;
      });
      last = tx.submit();
    } else {
      last = chan.prepMemcpy(dst + off, src + off, size).submit();
    }
    off += size;
    if (off >= WINDOW) off = 0;
  }
  chan.issuePending();
  const result = await done!;
  const ms = performance.now() - t0;
  if (result.status !== DMA_STATUS.COMPLETE) {
    throw new Error(`DMA transfer ${last} ended with ${result.status}: ${chan.error?.message}`);
  }
  return ms;
}

/** The baseline: the same copies with `Uint8Array.set`; returns the elapsed ms. */
function setRun(dst: Uint8Array, src: Uint8Array, size: number, count: number): number {
  const t0 = performance.now();
  for (let i = 0, off = 0; i < count; i++) {
    dst.set(src.subarray(off, off + size), off);
    off += size;
    if (off >= WINDOW) off = 0;
  }
  return performance.now() - t0;
}

function fmt(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(2);
}

export async function dmaSuite(options: SuiteOptions): Promise<BenchRecord[]> {
  const platform = createWorkerPlatform({
    cardModule: new URL('./dma-card.js', import.meta.url),
    cardMemorySize: 64 * MIB,
    hostRamSize: 64 * MIB,
  });
  const records: BenchRecord[] = [];
  let unpin = (): void => {};
  let dmaHost: DmaHost | undefined;
  try {
    const engineTid = await platform.dmaEngineTid;
    const mainTid = currentTid();
    unpin = pinPair(options.pin, mainTid, engineTid);
    dmaHost = await startDmaHost(platform);
    const { chan, dmaOps } = dmaHost;
    const hostBuf = dmaOps.alloc(WINDOW);
    const host = { addr: hostBuf.dmaAddr, bytes: rawBytes(hostBuf.va, WINDOW, 'the host DMA buffer') };
    const card = {
      addr: CARD_WINDOW,
      bytes: rawBytes(platform.host.apertureWindow(CARD_WINDOW, WINDOW), WINDOW, 'the aperture window'),
    };
    for (let i = 0; i < WINDOW; i++) host.bytes[i] = (i * 131 + (i >>> 12)) & 0xff;

    for (const dir of ['h2c', 'c2h'] as const satisfies readonly Dir[]) {
      const from = dir === 'h2c' ? host : card;
      const to = dir === 'h2c' ? card : host;
      for (const size of SIZES) {
        const count = plan(size, options.scale);
        const warm = Math.max(1, Math.round(count / 4));
        const label = sizeLabel(size);
        const dmaMs: number[] = [];
        const setMs: number[] = [];
        const place: string[] = [];
        for (let t = 0; t < options.trials; t++) {
          const dmaTrial = async (): Promise<void> => {
            await dmaRun(chan, to.addr, from.addr, size, warm);
            place.push(placement(mainTid, engineTid));
            dmaMs.push(await dmaRun(chan, to.addr, from.addr, size, count));
            place.push(placement(mainTid, engineTid));
          };
          const setTrial = (): void => {
            setRun(to.bytes, from.bytes, size, warm);
            setMs.push(setRun(to.bytes, from.bytes, size, count));
          };
          if (t === 0) {
            // The first DMA trial checks what it moved.
            to.bytes.fill(0xee);
            await dmaTrial();
            const moved = Math.min(WINDOW, count * size);
            if (Buffer.compare(to.bytes.subarray(0, moved), from.bytes.subarray(0, moved)) !== 0) {
              throw new Error(`dma ${dir} ${label}: the destination does not match the source`);
            }
            setTrial();
          } else if (t % 2 === 1) {
            setTrial();
            await dmaTrial();
          } else {
            await dmaTrial();
            setTrial();
          }
          const gbs = (ms: number) => (count * size) / (ms / 1000) / 1e9;
          options.progress(
            `dma ${dir} ${label} trial ${t + 1}/${options.trials}: DMA ${gbs(dmaMs.at(-1)!).toFixed(2)} GB/s (${fmt(count / (dmaMs.at(-1)! / 1000))} transfers/s), Uint8Array.set ${gbs(setMs.at(-1)!).toFixed(2)} GB/s`,
          );
        }
        await new Promise((resolve) => setImmediate(resolve));
        const regime = regimeOf(place);
        const dmaMedian = median(dmaMs);
        const setMedian = median(setMs);
        const bw = (ms: number) => (count * size) / (ms / 1000) / 1e9;
        records.push(
          record(
            'dma',
            `${dir}-${label}`,
            'GB/s',
            bw(dmaMedian),
            { name: `uint8array-set-${label}`, value: bw(setMedian) },
            size >= 64 * 1024 ? 0.8 : null,
            regime,
          ),
        );
        if (size === 64) {
          records.push(
            record(
              'dma',
              `${dir}-64B-descriptors`,
              'desc/s',
              count / (dmaMedian / 1000),
              { name: 'uint8array-set-64B-calls', value: count / (setMedian / 1000) },
              null,
              regime,
            ),
          );
        }
      }
    }
    dmaOps.free(hostBuf);
  } finally {
    unpin();
    try {
      await dmaHost?.close();
    } finally {
      await platform.close();
    }
  }
  return records;
}
