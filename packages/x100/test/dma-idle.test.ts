// The idle poll of the worker platform's DMA engine thread: longer while a driver streams,
// bounded, and back to the base once the engine was idle for long.
import { describe, expect, it } from '@jest/globals';
import { IdleSpin, MAX_SPIN_NS, NAP_SPIN_NS, STREAM_NS, napPoll } from '../src/dma-idle.js';

describe('the DMA engine thread idle poll', () => {
  it('doubles while work comes back soon after a sleep, never beyond the bound', () => {
    const idle = new IdleSpin(50_000);
    expect(idle.spinNs).toBe(50_000);
    idle.idled(120_000);
    expect(idle.spinNs).toBe(100_000);
    idle.idled(300_000);
    expect(idle.spinNs).toBe(200_000);
    for (let i = 0; i < 10; i++) idle.idled(STREAM_NS);
    expect(idle.spinNs).toBe(MAX_SPIN_NS);
  });

  it('keeps its poll when work came within it, and goes back to the base after a long idle period', () => {
    const idle = new IdleSpin(50_000);
    idle.idled(80_000);
    expect(idle.spinNs).toBe(100_000);
    idle.idled(10_000);
    expect(idle.spinNs).toBe(100_000);
    idle.idled(STREAM_NS + 1);
    expect(idle.spinNs).toBe(50_000);
  });

  it('stays at 0 when told to sleep at once', () => {
    const idle = new IdleSpin(0);
    idle.idled(20_000);
    expect(idle.spinNs).toBe(0);
  });
});

describe('the DMA engine thread idle poll with naps', () => {
  it('returns true as soon as the condition holds, while spinning or napping', () => {
    let polls = 0;
    expect(napPoll(() => ++polls >= 3, 1_000_000)).toBe(true);
    expect(polls).toBe(3);
    // past the spin: found within the naps, before the poll ends
    const t0 = performance.now();
    const at = t0 + (NAP_SPIN_NS * 3) / 1e6;
    expect(napPoll(() => performance.now() >= at, 50_000_000)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(50);
  });

  it('gives up once the poll passed, napping instead of spinning past the first 50 µs', () => {
    let polls = 0;
    const t0 = performance.now();
    expect(
      napPoll(() => {
        polls++;
        return false;
      }, 5_000_000),
    ).toBe(false);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(5);
    expect(ms).toBeLessThan(1000);
    // a spin of 5 ms polls millions of times; naps of >= 1 µs (the timer slack: ~50 µs) poll
    // far fewer
    expect(polls).toBeLessThan(200_000);
    expect(napPoll(() => false, 0)).toBe(false);
    expect(napPoll(() => true, 0)).toBe(true);
  });
});
