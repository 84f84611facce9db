// The card CPU's windows on host memory after an IOMMU unmap (issue 10, "Isolation that is
// real"): a window's accesses are checked again once the table changed (an IOMMU fault after the
// unmap), and a running card that still holds a window on a range the host unmapped has a grace
// period to give it back, then it is stopped, since raw views taken from it cannot be revoked.
// A card that gives its windows back (before or right after the unmap) is never stopped.
import { afterEach, describe, expect, it } from '@jest/globals';
import { createMemoryLogger } from '@mic/logger';
import { asBufferMemory } from '@mic/memory';
import type { X100Platform } from '../src/index.js';
import {
  X100_CARD_STATE,
  X100_CARD_WINDOWS,
  X100CardView,
  createInProcessPlatform,
  createWorkerPlatform,
} from '../src/index.js';
import { type VirtualClock, pollUntil } from '@mic/clock';
import { ECHO_CARD, eventually, flush, prepareHost, publishPage } from './helpers.js';

const AT = 0x2000;
const SIZE = 0x1000;
const efault = expect.objectContaining({ code: 'EFAULT' });
const enodev = expect.objectContaining({ code: 'ENODEV' });
const einval = expect.objectContaining({ code: 'EINVAL' });
const STOPPED = /windows on host memory the host unmapped/;

let platform: X100Platform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

/** An in-process platform with its card running (the test drives the card's view itself). */
async function running(iommu?: boolean) {
  const logger = createMemoryLogger();
  const p = createInProcessPlatform({
    cardMemorySize: 1 << 20,
    hostRamSize: 1 << 20,
    dmaEngine: false,
    logger,
    resetDelayMs: 0,
    cardMain: () => ({}),
    ...(iommu === undefined ? {} : { iommu }),
  });
  platform = p;
  await p.startCard();
  const card = p.cardView!;
  expect(p.cardState).toBe(X100_CARD_STATE.RUNNING);
  return { p, card, logger };
}

