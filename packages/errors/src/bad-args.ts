/**
 * A table-driven bad-argument sweep, for the tests of every package: each listed callable gets
 * each bad value in each of its numeric or object parameters and must throw (or reject with) a
 * {@link MicError} whose code is one of the expected ones and whose message names the argument
 * and shows the value. {@link badArgCoverage} checks that a table (with the callables that take
 * no arguments and those listed as not swept, with a reason) covers every export of a module.
 *
 * @example
 * const problems = await sweepBadArguments([
 *   { name: 'checkSize', call: (a) => checkSize('size', a[0] as number), args: [1], params: [{ at: 0, names: /size/ }] },
 * ]);
 * // problems: [] (each one would read like "checkSize arg 0 = 10n: threw TypeError: ...")
 */
import { MicError, formatAddr, formatValue, type ErrnoCode } from './index.js';

/** The bad values of issue 10, in this order. */
export const BAD_VALUES: readonly unknown[] = [undefined, null, NaN, -1, 1.5, 2 ** 32 + 1, 10n, {}, ''];

/** One parameter of a swept callable. */
export interface BadParam {
  /** Its position in the argument list. */
  readonly at: number;
  /** What the message must match to name it (its name, or the word the error uses). */
  readonly names: RegExp;
  /** Values that are valid for this parameter (e.g. `undefined` for an optional one). */
  readonly valid?: readonly unknown[];
}

/** One callable of the table. */
export interface BadArgEntry {
  /** `fn`, `new Class`, `Class.static` or `Class#method`, as {@link exportedCallables} names them. */
  readonly name: string;
  /** Calls it with `args` (on a fresh instance, when the instance can be changed by a call). */
  readonly call: (args: unknown[]) => unknown;
  /** Good arguments: the call must not throw with them. */
  readonly args: readonly unknown[];
  readonly params: readonly BadParam[];
  /** Codes a bad value may give (default EINVAL or EFAULT). */
  readonly codes?: readonly ErrnoCode[];
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}

/** How a message may show `value`. */
function shown(value: unknown): string[] {
  return [formatValue(value), String(value), formatAddr(value)];
}

/** How long a call's returned promise may take to settle before the sweep reports it as hung. */
const SETTLE_MS = 20_000;

/** The thrown value, or the rejection of a returned promise, or undefined. */
async function failureOf(run: () => unknown): Promise<unknown> {
  try {
    const r = run();
    if (r instanceof Promise) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not settle within ${SETTLE_MS} ms`)), SETTLE_MS);
      });
      try {
        await Promise.race([r, hung]);
      } finally {
        clearTimeout(timer);
      }
    }
    return undefined;
  } catch (err) {
    return err;
  }
}

/** A parameter as a table writes it: `[at, names, valid?]`, or a {@link BadParam}. */
export type BadParamSpec = readonly [at: number, names: RegExp, valid?: readonly unknown[]] | BadParam;

/**
 * A {@link BadArgEntry} as a table writes it: its name, how to call it, good arguments, and its
 * swept parameters.
 *
 * @example
 * badArg('checkSize', (a) => checkSize('size', a[0] as number), [1], [0, /size/]);
 */
export function badArg(
  name: string,
  call: (args: unknown[]) => unknown,
  args: readonly unknown[],
  ...params: readonly BadParamSpec[]
): BadArgEntry {
  return {
    name,
    call,
    args,
    params: params.map((p): BadParam => {
      if (!Array.isArray(p)) return p as BadParam;
      const [at, names, valid] = p as readonly [number, RegExp, (readonly unknown[])?];
      return valid === undefined ? { at, names } : { at, names, valid };
    }),
  };
}

/** Runs every entry with its good arguments, then each bad value in each parameter. */
export async function sweepBadArguments(entries: readonly BadArgEntry[]): Promise<string[]> {
  const problems: string[] = [];
  for (const e of entries) {
    const ok = await failureOf(() => e.call([...e.args]));
    if (ok !== undefined) problems.push(`${e.name}: good arguments threw ${String(ok)}`);
    for (const p of e.params) {
      for (const bad of BAD_VALUES) {
        if (p.valid?.some((v) => Object.is(v, bad)) === true) continue;
        const args = [...e.args];
        args[p.at] = bad;
        const err = await failureOf(() => e.call(args));
        const label = `${e.name} arg ${p.at} = ${formatValue(bad)}`;
        if (!(err instanceof MicError)) {
          problems.push(`${label}: ${err === undefined ? 'accepted' : `threw ${String(err)}`}`);
          continue;
        }
        const codes = e.codes ?? ['EINVAL', 'EFAULT'];
        if (!codes.includes(err.code)) problems.push(`${label}: code ${err.code}, wanted ${codes.join('/')}`);
        // An empty object is checked field by field: the message names its first missing field.
        if (isEmptyObject(bad)) continue;
        if (!p.names.test(err.message))
          problems.push(`${label}: message "${err.message}" does not name ${p.names}`);
        if (!shown(bad).some((s) => err.message.includes(s))) {
          problems.push(`${label}: message "${err.message}" does not show the value`);
        }
      }
    }
  }
  return problems;
}

/** Names of every callable a module exports: functions, classes, their statics and methods. */
export function exportedCallables(mod: Record<string, unknown>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(mod)) {
    if (typeof v !== 'function') continue;
    if (!/^class\b/.test(Function.prototype.toString.call(v))) {
      out.set(k, v.length);
      continue;
    }
    out.set(`new ${k}`, v.length);
    for (const s of Object.getOwnPropertyNames(v)) {
      const f = (v as unknown as Record<string, unknown>)[s];
      if (!['length', 'name', 'prototype'].includes(s) && typeof f === 'function')
        out.set(`${k}.${s}`, f.length);
    }
    const proto = (v as { prototype: object }).prototype;
    for (const s of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, s);
      if (s !== 'constructor' && typeof d?.value === 'function')
        out.set(`${k}#${s}`, (d.value as () => void).length);
    }
  }
  return out;
}

/**
 * Callables of `mod` with parameters that neither the table nor `notSwept` lists (empty when the
 * sweep is complete), and names the table or `notSwept` list that `mod` does not export.
 */
export function badArgCoverage(
  mod: Record<string, unknown>,
  entries: readonly BadArgEntry[],
  notSwept: Readonly<Record<string, string>>,
): { missing: string[]; unknown: string[] } {
  const all = exportedCallables(mod);
  const listed = new Set([...entries.map((e) => e.name), ...Object.keys(notSwept)]);
  return {
    missing: [...all].filter(([name, len]) => len > 0 && !listed.has(name)).map(([name]) => name),
    unknown: [...listed].filter((name) => !all.has(name)),
  };
}

/**
 * The {@link BadParam} of an options bag: only `null` is bad (`undefined` and `{}` mean the
 * defaults; its fields get their own entries).
 */
export function optionsParam(at: number, names = /options/): BadParam {
  return { at, names, valid: BAD_VALUES.filter((v) => v !== null) };
}
