/**
 * Suite `blk`: virtio-blk from the card's driver to the host's file, on the x100 `worker`
 * platform. The card program of `@mic/demo` runs `@mic/virtio-drivers`' `VirtioBlk` in the card's
 * worker; the host serves the device over VOP with `@mic/virtio-backends`' `BlockBackend` on an
 * image file in a temporary directory (page-cached after the first pass), with EVENT_IDX (one
 * doorbell per burst of completions). The card's requests use the disk's own buffers
 * (`VirtioBlk.allocBuffer`, DMA memory: the host reads the image into them and writes it from
 * them, no copy on the card), as Linux hands the device a request's pages. Each figure is a burst
 * of requests the card issues with a fixed number in flight: sequential reads and writes of
 * 128 KiB at queue depth 1, 8 and 32, random 4 KiB reads at depth 1 and 32.
 *
 * Every case runs on two cards at once (one busy at a time): one with the rig's defaults (copies by
 * the DMA engine from 1 KiB, as the kernel does) and one with `FAST_COPY_RIG` (memcpy, no polling).
 *
 * Baseline, measured in the same run, trial by trial: `fs.promises` (`FileHandle.read`/`write`)
 * on the same file from the main thread, the same request sizes, depths and offsets. Target
 * (issue 13): sequential read at depth 8 at least 1.0x the baseline.
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BlkBurst,
  type BurstResult,
  type CardDevices,
  CardRig,
  type CardRigOptions,
  FAST_COPY_RIG,
  burstOffsets,
  serveCard,
} from '@mic/demo';
import {
  type BenchRecord,
  type SuiteOptions,
  currentTid,
  median,
  pinPair,
  placement,
  push,
  record,
  regimeOf,
} from '../common.js';

const MIB = 1 << 20;
const IMAGE_BYTES = 128 * MIB;

interface Case {
  readonly name: string;
  readonly burst: Omit<BlkBurst, 'count'>;
  /** Requests per trial at scale 1. */
  readonly count: number;
  readonly target: number | null;
}

const KIB128 = 128 << 10;
const CASES: readonly Case[] = [
  ...[1, 8, 32].map((depth) => ({
    name: `seq-read-128KiB-qd${depth}`,
    burst: { op: 'read' as const, size: KIB128, depth },
    count: 1024,
    target: depth === 8 ? 1.0 : null,
  })),
  ...[1, 8, 32].map((depth) => ({
    name: `seq-write-128KiB-qd${depth}`,
    burst: { op: 'write' as const, size: KIB128, depth },
    count: 512,
    target: null,
  })),
  ...[1, 32].map((depth) => ({
    name: `rand-read-4KiB-qd${depth}`,
    burst: { op: 'read' as const, size: 4096, depth, random: true },
    count: depth === 1 ? 4000 : 16000,
    target: null,
  })),
];

/** The same burst with `fs.promises` on `fh` from this thread (the baseline). */
async function fsBurst(fh: FileHandle, b: BlkBurst, span: number): Promise<BurstResult> {
  const nextOffset = burstOffsets(b.size, span, b.random ?? false);
  const bufs = Array.from({ length: b.depth }, () => new Uint8Array(b.size).fill(0x5a));
  let issued = 0;
  const lane = async (buf: Uint8Array): Promise<void> => {
    while (issued < b.count) {
      issued++;
      const at = nextOffset();
      if (b.op === 'read') await fh.read(buf, 0, buf.length, at);
      else await fh.write(buf, 0, buf.length, at);
    }
  };
  const t0 = performance.now();
  await Promise.all(bufs.map(lane));
  return { ms: performance.now() - t0, bytes: b.count * b.size };
}

async function fillImage(path: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    const chunk = new Uint8Array(4 * MIB);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 131 + (i >>> 12)) & 0xff;
    for (let at = 0; at < IMAGE_BYTES; at += chunk.length) await fh.write(chunk, 0, chunk.length, at);
  } finally {
    await fh.close();
  }
}

const rateOf = (r: BurstResult, unit: 'B/s' | 'IOPS', size: number): number =>
  unit === 'B/s' ? r.bytes / (r.ms / 1000) : r.bytes / size / (r.ms / 1000);

