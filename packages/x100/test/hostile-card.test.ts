// A hostile card on the worker platform, with real races: the card program rewrites its DMA
// descriptors and ring while the engine works on them, writes every DMA register (the host's
// channels' too, and past the write handlers), points descriptors anywhere, and writes host
// memory through the SMPT (also where the host did not DMA-map it); meanwhile the host runs its
// own DMA traffic and maps and unmaps a buffer again and again (the IOMMU table changes under
// the engine). Fast-check picks the attacks; a fixed number of cases keeps a run to a few
// seconds.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createMemoryLogger } from '@mic/logger';
import type { WorkerPlatform } from '../src/index.js';
import {
  X100_CARD_STATE,
  X100_DMA_REG,
  X100_SMPT,
  createWorkerPlatform,
  writeDmaMemcpyDesc,
} from '../src/index.js';
import {
  cardRing,
  cherr,
  completion,
  reg,
  setHead,
  setupChannel,
  statusWorks,
  type Rig,
} from './dma-helpers.js';
import { eventually } from './helpers.js';

const HOSTILE_CARD = new URL('./fixtures/card-hostile.mjs', import.meta.url);
const MIB = 1 << 20;
const CARD_MEMORY = 4 * MIB;
const HOST_RAM = 4 * MIB;
/** The card's own ring (64 descriptors) and a scratch area, in card memory. */
const CARD_RING = 0x1000;
const CARD_ENTRIES = 16;
const SCRATCH = 0x40000;
/** The host's ring and copy buffers when it maps nothing: in card memory, through the aperture. */
const HOST_CARD_RING = 0x10000;
const HOST_SRC = 0x100000;
const HOST_DST = 0x200000;
/**
 * What the host maps for the card when it maps something: its ring (a page), a 64 KiB buffer at
 * the very end of host RAM (a copy that ran past its checked range would run off the end), and
 * a 64 KiB buffer in the middle that it maps and unmaps while the card attacks. SMPT entry 0
 * then covers all of this small host RAM (16 GiB entries): only the IOMMU keeps the card to these.
 */
const HOST_RING_RAM = 0x0;
const HOST_RING_SIZE = 4096;
const MAPPED_SIZE = 64 * 1024;
const MAPPED_RAM = HOST_RAM - MAPPED_SIZE;
const TRANSIENT_RAM = HOST_RAM / 2;
const TRANSIENT_SIZE = 64 * 1024;

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
/** An address of card-hostile.mjs's list (`address()`), moved by a few words. */
const addr = fc.record({ base: fc.nat(19), delta: fc.integer({ min: -4, max: 4 }) });
/** MEMCPY lengths in 64-byte units: one chunk or less, many chunks, anything the field holds. */
const units = fc.oneof(fc.nat(64), fc.integer({ min: 64, max: 4096 }), fc.nat(2 ** 18 - 1));
const action = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('desc'),
      slot: fc.nat(CARD_ENTRIES - 1),
      kind: fc.nat(15),
      raw: fc.boolean(),
      src: addr,
      dst: addr,
      units,
      value: u32,
      intr: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('grow'),
      slot: fc.nat(CARD_ENTRIES - 1),
      tail: fc.boolean(),
      units,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('retype'), kind: fc.nat(15) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('prime'), src: addr, dst: addr, units }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('copy'), src: addr, dst: addr, units }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('revive') }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('race'),
      // from the ring, the scratch area, card address 0 or mapped host memory; to mapped host
      // memory (at the end of host RAM: most often), over its own ring, or to the scratch area
      src: fc.record({ base: fc.constantFrom(0, 2, 5, 6), delta: fc.constant(0) }),
      dst: fc.record({ base: fc.constantFrom(6, 6, 0, 2), delta: fc.constant(0) }),
      units: fc.integer({ min: 17, max: 1024 }),
      grow: fc.nat(2 ** 18 - 1),
      spins: fc.integer({ min: 1, max: 500 }),
      // grown only, or also turned into another type (NOP, STATUS, ...) half way
      retype: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat(15) }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('head'),
      own: fc.boolean(),
      ch: fc.nat(7),
      value: fc.oneof(fc.nat(CARD_ENTRIES), u32),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('dcr'), value: u32 }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drar'), ch: fc.nat(7), addr, value: u32 }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('raw'), ch: fc.nat(7), reg: fc.nat(15), value: u32 }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('host'), addr, value: fc.nat(255) }) },
  // host memory the host did not DMA-map (or only in part), by the card's CPU or its DMA
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('stray'),
      at: fc.nat(5),
      dma: fc.boolean(),
      units: fc.integer({ min: 1, max: 64 }),
      value: fc.nat(255),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('bell'), value: fc.nat(3) }) },
  // SMPT entries reprogrammed: rarely entry 0, which cuts the card off all of this host RAM
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('smpt'),
      entry: fc.oneof(
        { weight: 7, arbitrary: fc.integer({ min: 1, max: 31 }) },
        { weight: 1, arbitrary: fc.constant(0) },
      ),
      value: u32,
    }),
  },
);
const attack = fc.record({
  ch: fc.integer({ min: 4, max: 7 }),
  actions: fc.array(action, { minLength: 8, maxLength: 64 }),
  rounds: fc.integer({ min: 10, max: 100 }),
});

