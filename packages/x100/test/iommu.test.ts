// The host's IOMMU (issue 10, "Isolation that is real"): the card's CPU and its DMA engine reach
// only the host ranges the host DMA-mapped, not everything behind a 16 GiB SMPT entry; faults
// are refused (EFAULT, DCHERR), counted, recorded and logged; unmap is an IOTLB invalidation.
import { afterEach, describe, expect, it } from '@jest/globals';
import { createMemoryLogger } from '@mic/logger';
import type { X100Platform } from '../src/index.js';
import {
  X100_DMA_CHERR,
  X100_IOMMU,
  X100_SMPT,
  X100CardView,
  createInProcessPlatform,
  createWorkerPlatform,
  writeDmaMemcpyDesc,
  writeDmaStatusDesc,
} from '../src/index.js';
import {
  cardRing,
  cherr,
  completion,
  makeRig,
  pattern,
  runEngine,
  setHead,
  setupChannel,
  type Rig,
} from './dma-helpers.js';
import { ECHO_CARD, eventually } from './helpers.js';

const KIB = 1024;
const { BASE } = X100_SMPT;
/** The mapped range of most tests: a page of host RAM. */
const AT = 0x2000;
const SIZE = 0x1000;

/** A platform whose card view the test drives itself (no card code). */
function inProcess(iommu?: boolean) {
  const logger = createMemoryLogger();
  const p = createInProcessPlatform({
    cardMemorySize: 1 << 20,
    hostRamSize: 1 << 20,
    dmaEngine: false,
    logger,
    ...(iommu === undefined ? {} : { iommu }),
  });
  const card = new X100CardView(p.hardware, {
    delivery: 'microtask',
    clock: p.clock,
    generation: p.hardware.generation,
  });
  return { p, card, logger };
}

const efault = expect.objectContaining({ code: 'EFAULT' });

