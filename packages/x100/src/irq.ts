/**
 * Interrupt lines and their delivery.
 *
 * Each side (host, card) has one {@link InterruptLine}: a status word of pending sources (bit n =
 * source n), an enable mask, an auto-clear mask and an {@link EventWord} in shared memory. Raising
 * a source sets its status bit with `Atomics.or` (a release: plain writes made before it are
 * visible to the handler) and kicks the receiver. The receiver's {@link IrqController} takes the
 * enabled pending bits (clearing them with one atomic AND, as the host's top half reads and
 * clears `SICR0`), disables the taken sources whose auto-clear bit is set (lazily: see
 * {@link InterruptLine.take}), and calls the handlers installed with `requestIrq`. Handlers never
 * run inside the call that raised the interrupt.
 *
 * The delivery path is kept to few shared-memory operations: each `Atomics` operation costs
 * 8–14 ns in V8 on the machines this was measured on (a plain typed-array read ~1 ns), and a
 * doorbell round trip crosses this path on both sides.
 *
 * Two ways to run the receiver:
 * - `microtask` (the `inProcess` platform): a kick queues one microtask that dispatches
 *   everything pending; rings made before it coalesce, as a latched status bit does.
 * - `wait` (the `worker` platform): an async loop per side polls the status for a bounded time
 *   (`spinNs`, default 50 µs), then sleeps with `Atomics.waitAsync` on the line's event word.
 *   A kick bumps the word and calls `Atomics.notify` only when the receiver said it sleeps
 *   (see `@mic/notify`). The sleeping loop does not keep the process alive. The poll runs only
 *   once the microtasks the handlers queued have run (a woken caller's code comes first), and
 *   polls that keep finding nothing are skipped for a while (`PollBackoff` of `@mic/notify`): when the
 *   raiser shares the poller's CPU, it cannot run while the poller spins.
 *
 * @see drivers/misc/mic/host/mic_intr.c
 * @see drivers/misc/mic/card/mic_device.c
 */
import { MicError, checkInt, checkObject, errorMessage, formatValue } from '@mic/errors';
import { u32Value } from './mmio.js';
import type { Logger } from '@mic/logger';
import { DEFAULT_SPIN_NS, EventWord, PollBackoff } from '@mic/notify';

/** Which side of the link. */
export type X100Side = 'host' | 'card';

/** How a side's interrupts are delivered: see the module comment. */
export type IrqDelivery = 'microtask' | 'wait';

/** Where a line's three registers live: byte offsets of 32-bit words in `sab`. */
export interface InterruptLineLayout {
  readonly sab: SharedArrayBuffer;
  readonly status: number;
  readonly enable: number;
  /** The auto-clear word; absent on a line without auto-clear (the card's). */
  readonly autoClear?: number;
  /** Shared memory and offset of the line's event word. */
  readonly wordSab: SharedArrayBuffer;
  readonly wordOffset: number;
}

/**
 * One side's interrupt status, enable and auto-clear words plus its wake-up word. One instance
 * per thread over the shared words; any thread may {@link raise}, only the receiving side's
 * controller {@link take}s.
 */
export class InterruptLine {
  /** The side that receives these interrupts. */
  readonly side: X100Side;
  /** The wake-up word the receiver sleeps on. */
  readonly word: EventWord;
  readonly #u32: Uint32Array;
  readonly #status: number;
  readonly #enable: number;
  /** Index of the auto-clear word, -1 when the line has none. */
  readonly #autoClear: number;
  readonly #signal: () => void;
  #kick: () => void;
  /** Sources auto-cleared since the last {@link ack}. */
  #autoMasked = 0;
  /** Of those, the ones not yet written to the enable word (see {@link take}). */
  #heldMask = 0;

