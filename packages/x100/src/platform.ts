/**
 * One interface, two platforms. A platform owns an {@link X100Hardware}, gives the host its
 * {@link X100HostView} and runs the card: it boots the card code when the host sends the
 * bootstrap interrupt (or calls {@link X100Platform.startCard}), and kills it when the host
 * resets the card.
 *
 * Card life cycle (the `cardState`): `ready` → (boot interrupt) `booting` → (entry returned)
 * `running`, or `halted` when the entry throws or the card code crashes; `running` → `ready`
 * when the card code exits by itself (`worker` only: its thread ended, the firmware waits for an
 * OS again); a write of `RGCR` bit 0 from any state → `reset` (card code stopped, every register
 * cleared) → once `resetDelayMs` passed on the platform clock and the card code is gone →
 * `ready` (`SPAD2` = ready | APIC id | boot address).
 *
 * A reset never waits for the card code: if its thread dies holding a DMA channel lock, the
 * reset breaks the lock (after at most `DMA_LOCK_CARD_GRACE_MS` = 100 ms), and once the thread
 * is gone the platform breaks whatever it still held and clears the DMA engine again, so
 * nothing a dying card wrote survives into the next boot.
 *
 * Card code is a {@link CardMain} function: it gets a card view and the platform's `cardData`,
 * and may return an object of debug methods the host (tests, tools) calls through the card's
 * {@link CardDebugHandle} (see `debug-channel.ts`: a test/debug channel, not part of the hardware).
 */
import type { Clock } from '@mic/clock';
import { MicError, checkObject, errorMessage, formatAddr, formatValue } from '@mic/errors';
import { nullLogger } from '@mic/logger';
import type { Logger } from '@mic/logger';
import type { X100CardView } from './card-view.js';
import type { CardDebugHandle, CardDebugMethods } from './debug-channel.js';
import { X100_REG, X100_RGCR_RESET, X100_SPAD, spadReg } from './constants.js';
import { resetDmaEngine } from './dma-regs.js';
import { DMA_LOCK_OWNER, DmaSharedState, cardLockOwner } from './dma-state.js';
import { X100_CARD_SOURCES, X100_CARD_STATE, X100Hardware } from './hardware.js';
import type { X100CardState, X100HardwareOptions } from './hardware.js';
import { X100HostView } from './host-view.js';
import type { IrqDelivery } from './irq.js';
import { X100_CARD_WINDOWS, type X100CardWindowInfo } from './card-windows.js';

/** Log fields of kept card windows: how many, and the first four. */
function windowFields(windows: readonly X100CardWindowInfo[]): { windows: number; first: string[] } {
  return {
    windows: windows.length,
    first: windows.slice(0, 4).map((w) => `${formatAddr(w.hostAddr)} +${w.length}`),
  };
}

/**
 * The card code's entry: called once per boot with a fresh card view and the platform's
 * `cardData`. Its promise settles when the card is up; a rejection halts the card. What it returns
 * are the card's debug methods ({@link CardDebugMethods}), if any.
 */
export type CardMain = (
  card: X100CardView,
  data: unknown,
) => CardDebugMethods | void | Promise<CardDebugMethods | void>;

/** Options common to both platforms. */
export interface X100PlatformOptions extends X100HardwareOptions {
  /** Time from a reset to the firmware being ready again, on the platform clock (default 100 ms). */
  readonly resetDelayMs?: number;
  /** Where the platform and (as `card`) the card code log; default nowhere. */
  readonly logger?: Logger;
  /**
   * Run the DMA engine (default true): on `inProcess` as queued microtasks, on `worker` in a
   * thread of its own. Without it the DMA registers only store.
   */
  readonly dmaEngine?: boolean;
  /** Bytes a DMA channel moves per engine step (a multiple of 64; default 1 MiB). */
  readonly dmaChunkBytes?: number;
}

/** Which platform. */
export type X100PlatformKind = 'inProcess' | 'worker';

