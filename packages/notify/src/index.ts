/**
 * Cross-thread event words over a SharedArrayBuffer.
 *
 * An event word is two Int32 slots: a sequence number that a signaller bumps when someone
 * sleeps, and a count of waiters that said they are about to sleep. A waiter polls its condition for a bounded time
 * first (a sleeping vCPU takes ~50 µs to wake, a poll round trip is ~0.3 µs), then announces
 * itself, re-checks, and only then sleeps. A signaller calls `Atomics.notify` only when a waiter
 * announced itself (a notify costs ~70 ns even with nobody waiting).
 *
 * Ordering: every access to the two slots is a sequentially consistent `Atomics` operation, so
 * "publish data (with an Atomics store), read waiters, (if any) bump seq and notify" in the
 * signaller and "read seq, announce, re-check data (with an Atomics load), wait on seq" in the
 * waiter cannot both miss: either the re-check sees the data, or the signaller sees the
 * announcement and `Atomics.wait` sees a changed seq or the notify.
 */
import { MicError, checkFunction, formatValue } from '@mic/errors';

/** Bytes an event word takes in a SharedArrayBuffer (two Int32 slots). */
export const EVENT_WORD_BYTES = 8;

const SEQ = 0;
const WAITERS = 1;

/** How long to poll before sleeping, by default: 50 µs. */
export const DEFAULT_SPIN_NS = 50_000;

/** Options of a wait. */
export interface WaitOptions {
  /** Poll the condition this long before sleeping (ns). 0 sleeps at once. */
  readonly spinNs?: number;
  /** Give up after this long (ms). Default: wait forever. */
  readonly timeoutMs?: number;
  /**
   * Called once when polling ends without success, before the waiter announces that it sleeps;
   * `ready()` is checked again after it. Use it to ask the peer for a signal only when about to
   * sleep (e.g. re-enable virtio notifications), so that a polling waiter costs the peer nothing.
   */
  readonly beforeSleep?: () => void;
}

const now = (): number => performance.now();

/**
 * One event word: a doorbell or interrupt line between threads that share a SharedArrayBuffer.
 * Both threads construct an `EventWord` over the same bytes.
 *
 * @example
 * // thread A                       // thread B
 * ring.publish(x);                  await word.waitAsync(() => ring.hasWork());
 * word.signal();
 */
export class EventWord {
  readonly #i32: Int32Array;