  constructor(side: X100Side, layout: InterruptLineLayout) {
    if (side !== 'host' && side !== 'card') {
      throw new MicError('EINVAL', `interrupt line side ${formatValue(side)} is not 'host' or 'card'`);
    }
    checkObject('interrupt line layout', layout);
    if (!(layout.sab instanceof SharedArrayBuffer) || !(layout.wordSab instanceof SharedArrayBuffer)) {
      throw new MicError('EINVAL', 'interrupt line layout: sab and wordSab must be SharedArrayBuffers');
    }
    this.side = side;
    this.#u32 = new Uint32Array(layout.sab);
    this.#status = layout.status >>> 2;
    this.#enable = layout.enable >>> 2;
    this.#autoClear = layout.autoClear === undefined ? -1 : layout.autoClear >>> 2;
    this.word = new EventWord(layout.wordSab, layout.wordOffset);
    const word = this.word;
    this.#signal = () => {
      word.signal();
    };
    this.#kick = this.#signal;
  }

  /**
   * Sets how a raise reaches the receiver in this thread; `undefined` restores the default
   * (signal the event word). Used by the `microtask` delivery.
   */
  setKick(kick: (() => void) | undefined): void {
    if (kick !== undefined && typeof kick !== 'function') {
      throw new MicError('EINVAL', `interrupt kick ${formatValue(kick)} is not a function`);
    }
    this.#kick = kick ?? this.#signal;
  }

  /**
   * Marks source `src` (0–31) pending and kicks the receiver, unless the source was pending
   * already: then the raise that set it kicked (or is about to), the receiver has not taken it
   * yet and takes both at once, as a latched status bit does. A second wake-up of a receiver
   * that is still waking from the first costs the raiser a futex call for nothing.
   */
  raise(src: number): void {
    // `1 << 32` is `1 << 0`: a source outside 0–31 must not raise another one.
    if (!(typeof src === 'number' && src >= 0 && src <= 31 && (src | 0) === src))
      checkInt('interrupt source', src, 0, 31);
    const bit = 1 << src;
    if ((Atomics.or(this.#u32, this.#status, bit) & bit) !== 0) return;
    this.#kick();
  }

  /** Kicks the receiver without raising anything (after an enable). */
  kick(): void {
    this.#kick();
  }

  /** Pending sources (enabled or not). */
  pending(): number {
    return Atomics.load(this.#u32, this.#status);
  }

  /** Enabled sources (`SICE0`, less the sources a running handler's delivery auto-cleared). */
  enabled(): number {
    return (Atomics.load(this.#u32, this.#enable) & ~this.#heldMask) >>> 0;
  }

  /** Auto-clear sources. */
  autoClearMask(): number {
    return this.#autoClear < 0 ? 0 : Atomics.load(this.#u32, this.#autoClear);
  }

  /** Pending and enabled sources. Reads only the status word while nothing is pending. */
  deliverable(): number {
    const st = Atomics.load(this.#u32, this.#status);
    if (st === 0) return 0;
    return (st & Atomics.load(this.#u32, this.#enable) & ~this.#heldMask) >>> 0;
  }

  /**
   * Claims the deliverable sources: clears their status bits, and holds back those with
   * auto-clear until {@link ack} or {@link commitAutoClear}.
   *
   * Auto-clear is applied lazily. The controller calls the handlers right after `take` on this
   * thread and {@link commitAutoClear} right after they return; until then the auto-cleared
   * sources are masked in this instance only (see {@link enabled}, {@link deliverable}), and a
   * handler that acknowledges before returning (the common case: VOP and SCIF ack first) never
   * touches `SICE0` at all. A handler that returns without acknowledging leaves the source off in
   * `SICE0`, as the hardware does. Either way nothing is delivered twice and nothing is lost: a
   * source raised again meanwhile stays pending in the status word. The one visible difference:
   * a raw MMIO read of `SICE0` from inside the handler still shows the source on (the host
   * view's `interruptEnableMask` shows it off).
   * @param candidates - what {@link deliverable} returned just before on this thread, to save
   *   reading the enable mask again; only those of them still pending are claimed. Default: every
   *   enabled source.
   * @returns the claimed sources (0 when none)
   */
  take(candidates?: number): number {
    if (candidates !== undefined) u32Value('candidate sources mask', candidates);
    const u32 = this.#u32;
    const en =
      candidates === undefined
        ? (Atomics.load(u32, this.#enable) & ~this.#heldMask) >>> 0
        : (candidates & ~this.#heldMask) >>> 0;
    if (en === 0) return 0;
    // One read-modify-write claims exactly the enabled sources; a concurrent raise of any
    // source either lands before it (and is claimed) or after it (and stays pending).
    const bits = (Atomics.and(u32, this.#status, ~en) & en) >>> 0;
    if (bits !== 0 && this.#autoClear >= 0) {
      const ac = (bits & Atomics.load(u32, this.#autoClear)) >>> 0;
      if (ac !== 0) {
        this.#heldMask = (this.#heldMask | ac) >>> 0;
        this.#autoMasked = (this.#autoMasked | ac) >>> 0;
      }
    }
    return bits;
  }

  /**
   * Writes the auto-clear of the last {@link take} that no {@link ack} undid to `SICE0` (the
   * controller calls it once the handlers returned).
   */
  commitAutoClear(): void {
    const held = this.#heldMask;
    if (held === 0) return;
    this.#heldMask = 0;
    Atomics.and(this.#u32, this.#enable, ~held >>> 0);
  }

  /** Clears pending sources (write-1-to-clear `SICR0`). */
  clearPending(bits: number): void {
    u32Value('pending bits', bits);
    Atomics.and(this.#u32, this.#status, ~bits >>> 0);
  }

  /** Replaces the enable mask (a write of `SICE0`) and kicks the receiver when something is deliverable. */
  setEnabled(mask: number): void {
    u32Value('enable mask', mask);
    Atomics.store(this.#u32, this.#enable, mask >>> 0);
    this.#autoMasked = (this.#autoMasked & ~mask) >>> 0;
    this.#heldMask = (this.#heldMask & ~mask) >>> 0;
    if (this.deliverable() !== 0) this.#kick();
  }

  /** Enables sources and kicks the receiver when something is deliverable. */
  enable(bits: number): void {
    u32Value('enable bits', bits);
    Atomics.or(this.#u32, this.#enable, bits >>> 0);
    this.#autoMasked = (this.#autoMasked & ~bits) >>> 0;
    this.#heldMask = (this.#heldMask & ~bits) >>> 0;
    if (this.deliverable() !== 0) this.#kick();
  }

  /** Disables sources (a write of `SICC0`). */
  disable(bits: number): void {
    u32Value('disable bits', bits);
    Atomics.and(this.#u32, this.#enable, ~bits >>> 0);
    this.#autoMasked = (this.#autoMasked & ~bits) >>> 0;
    this.#heldMask = (this.#heldMask & ~bits) >>> 0;
  }

  /** Replaces the auto-clear mask (a write of `SIAC0`). */
  setAutoClear(mask: number): void {
    u32Value('auto-clear mask', mask);
    if (this.#autoClear < 0) {
      throw new MicError('EINVAL', `the ${this.side} interrupt line has no auto-clear register`, {
        details: { mask },
      });
    }
    Atomics.store(this.#u32, this.#autoClear, mask >>> 0);
  }

  /**
   * Re-enables the sources that auto-clear disabled since the last acknowledgement, as
   * `mic_x100_intr_workarounds` re-enables interrupts on B0 and later steppings. A no-op when
   * nothing was auto-cleared (always on the card, like the card's `mic_ack_interrupt`).
   */
  ack(): void {
    const bits = this.#autoMasked;
    if (bits === 0) return;
    const held = this.#heldMask;
    if ((bits & ~held) === 0) {
      // Acknowledged inside the handler: the mask never reached SICE0, so there is nothing to
      // undo there; a source raised meanwhile is still pending and the controller sees it.
      this.#heldMask = 0;
      this.#autoMasked = 0;
      return;
    }
    this.enable(bits);
  }

  /** Clears status, enable and auto-clear (a reset). */
  reset(): void {
    Atomics.store(this.#u32, this.#status, 0);
    Atomics.store(this.#u32, this.#enable, 0);
    if (this.#autoClear >= 0) Atomics.store(this.#u32, this.#autoClear, 0);
    this.#autoMasked = 0;
    this.#heldMask = 0;
  }
}

/**
 * A handler the hardware calls for an interrupt source: installed with the views' `requestIrq`,
 * called with the source number. (Not the buses' `IrqHandler` of `@mic/bus-core`, which the
 * drivers' hw ops take and which is called with a doorbell number and data.)
 */
export type InterruptSourceHandler = (src: number) => void | Promise<void>;

/** What `requestIrq` returns and `freeIrq` takes (the kernel's `struct mic_irq *` cookie). */
export interface IrqCookie {
  /** The interrupt source. */
  readonly src: number;
  /** The name given at request time. */
  readonly name: string;
}

interface IrqAction extends IrqCookie {
  readonly handler: InterruptSourceHandler;
}

const EMPTY: readonly IrqAction[] = Object.freeze([]);

/** Options of an {@link IrqController}. */
export interface IrqControllerOptions {
  /** How interrupts are delivered. */
  readonly delivery: IrqDelivery;
  /** Sources a handler may be installed on (bit n = source n). */
  readonly validSources: number;
  /** For `wait`: poll this long before sleeping (ns); default 50 µs. */
  readonly spinNs?: number;
  /** Where handler failures go. */
  readonly logger: Logger;
  /**
   * False once the receiver is gone (a card view after a reset). A controller whose receiver is
   * gone takes nothing more from the line, so it cannot steal a later boot's interrupts.
   */
  readonly alive?: () => boolean;
}

/** A settled promise: `SETTLED.then(f)` runs `f` after the microtasks queued before it. */
const SETTLED: Promise<void> = Promise.resolve();

/**
 * Longest the `wait` delivery loop keeps its thread between two full turns of the event loop
 * while interrupts keep coming (1 ms: timers and I/O wait at most that long).
 */
const EVENT_LOOP_SLICE_MS = 1;

/**
 * The receiving end of an {@link InterruptLine}: the handler table (`request_irq` /
 * `free_irq`; several handlers may share a source, each is called) and the delivery loop.
 */
export class IrqController {
  readonly #line: InterruptLine;
  readonly #validSources: number;
  readonly #logger: Logger;
  readonly #actions: (readonly IrqAction[])[] = Array.from({ length: 32 }, () => EMPTY);
  readonly #delivery: IrqDelivery;
  readonly #alive: () => boolean;
  #closed = false;
  #scheduled = false;
  #loop: Promise<void> | undefined;
  readonly #runMicrotask = (): void => {
    this.#scheduled = false;
    this.#dispatch();
  };
  readonly #kickMicrotask = (): void => {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(this.#runMicrotask);
  };

  constructor(line: InterruptLine, options: IrqControllerOptions) {
    if (!(line instanceof InterruptLine)) {
      throw new MicError('EINVAL', `interrupt line ${formatValue(line)} is not an InterruptLine`);
    }
    checkObject('interrupt controller options', options);
    if (options.delivery !== 'microtask' && options.delivery !== 'wait') {
      throw new MicError(
        'EINVAL',
        `interrupt delivery ${formatValue(options.delivery)} is not 'microtask' or 'wait'`,
      );
    }
    u32Value('valid sources mask', options.validSources);
    this.#line = line;
    this.#validSources = options.validSources;
    this.#logger = options.logger;
    this.#delivery = options.delivery;
    this.#alive = options.alive ?? (() => true);
    if (options.delivery === 'microtask') {
      line.setKick(this.#kickMicrotask);
      if (line.deliverable() !== 0) this.#kickMicrotask();
    } else {
      this.#loop = this.#waitLoop(options.spinNs ?? DEFAULT_SPIN_NS);
    }
  }

  /** How this controller is run. */
  get delivery(): IrqDelivery {
    return this.#delivery;
  }

  /**
   * Installs `handler` on source `src`.
   * @throws MicError EINVAL for a source this side does not have, ENODEV after {@link close}
   */
  requestIrq(src: number, handler: InterruptSourceHandler, name = ''): IrqCookie {
    if (this.#closed) throw new MicError('ENODEV', `${this.#line.side} interrupt controller is closed`);
    if (!Number.isInteger(src) || src < 0 || src > 31 || ((this.#validSources >>> src) & 1) === 0) {
      throw new MicError('EINVAL', `${this.#line.side} has no interrupt source ${String(src)}`, {
        details: { src },
      });
    }
    if (typeof handler !== 'function') {
      throw new MicError(
        'EINVAL',
        `interrupt handler ${formatValue(handler)} for source ${src} is not a function`,
      );
    }
    const action: IrqAction = { src, name, handler };
    this.#actions[src] = [...this.#actions[src]!, action];
    return action;
  }

  /**
   * Removes the handler `cookie` names.
   * @throws MicError EINVAL when it is not installed
   */
  freeIrq(cookie: IrqCookie): void {
    checkObject('interrupt handler cookie', cookie);
    const list = this.#actions[cookie.src] ?? EMPTY;
    const i = list.indexOf(cookie as IrqAction);
    if (i < 0) {
      throw new MicError(
        'EINVAL',
        `no handler '${cookie.name}' is installed on ${this.#line.side} source ${cookie.src}`,
        { details: { src: cookie.src, name: cookie.name } },
      );
    }
    this.#actions[cookie.src] = list.filter((_, j) => j !== i);
  }

  /** Handlers installed on `src`. */
  handlerCount(src: number): number {
    checkInt('interrupt source', src, 0, 31);
    return this.#actions[src]?.length ?? 0;
  }

  /** Stops delivery and drops every handler. Resolves when the delivery loop has ended. */
  async close(): Promise<void> {
    if (this.#closed) {
      await this.#loop;
      return;
    }
    this.#closed = true;
    this.#actions.fill(EMPTY);
    if (this.#delivery === 'microtask') {
      this.#line.setKick(undefined);
    } else {
      this.#line.word.signal();
    }
    await this.#loop;
  }

  /** Set when a handler of the last dispatch returned a promise. */
  #asyncHandlers = false;

  #dispatch(): void {
    if (this.#closed || !this.#alive()) return;
    this.#deliver();
  }

  /**
   * Takes what is deliverable (of `candidates`, when given: see {@link InterruptLine.take}) and
   * calls its handlers. The caller checked that the receiver lives.
   */
  #deliver(candidates?: number): void {
    const line = this.#line;
    let bits = line.take(candidates);
    if (bits === 0) return;
    while (bits !== 0) {
      const low = bits & -bits;
      bits ^= low;
      const src = 31 - Math.clz32(low);
      const actions = this.#actions[src]!;
      for (let i = 0; i < actions.length; i++) this.#call(actions[i]!, src);
    }
    line.commitAutoClear();
  }

  #call(action: IrqAction, src: number): void {
    try {
      const r = action.handler(src);
      if (r !== undefined && typeof (r as { then?: unknown }).then === 'function') {
        this.#asyncHandlers = true;
        (r as Promise<void>).then(undefined, (err: unknown) => this.#failed(action, err));
      }
    } catch (err) {
      this.#failed(action, err);
    }
  }

  #failed(action: IrqAction, err: unknown): void {
    this.#logger.error('interrupt handler failed', {
      side: this.#line.side,
      src: action.src,
      name: action.name,
      error: errorMessage(err),
    });
  }

  /**
   * The `wait` delivery loop, as a chain of callbacks rather than an `async` function: an
   * `await` per delivery allocates ~250 bytes, a `then` on a settled promise ~100, and at a
   * million deliveries a second the difference is a young-generation collection every few
   * milliseconds, each long enough (~0.1 ms) to push the peer's poll into sleep.
   * Resolves when the loop ends (closed, or the receiver is gone); rejects only on a bug.
   */
  #waitLoop(spinNs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const line = this.#line;
      const alive = this.#alive;
      // Whether the receiver still lives is checked once something is deliverable, not in
      // every poll: a dead receiver's view is closed, which wakes this loop.
      let found = 0;
      const ready = (): boolean => (found = line.deliverable()) !== 0 || this.#closed;
      // Sleeping hands the thread to the event loop: a new time slice starts after it.
      const sleepOptions = { spinNs: 0 };
      let sliceStart = 0;
      const backoff = new PollBackoff();
      const sleep = (): void => {
        line.word.waitAsync(ready, sleepOptions).then(woken, reject);
      };
      // Nothing is deliverable: polls first when the back-off says so (from `setImmediate`: see
      // `check`), else sleeps at once.
      const idle = (): void => {
        if (spinNs > 0 && backoff.shouldPoll()) setImmediate(spin);
        else sleep();
      };
      const spin = (): void => {
        try {
          const t0 = performance.now();
          sliceStart = t0;
          if (this.#closed) {
            resolve();
            return;
          }
          const found = line.word.poll(ready, spinNs);
          // A poll that found the interrupt only after its bound was descheduled meanwhile: the
          // raiser most likely needed this CPU, so it counts as a poll that did not pay.
          backoff.polled(found && (performance.now() - t0) * 1e6 <= spinNs);
          if (found) deliver();
          else sleep();
        } catch (err) {
          reject(err);
        }
      };
      const woken = (): void => {
        try {
          sliceStart = performance.now();
          deliver();
        } catch (err) {
          reject(err);
        }
      };
      // A full turn of the event loop ends: deliver what is there, else go idle.
      const turn = (): void => {
        try {
          sliceStart = performance.now();
          if (this.#closed) resolve();
          else if (ready()) deliver();
          else idle();
        } catch (err) {
          reject(err);
        }
      };
      const deliver = (): void => {
        if (this.#closed || !alive()) {
          resolve();
          return;
        }
        this.#asyncHandlers = false;
        this.#deliver(found);
        // Let the handlers' follow-up work run before polling again: it is often what produces
        // the next interrupt. Synchronous handlers only queue microtasks, so a microtask turn is
        // enough and keeps a doorbell round trip near the bare polling cost; after an async
        // handler, or once per time slice so timers and I/O are never starved, take a full
        // turn of the event loop.
        if (this.#asyncHandlers || performance.now() - sliceStart >= EVENT_LOOP_SLICE_MS) {
          setImmediate(turn);
        } else {
          void SETTLED.then(check);
        }
      };
      // One look, no spin, in the microtask after the handlers: an interrupt raised meanwhile is
      // delivered at once. Spinning here would hold the thread while the continuations the
      // handlers queued (a woken `recv`'s caller, which is what produces the next doorbell)
      // wait behind it: each of them is one more microtask, queued after this one. So the spin
      // runs from `setImmediate`, once the microtask queue is empty; a loop that does not poll
      // sleeps from here (`Atomics.waitAsync` does not block those continuations).
      const check = (): void => {
        try {
          if (this.#closed || ready()) deliver();
          else idle();
        } catch (err) {
          reject(err);
        }
      };
      // Start after the constructor's caller has run, so constructing never spins.
      setImmediate(turn);
    });
  }
}
