// The DMA engine as hardware: descriptors, completion, interrupts, errors, chunking, resets.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { readBytes } from '@mic/memory';
import {
  X100_DMA_BIT,
  X100_DMA_CHERR,
  X100_DMA_REG,
  X100_REG,
  X100_SMPT,
  cardDmaSrc,
  createInProcessPlatform,
  dmaDcrEnableBit,
  hostDmaSrc,
  writeDmaMemcpyDesc,
  writeDmaStatusDesc,
} from '../src/index.js';
import {
  cardRing,
  cherr,
  completion,
  dstat,
  hostRing,
  makeRig,
  pattern,
  reg,
  runEngine,
  setHead,
  setupChannel,
  type Rig,
} from './dma-helpers.js';
import { flush, hostBuffer as hostRamBuffer } from './helpers.js';

const CARD_BUF = 0x40000;
const KIB = 1024;

/** A host buffer mapped for the card: its memory, host DMA address and card address. */
function hostBuffer(rig: Rig, size: number) {
  const buf = hostRamBuffer(rig.host, size, 4096);
  return { mem: buf.mem, dmaAddr: buf.dmaAddr, mic: rig.host.mapSingle(buf.dmaAddr, size) };
}

/**
 * Channel 4 with three 16 KiB copies from host RAM to card 0x80000 up, each followed by a STATUS
 * (a FENCE) writing 1, 2, 3 to `CARD_BUF`: one step's work, head not written yet.
 */
function threeFencedCopies(seed: number) {
  const rig = makeRig();
  const ring = cardRing(rig, 0x1000, 8);
  setupChannel(rig, 4, ring, true);
  const src = hostBuffer(rig, 64 * KIB);
  src.mem.write(0, pattern(48 * KIB, seed));
  for (let i = 0; i < 3; i++) {
    writeDmaMemcpyDesc(ring.mem, 32 * i, src.mic + i * 16 * KIB, 0x80000 + i * 16 * KIB, 16 * KIB);
    writeDmaStatusDesc(ring.mem, 32 * i + 16, CARD_BUF, BigInt(i + 1), false);
  }
  return { rig, src };
}