type Attack = typeof attack extends fc.Arbitrary<infer T> ? T : never;

/** Fills `bytes` with a pattern that differs per position. */
function fill(bytes: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes.length; i++) {
    x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
    bytes[i] = x >>> 24;
  }
}

/**
 * The host's own traffic while the card attacks: 4 KiB copies on host channel 0, each waited
 * for at most 2 s (the card may disable the channel or break its ring: then it is set up
 * again), and `each()` between two copies. Every host call here must return. Resolves once
 * `done()` holds.
 */
async function hostTraffic(
  p: WorkerPlatform,
  mapHost: boolean,
  done: () => boolean,
  each: () => void = () => {},
): Promise<number> {
  const rig = { hw: p.hardware, host: p.host } as Rig;
  const ring = mapHost
    ? {
        mem: p.hardware.hostRam.window(HOST_RING_RAM, 16 * 8),
        addr: X100_SMPT.BASE + HOST_RING_RAM,
        entries: 8,
      }
    : cardRing(rig, HOST_CARD_RING, 8);
  const src = mapHost ? X100_SMPT.BASE + MAPPED_RAM : HOST_SRC;
  let copies = 0;
  let fresh = true;
  while (!done()) {
    // Yield on every round: with the channel in error the inner wait ends at once, and a loop
    // that never awaited would block the event loop, so the card's answer that ends the attack
    // (a message) could never arrive.
    await new Promise((resolve) => setImmediate(resolve));
    each();
    if (fresh) {
      setupChannel(rig, 0, ring, false);
      fresh = false;
    }
    const slot = p.hardware.mmio.read32(reg(0, X100_DMA_REG.DTPR)) % 8;
    writeDmaMemcpyDesc(ring.mem, slot * 16, src, HOST_DST, 4096);
    setHead(rig, 0, (slot + 1) % 8);
    const deadline = Date.now() + 2000;
    while (completion(rig, 0) === slot && cherr(rig, 0) === 0 && Date.now() < deadline && !done()) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    if (completion(rig, 0) !== slot && cherr(rig, 0) === 0) copies++;
    else fresh = true;
  }
  return copies;
}

