// The worker platform: the card in a worker thread, interrupts through shared event words.
import { afterEach, describe, expect, it } from '@jest/globals';
import { createMemoryLogger } from '@mic/logger';
import type { WorkerPlatform, WorkerPlatformOptions } from '../src/index.js';
import { X100_CARD_STATE, createWorkerPlatform } from '../src/index.js';
import { ECHO_CARD, eventually, prepareHost, publishPage } from './helpers.js';

let platform: WorkerPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

function make(options: Partial<WorkerPlatformOptions> = {}): WorkerPlatform {
  platform = createWorkerPlatform({ cardModule: ECHO_CARD, ...options });
  return platform;
}

/** What the host redoes before booting again after a reset (`_mic_start`). */
function prepareHostAgain(p: WorkerPlatform, dpMicAddr: number): void {
  p.host.enableInterrupts();
  publishPage(p.host, dpMicAddr);
}

/** Host doorbell 0 rings card doorbell 0 again until `rounds` echoes came back. */
async function pingPong(p: WorkerPlatform, rounds: number): Promise<number> {
  let count = 0;
  await new Promise<void>((resolve) => {
    const cookie = p.host.requestIrq(0, () => {
      p.host.ackInterrupt();
      if (++count < rounds) {
        p.host.sendIntr(0);
        return;
      }
      p.host.freeIrq(cookie);
      resolve();
    });
    p.host.sendIntr(0);
  });
  return count;
}

describe('the worker platform', () => {
  it('carries thousands of doorbell round trips host → card → host', async () => {
    const p = make({ cardData: { echo: true } });
    prepareHost(p);
    const card = await p.startCard();
    expect(await pingPong(p, 2000)).toBe(2000);
    expect(((await card.call('received')) as number[])[0]).toBe(2000);
  });

  it('keeps timers running while an interrupt is always pending', async () => {
    const p = make({ cardData: { echo: true } });
    prepareHost(p);
    await p.startCard();
    // The handler raises its own source again at once, so the delivery loop always finds work
    // and never sleeps; each delivery yields only to the microtask queue. Without the loop's time
    // slice this timer would never fire and the test would time out.
    let rounds = 0;
    let stop = false;
    const cookie = p.host.requestIrq(0, () => {
      p.host.ackInterrupt();
      rounds++;
      if (!stop) p.hardware.raiseHostInterrupt(0);
    });
    p.hardware.raiseHostInterrupt(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    stop = true;
    p.host.freeIrq(cookie);
    expect(rounds).toBeGreaterThan(1);
  });

  it('runs the continuations of async handlers before it polls again', async () => {
    const p = make({ cardData: { echo: true } });
    prepareHost(p);
    await p.startCard();
    const steps: string[] = [];
    await new Promise<void>((resolve) => {
      const cookie = p.host.requestIrq(0, async () => {
        p.host.ackInterrupt();
        steps.push('handler');
        await new Promise((r) => setImmediate(r));
        steps.push('continuation');
        p.host.freeIrq(cookie);
        resolve();
      });
      p.host.sendIntr(0);
    });
    expect(steps).toEqual(['handler', 'continuation']);
  });

  it('wakes each side from its sleep when it does not poll at all', async () => {
    const p = make({ cardData: { echo: true }, spinNs: 0 });
    prepareHost(p);
    await p.startCard();
    expect(await pingPong(p, 200)).toBe(200);
    // once idle, both sides announce that they sleep, so the next ring notifies them
    await eventually(() => p.hardware.hostLine.word.hasSleepers, 'the host to sleep');
    await eventually(() => p.hardware.cardLine.word.hasSleepers, 'the card to sleep');
    expect(await pingPong(p, 1)).toBe(1);
  });

  it('a card booted right after a reset gets every interrupt, none go to the old card thread', async () => {
    const p = make({ cardData: { echo: true }, resetDelayMs: 0 });
    const dp = prepareHost(p);
    await p.startCard();
    expect(await pingPong(p, 10)).toBe(10);
    for (let round = 0; round < 3; round++) {
      p.host.reset();
      await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready');
      p.host.smpt.restore();
      prepareHostAgain(p, dp.micAddr);
      const card = await p.startCard();
      expect(await pingPong(p, 50)).toBe(50);
      expect(((await card.call('received')) as number[])[0]).toBe(50);
    }
  });

  it('forwards the card code log records to the platform logger under card', async () => {
    const logger = createMemoryLogger();
    const p = make({ logger });
    prepareHost(p);
    const card = await p.startCard();
    await card.call('log', 'hello from the card');
    const record = logger.records.find((r) => r.msg === 'hello from the card');
    expect(record).toMatchObject({ level: 'info', component: 'card.echo', fields: { from: 'card' } });
  });

  it('halts the card when its code crashes after booting', async () => {
    const logger = createMemoryLogger();
    const p = make({ cardExport: 'crashingMain', logger });
    const card = await p.startCard();
    // The crash may overtake the call's answer on a busy machine (different channels).
    await card.call('crashSoon').catch(() => undefined);
    await eventually(() => p.cardState === X100_CARD_STATE.HALTED, 'the card to halt');
    await expect(card.call('crashSoon')).rejects.toMatchObject({ code: 'ENODEV' });
    expect(
      logger.records.some((r) => r.msg === 'card crashed' && String(r.fields['error']).includes('panic')),
    ).toBe(true);
  });

  it('fails the boot with ENOENT when the module has no such entry function', async () => {
    const p = make({ cardExport: 'notAnEntry' });
    await expect(p.startCard()).rejects.toMatchObject({ code: 'ENOENT' });
    expect(p.cardState).toBe(X100_CARD_STATE.HALTED);
  });

  it('rejects a relative module path and card data that cannot be cloned', () => {
    expect(() => createWorkerPlatform({ cardModule: './card.mjs' })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => createWorkerPlatform({ cardModule: ECHO_CARD, cardData: { f: () => 1 } })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });

  it('after close the card is gone and calls fail with ENODEV', async () => {
    const p = make();
    prepareHost(p);
    const card = await p.startCard();
    await p.close();
    await expect(card.call('nodeId')).rejects.toMatchObject({ code: 'ENODEV' });
    await expect(p.startCard()).rejects.toMatchObject({ code: 'ENODEV' });
  });
});
