/**
 * The `worker` platform: the card runs in a worker thread, concurrent with the host. Card
 * memory, host RAM, the registers and the interrupt words are SharedArrayBuffers both threads
 * attach to; an interrupt sets a status bit and wakes the receiver's event loop through its
 * event word (bounded polling first, `Atomics.notify` only when the receiver said it sleeps).
 *
 * Each boot spawns a worker that attaches to the hardware, builds the card view, imports the
 * card module and calls its entry (`cardMain` by default). The module must be JavaScript Node
 * can import in a worker (e.g. an `.mjs` file importing `@mic/x100`). A reset terminates the
 * worker; the next boot starts a fresh one. Card log records go to the platform logger under
 * `card`. The worker script is the built `dist/card-worker.js`: build the package first.
 *
 * Card code that ends its thread by itself after it booted (`process.exit(code)`, or an uncaught
 * error) is reported to the {@link WorkerPlatform.onCardExit} listeners with the exit code; a
 * plain exit leaves the card `ready` (start it again, or reset it), a crash `halted` (reset it).
 * Card code that ends during its boot fails the boot instead (`halted`).
 */
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { realClock } from '@mic/clock';
import type { Clock } from '@mic/clock';
import { MicError, checkAddr, checkObject, formatValue } from '@mic/errors';
import { LOG_LEVELS } from '@mic/logger';
import type { Logger } from '@mic/logger';
import type { DmaEngineMessage, DmaEngineWorkerData } from './dma-engine-worker.js';
import { installDmaRegisterHandlers } from './dma-regs.js';
import { DMA_LOCK_OWNER, DmaSharedState } from './dma-state.js';
import { PlatformBase } from './platform.js';
import { deserializeError } from './debug-channel.js';
import type {
  CardDebugHandle,
  CardWorkerData,
  CardWorkerMessage,
  DebugCallMessage,
} from './debug-channel.js';
import type { X100CardState } from './hardware.js';
import type { X100Platform, X100PlatformOptions } from './platform.js';

/** The card worker script (the same relative path works from `src/` under jest and from `dist/`). */
const CARD_WORKER_URL = new URL('../dist/card-worker.js', import.meta.url);
/** The DMA engine's thread. */
const DMA_WORKER_URL = new URL('../dist/dma-engine-worker.js', import.meta.url);

/** Options of {@link createWorkerPlatform}. */
export interface WorkerPlatformOptions extends X100PlatformOptions {
  /**
   * The card module: a `URL`, a `file:` URL string, an absolute path, or a bare specifier
   * (resolved from `@mic/x100`).
   */
  readonly cardModule: URL | string;
  /** Name of the entry function the module exports (default `cardMain`). */
  readonly cardExport?: string;
  /** What the entry gets as `data` (structured-cloned into the worker). */
  readonly cardData?: unknown;
  /** Poll this long before sleeping, on both sides (ns; default 50 µs). */
  readonly spinNs?: number;
  /** The platform clock (default: the real clock). */
  readonly clock?: Clock;
}

/** Card code that ended its thread by itself after it booted (see {@link WorkerPlatform.onCardExit}). */
export interface X100CardExit {
  /** The boot it belonged to (the hardware generation). */
  readonly generation: number;
  /** The thread's exit code: what the card code gave `process.exit`, 1 after a crash. */
  readonly exitCode: number;
  /** What it crashed with; undefined for a plain exit. */
  readonly error: Error | undefined;
  /**
   * The card state it left: `ready` after a plain exit of the current boot, `halted` after a
   * crash; the state of a later boot or reset when one came first.
   */
  readonly state: X100CardState;
}

/** The `worker` platform. */
export interface WorkerPlatform extends X100Platform {
  readonly kind: 'worker';
  /**
   * Calls `listener` each time booted card code ends its thread by itself (an exit or a crash;
   * never for the platform's own kills on reset and close), after the card state changed. A
   * listener that throws is logged and ignored.
   * @returns a function that removes the listener
   */
  onCardExit(listener: (exit: X100CardExit) => void): () => void;
  /**
   * The Linux thread id of the DMA engine's thread once it runs (-1 when unknown or when the
   * platform has no engine), for benchmarks that report where threads ran.
   */
  readonly dmaEngineTid: Promise<number>;
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
}

class WorkerCardSession implements CardDebugHandle {
  methods: readonly string[] = [];
  readonly worker: Worker;
  /** Set when the platform stopped the thread (reset, failed boot, close). */
  killed = false;
  /** What the thread crashed with, if it did. */
  crash: Error | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #dead: Error | undefined;

  constructor(worker: Worker) {
    this.worker = worker;
  }