/** An X100 and its host, one of two platforms. See the module comment. */
export interface X100Platform {
  readonly kind: X100PlatformKind;
  /** This thread's handle on the hardware (for hardware models and tests). */
  readonly hardware: X100Hardware;
  /** The host's view. */
  readonly host: X100HostView;
  /** The platform clock: virtual on `inProcess`, real on `worker` (unless given). */
  readonly clock: Clock;
  /** The card's state. */
  readonly cardState: X100CardState;
  /** The debug handle of the running card's code, while the card is `running`. */
  readonly card: CardDebugHandle | undefined;
  /** The latest boot (from {@link startCard} or a bootstrap interrupt), if any. */
  readonly boot: Promise<CardDebugHandle> | undefined;
  /**
   * Boots the card (the same as the host's bootstrap interrupt) and resolves when its entry has
   * returned.
   * @throws MicError EBUSY unless the card is `ready`, ENODEV after close, or what the card
   * code's entry threw (the card is then `halted`)
   */
  startCard(): Promise<CardDebugHandle>;
  /** Stops the card code and interrupt delivery. Idempotent. */
  close(): Promise<void>;
}

/** Base of both platforms: the card life cycle. `TBoot` is what a boot request carries. */
export abstract class PlatformBase<TBoot> implements X100Platform {
  abstract readonly kind: X100PlatformKind;
  readonly hardware: X100Hardware;
  readonly host: X100HostView;
  readonly clock: Clock;
  /** The platform's logger. */
  protected readonly logger: Logger;
  readonly #resetDelayMs: number;
  #resetAbort: AbortController | undefined;
  #card: CardDebugHandle | undefined;
  #boot: Promise<CardDebugHandle> | undefined;
  #closed = false;
  /** Aborted on close: ends the grace periods of kept card windows. */
  readonly #closeAbort = new AbortController();
  #closing: Promise<void> | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  /** The host's view of the DMA control block: resets, and locks of threads that are gone. */
  readonly #dma: DmaSharedState;

  protected constructor(
    options: X100PlatformOptions,
    clock: Clock,
    delivery: IrqDelivery,
    spinNs: number | undefined,
  ) {
    checkObject('platform options', options);
    const resetDelayMs = options.resetDelayMs ?? 100;
    if (typeof resetDelayMs !== 'number' || !(resetDelayMs >= 0) || !Number.isFinite(resetDelayMs)) {
      throw new MicError(
        'EINVAL',
        `reset delay ${formatValue(resetDelayMs)} ms is not a finite non-negative number`,
      );
    }
    this.#resetDelayMs = resetDelayMs;
    this.clock = clock;
    this.logger = options.logger ?? nullLogger;
    this.hardware = X100Hardware.create(options, {
      onReset: () => this.#onReset(),
      onBootInterrupt: () => {
        try {
          this.#startBoot(undefined, 'bootstrap interrupt');
        } catch (err) {
          this.logger.warn('bootstrap interrupt ignored', {
            error: errorMessage(err),
          });
        }
      },
    });
    const hw = this.hardware;
    hw.iommu.setLogger(this.logger.child('iommu'));
    this.#dma = new DmaSharedState(hw.buffers.wires, DMA_LOCK_OWNER.HOST, () => hw.generation);
    this.host = new X100HostView(this.hardware, {
      delivery,
      logger: this.logger.child('host'),
      ...(spinNs === undefined ? {} : { spinNs }),
      windowsKept: (generation, start, end, windows) => this.#windowsKept(generation, start, end, windows),
    });
  }

