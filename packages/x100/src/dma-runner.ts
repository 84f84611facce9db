/**
 * How platforms drive an {@link X100DmaEngine}: in this thread on queued microtasks
 * ({@link InProcessDmaRunner}, the `inProcess` platform), or in a thread of its own
 * (`dma-engine-worker.ts`, the `worker` platform).
 */
import { installDmaRegisterHandlers } from './dma-regs.js';
import { X100DmaEngine } from './dma-engine.js';
import type { X100DmaEngineOptions } from './dma-engine.js';
import type { X100Hardware } from './hardware.js';

/**
 * Runs the engine in this thread: every DMA register write that may give it work queues one
 * microtask, which takes one {@link X100DmaEngine.step} and queues the next while there is work.
 * Deterministic, and the engine never runs inside the register write itself.
 */
export class InProcessDmaRunner {
  /** The engine. */
  readonly engine: X100DmaEngine;
  #scheduled = false;
  #stopped = false;
  readonly #run = (): void => {
    this.#scheduled = false;
    if (this.#stopped) return;
    if (this.engine.step()) this.#kick();
  };

  /** Creates the engine and installs the DMA register handlers of `hw` (this thread's). */
  constructor(hw: X100Hardware, options: X100DmaEngineOptions = {}) {
    this.engine = new X100DmaEngine(hw, options);
    installDmaRegisterHandlers(hw, () => this.#kick());
  }

  #kick(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    queueMicrotask(this.#run);
  }

  /** Stops the engine for good (platform close). */
  stop(): void {
    this.#stopped = true;
  }
}
