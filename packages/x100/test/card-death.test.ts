// A card whose code dies (exits, crashes, hangs) at a bad moment: the host sees it, every host
// call returns, a reset recovers, and the card starts again.
import { afterEach, describe, expect, it } from '@jest/globals';
import type { WorkerPlatform, WorkerPlatformOptions, X100CardExit } from '../src/index.js';
import { X100_CARD_STATE, createWorkerPlatform, writeDmaStatusDesc } from '../src/index.js';
import { cardRing, completion, setHead, setupChannel, type Rig } from './dma-helpers.js';
import { ECHO_CARD, eventually } from './helpers.js';

const HOSTILE_CARD = new URL('./fixtures/card-hostile.mjs', import.meta.url);
const TIMEOUT = 60_000;

let platform: WorkerPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

function make(options: Partial<WorkerPlatformOptions> = {}): WorkerPlatform {
  platform = createWorkerPlatform({
    cardModule: HOSTILE_CARD,
    cardMemorySize: 1 << 20,
    hostRamSize: 1 << 20,
    resetDelayMs: 0,
    ...options,
  });
  return platform;
}

/** Runs one STATUS descriptor on channel `ch` (ring in card memory) from the host. */
async function dmaWorks(p: WorkerPlatform, ch: number): Promise<void> {
  const rig = { hw: p.hardware, host: p.host } as Rig;
  const ring = cardRing(rig, 0x10000 + ch * 0x1000, 8);
  setupChannel(rig, ch, ring, ch >= 4);
  const dst = 0x20000 + ch * 8;
  writeDmaStatusDesc(ring.mem, 0, dst, 0xabcn, false);
  setHead(rig, ch, 1);
  await eventually(() => completion(rig, ch) === 1, `a STATUS on channel ${ch}`, 20_000);
  expect(p.hardware.cardMemory.readBigU64(dst)).toBe(0xabcn);
}

describe('a card thread that dies holding a DMA channel lock', () => {
  it(
    'does not stop a reset: it returns, the channel works and the card starts again',
    async () => {
      const p = make();
      const card = await p.startCard();
      await card.call('holdLock', 4);
      const hung = card.call('hang', 3).catch((err: unknown) => err);
      await eventually(() => p.host.readSpad(3) === 1, 'the card to hang');
      p.host.reset(); // waits for the lock at most the grace time, then breaks it
      expect(p.cardState).toBe(X100_CARD_STATE.RESET);
      expect(await hung).toMatchObject({ code: 'ENODEV' });
      await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready');
      await dmaWorks(p, 4);
      const again = await p.startCard();
      expect(await again.call('generation')).toBe(p.hardware.generation);
    },
    TIMEOUT,
  );

  it(
    'does not stop a reset that terminates it inside its register writes',
    async () => {
      const p = make();
      for (let round = 0; round < 5; round++) {
        const card = await p.startCard();
        const hammering = card.call('hammer', 4 + (round % 4), 3).catch((err: unknown) => err);
        await eventually(() => p.host.readSpad(3) === 1, 'the card to write its head register');
        p.host.reset();
        expect(await hammering).toMatchObject({ code: 'ENODEV' });
        await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready');
      }
      for (let ch = 0; ch < 8; ch++) await dmaWorks(p, ch);
    },
    TIMEOUT,
  );
});

describe('card code that ends by itself', () => {
  it(
    'is reported with its exit code, leaves running, and starts again without a reset',
    async () => {
      const p = make();
      const exits: X100CardExit[] = [];
      p.onCardExit((exit) => exits.push(exit));
      const card = await p.startCard();
      const generation = p.hardware.generation;
      await card.call('holdLock', 5);
      await card.call('exit', 7);
      await eventually(() => exits.length === 1, 'the card exit');
      expect(exits[0]).toEqual({ generation, exitCode: 7, error: undefined, state: X100_CARD_STATE.READY });
      expect(p.cardState).toBe(X100_CARD_STATE.READY);
      expect(p.card).toBeUndefined();
      await expect(card.call('generation')).rejects.toMatchObject({ code: 'ENODEV' });
      await dmaWorks(p, 5); // the lock it died with was broken
      const again = await p.startCard();
      expect(await again.call('generation')).toBe(generation + 1);
      expect(exits).toHaveLength(1);
    },
    TIMEOUT,
  );

  it(
    'is reported with its error after a crash; the card stays halted until a reset',
    async () => {
      const p = make({ cardModule: ECHO_CARD, cardExport: 'crashingMain' });
      const exits: X100CardExit[] = [];
      const off = p.onCardExit((exit) => exits.push(exit));
      const card = await p.startCard();
      await card.call('crashSoon');
      await eventually(() => exits.length === 1, 'the crash report');
      expect(exits[0]).toMatchObject({ exitCode: 1, state: X100_CARD_STATE.HALTED });
      expect(exits[0]!.error?.message).toMatch(/card panic/);
      await expect(p.startCard()).rejects.toMatchObject({ code: 'EBUSY' });
      off();
      p.host.reset();
      await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready');
      const again = await p.startCard();
      await again.call('crashSoon');
      await eventually(() => p.cardState === X100_CARD_STATE.HALTED, 'the second crash');
      expect(exits).toHaveLength(1);
    },
    TIMEOUT,
  );

  it(
    'is not reported when the platform kills it on a reset or on close',
    async () => {
      const p = make();
      const exits: X100CardExit[] = [];
      p.onCardExit((exit) => exits.push(exit));
      await p.startCard();
      p.host.reset();
      await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready');
      await p.startCard();
      await p.close();
      expect(exits).toEqual([]);
    },
    TIMEOUT,
  );
});