describe('card windows on host memory (in process)', () => {
  it('given back before the host unmaps: the card keeps running, and the window refuses every access after', async () => {
    const { p, card, logger } = await running();
    const mic = p.host.mapSingle(AT, SIZE);
    const win = card.cardMap(mic, SIZE);
    const sub = win.window(64, 64);
    win.writeU32(0, 0x11223344);
    sub.writeU8(0, 9);
    expect(p.host.dmaWindow(AT, 128).readU32(0)).toBe(0x11223344);
    expect(p.host.dmaWindow(AT, 128).readU8(64)).toBe(9);
    expect(() => card.cardUnmap(sub)).toThrow(einval); // only what cardMap returned
    card.cardUnmap(win);
    expect(() => card.cardUnmap(win)).toThrow(einval); // once
    expect(() => win.writeU8(0, 1)).toThrow(efault);
    expect(() => sub.readU8(0)).toThrow(efault);
    expect(() => asBufferMemory(win, 'window').bytes(0, 4)).toThrow(efault);
    p.host.unmapSingle(mic, SIZE);
    expect(p.cardState).toBe(X100_CARD_STATE.RUNNING);
    expect(card.alive).toBe(true);
    expect(p.host.iommu.faults().count).toBe(0);
    expect(logger.records.filter((r) => STOPPED.test(r.msg))).toEqual([]);
    expect(() => card.cardUnmap(p.hardware.cardMemory.window(0, 64))).toThrow(einval);
  });

  it('kept across the unmap: the access after it is an IOMMU fault at once; given back within the grace period, the card runs on', async () => {
    const { p, card, logger } = await running();
    const mic = p.host.mapSingle(AT, SIZE);
    const win = card.cardMap(mic, SIZE);
    p.host.unmapSingle(mic, SIZE);
    expect(() => win.writeU8(0, 7)).toThrow(efault);
    expect(p.host.iommu.faults().recent.map((f) => f.micAddr)).toEqual([mic, mic]);
    expect(logger.records.filter((r) => STOPPED.test(r.msg))).toMatchObject([
      { level: 'warn', fields: { windows: 1, first: ['0x2000 +4096'], graceMs: X100_CARD_WINDOWS.GRACE_MS } },
    ]);
    // (the in-process clock jumps to the next timer whenever the thread idles: give it back before)
    await Promise.resolve();
    card.cardUnmap(win); // as a card does right after the message that made the host free it
    (p.clock as VirtualClock).advance(X100_CARD_WINDOWS.GRACE_MS);
    await flush();
    expect(p.cardState).toBe(X100_CARD_STATE.RUNNING);
    expect(card.alive).toBe(true);
    expect(p.host.dmaWindow(AT, 1).readU8(0)).toBe(0);
  });

  it('kept past the grace period: the card is stopped (halted, every window dead) until a reset', async () => {
    const { p, card, logger } = await running();
    const mic = p.host.mapSingle(AT, SIZE);
    const other = p.host.mapSingle(0x8000, SIZE);
    const kept = card.cardMap(mic, SIZE);
    const fine = card.cardMap(other, SIZE);
    kept.writeU8(1, 1);
    p.host.unmapSingle(mic, SIZE);
    expect(p.cardState).toBe(X100_CARD_STATE.RUNNING);
    // host RAM there must not be handed out again yet; elsewhere nothing is held
    const held = p.host.iommu.cardHolds(AT + 16, 16);
    expect(held).toBeInstanceOf(Promise);
    expect(p.host.iommu.cardHolds(0x8000, SIZE)).toBeUndefined();
    const faults = p.host.iommu.faults();
    expect(faults.count).toBe(1);
    expect(faults.recent[0]).toEqual({ index: 1, channel: -1, micAddr: mic, hostAddr: AT, length: SIZE });
    (p.clock as VirtualClock).advance(X100_CARD_WINDOWS.GRACE_MS);
    await flush();
    await held;
    expect(p.cardState).toBe(X100_CARD_STATE.HALTED);
    expect(card.alive).toBe(false);
    expect(p.card).toBeUndefined();
    expect(p.host.iommu.cardHolds(AT, SIZE)).toBeUndefined();
    const stopped = logger.records.filter((r) => STOPPED.test(r.msg) && r.level === 'error');
    expect(stopped).toHaveLength(1);
    expect(stopped[0]).toMatchObject({ fields: { windows: 1, first: ['0x2000 +4096'] } });
    // every access through a window of the stopped card fails, also where the host still maps
    expect(() => kept.writeU8(0, 7)).toThrow(enodev);
    expect(() => fine.readU8(0)).toThrow(enodev);
    expect(() => card.cardMap(other, SIZE)).toThrow(enodev);
    expect(p.host.dmaWindow(AT, 2).readU8(0)).toBe(0);
    await expect(p.startCard()).rejects.toMatchObject({ code: 'EBUSY' });
    p.host.reset();
    await pollUntil(p.clock, () => p.cardState === X100_CARD_STATE.READY, 10_000, 5);
    expect(p.cardState).toBe(X100_CARD_STATE.READY);
    await p.startCard();
    const again = p.cardView!;
    again.cardMap(other, SIZE).writeU8(0, 3);
    expect(p.host.dmaWindow(0x8000, 1).readU8(0)).toBe(3);
  });

  it('checks again after any change of the table: a window the host still maps through another mapping keeps working', async () => {
    const { p, card } = await running();
    const wide = p.host.mapSingle(AT, 2 * SIZE);
    const mic = p.host.mapSingle(AT, SIZE);
    const win = card.cardMap(mic, SIZE);
    // unrelated maps and unmaps move the table's sequence
    for (let i = 0; i < 3; i++) p.host.unmapSingle(p.host.mapSingle(0x10000, SIZE), SIZE);
    win.writeU8(5, 5);
    p.host.unmapSingle(mic, SIZE); // [AT, +2 pages) is still mapped: nothing to take back
    expect(p.cardState).toBe(X100_CARD_STATE.RUNNING);
    win.writeU8(6, 6);
    expect(p.host.dmaWindow(AT, 8).readU8(6)).toBe(6);
    p.host.unmapSingle(wide, 2 * SIZE);
    expect(() => win.writeU8(7, 7)).toThrow(efault);
    (p.clock as VirtualClock).advance(X100_CARD_WINDOWS.GRACE_MS);
    await flush();
    expect(p.cardState).toBe(X100_CARD_STATE.HALTED);
    expect(() => win.writeU8(7, 7)).toThrow(enodev);
    expect(p.host.dmaWindow(AT, 8).readU8(7)).toBe(0);
  });

  it('a window of a card that is not running does not stop anything, though its access after the unmap is still refused', async () => {
    const logger = createMemoryLogger();
    const p = createInProcessPlatform({
      cardMemorySize: 1 << 20,
      hostRamSize: 1 << 20,
      dmaEngine: false,
      logger,
    });
    platform = p;
    const card = new X100CardView(p.hardware, {
      delivery: 'microtask',
      clock: p.clock,
      generation: p.hardware.generation,
    });
    const mic = p.host.mapSingle(AT, SIZE);
    const win = card.cardMap(mic, SIZE);
    p.host.unmapSingle(mic, SIZE); // the card is `ready`: no card code runs, nothing to stop
    expect(p.cardState).toBe(X100_CARD_STATE.READY);
    expect(() => win.readU8(0)).toThrow(efault); // the access itself is still refused
    expect(p.host.iommu.faults().count).toBe(1);
    expect(logger.records.filter((r) => STOPPED.test(r.msg))).toEqual([]);
  });

  it(`holds ${X100_CARD_WINDOWS.MAX} windows at once and refuses one more (ENOSPC) until one is given back; empty windows take no slot`, async () => {
    const { p, card } = await running();
    const mic = p.host.mapSingle(AT, SIZE);
    const wins = Array.from({ length: X100_CARD_WINDOWS.MAX }, (_, i) => card.cardMap(mic + (i % SIZE), 1));
    expect(() => card.cardMap(mic, 1)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    card.cardMap(mic, 0);
    card.cardUnmap(wins[100]!);
    card.cardMap(mic, 1).writeU8(0, 1);
    for (const w of wins) if (w !== wins[100]) card.cardUnmap(w);
    p.host.unmapSingle(mic, SIZE);
    expect(p.host.iommu.faults().count).toBe(1); // the one made after ENOSPC was kept
  });

  it('with iommu: false a window is a plain view (the bare hardware): nothing is checked again or stopped', async () => {
    const { p, card } = await running(false);
    const mic = p.host.mapSingle(AT, SIZE);
    const win = card.cardMap(mic, SIZE);
    p.host.unmapSingle(mic, SIZE);
    expect(p.cardState).toBe(X100_CARD_STATE.RUNNING);
    p.host.mapSingle(0x8000, SIZE); // keeps SMPT entry 0 mapped
    win.writeU8(0, 4);
    expect(p.host.dmaWindow(AT, 1).readU8(0)).toBe(4);
    card.cardUnmap(win); // nothing to give back
    expect(() => card.cardUnmap(p.hardware.cardMemory.window(0, 8))).toThrow(einval);
  });
});

describe('card windows on host memory (worker platform)', () => {
  it('a card thread writing through a raw view across the unmap is terminated: host memory stops changing, and the card boots again', async () => {
    const logger = createMemoryLogger();
    const p = createWorkerPlatform({
      cardModule: ECHO_CARD,
      cardMemorySize: 1 << 20,
      hostRamSize: 1 << 20,
      dmaEngine: false,
      resetDelayMs: 0,
      logger,
    });
    platform = p;
    const page = prepareHost(p);
    const card = await p.startCard();
    const mic = p.host.mapSingle(AT, SIZE);
    await card.call('scribble', mic, SIZE);
    const seen = p.host.dmaWindow(AT, 4);
    await eventually(() => seen.loadU32(0) > 10, 'the card to write');
    p.host.unmapSingle(mic, SIZE);
    await eventually(() => p.cardState === X100_CARD_STATE.HALTED, 'the card to be stopped', 20_000);
    await expect(card.call('nodeId')).rejects.toMatchObject({ code: 'ENODEV' });
    expect(logger.records.filter((r) => STOPPED.test(r.msg)).map((r) => r.level)).toEqual(['warn', 'error']);
    expect(p.host.iommu.faults().recent.at(-1)).toMatchObject({
      channel: -1,
      micAddr: mic,
      hostAddr: AT,
      length: SIZE,
    });
    p.host.reset(); // resolves the firmware only once the old card thread is gone
    await eventually(() => p.cardState === X100_CARD_STATE.READY, 'the firmware to be ready', 20_000);
    const last = seen.loadU32(0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen.loadU32(0)).toBe(last); // nobody writes any more
    // what _mic_start does again before the next boot
    p.host.smpt.restore();
    p.host.enableInterrupts();
    publishPage(p.host, page.micAddr);
    const again = await p.startCard();
    expect(await again.call('nodeId')).toBe(1);
  }, 60_000);
});
