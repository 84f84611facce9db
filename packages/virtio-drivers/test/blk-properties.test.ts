import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { isMicError } from '@mic/errors';
import { VIRTIO_BLK_F, VIRTIO_F, VIRTIO_ID, encodeBlkConfig, features } from '@mic/virtio';
import { VirtioBlkDriver } from '../src/index.js';
import { blkDevice } from './blk-device.js';
import { rig } from './harness.js';

// Random batches of reads, writes and write-zeroes at random sectors and lengths (some past the
// end), issued concurrently against a device that completes them in a random order: the image
// must equal a model that applies the operations in call order, and every read must return
// what the model held when it was issued.

const SECTORS = 64;

type Op =
  | { readonly op: 'write'; readonly sector: number; readonly count: number; readonly seed: number }
  | { readonly op: 'read'; readonly sector: number; readonly count: number }
  | { readonly op: 'zero'; readonly sector: number; readonly count: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('write' as const),
    sector: fc.integer({ min: 0, max: SECTORS + 4 }),
    count: fc.integer({ min: 1, max: 24 }),
    seed: fc.integer({ min: 1, max: 250 }),
  }),
  fc.record({
    op: fc.constant('read' as const),
    sector: fc.integer({ min: 0, max: SECTORS + 4 }),
    count: fc.integer({ min: 1, max: 24 }),
  }),
  fc.record({
    op: fc.constant('zero' as const),
    sector: fc.integer({ min: 0, max: SECTORS + 4 }),
    count: fc.integer({ min: 1, max: 8 }),
  }),
);

function fill(count: number, seed: number): Uint8Array {
  const b = new Uint8Array(count * 512);
  for (let i = 0; i < b.length; i++) b[i] = (seed + i * 31 + (i >> 7)) & 0xff;
  return b;
}

/** A deterministic shuffle (mulberry32). */
function shuffle<T>(a: T[], seed: number): void {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

describe('virtio-blk driver: property', () => {
  it('random concurrent reads, writes and write-zeroes leave the image equal to a model', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          queueSize: fc.constantFrom(4, 8, 16, 32),
          segMax: fc.integer({ min: 1, max: 8 }),
          sizeMax: fc.constantFrom(0, 512, 1024, 4096),
          indirect: fc.boolean(),
          modern: fc.boolean(),
        }),
        fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }),
        fc.integer(),
        async (cfg, batches, seed) => {
          const image = new Uint8Array(SECTORS * 512);
          const model = new Uint8Array(SECTORS * 512);
          const drv = new VirtioBlkDriver();
          const r = await rig(drv, {
            deviceId: VIRTIO_ID.BLOCK,
            features:
              features(VIRTIO_BLK_F.SEG_MAX, VIRTIO_BLK_F.WRITE_ZEROES) |
              (cfg.sizeMax > 0 ? features(VIRTIO_BLK_F.SIZE_MAX) : 0n) |
              (cfg.indirect ? features(VIRTIO_F.RING_INDIRECT_DESC) : 0n) |
              (cfg.modern ? features(VIRTIO_F.VERSION_1) : 0n),
            config: encodeBlkConfig({
              capacity: BigInt(SECTORS),
              segMax: cfg.segMax,
              sizeMax: cfg.sizeMax,
              maxWriteZeroesSectors: 3,
              maxWriteZeroesSeg: 2,
            }),
            queueSizes: [cfg.queueSize],
            memorySize: 4 << 20,
          });
          const dev = blkDevice(r.t, image, { hold: true });
          const disk = await drv.waitForDevice();
          let round = seed;
          for (const batch of batches) {
            const checks: Promise<void>[] = [];
            for (const o of batch) {
              const inRange = o.sector + o.count <= SECTORS;
              const at = o.sector * 512;
              const end = (o.sector + o.count) * 512;
              let p: Promise<unknown>;
              let expected: Uint8Array | null = null;
              if (o.op === 'write') {
                const data = fill(o.count, o.seed);
                p = disk.write(o.sector, data);
                if (inRange) model.set(data, at);
              } else if (o.op === 'zero') {
                p = disk.writeZeroes(o.sector, o.count);
                if (inRange) model.fill(0, at, end);
              } else {
                p = disk.read(o.sector, o.count);
                if (inRange) expected = model.slice(at, end);
              }
              checks.push(
                p.then(
                  (got) => {
                    expect(inRange).toBe(true);
                    if (expected) expect(got).toEqual(expected);
                  },
                  (err: unknown) => {
                    expect(inRange).toBe(false);
                    expect(isMicError(err, 'EINVAL')).toBe(true);
                  },
                ),
              );
            }
            let settled = false;
            const all = Promise.all(checks).finally(() => (settled = true));
            for (let turn = 0; !settled; turn++) {
              if (turn > 10_000) throw new Error('requests did not complete');
              await r.t.flush();
              shuffle(dev.served.held, round++);
              dev.served.release(Math.max(1, dev.served.held.length >> 1));
            }
            await all;
          }
          expect(image).toEqual(model);
          expect(disk.inFlight).toBe(0);
          await r.unplug();
          expect(r.live.size).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});