describe('the DMA engine', () => {
  it('copies host → card → host through a host-owned ring in host RAM and interrupts the host', async () => {
    const rig = makeRig();
    rig.host.enableInterrupts({ autoClear: false });
    const seen: number[] = [];
    rig.host.requestIrq(hostDmaSrc(1), (src) => {
      seen.push(src, completion(rig, 1));
    });
    const ring = hostRing(rig, 16);
    setupChannel(rig, 1, ring, false);
    const src = hostBuffer(rig, 8 * KIB);
    const data = pattern(8 * KIB, 7);
    src.mem.write(0, data);
    const back = hostBuffer(rig, 8 * KIB);
    const status = hostBuffer(rig, 64);
    writeDmaMemcpyDesc(ring.mem, 0, src.mic, CARD_BUF, 8 * KIB);
    writeDmaMemcpyDesc(ring.mem, 16, CARD_BUF, back.mic, 8 * KIB);
    writeDmaStatusDesc(ring.mem, 32, status.mic + 8, 0x1122334455667788n, true);
    setHead(rig, 1, 3);
    expect(rig.kicks).toBeGreaterThan(0);
    expect(completion(rig, 1)).toBe(0);
    runEngine(rig.engine);
    expect(completion(rig, 1)).toBe(3);
    expect(rig.hw.mmio.read32(reg(1, X100_DMA_REG.DTPR))).toBe(3);
    expect(Buffer.compare(rig.hw.cardMemory.bytes(CARD_BUF, 8 * KIB), data)).toBe(0);
    expect(Buffer.compare(readBytes(back.mem, 0, 8 * KIB), data)).toBe(0);
    expect(status.mem.readBigU64(8)).toBe(0x1122334455667788n);
    expect(seen).toEqual([]);
    await flush();
    expect(seen).toEqual([hostDmaSrc(1), 3]);
    expect(rig.engine.stats).toEqual({ descriptors: 3, bytes: 16 * KIB, errors: 0 });
    await rig.host.close();
  });

  it('interrupts the card for a card-owned channel, and nobody while the owner masks it in DCAR', () => {
    const rig = makeRig();
    const ring = cardRing(rig, 0x1000, 8);
    setupChannel(rig, 5, ring, true);
    writeDmaStatusDesc(ring.mem, 0, CARD_BUF, 1n, true);
    setHead(rig, 5, 1);
    runEngine(rig.engine);
    expect(rig.hw.cardLine.pending()).toBe(1 << cardDmaSrc(5));
    expect(rig.hw.hostLine.pending()).toBe(0);
    rig.hw.cardLine.clearPending(0xffffffff);
    const dcar = reg(5, X100_DMA_REG.DCAR);
    rig.hw.mmio.write32(dcar, rig.hw.mmio.read32(dcar) | X100_DMA_BIT.DCAR_IM0);
    writeDmaStatusDesc(ring.mem, 16, CARD_BUF, 2n, true);
    setHead(rig, 5, 2);
    runEngine(rig.engine);
    expect(completion(rig, 5)).toBe(2);
    expect(rig.hw.cardMemory.readBigU64(CARD_BUF)).toBe(2n);
    expect(rig.hw.cardLine.pending()).toBe(0);
  });

  it('wraps around the ring, leaving the completion count equal to the tail', () => {
    const rig = makeRig();
    const ring = cardRing(rig, 0x1000, 4);
    setupChannel(rig, 6, ring, true);
    let head = 0;
    for (let round = 0; round < 5; round++) {
      for (let k = 0; k < 3; k++) {
        writeDmaStatusDesc(ring.mem, head * 16, CARD_BUF + 8 * k, BigInt(round * 10 + k), false);
        head = (head + 1) % 4;
      }
      setHead(rig, 6, head);
      runEngine(rig.engine);
      expect(completion(rig, 6)).toBe(head);
      expect(rig.hw.cardMemory.readBigU64(CARD_BUF + 16)).toBe(BigInt(round * 10 + 2));
    }
    expect(cherr(rig, 6)).toBe(0);
  });

  it('does nothing while a channel is disabled and starts when it is enabled', () => {
    const rig = makeRig();
    const ring = cardRing(rig, 0x1000, 8);
    setupChannel(rig, 4, ring, true);
    rig.hw.mmio.write32(X100_REG.DCR, rig.hw.mmio.read32(X100_REG.DCR) & ~dmaDcrEnableBit(4));
    writeDmaStatusDesc(ring.mem, 0, CARD_BUF, 9n, false);
    setHead(rig, 4, 1);
    runEngine(rig.engine);
    expect(completion(rig, 4)).toBe(0);
    expect(rig.hw.cardMemory.readBigU64(CARD_BUF)).toBe(0n);
    rig.hw.mmio.write32(X100_REG.DCR, rig.hw.mmio.read32(X100_REG.DCR) | dmaDcrEnableBit(4));
    runEngine(rig.engine);
    expect(completion(rig, 4)).toBe(1);
    expect(rig.hw.cardMemory.readBigU64(CARD_BUF)).toBe(9n);
  });

  it('moves large copies in chunks so that other channels interleave and progress shows', () => {
    const rig = makeRig(4096);
    const big = cardRing(rig, 0x1000, 8);
    const small = cardRing(rig, 0x2000, 8);
    setupChannel(rig, 4, big, true);
    setupChannel(rig, 7, small, true);
    const data = pattern(64 * KIB, 3);
    rig.hw.cardMemory.write(0x10000, data);
    writeDmaMemcpyDesc(big.mem, 0, 0x10000, 0x80000, 64 * KIB);
    writeDmaMemcpyDesc(small.mem, 0, 0x10000, 0x30000, 64);
    setHead(rig, 4, 1);
    setHead(rig, 7, 1);
    expect(rig.engine.step()).toBe(true);
    expect(completion(rig, 7)).toBe(1);
    expect(completion(rig, 4)).toBe(0);
    expect(Buffer.compare(rig.hw.cardMemory.bytes(0x80000, 4096), data.subarray(0, 4096))).toBe(0);
    expect(rig.hw.cardMemory.bytes(0x80000 + 4096, 4096).every((b) => b === 0)).toBe(true);
    expect(runEngine(rig.engine)).toBe(15);
    expect(completion(rig, 4)).toBe(1);
    expect(Buffer.compare(rig.hw.cardMemory.bytes(0x80000, 64 * KIB), data)).toBe(0);
  });

  it('by default takes a 512 KiB host copy and four of 64 KiB in one step, publishing each', () => {
    const rig = makeRig();
    const ring = cardRing(rig, 0x1000, 8);
    setupChannel(rig, 4, ring, true);
    const src = hostBuffer(rig, 512 * KIB);
    const data = pattern(512 * KIB, 13);
    src.mem.write(0, data);
    writeDmaMemcpyDesc(ring.mem, 0, src.mic, 0x80000, 512 * KIB);
    for (let i = 0; i < 4; i++) {
      writeDmaMemcpyDesc(ring.mem, 16 * (i + 1), src.mic + i * 64 * KIB, 0x10000 + i * 64 * KIB, 64 * KIB);
    }
    const seen: number[] = [];
    const resolve = rig.hw.smptResolve.bind(rig.hw);
    rig.hw.smptResolve = (addr: number, length: number) => {
      seen.push(completion(rig, 4));
      return resolve(addr, length);
    };
    setHead(rig, 4, 5);
    expect(rig.engine.step()).toBe(true);
    // each copy was published as done before the next was taken (the ring is in card memory)
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(completion(rig, 4)).toBe(5);
    expect(rig.engine.step()).toBe(false);
    expect(Buffer.compare(rig.hw.cardMemory.bytes(0x80000, 512 * KIB), data)).toBe(0);
    expect(Buffer.compare(rig.hw.cardMemory.bytes(0x10000, 256 * KIB), data.subarray(0, 256 * KIB))).toBe(0);
  });

  it('publishes the completion count within a step before each copy once 16 KiB were copied', () => {
    const { rig, src } = threeFencedCopies(9);
    // What the completion count is when the engine takes each copy (it resolves its host source).
    const seen: number[] = [];
    const resolve = rig.hw.smptResolve.bind(rig.hw);
    rig.hw.smptResolve = (addr: number, length: number) => {
      seen.push(completion(rig, 4));
      return resolve(addr, length);
    };
    setHead(rig, 4, 6);
    expect(rig.engine.step()).toBe(true);
    expect(seen).toEqual([0, 2, 4]);
    expect(completion(rig, 4)).toBe(6);
    expect(rig.hw.mmio.read32(reg(4, X100_DMA_REG.DTPR))).toBe(6);
    expect(Buffer.compare(rig.hw.cardMemory.bytes(0x80000, 48 * KIB), readBytes(src.mem, 0, 48 * KIB))).toBe(
      0,
    );
  });

  it('reports nothing more of a step once a disable came in between two of its publishes', () => {
    const { rig } = threeFencedCopies(11);
    const dcr = rig.hw.mmio.read32(X100_REG.DCR);
    const resolve = rig.hw.smptResolve.bind(rig.hw);
    let calls = 0;
    rig.hw.smptResolve = (addr: number, length: number) => {
      // The second copy is taken: the driver disables the channel meanwhile.
      if (++calls === 2) rig.hw.mmio.write32(X100_REG.DCR, dcr & ~dmaDcrEnableBit(4));
      return resolve(addr, length);
    };
    setHead(rig, 4, 6);
    rig.engine.step();
    // The first copy and its STATUS were published. The second copy, latched already, and its
    // STATUS were done but are not reported; the third is not taken.
    expect(completion(rig, 4)).toBe(2);
    expect(rig.hw.cardMemory.readBigU64(CARD_BUF)).toBe(2n);
    expect(rig.hw.cardMemory.bytes(0x80000 + 32 * KIB, 64)).toEqual(new Uint8Array(64));
    expect(runEngine(rig.engine)).toBe(0);
    expect(completion(rig, 4)).toBe(2);
  });

  it('drops a copy that is disabled half way, keeps the completion count and runs what comes next', () => {
    const rig = makeRig(4096);
    const ring = cardRing(rig, 0x1000, 8);
    setupChannel(rig, 4, ring, true);
    rig.hw.cardMemory.write(0x10000, pattern(32 * KIB, 5));
    writeDmaMemcpyDesc(ring.mem, 0, 0x10000, 0x80000, 32 * KIB);
    setHead(rig, 4, 1);
    rig.engine.step();
    const dcr = rig.hw.mmio.read32(X100_REG.DCR);
    rig.hw.mmio.write32(X100_REG.DCR, dcr & ~dmaDcrEnableBit(4));
    expect(rig.hw.mmio.read32(reg(4, X100_DMA_REG.DHPR))).toBe(0);
    runEngine(rig.engine);
    expect(completion(rig, 4)).toBe(0);
    expect(rig.hw.cardMemory.bytes(0x80000 + 4096, 64)).toEqual(new Uint8Array(64));
    rig.hw.mmio.write32(X100_REG.DCR, dcr);
    writeDmaStatusDesc(ring.mem, 0, CARD_BUF, 5n, false);
    setHead(rig, 4, 1);
    runEngine(rig.engine);
    expect(completion(rig, 4)).toBe(1);
    expect(rig.hw.cardMemory.readBigU64(CARD_BUF)).toBe(5n);
  });

  it('forgets its work on a reset: registers stay zero and nothing of the old copy is reported', () => {
    const rig = makeRig(4096);
    const ring = cardRing(rig, 0x1000, 8);
    setupChannel(rig, 4, ring, true);
    writeDmaMemcpyDesc(ring.mem, 0, 0x10000, 0x80000, 32 * KIB);
    setHead(rig, 4, 1);
    rig.engine.step();
    rig.hw.clearRegisters();
    expect(runEngine(rig.engine)).toBe(0);
    for (const r of Object.values(X100_DMA_REG)) expect(rig.hw.mmio.read32(reg(4, r))).toBe(0);
    expect(rig.hw.mmio.read32(X100_REG.DCR)).toBe(0);
    expect(rig.engine.stats.descriptors).toBe(0);
    // set up again after the reset: it works from the zeroed tail
    setupChannel(rig, 4, ring, true);
    writeDmaStatusDesc(ring.mem, 0, CARD_BUF, 3n, false);
    setHead(rig, 4, 1);
    runEngine(rig.engine);
    expect(completion(rig, 4)).toBe(1);
  });
});

