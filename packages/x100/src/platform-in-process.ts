/**
 * The `inProcess` platform: host and card in one thread, deterministic. Interrupts are queued
 * microtasks (a ring never runs a handler inside the call that rang), time is a
 * {@link VirtualClock} by default so the kernel's long timeouts pass instantly, and the card
 * code is a function called with a card view.
 */
import { VirtualClock } from '@mic/clock';
import type { Clock } from '@mic/clock';
import { MicError, checkObject } from '@mic/errors';
import { X100CardView } from './card-view.js';
import type { X100DmaEngine } from './dma-engine.js';
import { InProcessDmaRunner } from './dma-runner.js';
import { debugMethodNames, invokeDebugMethod } from './debug-channel.js';
import type { CardDebugHandle } from './debug-channel.js';
import { PlatformBase } from './platform.js';
import type { CardMain, X100Platform, X100PlatformOptions } from './platform.js';

/** Options of {@link createInProcessPlatform}. */
export interface InProcessPlatformOptions extends X100PlatformOptions {
  /** The card code booted by the bootstrap interrupt or a `startCard()` without arguments. */
  readonly cardMain?: CardMain;
  /** What the card entry gets as `data`. */
  readonly cardData?: unknown;
  /** The platform clock (default: a new auto-advancing {@link VirtualClock}). */
  readonly clock?: Clock;
}

/** The `inProcess` platform. */
export interface InProcessPlatform extends X100Platform {
  readonly kind: 'inProcess';
  /** The running boot's card view (for tests), while there is one. */
  readonly cardView: X100CardView | undefined;
  /** The DMA engine (queued microtasks in this thread), unless `dmaEngine: false`. */
  readonly dmaEngine: X100DmaEngine | undefined;
  /**
   * Boots the card with `cardMain` (default: the configured one) and `cardData`.
   * @throws MicError EINVAL when there is no card code, EBUSY unless the card is `ready`
   */
  startCard(cardMain?: CardMain, cardData?: unknown): Promise<CardDebugHandle>;
}

interface BootRequest {
  readonly cardMain: CardMain | undefined;
  readonly cardData: unknown;
  readonly hasData: boolean;
}

class InProcessCardHandle implements CardDebugHandle {
  readonly methods: readonly string[];
  readonly #view: X100CardView;
  readonly #result: unknown;

  constructor(view: X100CardView, result: unknown) {
    this.#view = view;
    this.#result = result;
    this.methods = Object.freeze(debugMethodNames(result));
  }

  async call(method: string, ...args: unknown[]): Promise<unknown> {
    if (!this.#view.alive)
      throw new MicError('ENODEV', `card method '${method}' called after the card was reset`);
    return invokeDebugMethod(this.#result, method, args);
  }
}

class InProcessPlatformImpl extends PlatformBase<BootRequest> implements InProcessPlatform {
  readonly kind = 'inProcess';
  readonly #options: InProcessPlatformOptions;
  readonly #dma: InProcessDmaRunner | undefined;
  #view: X100CardView | undefined;

  constructor(options: InProcessPlatformOptions) {
    super(options, options.clock ?? new VirtualClock(), 'microtask', undefined);
    this.#options = options;
    this.#dma =
      options.dmaEngine === false
        ? undefined
        : new InProcessDmaRunner(this.hardware, {
            logger: this.logger.child('dma'),
            ...(options.dmaChunkBytes === undefined ? {} : { chunkBytes: options.dmaChunkBytes }),
          });
  }

  get dmaEngine(): X100DmaEngine | undefined {
    return this.#dma?.engine;
  }

  get cardView(): X100CardView | undefined {
    return this.#view;
  }

  override startCard(...args: [cardMain?: CardMain, cardData?: unknown]): Promise<CardDebugHandle> {
    return this.requestBoot({ cardMain: args[0], cardData: args[1], hasData: args.length >= 2 });
  }

  protected checkBootable(request: BootRequest | undefined): void {
    if (!(request?.cardMain ?? this.#options.cardMain)) {
      throw new MicError(
        'EINVAL',
        'there is no card code to boot: give cardMain to the platform or to startCard',
      );
    }
  }

  protected async bootCard(generation: number, request: BootRequest | undefined): Promise<CardDebugHandle> {
    const main = (request?.cardMain ?? this.#options.cardMain)!;
    const data = request?.hasData ? request.cardData : this.#options.cardData;
    const view = new X100CardView(this.hardware, {
      delivery: 'microtask',
      logger: this.logger.child('card'),
      clock: this.clock,
      generation,
    });
    this.#view = view;
    // Never run card code inside the register write or call that booted it.
    await Promise.resolve();
    const result = await main(view, data);
    return new InProcessCardHandle(view, result);
  }

  protected async killCard(): Promise<void> {
    const view = this.#view;
    this.#view = undefined;
    if (view) await view.kill();
  }

  protected stopHardware(): Promise<void> {
    this.#dma?.stop();
    return Promise.resolve();
  }
}

/**
 * Creates an X100 whose card runs in this thread.
 *
 * @example
 * const platform = createInProcessPlatform({
 *   cardMain: (card) => {
 *     card.requestIrq(0, () => card.sendIntr(0), 'echo');
 *   },
 * });
 * platform.host.enableInterrupts();
 * platform.host.requestIrq(0, () => platform.host.ackInterrupt());
 * await platform.startCard();
 * platform.host.sendIntr(0); // the card rings host doorbell 0 back
 * await platform.close();
 */
export function createInProcessPlatform(options: InProcessPlatformOptions = {}): InProcessPlatform {
  checkObject('in-process platform options', options);
  return new InProcessPlatformImpl(options);
}
