/**
 * What every suite shares: the record format, statistics, thread placement (the CPU regime) and
 * optional pinning with taskset(1), as in shared/bench/anchors.mjs.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** One benchmark figure with its baseline from the same run. */
export interface BenchRecord {
  readonly suite: string;
  readonly name: string;
  readonly unit: string;
  readonly value: number;
  readonly baseline: { readonly name: string; readonly value: number };
  /**
   * value / baseline.value, for rates and times alike. Whether higher or lower is better shows in
   * `target`: `>= Nx` for rates ({@link record}), `<= Nx` for times ({@link recordTime}).
   */
  readonly ratio: number;
  /** The target, in words, e.g. ">= 0.5x baseline"; empty when there is none. */
  readonly target: string;
  /** Whether the target was met; null when there is no target. */
  readonly met: boolean | null;
  /** Where the two threads ran: 'same-cpu', 'different-cpus', 'mixed' or 'unknown'. */
  readonly regime: Regime;
}

export type Regime = 'same-cpu' | 'different-cpus' | 'mixed' | 'unknown';

/** Options every suite gets. */
export interface SuiteOptions {
  /** 'split' pins the two threads to CPU 0 and 1, 'same' both to CPU 0, null leaves them to the kernel. */
  readonly pin: 'split' | 'same' | null;
  /** Trials per figure (the median is reported). */
  readonly trials: number;
  /** Scale of the work per trial (1 = default; smaller for a quick look). */
  readonly scale: number;
  /** Progress lines (stderr). */
  readonly progress: (line: string) => void;
}

export type Suite = (options: SuiteOptions) => Promise<BenchRecord[]>;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function sig(x: number, digits = 4): number {
  return Number.isFinite(x) ? Number(x.toPrecision(digits)) : x;
}

/** Linux: the kernel thread id of the calling thread, or -1. */
export function currentTid(): number {
  try {
    return Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ', 1)[0]);
  } catch {
    return -1;
  }
}

/** Linux: the CPU thread `tid` of this process last ran on, or -1. */
export function cpuOf(tid: number): number {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[36]);
  } catch {
    return -1;
  }
}

/** Samples where two threads sit now; call at the start and the end of a trial. */
export function placement(a: number, b: number): 'same' | 'different' | 'unknown' {
  const ca = cpuOf(a);
  const cb = cpuOf(b);
  if (ca < 0 || cb < 0) return 'unknown';
  return ca === cb ? 'same' : 'different';
}

/** Folds per-trial placement samples into one regime. */
export function regimeOf(samples: readonly string[]): Regime {
  if (samples.length === 0 || samples.includes('unknown')) return 'unknown';
  if (samples.every((s) => s === 'same')) return 'same-cpu';
  if (samples.every((s) => s === 'different')) return 'different-cpus';
  return 'mixed';
}

/** Pins thread `tid` to `cpu` with taskset; false when that is not possible. */
export function pinThread(tid: number, cpu: string): boolean {
  if (tid <= 0) return false;
  try {
    execFileSync('taskset', ['-p', '-c', cpu, String(tid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Applies the pin option to two threads; returns a function that unpins the first. */
export function pinPair(pin: SuiteOptions['pin'], a: number, b: number): () => void {
  if (!pin) return () => {};
  pinThread(a, '0');
  pinThread(b, pin === 'same' ? '0' : '1');
  return () => {
    pinThread(a, `0-${cpus().length - 1}`);
  };
}

/** Builds a record; `target` is a minimum ratio (value / baseline) or null. */
export function record(
  suite: string,
  name: string,
  unit: string,
  value: number,
  baseline: { name: string; value: number },
  minRatio: number | null,
  regime: Regime,
  targetText?: string,
): BenchRecord {
  const ratio = sig(value / baseline.value, 3);
  return {
    suite,
    name,
    unit,
    value: sig(value),
    baseline: { name: baseline.name, value: sig(baseline.value) },
    ratio,
    target: minRatio === null ? '' : (targetText ?? `>= ${minRatio}x ${baseline.name}`),
    met: minRatio === null ? null : ratio >= minRatio,
    regime,
  };
}

/**
 * Builds a record of a figure where lower is better (a time): `ratio = value / baseline`, and the
 * target is met when `ratio <= maxRatio`. With `onlyIn`, the target applies only in that regime:
 * in another one `met` is null (a figure from the wrong regime neither meets nor misses it).
 */
export function recordTime(
  suite: string,
  name: string,
  unit: string,
  value: number,
  baseline: { name: string; value: number },
  maxRatio: number | null,
  regime: Regime,
  options: { readonly targetText?: string; readonly onlyIn?: Regime } = {},
): BenchRecord {
  const ratio = sig(value / baseline.value, 3);
  const applies = maxRatio !== null && (options.onlyIn === undefined || options.onlyIn === regime);
  return {
    suite,
    name,
    unit,
    value: sig(value),
    baseline: { name: baseline.name, value: sig(baseline.value) },
    ratio,
    target:
      maxRatio === null
        ? ''
        : (options.targetText ??
          `<= ${maxRatio}x ${baseline.name}${options.onlyIn === undefined ? '' : ` (${options.onlyIn})`}`),
    met: applies ? ratio <= maxRatio : null,
    regime,
  };
}

export function sizeLabel(n: number): string {
  return n >= 1 << 20 ? `${n / (1 << 20)}MiB` : n >= 1024 ? `${n / 1024}KiB` : `${n}B`;
}

/** Appends `v` to the list of `k` in `m`. */
export function push<K>(m: Map<K, number[]>, k: K, v: number): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}
