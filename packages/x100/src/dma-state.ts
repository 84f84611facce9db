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
 *
 * Every lock has an owner: the word holds the tag of the thread that took it ({@link
 * DMA_LOCK_OWNER}: the engine, the host, or the card code of one boot, {@link cardLockOwner}),
 * so a release never frees a lock someone else holds now, and a lock whose owner is gone can be
 * broken. A card thread can be terminated at any instant (a reset, a crash, its own exit), also
 * while it holds a lock:
 * - the platform breaks the locks of a card once its thread has gone ({@link DmaSharedState.breakLocks});
 * - a waiter breaks a lock held by the card code of an earlier boot after
 *   {@link DMA_LOCK_CARD_GRACE_MS} (a reset has started a new generation: that card is being
 *   terminated and, alive, would have released it within microseconds);
 * - no waiter waits longer than {@link DMA_LOCK_TIMEOUT_MS} for any lock: it then breaks it.
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

/** Who holds a channel lock: the tag stored in the lock word. */
export const DMA_LOCK_OWNER = {
  /** The DMA engine (its thread on `worker`, the microtasks on `inProcess`). */
  ENGINE: 1,
  /** The host's thread (its register writes, resets). */
  HOST: 2,
} as const;

/** Tags from here up name the card code of one boot ({@link cardLockOwner}). */
const CARD_BASE = 16;
/** Bit 30 of a held lock word: somebody sleeps on it. */
const WAITERS = 0x4000_0000;
const OWNER_MASK = WAITERS - 1;
const FREE = 0;
/** Lock attempts before a waiter starts sleeping. */
const SPINS = 200;
/** Longest single sleep of a waiter (ms): it re-checks the holder in between. */
const SLICE_MS = 5;

/**
 * How long a waiter waits for a lock held by the card code of an earlier boot before it breaks
 * it (ms). A reset has already started a new generation and is terminating that card.
 */
export const DMA_LOCK_CARD_GRACE_MS = 100;
/** How long a waiter waits for any lock before it breaks it (ms): no wait is unbounded. */
export const DMA_LOCK_TIMEOUT_MS = 2000;

/** The lock owner tag of the card code of boot `generation`. */
export function cardLockOwner(generation: number): number {
  return CARD_BASE + ((generation >>> 0) % (OWNER_MASK - CARD_BASE));
}

/** This thread's view of the DMA control block. See the module comment. */
export class DmaSharedState {
  /** The engine's wake-up word: register writes that give it work signal it. */
  readonly word: EventWord;
  /** The tag this thread's locks carry. */
  readonly owner: number;
  readonly #i32: Int32Array;
  readonly #base: number;
  readonly #generation: () => number;

  /**
   * @param owner - the tag of the thread that uses this view ({@link DMA_LOCK_OWNER} or
   * {@link cardLockOwner})
   * @param generation - reads the hardware's current generation (a card tag of another one is
   * breakable after the grace time)
   */
  constructor(wires: SharedArrayBuffer, owner: number, generation: () => number) {
    this.word = new EventWord(wires, DMA_WIRES_OFFSET + WORD);
    this.owner = owner;
    this.#i32 = new Int32Array(wires);
    this.#base = DMA_WIRES_OFFSET >>> 2;
    this.#generation = generation;
  }

  #at(field: number, ch: number): number {
    return this.#base + (field >>> 2) + ch;
  }

  /**
   * Takes channel `ch`'s lock: spins briefly, then sleeps in short slices, breaking the lock
   * when its holder is gone (see the module comment). Returns within about
   * {@link DMA_LOCK_TIMEOUT_MS} whatever the other threads do.
   */
  lock(ch: number): void {
    const i32 = this.#i32;
    const i = this.#at(LOCK, ch);
    const me = this.owner;
    for (let n = 0; n < SPINS; n++) {
      if (Atomics.compareExchange(i32, i, FREE, me) === FREE) return;
    }
    const start = performance.now();
    for (;;) {
      const v = Atomics.load(i32, i);
      if (v === FREE) {
        // Others may sleep on it too: keep the flag so the release wakes them.
        if (Atomics.compareExchange(i32, i, FREE, me | WAITERS) === FREE) return;
        continue;
      }
      const holder = v & OWNER_MASK;
      const waited = performance.now() - start;
      if (
        holder === me ||
        waited >= DMA_LOCK_TIMEOUT_MS ||
        (waited >= DMA_LOCK_CARD_GRACE_MS && this.#isStaleCard(holder))
      ) {
        // Its holder is gone (or is this thread, which can only mean it was unwound).
        if (Atomics.compareExchange(i32, i, v, me | WAITERS) === v) return;
        continue;
      }
      if ((v & WAITERS) === 0 && Atomics.compareExchange(i32, i, v, v | WAITERS) !== v) continue;
      Atomics.wait(i32, i, v | WAITERS, SLICE_MS);
    }
  }

  /** Releases channel `ch`'s lock, unless it was broken and somebody else holds it now. */
  unlock(ch: number): void {
    const i32 = this.#i32;
    const i = this.#at(LOCK, ch);
    const me = this.owner;
    if (Atomics.compareExchange(i32, i, me, FREE) === me) return;
    if (Atomics.compareExchange(i32, i, me | WAITERS, FREE) === (me | WAITERS)) Atomics.notify(i32, i);
  }

  #isStaleCard(holder: number): boolean {
    return holder >= CARD_BASE && holder !== cardLockOwner(this.#generation());
  }

  /**
   * Frees every channel lock held by a card tag other than the current generation's, or by
   * `owner` when given: for the platform, once the threads that held them are gone.
   * @returns how many locks were broken
   */
  breakLocks(owner?: number): number {
    const i32 = this.#i32;
    let broken = 0;
    for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) {
      const i = this.#at(LOCK, ch);
      const v = Atomics.load(i32, i);
      const holder = v & OWNER_MASK;
      if (v === FREE || (owner === undefined ? !this.#isStaleCard(holder) : holder !== owner)) continue;
      if (Atomics.compareExchange(i32, i, v, FREE) === v) {
        broken++;
        Atomics.notify(i32, i);
      }
    }
    return broken;
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
