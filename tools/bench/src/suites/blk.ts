/**
 * Suite `blk`: virtio-blk from the card's driver to the host's file, on the x100 `worker`
 * platform. The card program of `@mic/demo` runs `@mic/virtio-drivers`' `VirtioBlk` in the card's
 * worker; the host serves the device over VOP with `@mic/virtio-backends`' `BlockBackend` on an
 * image file in a temporary directory (page-cached after the first pass). Each figure is a burst
 * of requests the card issues with a fixed number in flight: sequential reads and writes of
 * 128 KiB at queue depth 1, 8 and 32, random 4 KiB reads at depth 1 and 32.
 *
 * Baseline, measured in the same run, trial by trial: `fs.promises` (`FileHandle.read`/`write`)
 * on the same file from the main thread, the same request sizes, depths and offsets. Target
 * (issue 13): sequential read at depth 8 at least 1.0x the baseline.
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BlkBurst, type BurstResult, CardRig, burstOffsets, serveCard } from '@mic/demo';
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

export async function blkSuite(options: SuiteOptions): Promise<BenchRecord[]> {
  const dir = await mkdtemp(join(tmpdir(), 'mic-bench-blk-'));
  const image = join(dir, 'disk.img');
  let rig: CardRig | null = null;
  let fh: FileHandle | null = null;
  try {
    await fillImage(image);
    rig = await CardRig.boot({ platform: 'worker' });
    const devices = await serveCard(rig.control, { block: { path: image, queueDepth: 32 } });
    await devices.block!.waitDriverOk();
    await rig.call('waitDevices', ['block']);
    fh = await open(image, 'r+');
    const mainTid = currentTid();
    const cardTid = await rig.call<number>('tid');
    const unpin = pinPair(options.pin, mainTid, cardTid);
    const card = new Map<string, number[]>();
    const base = new Map<string, number[]>();
    const place: string[] = [];
    try {
      for (let t = 0; t < options.trials; t++) {
        for (const c of CASES) {
          const count = Math.max(c.burst.depth * 4, Math.round(c.count * options.scale));
          const burst: BlkBurst = { ...c.burst, count };
          const warm: BlkBurst = { ...c.burst, count: Math.max(c.burst.depth, count >> 3) };
          const unit = c.burst.size === 4096 ? 'IOPS' : 'B/s';
          // Interleaved: the card's burst, then the baseline's, each after its own warm-up.
          await rig.call('blkBurst', warm);
          place.push(placement(mainTid, cardTid));
          const r = await rig.call<BurstResult>('blkBurst', burst);
          place.push(placement(mainTid, cardTid));
          await fsBurst(fh, warm, IMAGE_BYTES);
          const b = await fsBurst(fh, burst, IMAGE_BYTES);
          push(card, c.name, rateOf(r, unit, c.burst.size));
          push(base, c.name, rateOf(b, unit, c.burst.size));
          options.progress(
            `blk ${c.name} trial ${t + 1}/${options.trials}: card ${fmt(card.get(c.name)!.at(-1)!, unit)}, fs.promises ${fmt(base.get(c.name)!.at(-1)!, unit)}`,
          );
        }
      }
    } finally {
      unpin();
    }
    const regime = regimeOf(place);
    const stats = devices.block!.backend.stats();
    options.progress(`blk backend: ${stats.requests} requests, at most ${stats.maxInFlight} in flight`);
    await devices.stop();
    return CASES.map((c) =>
      record(
        'blk',
        `blk-${c.name}`,
        c.burst.size === 4096 ? 'IOPS' : 'B/s',
        median(card.get(c.name)!),
        { name: `fs.promises-${c.name}`, value: median(base.get(c.name)!) },
        c.target,
        regime,
      ),
    );
  } finally {
    await fh?.close();
    if (rig) {
      await rig.stopCard().catch(() => {});
      await rig.close();
    }
    await rm(dir, { recursive: true, force: true });
  }
}

function fmt(x: number, unit: string): string {
  return unit === 'IOPS' ? `${(x / 1000).toFixed(1)}k IOPS` : `${(x / 1e9).toFixed(2)} GB/s`;
}
