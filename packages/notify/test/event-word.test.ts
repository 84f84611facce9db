import { describe, expect, it } from '@jest/globals';
import { Worker } from 'node:worker_threads';
import { EventWord, EVENT_WORD_BYTES } from '../src/index.js';

describe('EventWord', () => {
  it('rejects memory that is not shared, misaligned or too small', () => {
    expect(() => new EventWord(new ArrayBuffer(8) as unknown as SharedArrayBuffer)).toThrow(
      'needs a SharedArrayBuffer',
    );
    expect(() => new EventWord(new SharedArrayBuffer(16), 2)).toThrow('offset 2');
    expect(() => new EventWord(new SharedArrayBuffer(8), 4)).toThrow('does not fit in 8 bytes');
  });

  it('signal with nobody asleep writes nothing to shared memory', () => {
    const sab = new SharedArrayBuffer(EVENT_WORD_BYTES);
    const w = new EventWord(sab);
    expect(w.signal()).toBe(false);
    expect([...new Int32Array(sab)]).toEqual([0, 0]);
    expect(w.hasSleepers).toBe(false);
  });

  it('signal bumps the sequence and notifies when a waiter announced itself', () => {
    const sab = new SharedArrayBuffer(EVENT_WORD_BYTES);
    const w = new EventWord(sab);
    Atomics.store(new Int32Array(sab), 1, 1); // a waiter announced itself
    expect(w.signal()).toBe(true);
    expect(w.seq).toBe(1);
  });

  it('waitSync returns at once when the condition holds and times out when it never does', () => {
    const w = new EventWord(new SharedArrayBuffer(EVENT_WORD_BYTES));
    expect(w.waitSync(() => true)).toBe(true);
    expect(w.waitSync(() => false, { spinNs: 1000, timeoutMs: 20 })).toBe(false);
    expect(w.hasSleepers).toBe(false);
  });

  it('waitAsync wakes on a signal from another thread after sleeping', async () => {
    const sab = new SharedArrayBuffer(EVENT_WORD_BYTES + 4);
    const w = new EventWord(sab, 0);
    const flag = new Int32Array(sab, EVENT_WORD_BYTES, 1);
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const i32 = new Int32Array(workerData, 0, 2);
       const flag = new Int32Array(workerData, 8, 1);
       // wait until the main thread sleeps, then publish and signal
       while (Atomics.load(i32, 1) === 0) {}
       Atomics.store(flag, 0, 1);
       Atomics.add(i32, 0, 1);
       if (Atomics.load(i32, 1) > 0) Atomics.notify(i32, 0);`,
      { eval: true, workerData: sab },
    );
    const ok = await w.waitAsync(() => Atomics.load(flag, 0) === 1, { spinNs: 0, timeoutMs: 60_000 });
    await worker.terminate();
    expect(ok).toBe(true);
    expect(w.hasSleepers).toBe(false);
  });

  it('waitSync in a worker wakes on a signal from the main thread', async () => {
    const sab = new SharedArrayBuffer(EVENT_WORD_BYTES + 4);
    const w = new EventWord(sab, 0);
    const flag = new Int32Array(sab, EVENT_WORD_BYTES, 1);
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const i32 = new Int32Array(workerData, 0, 2);
       const flag = new Int32Array(workerData, 8, 1);
       for (;;) {
         const seq = Atomics.load(i32, 0);
         Atomics.add(i32, 1, 1);
         if (Atomics.load(flag, 0) === 1) { Atomics.sub(i32, 1, 1); break; }
         Atomics.wait(i32, 0, seq);
         Atomics.sub(i32, 1, 1);
       }
       parentPort.postMessage('woke');`,
      { eval: true, workerData: sab },
    );
    const woke = new Promise((resolve) => worker.once('message', resolve));
    while (!w.hasSleepers) await new Promise((r) => setTimeout(r, 1));
    Atomics.store(flag, 0, 1);
    expect(w.signal()).toBe(true);
    await expect(woke).resolves.toBe('woke');
    await worker.terminate();
  });
});

describe('EventWord.poll', () => {
  it('returns true as soon as the condition holds and false after the budget, without announcing a sleeper', () => {
    const w = new EventWord(new SharedArrayBuffer(EVENT_WORD_BYTES));
    let n = 0;
    expect(w.poll(() => ++n === 5, 1e9)).toBe(true);
    expect(n).toBe(5);
    expect(w.poll(() => false, 2000)).toBe(false);
    expect(w.hasSleepers).toBe(false);
  });
});