  /**
   * @param sab - shared memory holding the word
   * @param byteOffset - where the word starts; a multiple of 4, with 8 bytes available
   */
  constructor(sab: SharedArrayBuffer, byteOffset = 0) {
    if (!(sab instanceof SharedArrayBuffer)) {
      throw new MicError('EINVAL', 'an event word needs a SharedArrayBuffer');
    }
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0) {
      throw new MicError('EINVAL', `event word offset ${byteOffset} is not a non-negative multiple of 4`);
    }
    if (byteOffset + EVENT_WORD_BYTES > sab.byteLength) {
      throw new MicError(
        'EINVAL',
        `event word at ${byteOffset} does not fit in ${sab.byteLength} bytes of shared memory`,
      );
    }
    this.#i32 = new Int32Array(sab, byteOffset, 2);
  }

  /** The current sequence number (bumped by every {@link signal} that found a sleeper). */
  get seq(): number {
    return Atomics.load(this.#i32, SEQ);
  }

  /** True while at least one waiter has announced that it sleeps. */
  get hasSleepers(): boolean {
    return Atomics.load(this.#i32, WAITERS) > 0;
  }

  /**
   * Raises the event: when a waiter announced that it sleeps, bumps the sequence number and
   * wakes it. Publish the data the waiter checks (with an Atomics operation) before calling this.
   *
   * With nobody asleep it touches nothing but the waiter count (no write to shared memory): a
   * waiter announces itself before its last check of the data, so with sequentially consistent
   * atomics either that check sees the data published before this call, or this call sees the
   * announcement and wakes it.
   * @returns true when a sleeper was notified
   */
  signal(): boolean {
    if (Atomics.load(this.#i32, WAITERS) === 0) return false;
    Atomics.add(this.#i32, SEQ, 1);
    Atomics.notify(this.#i32, SEQ);
    return true;
  }

  /**
   * Blocks this thread until `ready()` is true: polls for `spinNs`, then sleeps with
   * `Atomics.wait` between signals. Only for threads that may block (workers).
   * @returns true when `ready()` held, false on timeout
   */
  waitSync(ready: () => boolean, options: WaitOptions = {}): boolean {
    const deadline = options.timeoutMs === undefined ? Infinity : now() + options.timeoutMs;
    if (this.#spin(ready, options.spinNs ?? DEFAULT_SPIN_NS, deadline)) return true;
    options.beforeSleep?.();
    const i32 = this.#i32;
    for (;;) {
      const seq = Atomics.load(i32, SEQ);
      Atomics.add(i32, WAITERS, 1);
      if (ready()) {
        Atomics.sub(i32, WAITERS, 1);
        return true;
      }
      const left = deadline - now();
      if (left <= 0) {
        Atomics.sub(i32, WAITERS, 1);
        return false;
      }
      Atomics.wait(i32, SEQ, seq, left === Infinity ? undefined : left);
      Atomics.sub(i32, WAITERS, 1);
      if (ready()) return true;
    }
  }

  /**
   * Waits without blocking the event loop until `ready()` is true: polls for `spinNs`, then
   * sleeps with `Atomics.waitAsync` between signals.
   * @returns true when `ready()` held, false on timeout
   */
  async waitAsync(ready: () => boolean, options: WaitOptions = {}): Promise<boolean> {
    const deadline = options.timeoutMs === undefined ? Infinity : now() + options.timeoutMs;
    if (this.#spin(ready, options.spinNs ?? DEFAULT_SPIN_NS, deadline)) return true;
    options.beforeSleep?.();
    const i32 = this.#i32;
    for (;;) {
      const seq = Atomics.load(i32, SEQ);
      Atomics.add(i32, WAITERS, 1);
      if (ready()) {
        Atomics.sub(i32, WAITERS, 1);
        return true;
      }
      const left = deadline - now();
      if (left <= 0) {
        Atomics.sub(i32, WAITERS, 1);
        return false;
      }
      const w = Atomics.waitAsync(i32, SEQ, seq, left === Infinity ? undefined : left);
      if (w.async) await w.value;
      Atomics.sub(i32, WAITERS, 1);
      if (ready()) return true;
    }
  }

  /**
   * Polls `ready()` for up to `spinNs` without sleeping or announcing anything: the fast path of
   * a waiter that runs its own loop and calls {@link waitAsync}/{@link waitSync} only when this
   * returns false. @returns true when `ready()` held
   */
  poll(ready: () => boolean, spinNs: number = DEFAULT_SPIN_NS): boolean {
    return this.#spin(ready, spinNs, Infinity);
  }

  #spin(ready: () => boolean, spinNs: number, deadline: number): boolean {
    if (ready()) return true;
    if (spinNs <= 0) return false;
    // The clock is read every 64 polls only, starting after the first 64: reading it costs
    // ~50 ns, as much as several polls, and an event that comes early should not wait for it.
    let end = Infinity;
    for (let n = 1; ; n++) {
      if (ready()) return true;
      if ((n & 63) === 0) {
        const t = now();
        if (end === Infinity) end = Math.min(t + spinNs / 1e6, deadline);
        else if (t >= end) return false;
      }
    }
  }
}

/** What the naps of {@link napPoll} wait on: nothing ever notifies it, so each nap times out. */
const NAP_WORD = new Int32Array(new SharedArrayBuffer(4));
/**
 * One nap of {@link napPoll} (ms): asks for 1 µs; the kernel's timer slack (50 µs by default for
 * a normal thread) makes it about 50 µs.
 */
export const NAP_MS = 0.001;

/** Options of {@link napPoll}. */
export interface NapPollOptions {
  /**
   * Poll in a tight loop this long before napping between polls (ns, a finite number ≥ 0;
   * default {@link DEFAULT_SPIN_NS}). Capped by the budget.
   */
  readonly spinNs?: number;
}

function checkNs(what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new MicError('EINVAL', `${what} ${formatValue(value)} is not a finite number ≥ 0 (ns)`, {
      details: { [what]: formatValue(value) },
    });
  }
  return value;
}

/**
 * Polls `ready()` for at most `budgetNs` of real time without sleeping on anything a signaller
 * has to wake: first in a tight loop for `spinNs` (default 50 µs), then spaced by short naps
 * (`Atomics.wait` on a private word with a {@link NAP_MS} timeout, ~50 µs each with the
 * kernel's timer slack), until `ready()` holds or the budget is spent. Nobody announces a sleep,
 * so the thread that makes `ready()` true pays no `Atomics.notify` (a futex wake, 30–120 µs for
 * the waker on the VMs this runs on).
 *
 * Why the naps: on a busy 2-vCPU machine the thread about to make `ready()` true may share this
 * thread's CPU. A plain spin keeps it from running until the scheduler preempts the spinner, so
 * the event waits out the whole spin; a nap gives it the CPU and is still seen within ~50 µs.
 *
 * Bounded: returns within about `budgetNs` plus one nap and one `ready()` call. The clock is read
 * every 64 polls while spinning (a read costs as much as several polls; an early event is seen
 * without one) and after every nap. It blocks the calling thread (the event loop too, when called
 * there): keep the budget short (≤ 1 ms) on the main thread. Typical use: the fast path before an
 * {@link EventWord} wait, or before a timed sleep of the caller's own.
 *
 * @example
 * // a worker that polls a DMA completion for up to 250 µs, then sleeps on its event word
 * if (!napPoll(() => done(), 250_000)) word.waitSync(() => done(), { spinNs: 0 });
 * @param ready - the condition; called at least once, also with a budget of 0
 * @param budgetNs - how long to poll in all (ns, a finite number ≥ 0)
 * @returns true as soon as `ready()` held, false once the budget passed without it
 * @throws MicError EINVAL when `ready` is not a function or `budgetNs`/`spinNs` is not a finite
 * number ≥ 0
 */
export function napPoll(ready: () => boolean, budgetNs: number, options: NapPollOptions = {}): boolean {
  checkFunction('napPoll ready', ready);
  checkNs('napPoll budgetNs', budgetNs);
  if (options === null || typeof options !== 'object') {
    throw new MicError('EINVAL', `napPoll options ${formatValue(options)} are not an object`, {
      details: { options: formatValue(options) },
    });
  }
  const spinNs = options.spinNs === undefined ? DEFAULT_SPIN_NS : checkNs('napPoll spinNs', options.spinNs);
  if (ready()) return true;
  if (budgetNs <= 0) return false;
  const t0 = now();
  const end = t0 + budgetNs / 1e6;
  const spinEnd = t0 + Math.min(spinNs, budgetNs) / 1e6;
  let napping = false;
  for (let n = 1; ; n++) {
    if (ready()) return true;
    if (!napping && (n & 63) !== 0) continue;
    const t = now();
    if (t >= end) return false;
    if (t >= spinEnd) {
      napping = true;
      Atomics.wait(NAP_WORD, 0, 0, NAP_MS);
    }
  }
}

/** The most waits in a row a {@link PollBackoff} lets sleep at once after failed polls: 64. */
export const MAX_POLL_SKIP = 64;

/**
 * Whether a waiter should poll before it sleeps, learnt from how its last polls went.
 *
 * A poll only pays while the thread that makes the condition true runs meanwhile on another CPU.
 * When both share one (a 2-vCPU machine with other work, or threads pinned together), that thread
 * cannot run until the poller gives the CPU up, so every poll is lost whole and delays it by the
 * poll's length. So a poll that did not pay makes the next waits sleep at once: 1, then 2, 4, ...
 * up to {@link MAX_POLL_SKIP} of them between two polls that fail, so a waiter whose polls never
 * pay loses at most one poll in 64 waits. A poll that paid ends the back-off. What "paid" means is
 * the caller's (found its event within the bound, and was not descheduled meanwhile). Used by the
 * x100 interrupt loop and by SCIF's busy poll.
 *
 * @example
 * const backoff = new PollBackoff();
 * // before each sleep:
 * if (backoff.shouldPoll()) backoff.polled(word.poll(ready, 50_000));
 */
export class PollBackoff {
  /** Waits left that sleep without polling. */
  #skip = 0;
  /** How many the next failed poll skips. */
  #next = 1;

  /** True when the next wait should poll first; counts a skipped wait otherwise. */
  shouldPoll(): boolean {
    if (this.#skip === 0) return true;
    this.#skip--;
    return false;
  }

  /**
   * Records how a poll ended: it paid (`true`) or not.
   * @throws MicError EINVAL when `paid` is not a boolean
   */
  polled(paid: boolean): void {
    if (typeof paid !== 'boolean') {
      throw new MicError('EINVAL', `PollBackoff.polled paid ${formatValue(paid)} is not a boolean`, {
        details: { paid: formatValue(paid) },
      });
    }
    if (paid) {
      this.#next = 1;
      return;
    }
    this.#skip = this.#next;
    this.#next = Math.min(MAX_POLL_SKIP, this.#next * 2);
  }

  /** Waits left that will sleep at once. */
  get skipping(): number {
    return this.#skip;
  }
}