describe('a bad descriptor', () => {
  const TARGET = 0x60000;
  const cases: { name: string; code: number; bad: (rig: Rig) => (ringOff: number) => void }[] = [
    {
      name: 'a MEMCPY source that is not 64-byte aligned',
      code: X100_DMA_CHERR.ALIGN,
      bad: (rig) => (o) => writeDmaMemcpyDesc(ringOf(rig), o, 0x10020, TARGET, 64),
    },
    {
      name: 'a MEMCPY destination that is not 64-byte aligned',
      code: X100_DMA_CHERR.ALIGN,
      bad: (rig) => (o) => writeDmaMemcpyDesc(ringOf(rig), o, 0x10000, TARGET + 8, 64),
    },
    {
      name: 'a MEMCPY destination running past the end of card memory',
      code: X100_DMA_CHERR.ADDR,
      bad: (rig) => (o) => writeDmaMemcpyDesc(ringOf(rig), o, 0x10000, (1 << 20) - 64, 128),
    },
    {
      name: 'a MEMCPY source between card memory and the SMPT window',
      code: X100_DMA_CHERR.ADDR,
      bad: (rig) => (o) => writeDmaMemcpyDesc(ringOf(rig), o, 0x10_0000_0000, TARGET, 64),
    },
    {
      name: 'a MEMCPY source in an SMPT entry the host never mapped',
      code: X100_DMA_CHERR.ADDR,
      bad: (rig) => (o) =>
        writeDmaMemcpyDesc(ringOf(rig), o, X100_SMPT.BASE + 3 * X100_SMPT.PAGE_SIZE, TARGET, 64),
    },
    {
      name: 'a MEMCPY from host memory to host memory',
      code: X100_DMA_CHERR.SYS_TO_SYS,
      bad: (rig) => {
        const a = hostRamBuffer(rig.host, 4096, 4096);
        const mic = rig.host.mapSingle(a.dmaAddr, 4096);
        return (o) => writeDmaMemcpyDesc(ringOf(rig), o, mic, mic + 2048, 64);
      },
    },
    {
      name: 'a STATUS destination that is not 4-byte aligned',
      code: X100_DMA_CHERR.ALIGN,
      bad: (rig) => (o) => writeDmaStatusDesc(ringOf(rig), o, TARGET + 2, 1n, false),
    },
    {
      name: 'a STATUS destination beyond card memory',
      code: X100_DMA_CHERR.ADDR,
      bad: (rig) => (o) => writeDmaStatusDesc(ringOf(rig), o, (1 << 20) - 4, 1n, false),
    },
    {
      name: 'an unknown descriptor type',
      code: X100_DMA_CHERR.DESC_TYPE,
      bad: (rig) => (o) => {
        writeDmaMemcpyDesc(ringOf(rig), o, 0x10000, TARGET, 64);
        ringOf(rig).writeU32(o + 12, (7 << 28) >>> 0);
      },
    },
  ];
  const ringOf = (rig: Rig) => rig.hw.cardMemory.window(0x1000, 8 * 16);

  it.each(cases)('($name) stops the channel before it touches memory', async ({ code, bad }) => {
    const rig = makeRig();
    rig.host.enableInterrupts({ autoClear: false });
    const irqs: number[] = [];
    rig.host.requestIrq(hostDmaSrc(2), (src) => {
      irqs.push(src);
    });
    const ring = cardRing(rig, 0x1000, 8);
    setupChannel(rig, 2, ring, false);
    rig.hw.cardMemory.write(0x10000, pattern(256, 11));
    rig.hw.cardMemory.fill(TARGET, 256, 0xee);
    const lastLine = rig.hw.cardMemory.bytes((1 << 20) - 64, 64).slice();
    writeDmaStatusDesc(ring.mem, 0, 0x20000, 1n, false);
    bad(rig)(16);
    writeDmaStatusDesc(ring.mem, 32, 0x20008, 2n, false);
    setHead(rig, 2, 3);
    runEngine(rig.engine);
    expect(cherr(rig, 2)).toBe(code);
    expect(dstat(rig, 2) & X100_DMA_BIT.DSTAT_QUIESCE).toBe(X100_DMA_BIT.DSTAT_QUIESCE);
    expect(completion(rig, 2)).toBe(1);
    expect(rig.hw.cardMemory.readBigU64(0x20000)).toBe(1n);
    expect(rig.hw.cardMemory.readBigU64(0x20008)).toBe(0n);
    expect(rig.hw.cardMemory.bytes(TARGET, 256)).toEqual(new Uint8Array(256).fill(0xee));
    expect(rig.hw.cardMemory.bytes((1 << 20) - 64, 64)).toEqual(lastLine);
    expect(rig.engine.stats.errors).toBe(1);
    // stopped: more work is not taken
    writeDmaStatusDesc(ring.mem, 48, 0x20010, 3n, false);
    setHead(rig, 2, 4);
    runEngine(rig.engine);
    expect(completion(rig, 2)).toBe(1);
    await flush();
    expect(irqs).toEqual([hostDmaSrc(2)]);
    await rig.host.close();
  });

  it('raises no error interrupt while DCHERRMSK is set, and a disable clears the error', async () => {
    const rig = makeRig();
    rig.host.enableInterrupts({ autoClear: false });
    let irqs = 0;
    rig.host.requestIrq(hostDmaSrc(0), () => {
      irqs++;
    });
    const ring = cardRing(rig, 0x1000, 8);
    setupChannel(rig, 0, ring, false);
    rig.hw.mmio.write32(reg(0, X100_DMA_REG.DCHERRMSK), 1);
    writeDmaMemcpyDesc(ring.mem, 0, 0x10020, TARGET, 64);
    setHead(rig, 0, 1);
    runEngine(rig.engine);
    await flush();
    expect(cherr(rig, 0)).toBe(X100_DMA_CHERR.ALIGN);
    expect(irqs).toBe(0);
    // software cannot clear DCHERR or move the tail
    rig.hw.mmio.write32(reg(0, X100_DMA_REG.DCHERR), 0);
    rig.hw.mmio.write32(reg(0, X100_DMA_REG.DTPR), 5);
    expect(cherr(rig, 0)).toBe(X100_DMA_CHERR.ALIGN);
    expect(rig.hw.mmio.read32(reg(0, X100_DMA_REG.DTPR))).toBe(0);
    const dcr = rig.hw.mmio.read32(X100_REG.DCR);
    rig.hw.mmio.write32(X100_REG.DCR, dcr & ~dmaDcrEnableBit(0));
    expect(cherr(rig, 0)).toBe(0);
    expect(dstat(rig, 0) & X100_DMA_BIT.DSTAT_QUIESCE).toBe(0);
    expect(rig.hw.mmio.read32(reg(0, X100_DMA_REG.DHPR))).toBe(0);
    rig.hw.mmio.write32(X100_REG.DCR, dcr);
    writeDmaStatusDesc(ring.mem, 0, 0x20000, 4n, false);
    setHead(rig, 0, 1);
    runEngine(rig.engine);
    expect(completion(rig, 0)).toBe(1);
    expect(rig.hw.cardMemory.readBigU64(0x20000)).toBe(4n);
    await rig.host.close();
  });

  it('is the same head written twice: the engine reads it as a full ring and stops', () => {
    const rig = makeRig();
    const ring = cardRing(rig, 0x1000, 8);
    setupChannel(rig, 4, ring, true);
    writeDmaStatusDesc(ring.mem, 0, 0x20000, 1n, false);
    setHead(rig, 4, 1);
    runEngine(rig.engine);
    expect(cherr(rig, 4)).toBe(0);
    setHead(rig, 4, 1);
    expect(cherr(rig, 4)).toBe(X100_DMA_CHERR.HEAD);
    expect(dstat(rig, 4) & X100_DMA_BIT.DSTAT_QUIESCE).not.toBe(0);
  });

  it('is a head beyond the ring', () => {
    const rig = makeRig();
    setupChannel(rig, 4, cardRing(rig, 0x1000, 8), true);
    setHead(rig, 4, 8);
    expect(cherr(rig, 4)).toBe(X100_DMA_CHERR.HEAD);
  });

  it('includes a ring the engine cannot reach: enabling the channel stops it at once', () => {
    const rig = makeRig();
    setupChannel(rig, 1, { mem: rig.hw.cardMemory, addr: X100_SMPT.BASE + 4096, entries: 8 }, false);
    expect(cherr(rig, 1)).toBe(X100_DMA_CHERR.RING);
    expect(dstat(rig, 1) & X100_DMA_BIT.DSTAT_QUIESCE).not.toBe(0);
    setupChannel(rig, 2, { mem: rig.hw.cardMemory, addr: (1 << 20) - 64, entries: 8 }, false);
    expect(cherr(rig, 2)).toBe(X100_DMA_CHERR.RING);
    setupChannel(rig, 3, cardRing(rig, 0x1000, 1), false);
    expect(cherr(rig, 3)).toBe(X100_DMA_CHERR.RING);
    expect(runEngine(rig.engine)).toBe(0);
  });
});

