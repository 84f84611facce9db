import { describe, expect, it } from '@jest/globals';
import { MOCK_SMPT_BASE } from '@mic/bus-core';
import {
  MIC_DEVICE_CTRL_OFFSETS as CTRL,
  dpVqconfigOffset,
  micAlignedDescSize,
  micTotalDescSize,
  micVringMagic,
} from '@mic/mic-common';
import { VIRTIO_CONFIG_S, VIRTIO_ID } from '@mic/virtio';
import fc from 'fast-check';
import { type HostDeviceSpec } from './host-double.js';
import { type CardSetup, setupCard } from './setup.js';
import { RX_COUNT } from './test-driver.js';

/** Runs of the hostile-host property (the brief asks for at least 1,000). */
const HOSTILE_RUNS = 1000;
/** Runs of the random-page property (each may wait out several 10 s handshakes in virtual time). */
const RANDOM_PAGE_RUNS = 200;

const { DRIVER_OK } = VIRTIO_CONFIG_S;
/** Queues the test driver asks for, by type (types without a driver bind nothing). */
const DRIVER_QUEUES: Record<number, number> = {
  [VIRTIO_ID.NET]: 2,
  [VIRTIO_ID.BLOCK]: 1,
  [VIRTIO_ID.CONSOLE]: 2,
};
const UNDRIVEN = 9;
/** Generous bound for the property tests on a busy machine (they take a few seconds). */
const PROPERTY_TIMEOUT_MS = 600_000;

function allocated(s: CardSetup): { irqs: number; buffers: number; mappings: number } {
  let irqs = 0;
  for (let db = 0; db < 16; db++) irqs += s.link.card.usage(db);
  return { irqs, buffers: s.link.cardDmaOps.liveBuffers, mappings: s.link.card.liveMappings };
}

const NOTHING = { irqs: 0, buffers: 0, mappings: 0 };

function errorLogs(s: CardSetup): string[] {
  return s.logger.records.filter((r) => r.level === 'error').map((r) => r.msg);
}

