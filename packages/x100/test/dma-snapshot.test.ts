// The engine latches a descriptor when it takes it: whatever the card writes into the ring
// afterwards (or the copy itself writes there), the copy moves exactly the checked range.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { WorkerPlatform } from '../src/index.js';
import {
  X100_DMA_CHERR,
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
const MIB = 1 << 20;
const SRC = 0x10000;
const DST = 0x40000;

/** True when `length` bytes of card memory at `addr` are all zero. */
function untouched(rig: Rig, addr: number, length: number): boolean {
  return rig.hw.cardMemory.bytes(addr, length).every((b) => b === 0);
}

describe('a descriptor the engine has taken', () => {
  it('keeps the length it was checked with when the card grows it half way', () => {
    const rig = makeRig(64);
    const ring = cardRing(rig, 0x1000, 8);
    setupChannel(rig, 4, ring, true);
    rig.hw.cardMemory.write(SRC, pattern(8 * KIB, 1));
    writeDmaMemcpyDesc(ring.mem, 0, SRC, DST, 128);
    setHead(rig, 4, 1);
    rig.engine.step(); // the first 64-byte chunk
    writeDmaMemcpyDesc(ring.mem, 0, SRC, DST, 4 * KIB); // the card races the engine
    runEngine(rig.engine);
    expect(completion(rig, 4)).toBe(1);
    expect(cherr(rig, 4)).toBe(0);
    expect(Buffer.compare(rig.hw.cardMemory.bytes(DST, 128), pattern(8 * KIB, 1).subarray(0, 128))).toBe(0);
    expect(untouched(rig, DST + 128, 4 * KIB - 128)).toBe(true);
    expect(rig.engine.stats.bytes).toBe(128);
  });

  it('keeps its checked range when the copy overwrites its own ring slot (no race needed)', () => {
    const rig = makeRig(64);
    const ring = cardRing(rig, 0x1000, 8);
    setupChannel(rig, 4, ring, true);
    // The source starts with the image of a descriptor that copies 200 KiB over the ring.
    const src = 0x80000;
    writeDmaMemcpyDesc(rig.hw.cardMemory.window(src, 16), 0, src, ring.addr, 200 * KIB);
    writeDmaMemcpyDesc(ring.mem, 0, src, ring.addr, 4 * KIB);
    setHead(rig, 4, 1);
    runEngine(rig.engine);
    expect(completion(rig, 4)).toBe(1);
    expect(cherr(rig, 4)).toBe(0);
    expect(rig.engine.stats.bytes).toBe(4 * KIB);
    expect(untouched(rig, ring.addr + 4 * KIB, 196 * KIB)).toBe(true);
  });

  it('never lets a grown length run off the end of memory (the copy used to throw RangeError)', () => {
    const rig = makeRig(512);
    const end = rig.hw.config.cardMemorySize;
    const ring = cardRing(rig, end - 4 * KIB, 8);
    setupChannel(rig, 4, ring, true);
    // host RAM at 0x8000, mapped for the card: its first 16 bytes are a 200 KiB descriptor image
    const src = rig.host.mapSingle(0x8000, 4 * KIB);
    writeDmaMemcpyDesc(rig.hw.hostRam.window(0x8000, 16), 0, src, ring.addr, 200 * KIB);
    writeDmaMemcpyDesc(ring.mem, 0, src, ring.addr, 4 * KIB);
    setHead(rig, 4, 1);
    expect(() => runEngine(rig.engine)).not.toThrow();
    expect(completion(rig, 4)).toBe(1);
    expect(cherr(rig, 4)).toBe(0);
    expect(rig.engine.stats.bytes).toBe(4 * KIB);
  });

  it.each([
    ['a NOP', (rig: Rig, at: number) => rig.hw.cardMemory.fill(at, 16, 0)],
    [
      'a STATUS',
      (rig: Rig, at: number) => writeDmaStatusDesc(rig.hw.cardMemory.window(at, 16), 0, 0x8000, 7n, false),
    ],
  ] as const)(
    'finishes the copy it latched when the card turns the half-done slot into %s, and checks the next one',
    (_name, rewrite) => {
      const rig = makeRig(64);
      const ring = cardRing(rig, 0x1000, 8);
      setupChannel(rig, 4, ring, true);
      rig.hw.cardMemory.write(SRC, pattern(8 * KIB, 2));
      writeDmaMemcpyDesc(ring.mem, 0, SRC, DST, 128);
      // the next copy's destination runs past the end of card memory
      writeDmaMemcpyDesc(ring.mem, 16, SRC, rig.hw.config.cardMemorySize - 64, 4 * KIB);
      setHead(rig, 4, 2);
      rig.engine.step();
      rewrite(rig, ring.addr);
      runEngine(rig.engine);
      expect(completion(rig, 4)).toBe(1);
      expect(cherr(rig, 4)).toBe(X100_DMA_CHERR.ADDR);
      expect(Buffer.compare(rig.hw.cardMemory.bytes(DST, 128), pattern(8 * KIB, 2).subarray(0, 128))).toBe(0);
      expect(untouched(rig, DST + 128, 4 * KIB)).toBe(true);
      expect(rig.hw.cardMemory.readBigU64(0x8000)).toBe(0n);
    },
  );
});

describe('a fault inside the engine', () => {
  it('stops only the channel it happened on, with DCHERR FAULT, and throws nothing', () => {
    const rig = makeRig();
    const a = cardRing(rig, 0x1000, 8);
    const b = cardRing(rig, 0x2000, 8);
    setupChannel(rig, 4, a, true);
    setupChannel(rig, 5, b, true);
    const mic = rig.host.mapSingle(0x8000, 4 * KIB);
    writeDmaMemcpyDesc(a.mem, 0, SRC, mic, 4 * KIB);
    writeDmaStatusDesc(b.mem, 0, 0x8000, 5n, false);
    // an unforeseen exception in the model, on channel 4's first translation
    const spy = jest.spyOn(rig.hw, 'smptResolve').mockImplementationOnce(() => {
      throw new RangeError('model bug');
    });
    setHead(rig, 4, 1);
    setHead(rig, 5, 1);
    expect(() => runEngine(rig.engine)).not.toThrow();
    spy.mockRestore();
    expect(cherr(rig, 4)).toBe(X100_DMA_CHERR.FAULT);
    expect(completion(rig, 4)).toBe(0);
    expect(cherr(rig, 5)).toBe(0);
    expect(completion(rig, 5)).toBe(1);
    expect(rig.hw.cardMemory.readBigU64(0x8000)).toBe(5n);
  });
});

describe('the engine thread on the worker platform', () => {
  let platform: WorkerPlatform | undefined;
  afterEach(async () => {
    await platform?.close();
    platform = undefined;
  });

  it('survives a copy that overwrites its own slot with a longer one, and keeps serving other channels', async () => {
    const p = createWorkerPlatform({
      cardModule: ECHO_CARD,
      cardMemorySize: MIB,
      hostRamSize: MIB,
      dmaChunkBytes: 512,
    });
    platform = p;
    const rig = { hw: p.hardware, host: p.host } as Rig;
    const end = MIB;
    const ring = cardRing(rig, end - 4 * KIB, 8);
    setupChannel(rig, 4, ring, true);
    const src = p.host.mapSingle(0x8000, 4 * KIB);
    writeDmaMemcpyDesc(p.hardware.hostRam.window(0x8000, 16), 0, src, ring.addr, 200 * KIB);
    writeDmaMemcpyDesc(ring.mem, 0, src, ring.addr, 4 * KIB);
    setHead(rig, 4, 1);
    await eventually(() => completion(rig, 4) === 1, 'the self-overwriting copy', 20_000);
    expect(cherr(rig, 4)).toBe(0);
    const other = cardRing(rig, 0x2000, 8);
    setupChannel(rig, 5, other, true);
    writeDmaStatusDesc(other.mem, 0, 0x8000, 9n, false);
    setHead(rig, 5, 1);
    await eventually(() => completion(rig, 5) === 1, 'a STATUS on another channel', 20_000);
    expect(p.hardware.cardMemory.readBigU64(0x8000)).toBe(9n);
  }, 60_000);
});
