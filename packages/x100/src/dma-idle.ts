/**
 * The idle poll of the DMA engine's thread on the `worker` platform (`dma-engine-worker.ts`):
 * how long it polls for work before it sleeps on the DMA event word. The poll itself is
 * `napPoll` of `@mic/notify` (a 50 µs spin, then naps between the polls).
 */
/**
 * How long the idle engine polls before it sleeps. It starts at `base` (50 µs by default). A
 * driver whose next work came soon after the engine fell asleep (within {@link STREAM_NS}) is
 * streaming: it paid a wake-up (a futex wake costs the waker 30–120 µs on the VMs this runs on,
 * more than a 64 KiB copy) and will again, so the poll doubles, up to {@link MAX_SPIN_NS}. Work
 * that came within the poll keeps it; an idle period longer than {@link STREAM_NS} resets it, so an
 * idle engine polls at most `MAX_SPIN_NS` after its last work and then sleeps. A base of 0 (a
 * platform told to sleep at once) stays 0.
 */
export class IdleSpin {
  /** The poll of the next idle period (ns). */
  spinNs: number;
  readonly #base: number;

  constructor(base: number) {
    this.#base = base;
    this.spinNs = base;
  }

  /** Records an idle period of `ns` that ended in work (or a stop). */
  idled(ns: number): void {
    if (ns <= this.spinNs || this.#base === 0) return;
    this.spinNs = ns <= STREAM_NS ? Math.max(this.#base, Math.min(MAX_SPIN_NS, this.spinNs * 2)) : this.#base;
  }
}

/** An idle period up to this long (ns) that ended in new work counts as streaming: 1 ms. */
export const STREAM_NS = 1_000_000;
/** The longest the idle engine polls before it sleeps (ns): 400 µs. */
export const MAX_SPIN_NS = 400_000;