/**
 * The two rigs every case runs on: the defaults (copies of 1 KiB and more by the DMA engine, as
 * the kernel; each side polls 50 µs before it sleeps) and {@link FAST_COPY_RIG} (memcpy, no
 * polling), reported as `blk-<case>` and `blk-memcpy-nospin-<case>`.
 */
const VARIANTS: readonly { readonly prefix: string; readonly options: CardRigOptions }[] = [
  { prefix: 'blk', options: {} },
  { prefix: 'blk-memcpy-nospin', options: FAST_COPY_RIG },
];

interface Served {
  readonly prefix: string;
  readonly rig: CardRig;
  readonly devices: CardDevices;
  /** The card thread's kernel id. */
  tid: number;
}

export async function blkSuite(options: SuiteOptions): Promise<BenchRecord[]> {
  const dir = await mkdtemp(join(tmpdir(), 'mic-bench-blk-'));
  const image = join(dir, 'disk.img');
  const served: Served[] = [];
  let fh: FileHandle | null = null;
  try {
    await fillImage(image);
    // Both cards serve the same image (one at a time is busy; the other's threads sleep).
    for (const v of VARIANTS) {
      const rig = await CardRig.boot({ platform: 'worker', ...v.options });
      const devices = await serveCard(rig.control, { block: { path: image, queueDepth: 32 } });
      const s: Served = { prefix: v.prefix, rig, devices, tid: -1 };
      served.push(s);
      await devices.block!.waitDriverOk();
      await rig.call('waitDevices', ['block']);
      s.tid = await rig.call<number>('tid');
    }
    fh = await open(image, 'r+');
    const mainTid = currentTid();
    const card = new Map<string, number[]>();
    const base = new Map<string, number[]>();
    const place: string[] = [];
    for (let t = 0; t < options.trials; t++) {
      for (const c of CASES) {
        const count = Math.max(c.burst.depth * 4, Math.round(c.count * options.scale));
        const burst: BlkBurst = { ...c.burst, count };
        const warm: BlkBurst = { ...c.burst, count: Math.max(c.burst.depth, count >> 3) };
        const unit = c.burst.size === 4096 ? 'IOPS' : 'B/s';
        // Interleaved: each card's burst, then the baseline's, each after its own warm-up.
        const line: string[] = [];
        for (const s of served) {
          const unpin = pinPair(options.pin, mainTid, s.tid);
          try {
            await s.rig.call('blkBurst', warm);
            place.push(placement(mainTid, s.tid));
            const r = await s.rig.call<BurstResult>('blkBurst', burst);
            place.push(placement(mainTid, s.tid));
            push(card, `${s.prefix}-${c.name}`, rateOf(r, unit, c.burst.size));
            line.push(`${s.prefix} ${fmt(card.get(`${s.prefix}-${c.name}`)!.at(-1)!, unit)}`);
          } finally {
            unpin();
          }
        }
        await fsBurst(fh, warm, IMAGE_BYTES);
        const b = await fsBurst(fh, burst, IMAGE_BYTES);
        push(base, c.name, rateOf(b, unit, c.burst.size));
        options.progress(
          `blk ${c.name} trial ${t + 1}/${options.trials}: ${line.join(', ')}, fs.promises ${fmt(base.get(c.name)!.at(-1)!, unit)}`,
        );
      }
    }
    const regime = regimeOf(place);
    for (const s of served) {
      const stats = s.devices.block!.backend.stats();
      options.progress(
        `${s.prefix} backend: ${stats.requests} requests, at most ${stats.maxInFlight} in flight`,
      );
    }
    return served.flatMap((s) =>
      CASES.map((c) =>
        record(
          'blk',
          `${s.prefix}-${c.name}`,
          c.burst.size === 4096 ? 'IOPS' : 'B/s',
          median(card.get(`${s.prefix}-${c.name}`)!),
          { name: `fs.promises-${c.name}`, value: median(base.get(c.name)!) },
          c.target,
          regime,
        ),
      ),
    );
  } finally {
    await fh?.close();
    for (const s of served) {
      await s.devices.stop().catch(() => {});
      await s.rig.stopCard().catch(() => {});
      await s.rig.close();
    }
    await rm(dir, { recursive: true, force: true });
  }
}

function fmt(x: number, unit: string): string {
  return unit === 'IOPS' ? `${(x / 1000).toFixed(1)}k IOPS` : `${(x / 1e9).toFixed(2)} GB/s`;
}