describe('a hostile card on the worker platform', () => {
  let p: WorkerPlatform;
  const logger = createMemoryLogger();
  beforeAll(() => {
    p = createWorkerPlatform({
      logger,
      cardModule: HOSTILE_CARD,
      cardMemorySize: CARD_MEMORY,
      hostRamSize: HOST_RAM,
      resetDelayMs: 0,
      dmaChunkBytes: 1024,
    });
  });
  afterAll(async () => {
    await p.close();
  });

  it('never takes the host down, never touches host RAM outside what the host DMA-mapped, and a reset recovers every channel', async () => {
    const ram = p.hardware.hostRam.bytes(0, HOST_RAM);
    const ctx = {
      ring: CARD_RING,
      entries: CARD_ENTRIES,
      scratch: SCRATCH,
      mapped: X100_SMPT.BASE + MAPPED_RAM,
      mappedSize: MAPPED_SIZE,
      hostRing: X100_SMPT.BASE + HOST_RING_RAM,
      hostRingSize: HOST_RING_SIZE,
      transient: X100_SMPT.BASE + TRANSIENT_RAM,
      transientSize: TRANSIENT_SIZE,
      smptBase: X100_SMPT.BASE,
      smptPage: X100_SMPT.PAGE_SIZE,
    };
    /**
     * The card runs `a` while the host runs its own traffic (and `each()`); nothing may crash,
     * and the engine never faults (IOMMU faults are the card's doing, and expected).
     */
    const run = async (a: Attack, mapHost: boolean, each?: () => void): Promise<void> => {
      const card = p.card!;
      let attacking = true;
      const attacked = card
        .call('attack', { ch: a.ch, rounds: a.rounds, actions: a.actions, ctx })
        .finally(() => {
          attacking = false;
        });
      await hostTraffic(p, mapHost, () => !attacking, each);
      expect(typeof (await attacked)).toBe('number');
      expect(
        logger.records.filter(
          (r) => r.level === 'error' || (r.component.startsWith('dma') && !r.component.endsWith('iommu')),
        ),
      ).toEqual([]);
    };
    await fc.assert(
      fc.asyncProperty(attack, async (a) => {
        await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready', 20_000);
        await p.startCard();
        // no SMPT entry maps host RAM: not a byte of it changes
        fill(ram, a.rounds);
        const before = ram.slice();
        await run(a, false);
        expect(Buffer.compare(ram, before)).toBe(0);
        // the host DMA-maps its ring and a buffer at the end of host RAM, and maps and unmaps
        // another one meanwhile: SMPT entry 0 then covers all of this small host RAM (16 GiB
        // entries); the IOMMU keeps the card to those three
        const ring = p.host.mapSingle(HOST_RING_RAM, HOST_RING_SIZE);
        const buffer = p.host.mapSingle(MAPPED_RAM, MAPPED_SIZE);
        let transient: number | undefined;
        await run(a, true, () => {
          if (transient === undefined) transient = p.host.mapSingle(TRANSIENT_RAM, TRANSIENT_SIZE);
          else {
            p.host.unmapSingle(transient, TRANSIENT_SIZE);
            transient = undefined;
          }
        });
        p.host.unmapSingle(ring, HOST_RING_SIZE);
        p.host.unmapSingle(buffer, MAPPED_SIZE);
        if (transient !== undefined) p.host.unmapSingle(transient, TRANSIENT_SIZE);
        expect(p.host.iommu.liveMappings).toBe(0);
        // the three buffers may have changed; not a byte outside them
        const after = ram.slice();
        for (const [at, size] of [
          [HOST_RING_RAM, HOST_RING_SIZE],
          [MAPPED_RAM, MAPPED_SIZE],
          [TRANSIENT_RAM, TRANSIENT_SIZE],
        ] as const) {
          after.set(before.subarray(at, at + size), at);
        }
        expect(Buffer.compare(after, before)).toBe(0);
        // the host's event loop runs, a reset recovers, every channel works again
        await new Promise((resolve) => setTimeout(resolve, 0));
        p.host.reset();
        await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready', 20_000);
        for (let ch = 0; ch < 8; ch++) await statusWorks(p, ch);
        p.host.reset();
      }),
      { numRuns: 10, endOnFailure: true },
    );
    // the card did try (the IOMMU refused some of its accesses), and the faults were logged
    expect(p.host.iommu.faults().count).toBeGreaterThan(0);
    expect(logger.records.some((r) => r.msg.startsWith('IOMMU fault'))).toBe(true);
  }, 120_000);
});