  /**
   * The host unmapped host memory that windows of the running card (boot `generation`) still
   * reach. Accesses through them fault already; raw views taken from them cannot be revoked, so
   * the card has {@link X100_CARD_WINDOWS}.GRACE_MS (on the platform's clock) to give them back
   * (`cardUnmap`, as a card does right after the message that made the host free the memory),
   * after which it is stopped. See `card-windows.ts`.
   */
  #windowsKept(
    generation: number,
    start: number,
    end: number,
    windows: readonly X100CardWindowInfo[],
  ): Promise<void> {
    const hw = this.hardware;
    this.logger.warn('the card holds windows on host memory the host unmapped', {
      generation,
      ...windowFields(windows),
      graceMs: X100_CARD_WINDOWS.GRACE_MS,
    });
    return this.clock.sleep(X100_CARD_WINDOWS.GRACE_MS, this.#closeAbort.signal).then(
      async () => {
        if (this.#closed || hw.generation !== generation) return;
        const kept = this.host.iommu.keptCardWindows(generation, start, end);
        if (kept.length > 0) await this.#stopForWindows(generation, kept);
      },
      () => {},
    );
  }

  /**
   * The card kept windows on unmapped host memory past the grace period: it is stopped now
   * (`halted`; its views die, its thread is terminated; a reset brings it back).
   */
  #stopForWindows(generation: number, windows: readonly X100CardWindowInfo[]): Promise<void> {
    const hw = this.hardware;
    const state = hw.cardState;
    if (state !== X100_CARD_STATE.RUNNING && state !== X100_CARD_STATE.BOOTING) return Promise.resolve();
    this.logger.error(
      'the card kept windows on host memory the host unmapped, which the IOMMU cannot take back: the card is stopped (reset it to start it again)',
      { generation, ...windowFields(windows) },
    );
    hw.bumpGeneration();
    hw.setCardState(X100_CARD_STATE.HALTED);
    this.#card = undefined;
    // Wake a card thread waiting for interrupts: it sees that its generation is over.
    hw.cardLine.word.signal();
    const gone = this.killCard().then(() => {
      this.#dma.breakLocks(cardLockOwner(generation));
    });
    this.#track(gone);
    return gone.catch(() => {});
  }

  /** Throws when a boot with `request` cannot start (no card code). */
  protected abstract checkBootable(request: TBoot | undefined): void;
  /** Starts the card code for `generation`; resolves with its handle once its entry returned. */
  protected abstract bootCard(generation: number, request: TBoot | undefined): Promise<CardDebugHandle>;
  /** Stops the card code now (reset, failed boot, close). */
  protected abstract killCard(): Promise<void>;
  /** Stops what else runs the hardware (the DMA engine) on close, after the card code. */
  protected abstract stopHardware(): Promise<void>;

  get cardState(): X100CardState {
    return this.hardware.cardState;
  }

  get card(): CardDebugHandle | undefined {
    return this.#card;
  }

  get boot(): Promise<CardDebugHandle> | undefined {
    return this.#boot;
  }

  /** True once {@link close} was called. */
  protected get closed(): boolean {
    return this.#closed;
  }

  startCard(): Promise<CardDebugHandle> {
    return this.requestBoot(undefined);
  }

  /** Boots with `request` (what `startCard` of a subclass passes). */
  protected requestBoot(request: TBoot | undefined): Promise<CardDebugHandle> {
    try {
      return this.#startBoot(request, 'startCard');
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  #startBoot(request: TBoot | undefined, why: string): Promise<CardDebugHandle> {
    const hw = this.hardware;
    if (this.#closed) throw new MicError('ENODEV', 'the platform is closed');
    if (hw.cardState !== X100_CARD_STATE.READY) {
      throw new MicError('EBUSY', `the card cannot boot: its state is ${hw.cardState}, not ready`, {
        details: { state: hw.cardState },
      });
    }
    this.checkBootable(request);
    // No card thread runs (the card is ready): the windows a past boot published are gone.
    hw.cardWindows.clear();
    const generation = hw.bumpGeneration();
    hw.setCardState(X100_CARD_STATE.BOOTING);
    // The firmware hands over: no longer waiting for a download, a fresh interrupt line.
    const spad2 = spadReg(X100_SPAD.DOWNLOAD_INFO);
    hw.mmio.store32(spad2, hw.mmio.read32(spad2) & ~1);
    hw.mmio.store32(X100_REG.APICICR7, 0);
    hw.cardLine.reset();
    hw.cardLine.setEnabled(X100_CARD_SOURCES);
    this.logger.debug('card boot', { why, generation });
    const boot = this.bootCard(generation, request).then(
      (handle) => {
        if (hw.generation !== generation) throw new MicError('ENODEV', 'the card was reset while booting');
        hw.setCardState(X100_CARD_STATE.RUNNING);
        this.#card = handle;
        return handle;
      },
      (err: unknown) => {
        if (hw.generation === generation) {
          hw.setCardState(X100_CARD_STATE.HALTED);
          this.#track(this.killCard());
        }
        throw err;
      },
    );
    boot.catch((err: unknown) => {
      this.logger.error('card boot failed', { error: errorMessage(err) });
    });
    this.#boot = boot;
    return boot;
  }

  /**
   * The booted card code of `generation` stopped by itself and its thread is gone (worker
   * `exit`): the locks it held are broken; if it is still the current boot, the card goes
   * `halted` after a crash (`error` set), back to `ready` after a plain exit (the firmware waits
   * for an OS again; registers, SMPT and DMA channels stay as they are).
   * @returns the card state now
   */
  protected cardStopped(generation: number, exitCode: number, error: Error | undefined): X100CardState {
    const hw = this.hardware;
    this.#dma.breakLocks(cardLockOwner(generation));
    if (error) this.logger.error('card crashed', { error: errorMessage(error), exitCode });
    else this.logger.warn('the card code exited', { exitCode });
    if (!this.#closed && hw.generation === generation && hw.cardState === X100_CARD_STATE.RUNNING) {
      this.#card = undefined;
      if (error) hw.setCardState(X100_CARD_STATE.HALTED);
      else hw.firmwareReady();
    }
    return hw.cardState;
  }

  #onReset(): void {
    const hw = this.hardware;
    const generation = hw.bumpGeneration();
    hw.setCardState(X100_CARD_STATE.RESET);
    this.#card = undefined;
    this.#track(this.killCard());
    // Bounded even when the dying card holds a DMA channel lock (see the module comment).
    hw.clearRegisters();
    hw.mmio.store32(X100_REG.RGCR, X100_RGCR_RESET);
    // Wake a card thread still waiting for interrupts, so it sees that its generation is over.
    hw.cardLine.word.signal();
    this.#resetAbort?.abort();
    const abort = new AbortController();
    this.#resetAbort = abort;
    this.logger.debug('card reset', { generation });
    Promise.all([this.clock.sleep(this.#resetDelayMs, abort.signal), this.#cardGone()]).then(
      () => {
        if (this.#closed || hw.generation !== generation) return;
        // The old card threads are gone: nothing they held or wrote while dying stays.
        this.#dma.breakLocks();
        resetDmaEngine(hw, this.#dma);
        hw.mmio.store32(X100_REG.RGCR, 0);
        hw.firmwareReady();
        this.logger.debug('card firmware ready', { generation });
      },
      () => {},
    );
  }

  /** Frees the DMA channel locks a thread that is gone still holds (its owner tag). */
  protected breakLocksOf(owner: number): void {
    this.#dma.breakLocks(owner);
  }

  /** Resolves once every card thread being stopped now is gone. */
  #cardGone(): Promise<void> {
    return Promise.all(this.#inFlight).then(() => {});
  }

  #track(p: Promise<void>): void {
    const tracked = p.catch((err: unknown) => {
      this.logger.warn('stopping the card code failed', {
        error: errorMessage(err),
      });
    });
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#resetAbort?.abort();
    this.#closeAbort.abort();
    this.#card = undefined;
    this.#closing = (async () => {
      await this.killCard();
      await this.#cardGone();
      await this.stopHardware();
      // Nobody runs card code or the engine any more: a host register write never waits.
      this.#dma.breakLocks();
      this.#dma.breakLocks(cardLockOwner(this.hardware.generation));
      this.#dma.breakLocks(DMA_LOCK_OWNER.ENGINE);
      await this.host.close();
    })();
    return this.#closing;
  }
}
