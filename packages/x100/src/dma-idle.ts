/**
 * The idle poll of the DMA engine's thread on the `worker` platform (`dma-engine-worker.ts`):
 * how long it polls for work before it sleeps on the DMA event word.
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

/** How long {@link napPoll} spins before it naps between polls (ns): 50 µs, the base poll. */
export const NAP_SPIN_NS = 50_000;
/** What the naps wait on: nothing ever wakes it, each nap times out. */
const NAP = new Int32Array(new SharedArrayBuffer(4));
/** One nap (ms; the kernel's timer slack makes it ~50 µs). */
const NAP_MS = 0.001;

/**
 * The idle engine's poll: `ready()` in a tight loop for up to {@link NAP_SPIN_NS}, then spaced by
 * short naps (`Atomics.wait` with a timeout) until `spinNs` have passed. On a busy 2-vCPU machine
 * the driver thread that is about to give the engine work may share the engine's CPU: a plain
 * spin keeps it from running until the scheduler preempts the spinner, so its next descriptor
 * waited out the whole poll (up to {@link MAX_SPIN_NS}); a nap gives it the CPU, and work that
 * comes while the engine naps still costs the driver no futex wake.
 * @returns true when `ready()` held, false once `spinNs` passed without it (sleep then)
 */
export function napPoll(ready: () => boolean, spinNs: number): boolean {
  if (ready()) return true;
  if (spinNs <= 0) return false;
  const t0 = performance.now();
  const end = t0 + spinNs / 1e6;
  const spinEnd = t0 + Math.min(spinNs, NAP_SPIN_NS) / 1e6;
  let napping = false;
  for (let n = 1; ; n++) {
    if (ready()) return true;
    // While spinning, the clock is read every 64 polls only (a read costs as much as several).
    if (!napping && (n & 63) !== 0) continue;
    const t = performance.now();
    if (t >= end) return false;
    if (t >= spinEnd) {
      napping = true;
      Atomics.wait(NAP, 0, 0, NAP_MS);
    }
  }
}