describe('the DMA engine under hostile descriptors', () => {
  it('never throws, never touches host RAM while the SMPT maps none of it, nor (the IOMMU on) outside what the host mapped', () => {
    const rig = makeRig();
    const ring = cardRing(rig, 0x1000, 64);
    const host = hostRamBuffer(rig.host, 64 * KIB, 4096);
    // Entry 0 maps all of this small host RAM while anything in it is mapped (16 GiB entries);
    // the IOMMU limits the card to the buffer.
    const mic = rig.host.mapSingle(host.dmaAddr, 64 * KIB);
    rig.host.unmapSingle(mic, 64 * KIB);
    const addresses = [
      0,
      64,
      0x1000,
      0x40000,
      (1 << 20) - 64,
      (1 << 20) - 8,
      1 << 20,
      0x10_0000_0000,
      mic,
      mic + 64 * KIB - 64,
      // behind entry 0 but outside the mapped buffer: just below, just past, the first page
      mic - 64,
      mic + 64 * KIB,
      X100_SMPT.BASE,
      X100_SMPT.BASE + (1 << 20) - 64,
      X100_SMPT.BASE + (1 << 20),
      X100_SMPT.BASE + 5 * X100_SMPT.PAGE_SIZE,
      2 ** 46 - 64,
    ];
    const addr = fc.oneof(
      fc.constantFrom(...addresses),
      fc
        .constantFrom(...addresses)
        .chain((a) =>
          fc.integer({ min: -8, max: 8 }).map((d) => Math.min(2 ** 46 - 1, Math.max(0, a + d * 4))),
        ),
    );
    const desc = fc.record({
      kind: fc.integer({ min: 0, max: 15 }),
      src: addr,
      dst: addr,
      units: fc.integer({ min: 0, max: 2048 }),
      intr: fc.boolean(),
      raw: fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.nat()),
    });
    const ram = rig.hw.hostRam;
    fc.assert(
      fc.property(fc.boolean(), fc.array(desc, { minLength: 1, maxLength: 40 }), (mapHost, descs) => {
        rig.hw.clearRegisters();
        rig.host.smpt.restore();
        if (mapHost) rig.host.mapSingle(host.dmaAddr, 64 * KIB);
        setupChannel(rig, 4, ring, true);
        descs.forEach((d, i) => {
          const o = i * 16;
          if (d.kind === 1) writeDmaMemcpyDesc(ring.mem, o, d.src, d.dst, d.units * 64);
          else if (d.kind === 2) writeDmaStatusDesc(ring.mem, o, d.dst, BigInt(d.raw[0]), d.intr);
          else {
            const [a, b, c, e] = d.raw;
            ring.mem.writeU32(o, a >>> 0);
            ring.mem.writeU32(o + 4, b >>> 0);
            ring.mem.writeU32(o + 8, c >>> 0);
            ring.mem.writeU32(o + 12, ((e & 0x0fffffff) | (d.kind << 28)) >>> 0);
          }
        });
        const before = ram.bytes(0, ram.byteLength).slice();
        setHead(rig, 4, descs.length);
        runEngine(rig.engine);
        const done = completion(rig, 4);
        expect(cherr(rig, 4) === 0 ? done === descs.length : done < descs.length).toBe(true);
        const after = ram.bytes(0, ram.byteLength).slice();
        if (!mapHost) expect(Buffer.compare(after, before)).toBe(0);
        // the mapped buffer may change; not a byte outside it
        after
          .subarray(host.dmaAddr, host.dmaAddr + 64 * KIB)
          .set(before.subarray(host.dmaAddr, host.dmaAddr + 64 * KIB));
        expect(Buffer.compare(after, before)).toBe(0);
        if (mapHost) rig.host.unmapSingle(mic, 64 * KIB);
      }),
      { numRuns: 150 },
    );
  });
});

