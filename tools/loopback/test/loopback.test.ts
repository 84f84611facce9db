/**
 * Cross-thread tests: the driver (Virtqueue) runs in a worker, the device (Vringh) on this
 * thread, both over one SharedArrayBuffer. The worker is `dist/loopback-worker.js`: build the
 * package before running these tests (`pnpm --filter @mic/loopback build`).
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from '@jest/globals';
import { BufferMemory } from '@mic/memory';
import { EventWord } from '@mic/notify';
import { Vringh, VringhIov, vringLayout } from '@mic/virtio';
import {
  loopbackLayout,
  loopbackPattern,
  runLoopback,
  type LoopbackConfig,
  type LoopbackDriverOptions,
  type LoopbackDriverResult,
  type LoopbackOptions,
} from '../src/index.js';

const TIMEOUT = 180_000;

describe('virtio loopback across threads (driver in a worker, device here, one SharedArrayBuffer)', () => {
  it.each<[string, Omit<LoopbackOptions, 'verify'>]>([
    [
      '200,000 requests of 64 bytes in batches of 32',
      { num: 256, payload: 64, requests: 200_000, batch: 32 },
    ],
    [
      '20,000 requests of 4096 bytes in batches of 32',
      { num: 256, payload: 4096, requests: 20_000, batch: 32 },
    ],
    ['30,000 requests of 64 bytes one at a time', { num: 256, payload: 64, requests: 30_000, batch: 1 }],
    [
      '20,000 requests without EVENT_IDX, sleeping without polling first',
      { num: 64, payload: 128, requests: 20_000, batch: 8, eventIdx: false, spinNs: 0 },
    ],
  ])(
    '%s arrive with every byte checked',
    async (_what, o) => {
      const r = await runLoopback({ ...o, verify: true });
      expect(r.driver.mismatches).toBe(0);
      expect(r.driver.requests).toBe(o.requests);
      expect(r.driver.bytes).toBe(o.requests * o.payload);
      expect(r.device.chains).toBe(o.requests);
      expect(r.device.badChains).toBe(0);
    },
    TIMEOUT,
  );

  it(
    'the driver counts every response a device corrupted',
    async () => {
      // A device of our own that flips one bit in every 1000th response: the payload check of the
      // driver must see exactly those.
      const config: LoopbackConfig = { num: 64, payload: 64, eventIdx: true };
      const requests = 10_000;
      const layout = loopbackLayout(config);
      const sab = new SharedArrayBuffer(layout.size);
      const options: LoopbackDriverOptions = { requests, batch: 16, verify: true };
      const worker = new Worker(new URL('../dist/loopback-worker.js', import.meta.url), {
        workerData: { sab, config, options },
      });
      const result = new Promise<LoopbackDriverResult>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      try {
        // The module comment of loopback.ts: kick word at 0, interrupt word at 8, stop flag at 16.
        const mem = new BufferMemory(sab);
        const ring = vringLayout(config.num, 4096, layout.ringBase);
        const vrh = new Vringh({
          num: config.num,
          mem,
          desc: ring.desc,
          avail: ring.avail,
          used: ring.used,
          eventIdx: true,
        });
        const kick = new EventWord(sab, 0);
        const irq = new EventWord(sab, 8);
        const stop = new Int32Array(sab, 16, 1);
        const riov = new VringhIov();
        const wiov = new VringhIov();
        const bytes = new Uint8Array(config.payload);
        let served = 0;
        const stopped = () => Atomics.load(stop, 0) !== 0;
        vrh.notifyDisable();
        for (;;) {
          let done = 0;
          for (let r = vrh.getDesc(riov, wiov); r.status === 'chain'; r = vrh.getDesc(riov, wiov)) {
            const n = vrh.pull(riov, bytes);
            for (let i = 0; i < n; i++) bytes[i] = ~bytes[i]! & 0xff;
            if (++served % 1000 === 0) bytes[served % n]! ^= 0x10;
            vrh.complete(r.head, vrh.push(wiov, bytes.subarray(0, n)));
            done++;
          }
          if (done > 0 && vrh.needNotify()) irq.signal();
          if (stopped()) break;
          if (done === 0 && vrh.notifyEnable()) {
            const woken = await kick.waitAsync(() => vrh.pending() > 0 || stopped(), {
              spinNs: 0,
              timeoutMs: 60_000,
            });
            if (!woken) throw new Error(`no kick after ${served} requests`);
            vrh.notifyDisable();
          }
        }
        const driver = await result;
        expect(served).toBe(requests);
        expect(driver.requests).toBe(requests);
        expect(driver.mismatches).toBe(requests / 1000);
      } finally {
        await worker.terminate();
      }
    },
    TIMEOUT,
  );

  it('the request pattern differs between requests and is not all zero', () => {
    const a = new Uint32Array(16);
    const b = new Uint32Array(16);
    loopbackPattern(0, a);
    loopbackPattern(1, b);
    expect(a.some((w) => w !== 0)).toBe(true);
    expect(a).not.toEqual(b);
  });

  it.each([
    [{ num: 1, payload: 64 }, 'queue size 1'],
    [{ num: 100, payload: 64 }, 'queue size 100'],
    [{ num: 8, payload: 6 }, 'payload 6'],
    [{ num: 8, payload: 2 ** 21 }, `payload ${2 ** 21}`],
  ])('rejects the geometry %o with EINVAL', (config, what) => {
    expect(() => loopbackLayout(config)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining(what) }),
    );
  });

  it('rejects a request count that is not a positive integer', async () => {
    await expect(runLoopback({ num: 8, payload: 64, requests: 0, batch: 1, verify: true })).rejects.toEqual(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});