describe('a hostile host: table of bad entries', () => {
  const good = { type: 3, nums: [128, 128] };
  const cases: {
    name: string;
    spec: HostDeviceSpec;
    raw?: (s: CardSetup) => void;
    code: string;
    message: RegExp;
  }[] = [
    {
      name: 'a wrong vring magic',
      spec: { ...good, magic: (i) => (i === 1 ? 0xc0ffee00 : micVringMagic(3, i)) },
      code: 'EIO',
      message: /vring 1 magic mismatch: found 0xc0ffee00, expected 0xc0ffee04/,
    },
    {
      name: 'a vring address outside the card view of host memory',
      spec: { ...good, tamper: (v) => void (v[0]!.address = MOCK_SMPT_BASE + (1 << 20)) },
      code: 'EFAULT',
      message: /not reachable/,
    },
    {
      name: 'a vring address below the SMPT window',
      spec: { ...good, tamper: (v) => void (v[1]!.address = 0x1000) },
      code: 'EFAULT',
      message: /not reachable/,
    },
    {
      name: 'an unaligned vring address',
      spec: { ...good, tamper: (v) => void (v[0]!.address += 4) },
      code: 'EFAULT',
      message: /not a 16-byte aligned address/,
    },
    {
      name: 'a vring address of 2^60',
      spec: good,
      raw: (s) => s.host.dp.writeBigU64(dpVqconfigOffset(s.hostDevs[1]!.entry, 0), 1n << 60n),
      code: 'EFAULT',
      message: /not a 16-byte aligned address/,
    },
    {
      name: 'a vring size that is not a power of two',
      spec: good,
      raw: (s) => s.host.dp.writeU16(dpVqconfigOffset(s.hostDevs[1]!.entry, 1) + 16, 100),
      code: 'EINVAL',
      message: /vqconfig\[1\]\.num 100 is not a power of two/,
    },
    {
      name: 'a vring size of 0',
      spec: good,
      raw: (s) => s.host.dp.writeU16(dpVqconfigOffset(s.hostDevs[1]!.entry, 0) + 16, 0),
      code: 'EINVAL',
      message: /num 0 is not a power of two/,
    },
    {
      name: 'no host doorbell (c2h_vdev_db -1)',
      spec: { ...good, c2hDb: -1 },
      code: 'EINVAL',
      message: /c2h_vdev_db is -1/,
    },
    {
      name: 'a host doorbell that does not exist',
      spec: { ...good, c2hDb: 40 },
      code: 'EIO',
      message: /cannot ring c2h_vdev_db 40/,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: that device fails with ${c.code}, is logged, leaves nothing; the others work`, async () => {
      const s = await setupCard({
        devices: [{ type: 1, nums: [64, 64] }, c.spec, { type: 2, nums: [32] }],
        probe: false,
      });
      c.raw?.(s);
      await s.probe();
      expect(s.driver.devices().map((d) => d.offset)).toEqual([s.hostDevs[0]!.offset, s.hostDevs[2]!.offset]);
      const failed = s.events.filter((e) => e.type === 'device-failed');
      expect(failed).toHaveLength(1);
      const f = failed[0]!;
      if (f.type !== 'device-failed') throw new Error('unreachable');
      expect(f.offset).toBe(s.hostDevs[1]!.offset);
      expect(f.error.code).toBe(c.code);
      expect(f.error.message).toMatch(c.message);
      expect(s.logger.records.some((r) => r.level === 'warn' && c.message.test(r.msg))).toBe(true);
      // Net: 2 used rings + 4 rx buffers + 2 mappings; block: 1 used ring + 1 mapping; irqs: 2 + config.
      expect(allocated(s)).toEqual({ irqs: 3, buffers: 2 + RX_COUNT + 1, mappings: 3 });
      expect(s.host.ctrlByte(s.hostDevs[1]!, 'h2cVdevDb')).toBe(0xff);
      // Not retried on the next config interrupt while the entry is unchanged.
      s.host.ringConfig();
      await s.settle();
      expect(s.events.filter((e) => e.type === 'device-failed')).toHaveLength(1);
      // The good ones move data.
      s.host.onNotify = (d) => s.host.echo(d, 1, 0);
      const net = s.driver.devices()[0]!.vdev;
      s.testDriver.send(net, Uint8Array.of(1, 2, 3));
      await s.settle();
      expect(s.testDriver.received(net).map((b) => [...b])).toEqual([[1, 2, 3]]);
      await s.vopBus.unregisterDevice(s.vpdev!);
      expect(allocated(s)).toEqual(NOTHING);
      expect(errorLogs(s)).toEqual([]);
    });
  }

  it('a malformed entry stops the walk there: devices before it work, those after are not seen', async () => {
    const s = await setupCard({
      devices: [
        { type: 3, nums: [8, 8] },
        { type: 1, nums: [8, 8] },
        { type: 2, nums: [8] },
      ],
      probe: false,
    });
    s.host.dp.writeU8(s.hostDevs[1]!.offset + 1, 7); // num_vq 7 > MIC_MAX_VRINGS
    await s.probe();
    expect(s.driver.devices().map((d) => d.offset)).toEqual([24]);
    const m = s.events.find((e) => e.type === 'page-malformed');
    expect(m).toMatchObject({ offset: s.hostDevs[1]!.offset });
    expect(s.logger.records.filter((r) => /device page walk stopped/.test(r.msg))).toHaveLength(1);
    // Repaired: the next scan finds the rest.
    s.host.dp.writeU8(s.hostDevs[1]!.offset + 1, 2);
    s.host.ringConfig();
    await s.settle();
    expect(s.driver.devices().map((d) => d.offset)).toEqual(s.hostDevs.map((h) => h.offset));
  });
});

/** One device of a generated page and what should become of it. */
interface GenDevice {
  readonly type: number;
  readonly logNums: number[];
  readonly bad: 'none' | 'magic' | 'address' | 'num' | 'c2h';
  readonly badIndex: number;
  readonly magic: number;
  readonly address: bigint;
  readonly num: number;
  readonly c2h: number;
}

const notPow2 = fc.integer({ min: 0, max: 0xffff }).filter((n) => n === 0 || (n & (n - 1)) !== 0);
const badAddress = fc.oneof(
  fc.bigInt({ min: 0n, max: BigInt(MOCK_SMPT_BASE) - 1n }),
  fc.bigInt({ min: BigInt(MOCK_SMPT_BASE + (1 << 20)), max: (1n << 64n) - 1n }),
  fc.integer({ min: 1, max: 15 }).map((d) => BigInt(MOCK_SMPT_BASE + 0x1000 * 3 + d)),
);
const genDevice: fc.Arbitrary<GenDevice> = fc
  .record({
    type: fc.constantFrom(1, 2, 3, UNDRIVEN),
    vqs: fc.integer({ min: 0, max: 4 }),
    logNums: fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 4, maxLength: 4 }),
    bad: fc.constantFrom('none', 'none', 'none', 'magic', 'address', 'num', 'c2h') as fc.Arbitrary<
      GenDevice['bad']
    >,
    badIndex: fc.nat(),
    magic: fc.integer({ min: 0, max: 0xffffffff }),
    address: badAddress,
    num: notPow2,
    c2h: fc.oneof(fc.constant(-1), fc.integer({ min: 4, max: 127 })),
  })
  .map((g) => {
    const numVq = g.type === UNDRIVEN ? g.vqs : DRIVER_QUEUES[g.type]!;
    return { ...g, logNums: g.logNums.slice(0, numVq) };
  });

/** The generated magic, or one next to it when it happens to be the right one. */
function wrongMagic(g: GenDevice, index: number): number {
  const right = micVringMagic(g.type, index);
  return g.magic === right ? (right ^ 1) >>> 0 : g.magic;
}

/** An entry with a plausible header and random bytes everywhere else (vqconfigs, features, config, ctrl). */
const genRawEntry = fc.record({
  type: fc.oneof(fc.constantFrom(-1, 1, 2, 3, UNDRIVEN), fc.integer({ min: -1, max: 127 })),
  numVq: fc.integer({ min: 0, max: 4 }),
  featureLen: fc.integer({ min: 0, max: 12 }),
  configLen: fc.integer({ min: 0, max: 40 }),
  body: fc.uint8Array({ minLength: 256, maxLength: 256 }),
  /** `c2h_vdev_db`: often a host doorbell (nobody answers on it), else any byte. */
  c2h: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: -128, max: 127 })),
  /** `config_change`, set again before each rescan. */
  configChange: fc.constantFrom(0, 0, 1, 2, 7),
});

function isBad(d: GenDevice): boolean {
  if (d.bad === 'none') return false;
  if (d.bad === 'c2h') return true;
  return d.logNums.length > 0;
}

describe('a hostile host: properties', () => {
  it(
    `random vqconfigs, magics, addresses and doorbells fail only the bad devices (${HOSTILE_RUNS} runs)`,
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(genDevice, { minLength: 1, maxLength: 6 }),
          fc.oneof(
            { weight: 3, arbitrary: fc.constant(undefined) },
            { weight: 1, arbitrary: fc.record({ pick: fc.nat(), numVq: fc.integer({ min: 5, max: 255 }) }) },
          ),
          async (gens, corrupt) => {
            const specs: HostDeviceSpec[] = gens.map((g) => {
              const nums = g.logNums.map((l) => 1 << l);
              const idx = nums.length > 0 ? g.badIndex % nums.length : 0;
              return {
                type: g.type,
                nums,
                ...(g.bad === 'magic'
                  ? { magic: (i: number) => (i === idx ? wrongMagic(g, i) : micVringMagic(g.type, i)) }
                  : {}),
                ...(g.bad === 'c2h' ? { c2hDb: g.c2h } : {}),
              };
            });
            const s = await setupCard({ devices: specs, probe: false });
            gens.forEach((g, k) => {
              const entry = s.hostDevs[k]!.entry;
              const idx = g.logNums.length > 0 ? g.badIndex % g.logNums.length : 0;
              if (g.logNums.length === 0) return;
              if (g.bad === 'address') s.host.dp.writeBigU64(dpVqconfigOffset(entry, idx), g.address);
              if (g.bad === 'num') s.host.dp.writeU16(dpVqconfigOffset(entry, idx) + 16, g.num);
            });
            const corruptAt = corrupt === undefined ? gens.length : corrupt.pick % gens.length;
            if (corrupt) s.host.dp.writeU8(s.hostDevs[corruptAt]!.offset + 1, corrupt.numVq);

            await s.probe();
            expect(s.vopBus.driverOf(s.vpdev!)).toBe(s.driver);
            const expectGood = gens.map((g, k) => k < corruptAt && !isBad(g));
            const goodOffsets = s.hostDevs.filter((_, k) => expectGood[k]).map((h) => h.offset);
            expect(s.driver.devices().map((d) => d.offset)).toEqual(goodOffsets);
            const failedOffsets = s.events.flatMap((e) => (e.type === 'device-failed' ? [e.offset] : []));
            expect(failedOffsets).toEqual(
              s.hostDevs.filter((_, k) => k < corruptAt && isBad(gens[k]!)).map((h) => h.offset),
            );
            let buffers = 0;
            let mappings = 0;
            gens.forEach((g, k) => {
              if (!expectGood[k] || g.type === UNDRIVEN) return;
              const queues = DRIVER_QUEUES[g.type]!;
              mappings += queues;
              buffers += queues + (queues > 1 ? Math.min(RX_COUNT, 1 << g.logNums[0]!) : 0);
            });
            expect(allocated(s)).toEqual({ irqs: 1 + goodOffsets.length, buffers, mappings });
            for (const d of s.driver.devices()) {
              if (d.type !== UNDRIVEN) expect(d.vdev.getStatus() & DRIVER_OK).toBe(DRIVER_OK);
            }
            // A good two-queue device moves data.
            const talker = s.driver.devices().find((d) => d.type !== UNDRIVEN && d.numVq === 2);
            if (talker) {
              s.host.onNotify = (d) => s.host.echo(d, 1, 0);
              s.testDriver.send(talker.vdev, Uint8Array.of(7, 7));
              await s.settle();
              expect(s.testDriver.received(talker.vdev).map((b) => [...b])).toEqual([[7, 7]]);
            }
            await s.vopBus.unregisterDevice(s.vpdev!);
            expect(allocated(s)).toEqual(NOTHING);
            expect(errorLogs(s)).toEqual([]);
            // Bad devices kept no doorbell.
            gens.forEach((g, k) => {
              if (k < corruptAt && isBad(g)) expect(s.host.ctrlByte(s.hostDevs[k]!, 'h2cVdevDb')).toBe(0xff);
            });
          },
        ),
        { numRuns: HOSTILE_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    `random entries with random contents never make probe or a scan throw, and nothing outlives the driver (${RANDOM_PAGE_RUNS} runs)`,
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(genRawEntry, { minLength: 1, maxLength: 8 }),
          fc.uint8Array({ minLength: 64, maxLength: 64 }),
          fc.integer({ min: 1, max: 3 }),
          async (entries, tail, rescans) => {
            const s = await setupCard({ pollIntervalMs: 1000, probe: false });
            let at = 24;
            const ctrls: { ctrl: number; configChange: number }[] = [];
            for (const e of entries) {
              const total = micTotalDescSize(e);
              if (at + total + 8 > 4096) break;
              s.host.dp.write(at, e.body.subarray(0, total));
              s.host.dp.writeU32(
                at,
                ((e.type & 0xff) | (e.numVq << 8) | (e.featureLen << 16) | (e.configLen << 24)) >>> 0,
              );
              const ctrl = at + micAlignedDescSize(e);
              s.host.dp.writeU8(ctrl + CTRL.c2hVdevDb, e.c2h & 0xff);
              s.host.dp.writeU8(ctrl + CTRL.configChange, 0);
              ctrls.push({ ctrl, configChange: e.configChange });
              at += total;
            }
            s.host.dp.write(at, tail.subarray(0, Math.min(tail.length, 4096 - at)));
            await s.probe();
            expect(s.vopBus.driverOf(s.vpdev!)).toBe(s.driver);
            expect(allocated(s).irqs).toBe(1 + s.driver.devices().length);
            for (let i = 0; i < rescans; i++) {
              for (const c of ctrls) {
                s.host.dp.writeU8(c.ctrl + CTRL.configChange, c.configChange);
                s.host.dp.writeU8(c.ctrl + CTRL.guestAck, 0);
              }
              s.host.ringConfig();
              await s.settle();
              expect(allocated(s).irqs).toBe(1 + s.driver.devices().length);
            }
            await s.vopBus.unregisterDevice(s.vpdev!);
            expect(allocated(s)).toEqual(NOTHING);
            expect(errorLogs(s)).toEqual([]);
            expect(s.host.dp.readU8(4)).toBe(0xff);
          },
        ),
        { numRuns: RANDOM_PAGE_RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
