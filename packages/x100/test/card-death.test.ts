// A card whose code dies (exits, crashes, hangs) at a bad moment: the host sees it, every host
// call returns, a reset recovers, and the card starts again.
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { WorkerPlatform, WorkerPlatformOptions, X100CardExit } from '../src/index.js';
import { X100_CARD_STATE, X100_HOST_SOURCES, createWorkerPlatform } from '../src/index.js';
import { statusWorks } from './dma-helpers.js';
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

describe('a card thread that dies holding a DMA channel lock', () => {
  it(
    'does not stop a reset: it returns, the channel works and the card starts again',
    async () => {
      const p = make();
      const card = await p.startCard();
      await card.call('holdLock', 4);
      const hung = card.call('hang').catch((err: unknown) => err);
      await eventually(() => p.host.readSpad(3) === 1, 'the card to hang');
      p.host.reset(); // waits for the lock at most the grace time, then breaks it
      expect(p.cardState).toBe(X100_CARD_STATE.RESET);
      expect(await hung).toMatchObject({ code: 'ENODEV' });
      await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready');
      await statusWorks(p, 4);
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
        const hammering = card.call('hammer', 4 + (round % 4)).catch((err: unknown) => err);
        await eventually(() => p.host.readSpad(3) === 1, 'the card to write its head register');
        p.host.reset();
        expect(await hammering).toMatchObject({ code: 'ENODEV' });
        await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready');
      }
      for (let ch = 0; ch < 8; ch++) await statusWorks(p, ch);
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
      await statusWorks(p, 5); // the lock it died with was broken
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
      // The crash may overtake the call's answer on a busy machine (the answer and the worker's
      // error event come by different channels): either way the crash is what is checked.
      await card.call('crashSoon').catch(() => undefined);
      await eventually(() => exits.length === 1, 'the crash report');
      expect(exits[0]).toMatchObject({ exitCode: 1, state: X100_CARD_STATE.HALTED });
      expect(exits[0]!.error?.message).toMatch(/card panic/);
      await expect(p.startCard()).rejects.toMatchObject({ code: 'EBUSY' });
      off();
      p.host.reset();
      await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready');
      const again = await p.startCard();
      await again.call('crashSoon').catch(() => undefined);
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

/** Rejects when `p` has not settled within `ms` (every host call must return in a bound). */
async function within<T>(p: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Threads of this process (Linux): the card's worker thread is one of them while it runs. */
function threads(): number {
  return readdirSync('/proc/self/task').length;
}

const scenario = fc.record({
  /** What the card is doing when it dies. */
  activity: fc.constantFrom('dma', 'doorbells', 'smpt', 'hammer', 'lock', 'idle'),
  /** How: a reset, a reset during a reset, or its own exit (which a reset may follow). */
  kill: fc.constantFrom('reset', 'reset-twice', 'exit'),
  resetAfterExit: fc.boolean(),
  delayMs: fc.integer({ min: 0, max: 20 }),
  ch: fc.integer({ min: 4, max: 7 }),
});

describe('a card terminated at random points', () => {
  it('leaves every host call returning, a reset recovering, nothing leaked, and the card able to start again', async () => {
    const p = make();
    const { host } = p;
    host.enableInterrupts();
    let rings = 0;
    for (let db = 0; db < 4; db++) {
      host.requestIrq(db, () => {
        rings++;
        host.ackInterrupt();
      });
    }
    const handlers = (): number => {
      let n = 0;
      for (let src = 0; src < 32; src++) if ((X100_HOST_SOURCES >>> src) & 1) n += host.handlerCount(src);
      return n;
    };
    const exits: X100CardExit[] = [];
    p.onCardExit((exit) => exits.push(exit));
    let running: number | undefined;
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready');
        // what the host driver does before every boot (a reset cleared both)
        host.smpt.restore();
        host.enableInterrupts();
        const mic = host.mapSingle(0x80000, 64 * 1024);
        const card = await within(p.startCard(), 'startCard');
        // one card thread at a time: the threads of the earlier boots are gone
        running ??= threads();
        expect(threads()).toBe(running);
        const call = (method: string, ...args: unknown[]): Promise<unknown> =>
          card.call(method, ...args).catch((err: unknown) => err);
        let activity: Promise<unknown> | undefined;
        const ring = 0x1000 + 0x400 * (s.ch - 4);
        if (s.activity === 'lock') {
          await card.call('holdLock', s.ch);
          activity = call('hang');
        } else if (s.activity === 'hammer') {
          activity = call('hammer', s.ch);
        } else if (s.activity !== 'idle') {
          activity = call('busy', s.activity, { ch: s.ch, ring, mic });
        }
        if (activity) await eventually(() => host.readSpad(3) === 1, `the card to start ${s.activity}`);
        // the host rings the card meanwhile: the card's handlers ring back
        for (let i = 0; i <= s.delayMs; i++) {
          host.sendIntr(i % 4);
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        const exitNow = s.kill === 'exit' && s.activity !== 'lock' && s.activity !== 'hammer';
        if (exitNow) {
          const seen = exits.length;
          await within(card.call('exit', 9, 0), 'the exit call');
          await eventually(() => exits.length === seen + 1, 'the exit report');
          expect(exits.at(-1)).toMatchObject({ exitCode: 9, state: X100_CARD_STATE.READY });
          if (s.resetAfterExit) host.reset();
        } else {
          host.reset();
          if (s.kill === 'reset-twice') {
            await new Promise((resolve) => setTimeout(resolve, s.delayMs));
            host.reset();
          }
        }
        if (activity)
          expect(await within(activity, `the card's ${s.activity}`)).toMatchObject({ code: 'ENODEV' });
        await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready');
        // nothing leaked: SMPT references, host interrupt handlers
        host.unmapSingle(mic, 64 * 1024);
        expect(host.smpt.entries().every((e) => e.refCount === 0)).toBe(true);
        expect(p.hardware.smptValidMask).toBe(0);
        expect(host.iommu.liveMappings).toBe(0);
        expect(handlers()).toBe(4);
        // the card starts again: its doorbells answer and its DMA channel works
        host.enableInterrupts();
        const again = await within(p.startCard(), 'startCard again');
        expect(await within(again.call('generation'), 'a call')).toBe(p.hardware.generation);
        const before = rings;
        host.sendIntr(1);
        await eventually(() => rings > before, 'the doorbell echo');
        await statusWorks(p, s.ch);
        host.reset();
      }),
      { numRuns: 10, endOnFailure: true },
    );
    expect(exits.every((e) => e.error === undefined)).toBe(true);
  }, 180_000);
});