  call(method: string, ...args: unknown[]): Promise<unknown> {
    if (this.#dead) return Promise.reject(this.#dead);
    if (!this.methods.includes(method)) {
      return Promise.reject(
        new MicError('EINVAL', `the card code has no method '${method}'`, { details: { method } }),
      );
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        const msg: DebugCallMessage = { type: 'call', id, method, args };
        this.worker.postMessage(msg);
      } catch (err) {
        this.#pending.delete(id);
        reject(
          new MicError('EINVAL', `arguments of card method '${method}' cannot be cloned`, { cause: err }),
        );
      }
    });
  }

  settle(msg: Extract<CardWorkerMessage, { type: 'result' }>): void {
    const p = this.#pending.get(msg.id);
    if (!p) return;
    this.#pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(deserializeError(msg.error));
  }

  end(err: Error): void {
    if (this.#dead) return;
    this.#dead = err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}

function resolveCardModule(cardModule: URL | string): string {
  if (cardModule instanceof URL) return cardModule.href;
  if (typeof cardModule !== 'string' || cardModule === '') {
    throw new MicError(
      'EINVAL',
      `card module ${formatValue(cardModule)} is not a URL, an absolute path or a package specifier`,
    );
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(cardModule)) return new URL(cardModule).href;
  if (isAbsolute(cardModule)) return pathToFileURL(cardModule).href;
  if (cardModule.startsWith('.')) {
    throw new MicError(
      'EINVAL',
      `card module '${cardModule}' is a relative path: pass a URL or an absolute path`,
    );
  }
  return cardModule;
}

class WorkerPlatformImpl extends PlatformBase<undefined> implements WorkerPlatform {
  readonly kind = 'worker';
  readonly #cardModule: string;
  readonly #cardExport: string;
  readonly #cardData: unknown;
  readonly #spinNs: number | undefined;
  readonly #cardLogger: Logger;
  readonly #dmaWorker: Worker | undefined;
  readonly #dmaExit: Promise<void>;
  readonly dmaEngineTid: Promise<number>;
  #session: WorkerCardSession | undefined;
  readonly #exitListeners = new Set<(exit: X100CardExit) => void>();

  constructor(options: WorkerPlatformOptions, cardModule: string) {
    super(options, options.clock ?? realClock, 'wait', options.spinNs);
    this.#cardModule = cardModule;
    this.#cardExport = options.cardExport ?? 'cardMain';
    this.#cardData = options.cardData;
    this.#spinNs = options.spinNs;
    this.#cardLogger = this.logger.child('card');
    if (options.dmaEngine === false) {
      this.#dmaWorker = undefined;
      this.#dmaExit = Promise.resolve();
      this.dmaEngineTid = Promise.resolve(-1);
      return;
    }
    const chunk = options.dmaChunkBytes;
    const hw = this.hardware;
    const state = new DmaSharedState(hw.buffers.wires, DMA_LOCK_OWNER.HOST, () => hw.generation);
    installDmaRegisterHandlers(hw, () => {
      state.word.signal();
    });
    const data: DmaEngineWorkerData = {
      buffers: this.hardware.buffers,
      config: this.hardware.config,
      chunkBytes: chunk,
      spinNs: options.spinNs,
    };
    const worker = new Worker(DMA_WORKER_URL, { workerData: data, name: 'x100-dma-engine' });
    // Like the card's thread, the engine's keeps the process alive until close(): a program may
    // be waiting for nothing but a DMA completion.
    this.#dmaWorker = worker;
    this.#dmaExit = new Promise<void>((resolve) => {
      worker.once('exit', () => {
        // whatever it held, nobody waits for it any more
        this.breakLocksOf(DMA_LOCK_OWNER.ENGINE);
        this.hardware.iommu.engineGone();
        resolve();
      });
    });
    const dmaLogger = this.logger.child('dma');
    this.dmaEngineTid = new Promise<number>((resolve) => {
      worker.on('message', (msg: DmaEngineMessage) => {
        if (msg.type === 'ready') resolve(msg.tid);
        else if (msg.type === 'log' && LOG_LEVELS.includes(msg.level))
          (msg.component ? dmaLogger.child(msg.component) : dmaLogger)[msg.level](msg.msg, msg.fields);
      });
      worker.once('exit', () => resolve(-1));
    });
    worker.on('error', (err: Error) => {
      this.logger.error('the DMA engine thread crashed', { error: err.message });
    });
  }

  protected checkBootable(): void {}

  protected bootCard(generation: number): Promise<CardDebugHandle> {
    const data: CardWorkerData = {
      buffers: this.hardware.buffers,
      config: this.hardware.config,
      generation,
      cardModule: this.#cardModule,
      cardExport: this.#cardExport,
      cardData: this.#cardData,
      spinNs: this.#spinNs,
      dmaEngine: this.#dmaWorker !== undefined,
    };
    return new Promise<CardDebugHandle>((resolve, reject) => {
      const worker = new Worker(CARD_WORKER_URL, { workerData: data, name: `x100-card-${generation}` });
      const session = new WorkerCardSession(worker);
      this.#session = session;
      let booted = false;
      worker.on('message', (msg: CardWorkerMessage) => {
        switch (msg.type) {
          case 'booted':
            booted = true;
            session.methods = Object.freeze([...msg.methods]);
            resolve(session);
            break;
          case 'failed':
            reject(deserializeError(msg.error));
            break;
          case 'result':
            session.settle(msg);
            break;
          case 'log':
            this.#log(msg);
            break;
        }
      });
      worker.on('error', (err: Error) => {
        session.crash = err;
        session.end(new MicError('ENODEV', `the card crashed: ${err.message}`, { cause: err }));
        if (!booted) reject(err);
      });
      worker.on('exit', (code: number) => {
        const err = new MicError('ENODEV', `the card worker exited (code ${code})`);
        session.end(err);
        if (!booted) reject(err);
        if (this.#session === session) this.#session = undefined;
        if (booted && !session.killed) this.#cardExited(generation, code, session.crash);
      });
    });
  }

  onCardExit(listener: (exit: X100CardExit) => void): () => void {
    this.#exitListeners.add(listener);
    return () => {
      this.#exitListeners.delete(listener);
    };
  }

  #cardExited(generation: number, exitCode: number, error: Error | undefined): void {
    const state = this.cardStopped(generation, exitCode, error);
    const exit: X100CardExit = { generation, exitCode, error, state };
    for (const listener of [...this.#exitListeners]) {
      try {
        listener(exit);
      } catch (err) {
        this.logger.error('a card exit listener threw', {
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  #log(msg: Extract<CardWorkerMessage, { type: 'log' }>): void {
    if (!LOG_LEVELS.includes(msg.level)) return;
    const logger = msg.component ? this.#cardLogger.child(msg.component) : this.#cardLogger;
    logger[msg.level](msg.msg, msg.fields);
  }

  protected async killCard(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    if (!session) return;
    session.killed = true;
    session.end(new MicError('ENODEV', 'the card was reset'));
    await session.worker.terminate();
  }

  protected async stopHardware(): Promise<void> {
    const worker = this.#dmaWorker;
    if (!worker) return;
    const hw = this.hardware;
    new DmaSharedState(hw.buffers.wires, DMA_LOCK_OWNER.HOST, () => hw.generation).requestStop();
    // The engine ends its loop at the next check; terminate() covers a thread stuck elsewhere.
    const timer = setTimeout(() => void worker.terminate(), 1000);
    await this.#dmaExit;
    clearTimeout(timer);
  }
}

/**
 * Creates an X100 whose card runs in a worker thread.
 * @throws MicError ENOENT when the package is not built, EINVAL for a bad module, `cardData`
 * that cannot be cloned or a `dmaChunkBytes` that is not a positive multiple of 64
 *
 * @example
 * const platform = createWorkerPlatform({ cardModule: new URL('./card.mjs', import.meta.url) });
 * const card = await platform.startCard();
 * await card.call('ping');
 * await platform.close();
 */
export function createWorkerPlatform(options: WorkerPlatformOptions): WorkerPlatform {
  checkObject('worker platform options', options);
  if (options.spinNs !== undefined) checkAddr('worker platform spinNs', options.spinNs);
  if (!existsSync(fileURLToPath(CARD_WORKER_URL))) {
    throw new MicError(
      'ENOENT',
      `the card worker script ${fileURLToPath(CARD_WORKER_URL)} is missing: build @mic/x100 first`,
    );
  }
  const cardModule = resolveCardModule(options.cardModule);
  const chunk = options.dmaChunkBytes;
  if (chunk !== undefined && (!Number.isSafeInteger(chunk) || chunk < 64 || chunk % 64 !== 0)) {
    throw new MicError(
      'EINVAL',
      `DMA engine chunk of ${formatValue(chunk)} bytes is not a positive multiple of 64`,
      {
        details: { dmaChunkBytes: chunk },
      },
    );
  }
  try {
    structuredClone(options.cardData);
  } catch (err) {
    throw new MicError('EINVAL', 'cardData cannot be cloned into a worker', { cause: err });
  }
  return new WorkerPlatformImpl(options, cardModule);
}
