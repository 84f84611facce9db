// The idle poll of the worker platform's DMA engine thread: longer while a driver streams,
// bounded, and back to the base once the engine was idle for long. (The poll with naps itself is
// napPoll of @mic/notify, tested there.)
import { describe, expect, it } from '@jest/globals';
import { IdleSpin, MAX_SPIN_NS, STREAM_NS } from '../src/dma-idle.js';

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