describe('the DMA engine on the inProcess platform', () => {
  it('runs on its own after a head write, and a reset of the card zeroes its registers', async () => {
    const p = createInProcessPlatform({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20 });
    const rig: Rig = { hw: p.hardware, host: p.host, engine: p.dmaEngine!, kicks: 0 };
    p.host.enableInterrupts();
    let irqs = 0;
    p.host.requestIrq(hostDmaSrc(3), () => {
      irqs++;
      p.host.ackInterrupt();
    });
    const ring = hostRing(rig, 32);
    setupChannel(rig, 3, ring, false);
    const src = hostBuffer(rig, 256 * KIB);
    src.mem.write(0, pattern(256 * KIB, 9));
    writeDmaMemcpyDesc(ring.mem, 0, src.mic, 0x10000, 256 * KIB);
    writeDmaStatusDesc(ring.mem, 16, 0x8000, 1n, true);
    setHead(rig, 3, 2);
    expect(completion(rig, 3)).toBe(0);
    await flush();
    expect(completion(rig, 3)).toBe(2);
    expect(irqs).toBe(1);
    expect(
      Buffer.compare(p.hardware.cardMemory.bytes(0x10000, 256 * KIB), readBytes(src.mem, 0, 256 * KIB)),
    ).toBe(0);
    p.host.reset();
    expect(p.hardware.mmio.read32(reg(3, X100_DMA_REG.DSTAT))).toBe(0);
    expect(p.hardware.mmio.read32(X100_REG.DCR)).toBe(0);
    await p.close();
  });

  it('has no engine with dmaEngine: false, and its DMA registers only store', async () => {
    const p = createInProcessPlatform({ cardMemorySize: 1 << 20, hostRamSize: 1 << 20, dmaEngine: false });
    expect(p.dmaEngine).toBeUndefined();
    p.host.mmio.write32(reg(0, X100_DMA_REG.DTPR), 7);
    expect(p.host.mmio.read32(reg(0, X100_DMA_REG.DTPR))).toBe(7);
    await p.close();
  });

  it('refuses a chunk size that is not a multiple of 64', () => {
    expect(() => createInProcessPlatform({ dmaChunkBytes: 100 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});
