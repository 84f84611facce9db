/**
 * Mock COSM hardware: a card that resets, becomes ready on a clock, boots and stops.
 */
import { type Clock, VirtualClock } from '@mic/clock';
import { MicError } from '@mic/errors';
import { MOCK_APER_PA, type MicMw } from '@mic/bus-core';
import { BufferMemory } from '@mic/memory';
import { COSM_FAMILY, type CosmBootConfig, type CosmHwOps } from './cosm.js';

/** Options of {@link MockCosmHwOps}. */
export interface MockCosmHwOpsOptions {
  /** The clock resets take time on (default: a new auto-advancing `VirtualClock`). */
  readonly clock?: Clock;
  /** How long `reset` itself takes (default 1000 ms, the host's `msleep(1000)`). */
  readonly resetMs?: number;
  /** How long after a reset the firmware reports ready (default 2000 ms). */
  readonly readyDelayMs?: number;
  /** Whether the card is ready at first (default true). */
  readonly ready?: boolean;
  /** Family string (default `x100`). */
  readonly family?: string;
  /** Stepping string (default `C0`). */
  readonly stepping?: string;
  /** Aperture size in bytes (default 1 MiB), or 0 for no aperture. */
  readonly aperSize?: number;
}

/** A `start` call as {@link MockCosmHwOps.starts} records it. */
export interface MockCosmStart {
  readonly id: number;
  readonly boot: CosmBootConfig;
}

/**
 * {@link CosmHwOps} of a mock card, for COSM driver tests. `reset` clears readiness, takes
 * `resetMs`, and the card turns ready `readyDelayMs` later (unless {@link failResets} is set, which
 * plays a card that never comes back: `RESET_FAILED`). `start` checks the boot settings like the
 * host (`flash` and a missing firmware are `EINVAL`) and refuses a second start without a stop
 * (`EBUSY`).
 *
 * @example
 * const ops = new MockCosmHwOps();
 * await ops.reset();
 * await pollUntil(ops.clock, () => ops.ready(), 45_000, 1_000); // true, in no real time
 */
export class MockCosmHwOps implements CosmHwOps {
  /** The clock resets run on. */
  readonly clock: Clock;
  /** When true, resets never make the card ready again. */
  failResets = false;
  readonly #resetMs: number;
  readonly #readyDelayMs: number;
  readonly #family: string;
  readonly #stepping: string;
  readonly #aper: MicMw | null;
  #ready: boolean;
  #started = false;
  #generation = 0;
  #failNextStart: Error | undefined;
  #resets = 0;
  #forceResets = 0;
  readonly #starts: MockCosmStart[] = [];
  readonly #stops: boolean[] = [];
  readonly #postResets: number[] = [];

  constructor(options: MockCosmHwOpsOptions = {}) {
    this.clock = options.clock ?? new VirtualClock();
    this.#resetMs = options.resetMs ?? 1000;
    this.#readyDelayMs = options.readyDelayMs ?? 2000;
    this.#ready = options.ready ?? true;
    this.#family = options.family ?? COSM_FAMILY.X100;
    this.#stepping = options.stepping ?? 'C0';
    const aperSize = options.aperSize ?? 1 << 20;
    this.#aper =
      aperSize > 0
        ? Object.freeze({ pa: MOCK_APER_PA, va: BufferMemory.allocate(aperSize), len: aperSize })
        : null;
  }

  reset(): Promise<void> {
    this.#resets++;
    return this.#reset();
  }

  forceReset(): Promise<void> {
    this.#forceResets++;
    return this.#reset();
  }

  postReset(state: number): void {
    this.#postResets.push(state);
  }

  ready(): boolean {
    return this.#ready;
  }

  async start(id: number, boot: CosmBootConfig): Promise<void> {
    if (this.#started) throw new MicError('EBUSY', `mock card ${id} is already started`);
    if (boot.bootmode === 'flash') throw new MicError('EINVAL', 'bootmode flash is not supported on x100');
    if (!boot.firmware) throw new MicError('EINVAL', 'no firmware name to boot');
    const fail = this.#failNextStart;
    this.#failNextStart = undefined;
    if (fail) throw fail;
    this.#starts.push(Object.freeze({ id, boot: Object.freeze({ ...boot }) }));
    this.#started = true;
  }

  async stop(force: boolean): Promise<void> {
    this.#stops.push(force);
    this.#started = false;
  }

  family(): string {
    return this.#family;
  }

  stepping(): string {
    return this.#stepping;
  }

  aper(): MicMw | null {
    return this.#aper;
  }

  // Test helpers.

  /** Sets readiness directly, as the card firmware would. */
  setReady(ready: boolean): void {
    this.#ready = ready;
  }

  /** Makes the next `start` reject with `error`. */
  failNextStart(error: Error): void {
    this.#failNextStart = error;
  }

  /** True between a successful `start` and the next `stop`. */
  get started(): boolean {
    return this.#started;
  }

  /** Calls of `reset`. */
  get resets(): number {
    return this.#resets;
  }

  /** Calls of `forceReset`. */
  get forceResets(): number {
    return this.#forceResets;
  }

  /** Successful `start` calls, in order. */
  get starts(): readonly MockCosmStart[] {
    return [...this.#starts];
  }

  /** The `force` argument of every `stop`, in order. */
  get stops(): readonly boolean[] {
    return [...this.#stops];
  }

  /** The state argument of every `postReset`, in order. */
  get postResets(): readonly number[] {
    return [...this.#postResets];
  }

  async #reset(): Promise<void> {
    const generation = ++this.#generation;
    this.#ready = false;
    this.#started = false;
    await this.clock.sleep(this.#resetMs);
    if (this.failResets) return;
    void this.clock.sleep(this.#readyDelayMs).then(() => {
      if (generation === this.#generation && !this.failResets) this.#ready = true;
    });
  }
}