describe('the IOMMU table', () => {
  it('allows exactly the mapped bytes: first and last byte, not one before or after, no straddling, empty ranges inside only', () => {
    const { p } = inProcess();
    const iommu = p.host.iommu;
    expect(iommu.enabled).toBe(true);
    expect(iommu.allows(AT, 1)).toBe(false);
    iommu.map(AT, SIZE);
    expect(iommu.allows(AT, 1)).toBe(true);
    expect(iommu.allows(AT + SIZE - 1, 1)).toBe(true);
    expect(iommu.allows(AT, SIZE)).toBe(true);
    expect(iommu.allows(AT - 1, 1)).toBe(false);
    expect(iommu.allows(AT + SIZE, 1)).toBe(false);
    expect(iommu.allows(AT + SIZE - 64, 128)).toBe(false); // runs off the end
    expect(iommu.allows(AT - 64, 128)).toBe(false); // runs in from below
    expect(iommu.allows(AT - 64, SIZE + 128)).toBe(false); // covers it and more
    expect(iommu.allows(AT, 0)).toBe(true);
    expect(iommu.allows(AT + SIZE - 1, 0)).toBe(true);
    expect(iommu.allows(AT + SIZE, 0)).toBe(false); // an empty range at the end starts outside
    expect(iommu.ranges()).toEqual([{ dmaAddr: AT, size: SIZE }]);
  });

  it('merges touching and overlapping mappings, counts each, and splits them again on unmap', () => {
    const { p } = inProcess();
    const iommu = p.host.iommu;
    iommu.map(AT, SIZE);
    iommu.map(AT + SIZE, SIZE);
    iommu.map(AT + 0x800, 0x100);
    expect(iommu.ranges()).toEqual([{ dmaAddr: AT, size: 2 * SIZE }]);
    expect(iommu.allows(AT + SIZE - 64, 128)).toBe(true); // across the seam
    iommu.unmap(AT + SIZE, SIZE);
    expect(iommu.allows(AT + SIZE - 64, 128)).toBe(false);
    // a range mapped twice needs two unmaps
    iommu.map(AT, SIZE);
    iommu.unmap(AT, SIZE);
    expect(iommu.allows(AT, SIZE)).toBe(true);
    iommu.unmap(AT, SIZE);
    expect(iommu.ranges()).toEqual([{ dmaAddr: AT + 0x800, size: 0x100 }]);
    iommu.unmap(AT + 0x800, 0x100);
    expect(iommu.liveMappings).toBe(0);
    expect(iommu.allows(AT + 0x800, 1)).toBe(false);
  });

  it('refuses an unmap of what is not mapped as such and a map outside host RAM, changing nothing', () => {
    const { p } = inProcess();
    const iommu = p.host.iommu;
    iommu.map(AT, SIZE);
    expect(() => iommu.unmap(AT, SIZE / 2)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => iommu.unmap(AT + 64, SIZE - 64)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => iommu.unmap(0x9000, SIZE)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => iommu.map((1 << 20) - 64, 128)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => iommu.map(AT, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    iommu.unmap(AT, 0); // an empty unmap does nothing
    expect(iommu.ranges()).toEqual([{ dmaAddr: AT, size: SIZE }]);
  });

  it(`holds ${X100_IOMMU.MAX_RANGES} disjoint ranges and refuses one more (ENOSPC), changing nothing`, () => {
    const { p } = inProcess();
    const iommu = p.host.iommu;
    for (let i = 0; i < X100_IOMMU.MAX_RANGES; i++) iommu.map(4096 + 128 * i, 64);
    const last = 4096 + 128 * X100_IOMMU.MAX_RANGES;
    expect(() => iommu.map(last, 64)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(iommu.allows(last, 64)).toBe(false);
    expect(iommu.ranges()).toHaveLength(X100_IOMMU.MAX_RANGES);
    expect(iommu.allows(4096 + 128 * (X100_IOMMU.MAX_RANGES - 1), 64)).toBe(true);
    // one that fills a gap joins two ranges into one
    iommu.map(4096 + 64, 64);
    expect(iommu.ranges()).toHaveLength(X100_IOMMU.MAX_RANGES - 1);
    iommu.map(last, 64);
    expect(iommu.allows(last, 64)).toBe(true);
  });
});

describe('card CPU accesses (cardMap) through the IOMMU', () => {
  it('reach the mapped range to its first and last byte and nothing else behind the SMPT entry: EFAULT, a fault recorded and logged', () => {
    const { p, card, logger } = inProcess();
    const mic = p.host.mapSingle(AT, SIZE);
    expect(mic).toBe(BASE + AT);
    card.cardMap(mic, SIZE).writeU8(SIZE - 1, 7);
    card.cardMap(mic, 1).writeU8(0, 6);
    card.cardMap(mic + SIZE - 1, 1).writeU8(0, 8);
    expect(p.host.dmaWindow(AT, SIZE).readU8(0)).toBe(6);
    expect(p.host.dmaWindow(AT, SIZE).readU8(SIZE - 1)).toBe(8);
    expect(card.cardMap(mic + 16, 0).byteLength).toBe(0);
    expect(card.smptTranslate(mic + 16)).toBe(AT + 16);
    expect(() => card.cardMap(mic - 1, 1)).toThrow(efault);
    expect(() => card.cardMap(mic + SIZE, 1)).toThrow(efault);
    expect(() => card.cardMap(mic + SIZE - 4, 8)).toThrow(efault);
    expect(() => card.cardMap(mic + SIZE, 0)).toThrow(efault);
    expect(() => card.smptTranslate(mic + SIZE)).toThrow(efault);
    // the rest of host RAM behind entry 0 (which the SMPT maps in 16 GiB)
    expect(() => card.cardMap(BASE + 0x8000, 64)).toThrow(efault);
    expect(() => card.cardMap(BASE + (1 << 20) - 64, 64)).toThrow(efault);
    const faults = p.host.iommu.faults();
    expect(faults.count).toBe(7);
    expect(faults.recent.map((f) => f.index)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(faults.recent[2]).toEqual({
      index: 3,
      channel: -1,
      micAddr: mic + SIZE - 4,
      hostAddr: AT + SIZE - 4,
      length: 8,
    });
    const logged = logger.records.filter((r) => r.msg.startsWith('IOMMU fault'));
    expect(logged).toHaveLength(7);
    expect(logged[0]).toMatchObject({
      level: 'warn',
      component: 'iommu',
      fields: { fault: 1, channel: -1, micAddr: `0x${(mic - 1).toString(16)}`, length: 1 },
    });
  });

  it('lose the range once it is unmapped (a new cardMap: EFAULT)', () => {
    const { p, card } = inProcess();
    const mic = p.host.mapSingle(AT, SIZE);
    card.cardMap(mic, SIZE);
    p.host.unmapSingle(mic, SIZE);
    // the SMPT entry stays valid through another mapping: only the IOMMU refuses now
    const other = p.host.mapSingle(0x8000, SIZE);
    expect(p.hardware.smptTranslate(mic, SIZE)).toBe(AT);
    expect(() => card.cardMap(mic, SIZE)).toThrow(efault);
    expect(() => card.cardMap(mic, 1)).toThrow(efault);
    card.cardMap(other, SIZE);
  });

  it('log the first 16 faults and then every power of two, counting every one', () => {
    const { p, card, logger } = inProcess();
    p.host.mapSingle(AT, SIZE);
    for (let i = 0; i < 70; i++) expect(() => card.cardMap(BASE + 0x8000 + i, 1)).toThrow(efault);
    const logged = logger.records.filter((r) => r.msg.startsWith('IOMMU fault'));
    expect(logged.map((r) => r.fields.fault)).toEqual([
      ...Array.from({ length: 16 }, (_, i) => i + 1),
      32,
      64,
    ]);
    const faults = p.host.iommu.faults();
    expect(faults.count).toBe(70);
    expect(faults.recent.map((f) => f.index)).toEqual(Array.from({ length: 16 }, (_, i) => 55 + i));
    expect(faults.recent.at(-1)?.micAddr).toBe(BASE + 0x8000 + 69);
  });

  it('with iommu: false reach every byte behind a mapped SMPT entry (the bare hardware), and no fault is counted', () => {
    const { p, card } = inProcess(false);
    expect(p.host.iommu.enabled).toBe(false);
    const mic = p.host.mapSingle(AT, SIZE);
    card.cardMap(BASE + 0x8000, 64).writeU8(0, 5);
    expect(p.host.dmaWindow(0x8000, 1).readU8(0)).toBe(5);
    card.cardMap(mic + SIZE - 4, 8);
    card.cardMap(mic + SIZE, 0);
    expect(p.host.iommu.allows(0x8000, 64)).toBe(true);
    expect(p.host.iommu.faults().count).toBe(0);
    // the SMPT still refuses what no entry maps
    expect(() => card.cardMap(BASE + X100_SMPT.PAGE_SIZE, 8)).toThrow(efault);
  });
});

describe('DMA through the IOMMU (engine stepped by hand)', () => {
  /** Channel 4 (card-owned), its ring in card memory; a mapped host page at AT. */
  function rigWithPage(
    chunkBytes?: number,
    iommu = true,
  ): { rig: Rig; mic: number; ring: ReturnType<typeof cardRing> } {
    const rig = makeRig(chunkBytes, iommu);
    const ring = cardRing(rig, 0x1000, 64);
    setupChannel(rig, 4, ring, true);
    rig.hw.cardMemory.write(0x40000, pattern(64 * KIB, 3));
    return { rig, mic: rig.host.mapSingle(AT, SIZE), ring };
  }
  const hostPage = (rig: Rig): Uint8Array => rig.hw.hostRam.bytes(0, 0x10000).slice();

  it('copies into and out of the mapped range to its first and last byte', () => {
    const { rig, mic, ring } = rigWithPage();
    writeDmaMemcpyDesc(ring.mem, 0, 0x40000, mic, SIZE);
    writeDmaMemcpyDesc(ring.mem, 16, mic + SIZE - 64, 0x50000, 64);
    writeDmaMemcpyDesc(ring.mem, 32, 0x40000, mic + SIZE, 0); // empty, at the end: refused
    setHead(rig, 4, 2);
    runEngine(rig.engine);
    expect(cherr(rig, 4)).toBe(0);
    expect(completion(rig, 4)).toBe(2);
    expect(Buffer.compare(rig.hw.hostRam.bytes(AT, SIZE), pattern(64 * KIB, 3).subarray(0, SIZE))).toBe(0);
    expect(
      Buffer.compare(rig.hw.cardMemory.bytes(0x50000, 64), rig.hw.hostRam.bytes(AT + SIZE - 64, 64)),
    ).toBe(0);
    setHead(rig, 4, 3);
    runEngine(rig.engine);
    expect(cherr(rig, 4)).toBe(X100_DMA_CHERR.ADDR);
    expect(completion(rig, 4)).toBe(2);
  });

  /** A descriptor: source (-1: a STATUS), destination, length. */
  type Desc = readonly [src: number, dst: number, len: number];
  const cases: readonly { readonly name: string; readonly d: (mic: number) => Desc }[] = [
    {
      name: 'a MEMCPY destination that runs off the end of the mapping',
      d: (m: number) => [0x40000, m + SIZE - 64, 128],
    },
    { name: 'a MEMCPY destination just below the mapping', d: (m: number) => [0x40000, m - 64, 64] },
    { name: 'a MEMCPY destination elsewhere behind the SMPT entry', d: () => [0x40000, BASE + 0x8000, 4096] },
    { name: 'a MEMCPY source the host did not map', d: () => [BASE + 0x8000, 0x50000, 64] },
    { name: 'a STATUS that runs off the end of the mapping', d: (m: number) => [-1, m + SIZE - 4, 8] },
  ];
  for (const c of cases) {
    it(`stops the channel with DCHERR ADDR on ${c.name}, touching nothing, and records the fault`, () => {
      const { rig, mic, ring } = rigWithPage();
      const [src, dst, len] = c.d(mic);
      if (src < 0) writeDmaStatusDesc(ring.mem, 0, dst, 0x1122334455667788n, false);
      else writeDmaMemcpyDesc(ring.mem, 0, src, dst, len);
      const before = hostPage(rig);
      setHead(rig, 4, 1);
      runEngine(rig.engine);
      expect(cherr(rig, 4)).toBe(X100_DMA_CHERR.ADDR);
      expect(completion(rig, 4)).toBe(0);
      expect(Buffer.compare(hostPage(rig), before)).toBe(0);
      const faults = rig.host.iommu.faults();
      expect(faults.count).toBe(1);
      expect(faults.recent[0]).toMatchObject({ channel: 4, micAddr: src < 0 || src < BASE ? dst : src });
    });
  }

  it('stops the channel on a descriptor taken after the unmap', () => {
    const { rig, mic, ring } = rigWithPage();
    writeDmaMemcpyDesc(ring.mem, 0, 0x40000, mic, 64);
    writeDmaMemcpyDesc(ring.mem, 16, 0x40000, mic, 64);
    setHead(rig, 4, 1);
    runEngine(rig.engine);
    expect(completion(rig, 4)).toBe(1);
    rig.host.unmapSingle(mic, SIZE);
    rig.host.mapSingle(0x8000, SIZE); // SMPT entry 0 stays valid
    setHead(rig, 4, 2);
    runEngine(rig.engine);
    expect(cherr(rig, 4)).toBe(X100_DMA_CHERR.ADDR);
    expect(completion(rig, 4)).toBe(1);
  });

  it('stops a latched copy at its next chunk after an unmap: nothing lands after unmap returned', () => {
    const { rig, ring } = rigWithPage(4 * KIB);
    const dst = rig.host.mapSingle(0x10000, 64 * KIB);
    writeDmaMemcpyDesc(ring.mem, 0, 0x40000, dst, 64 * KIB);
    setHead(rig, 4, 1);
    expect(rig.engine.step()).toBe(true); // one chunk of 4 KiB
    const landed = rig.hw.hostRam.bytes(0x10000, 64 * KIB).slice();
    expect(Buffer.compare(landed.subarray(0, 4 * KIB), pattern(64 * KIB, 3).subarray(0, 4 * KIB))).toBe(0);
    expect(landed.subarray(4 * KIB).every((b) => b === 0)).toBe(true);
    rig.host.unmapSingle(dst, 64 * KIB);
    runEngine(rig.engine);
    expect(cherr(rig, 4)).toBe(X100_DMA_CHERR.ADDR);
    expect(completion(rig, 4)).toBe(0);
    expect(Buffer.compare(rig.hw.hostRam.bytes(0x10000, 64 * KIB), landed)).toBe(0);
    expect(rig.host.iommu.faults().recent[0]).toMatchObject({
      channel: 4,
      micAddr: dst + 4 * KIB,
      hostAddr: 0x10000 + 4 * KIB,
      length: 60 * KIB,
    });
  });

  it('refuses a host-owned ring the host did not DMA-map at enable (DCHERR RING), and a mapped one once it is unmapped', () => {
    const rig = makeRig();
    // SMPT-mapped only: the bare SMPT would let the engine read it
    const mic = rig.host.smpt.map(0x8000, 1024);
    setupChannel(rig, 0, { mem: rig.hw.hostRam.window(0x8000, 1024), addr: mic, entries: 64 }, false);
    expect(cherr(rig, 0)).toBe(X100_DMA_CHERR.RING);
    expect(rig.host.iommu.faults().recent[0]).toMatchObject({ channel: 0, micAddr: mic, length: 1024 });
    const ringMic = rig.host.mapSingle(0x9000, 1024);
    const ring = { mem: rig.hw.hostRam.window(0x9000, 1024), addr: ringMic, entries: 64 };
    setupChannel(rig, 1, ring, false);
    const cardDst = 0x60000;
    writeDmaStatusDesc(ring.mem, 0, cardDst, 1n, false);
    writeDmaStatusDesc(ring.mem, 16, cardDst, 2n, false);
    setHead(rig, 1, 1);
    runEngine(rig.engine);
    expect(rig.hw.cardMemory.readBigU64(cardDst)).toBe(1n);
    rig.host.unmapSingle(ringMic, 1024);
    rig.host.mapSingle(0xa000, 64); // SMPT entry 0 stays valid
    setHead(rig, 1, 2);
    runEngine(rig.engine);
    expect(cherr(rig, 1)).toBe(X100_DMA_CHERR.RING);
    expect(rig.hw.cardMemory.readBigU64(cardDst)).toBe(1n);
  });

  it('with iommu: false copies anywhere behind a mapped SMPT entry (the bare hardware)', () => {
    const { rig, mic, ring } = rigWithPage(undefined, false);
    writeDmaMemcpyDesc(ring.mem, 0, 0x40000, BASE + 0x8000, 4096);
    writeDmaMemcpyDesc(ring.mem, 16, 0x40000, mic + SIZE - 64, 128);
    setHead(rig, 4, 2);
    runEngine(rig.engine);
    expect(cherr(rig, 4)).toBe(0);
    expect(completion(rig, 4)).toBe(2);
    expect(Buffer.compare(rig.hw.hostRam.bytes(0x8000, 4096), pattern(64 * KIB, 3).subarray(0, 4096))).toBe(
      0,
    );
    expect(rig.host.iommu.faults().count).toBe(0);
  });
});

describe('unmap on the worker platform, with the engine in its own thread', () => {
  let platform: X100Platform | undefined;
  afterEach(async () => {
    await platform?.close();
    platform = undefined;
  });

  it('returns only once the copy in flight can no longer write: not a byte lands after it, and the copy stops with DCHERR ADDR', async () => {
    const MIB = 1 << 20;
    const p = createWorkerPlatform({
      cardModule: ECHO_CARD,
      cardMemorySize: 32 * MIB,
      hostRamSize: 32 * MIB,
      dmaChunkBytes: MIB,
    });
    platform = p;
    const rig = { hw: p.hardware, host: p.host } as Rig;
    const len = 16 * MIB - 64;
    const src = 8 * MIB;
    // no zero byte in the source: the bytes written so far are the non-zero prefix of dst
    const data = pattern(len, 11).map((b) => b | 1);
    p.hardware.cardMemory.write(src, data);
    const dstRam = 8 * MIB;
    const dst = p.hardware.hostRam.bytes(dstRam, len);
    /** Length of the written prefix (a copy goes front to back). */
    const written = (): number => {
      let lo = 0;
      let hi = len;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (dst[mid] !== 0) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    let stopped = 0;
    for (let attempt = 0; attempt < 20 && stopped < 3; attempt++) {
      dst.fill(0);
      const mic = p.host.mapSingle(dstRam, len);
      const ring = cardRing(rig, 0x1000, 8);
      setupChannel(rig, 0, ring, false);
      // a channel used before continues at its tail
      const slot = completion(rig, 0);
      writeDmaMemcpyDesc(ring.mem, slot * 16, src, mic, len);
      setHead(rig, 0, (slot + 1) % 8);
      const deadline = Date.now() + 20_000;
      while (dst[0] === 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
      p.host.unmapSingle(mic, len);
      const atUnmap = written();
      await eventually(() => completion(rig, 0) !== slot || cherr(rig, 0) !== 0, 'the copy to end', 20_000);
      if (cherr(rig, 0) !== 0) {
        // stopped part way: exactly what had landed when unmap returned, nothing after it
        expect(cherr(rig, 0)).toBe(X100_DMA_CHERR.ADDR);
        expect(written()).toBe(atUnmap);
        expect(atUnmap).toBeLessThan(len);
        expect(dst.subarray(atUnmap).every((b) => b === 0)).toBe(true);
        stopped++;
      } else {
        expect(written()).toBe(len); // finished before the unmap
      }
    }
    expect(stopped).toBeGreaterThan(0);
    expect(p.host.iommu.faults().count).toBe(stopped);
  }, 120_000);
});
