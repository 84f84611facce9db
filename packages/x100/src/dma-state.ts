/**
 * The DMA engine's shared control block, in the hardware wires buffer next to the interrupt
 * words: the engine's wake-up word, a stop request for the engine thread, and per channel a
 * small lock, an epoch and an "enabled" flag.
 *
 * Who writes what: the register write handlers (in whichever thread writes `DCR` or `DHPR`) and
 * the engine (in its own thread on the `worker` platform) both change a channel's hardware-owned
 * registers (`DTPR`, `DSTAT`, `DCHERR`, `DHPR` on a disable). They do it under the channel's
 * lock, which is only ever held for a few register accesses, never while bytes are copied. The
 * epoch changes on every enable, disable and reset: the engine reads it before it works on a
 * channel and publishes its results only if it is unchanged, so nothing from before a disable or
 * a reset lands after it.
 */
import { EVENT_WORD_BYTES, EventWord } from '@mic/notify';
import { X100_DMA } from './constants.js';

/** Where the block starts in the wires buffer (bytes). */
export const DMA_WIRES_OFFSET = 64;

const WORD = 0;
const STOP = WORD + EVENT_WORD_BYTES;
const LOCK = 16;
const EPOCH = LOCK + 4 * X100_DMA.MAX_NUM_CHAN;
const ON = EPOCH + 4 * X100_DMA.MAX_NUM_CHAN;

/** Bytes of the block. */
export const DMA_WIRES_BYTES = ON + 4 * X100_DMA.MAX_NUM_CHAN;

/** Lock states (a futex-style mutex: 0 free, 1 held, 2 held with waiters). */
const FREE = 0;
const HELD = 1;
const CONTENDED = 2;

/** This thread's view of the DMA control block. See the module comment. */
export class DmaSharedState {
  /** The engine's wake-up word: register writes that give it work signal it. */
  readonly word: EventWord;
  readonly #i32: Int32Array;
  readonly #base: number;

  constructor(wires: SharedArrayBuffer) {
    this.word = new EventWord(wires, DMA_WIRES_OFFSET + WORD);
    this.#i32 = new Int32Array(wires);
    this.#base = DMA_WIRES_OFFSET >>> 2;
  }

  #at(field: number, ch: number): number {
    return this.#base + (field >>> 2) + ch;
  }

  /** Takes channel `ch`'s lock (spins briefly, then sleeps with `Atomics.wait`). */
  lock(ch: number): void {
    const i32 = this.#i32;
    const i = this.#at(LOCK, ch);
    if (Atomics.compareExchange(i32, i, FREE, HELD) === FREE) return;
    for (let n = 0; n < 200; n++) {
      if (Atomics.compareExchange(i32, i, FREE, HELD) === FREE) return;
    }
    while (Atomics.exchange(i32, i, CONTENDED) !== FREE) Atomics.wait(i32, i, CONTENDED, 5);
  }

  /** Releases channel `ch`'s lock. */
  unlock(ch: number): void {
    const i = this.#at(LOCK, ch);
    if (Atomics.exchange(this.#i32, i, FREE) === CONTENDED) Atomics.notify(this.#i32, i, 1);
  }

  /** Channel `ch`'s epoch. */
  epoch(ch: number): number {
    return Atomics.load(this.#i32, this.#at(EPOCH, ch));
  }

  /** Starts a new epoch of channel `ch` (hold its lock). */
  bumpEpoch(ch: number): void {
    Atomics.add(this.#i32, this.#at(EPOCH, ch), 1);
  }

  /** True while channel `ch` is enabled, as the engine sees it. */
  isOn(ch: number): boolean {
    return Atomics.load(this.#i32, this.#at(ON, ch)) !== 0;
  }

  /** Records channel `ch` enabled or disabled (hold its lock). */
  setOn(ch: number, on: boolean): void {
    Atomics.store(this.#i32, this.#at(ON, ch), on ? 1 : 0);
  }

  /** True once the engine thread was asked to stop. */
  get stopRequested(): boolean {
    return Atomics.load(this.#i32, this.#base + (STOP >>> 2)) !== 0;
  }

  /** Asks the engine thread to stop and wakes it. */
  requestStop(): void {
    Atomics.store(this.#i32, this.#base + (STOP >>> 2), 1);
    this.word.signal();
  }

  /**
   * What a reset does to the engine: every channel disabled, in a new epoch. The registers
   * themselves are cleared by the caller afterwards.
   */
  resetAll(): void {
    for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) {
      this.lock(ch);
      this.bumpEpoch(ch);
      this.setOn(ch, false);
      this.unlock(ch);
    }
  }
}
