/**
 * The one error class of the MIC stack, with an errno-like code.
 *
 * Codes and their meaning follow Linux `include/uapi/asm-generic/errno-base.h` and `errno.h`,
 * so a reader of the kernel sources finds the same names (`-EINVAL` becomes `code: 'EINVAL'`).
 */

/** Errno values by name, as Linux defines them (x86 and generic). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  EROFS: 30,
  ERANGE: 34,
  ENOSYS: 38,
  ELOOP: 40,
  ENODATA: 61,
  EPROTO: 71,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ECONNRESET: 104,
  EISCONN: 106,
  ENOTCONN: 107,
  ESHUTDOWN: 108,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EINPROGRESS: 115,
  ECANCELED: 125,
} as const;

/** An errno-like code name, e.g. `'EINVAL'`. */
export type ErrnoCode = keyof typeof ERRNO;

/** Options of {@link MicError}: the standard `cause`, plus structured details for logs. */
export interface MicErrorOptions {
  /** The error that led to this one. */
  readonly cause?: unknown;
  /** Machine-readable facts about the failure (the bad value, the limit, the index, ...). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * The brand every {@link MicError} carries: a registered symbol (`Symbol.for`), so it is the same
 * in every copy of this package that a process loads (two versions installed side by side, a
 * bundled copy, a worker thread's own module graph).
 */
const MIC_ERROR_BRAND = Symbol.for('@mic/errors.MicError');

/**
 * An error with an errno-like {@link ErrnoCode}. The message says what was wrong and with which
 * value, e.g. `queue size 100 is not a power of two`.
 *
 * `err instanceof MicError` and {@link isMicError} recognise a `MicError` made by any copy of
 * `@mic/errors` (they test its brand, not its prototype chain), so an application with two
 * copies installed still sees the codes of every package's errors. For a subclass, `instanceof`
 * keeps its usual meaning.
 *
 * @example
 * throw new MicError('EINVAL', `queue size ${num} is not a power of two`, { details: { num } });
 */
export class MicError extends Error {
  override readonly name = 'MicError';
  /** The errno-like code. */
  readonly code: ErrnoCode;
  /** The positive errno number of {@link code}. */
  readonly errno: number;
  /** Structured facts about the failure. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrnoCode, message: string, options: MicErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.errno = ERRNO[code];
    this.details = options.details ?? {};
    Object.defineProperty(this, MIC_ERROR_BRAND, { value: true });
  }

  /** True for a `MicError` of any copy of this package (see the class comment). */
  static override [Symbol.hasInstance](value: unknown): value is MicError {
    if (this !== MicError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && MIC_ERROR_BRAND in value;
  }

  /** The message prefixed with the code, as logs show it: `EINVAL: queue size 100 ...`. */
  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

/**
 * True when `err` is a {@link MicError} of any copy of this package (its brand, not its
 * prototype), optionally with the given code. An error from elsewhere that merely has a `code`
 * property is not one.
 */
export function isMicError(err: unknown, code?: ErrnoCode): err is MicError {
  return err instanceof MicError && (code === undefined || err.code === code);
}

/**
 * Wraps any thrown value in a {@link MicError} with `code`, keeping it as `cause`. A `MicError`
 * is returned unchanged.
 */
export function toMicError(err: unknown, code: ErrnoCode, message: string): MicError {
  if (err instanceof MicError) return err;
  return new MicError(code, `${message}: ${errorMessage(err)}`, {
    cause: err,
  });
}

/**
 * A value as error messages show an address: `0x…` for a finite number, else the value as given
 * (`undefined`, `NaN`, a string), so a message about a bad address still names what it got.
 *
 * @example
 * formatAddr(0x80_0000_0000); // '0x8000000000'
 */
export function formatAddr(addr: unknown): string {
  return typeof addr === 'number' && Number.isFinite(addr) ? `0x${addr.toString(16)}` : String(addr);
}

/**
 * A value as error messages show an argument of the wrong kind: a primitive as `String` gives it
 * (a BigInt with its `n`, a string quoted), an object by its constructor's name.
 *
 * @example
 * formatValue(10n); // '10n'
 * formatValue({}); // 'an Object'
 */
export function formatValue(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'function') return `function ${value.name}`;
  if (typeof value !== 'object' || value === null) return String(value);
  return `an ${(value as { constructor?: { name?: string } }).constructor?.name ?? 'object'}`;
}

/**
 * Throws `EINVAL` naming `what` when `value` is not an object (an options bag, a memory, a
 * callback's owner): `null`, a number, a string.
 */
export function checkObject(what: string, value: unknown): asserts value is object {
  if (typeof value !== 'object' || value === null) {
    throw new MicError('EINVAL', `${what} ${formatValue(value)} is not an object`, {
      details: { [what]: String(value) },
    });
  }
}

/**
 * Throws `EINVAL` naming `what` when `value` is not a function (a handler, a callback, a hook).
 *
 * @example
 * checkFunction('interrupt handler', null); // EINVAL: "interrupt handler null is not a function"
 */
export function checkFunction(what: string, value: unknown): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') {
    throw new MicError('EINVAL', `${what} ${formatValue(value)} is not a function`, {
      details: { [what]: formatValue(value) },
    });
  }
}

/** The message of a thrown value: `err.message` for an `Error`, else the value as a string. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Throws `EINVAL` naming `what` when `value` is not a positive safe integer (a size, a length).
 *
 * @example
 * checkSize('allocation size', 0); // EINVAL: "allocation size 0 is not a positive integer"
 */
export function checkSize(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new MicError('EINVAL', `${what} ${formatValue(value)} is not a positive integer`, {
      details: { [what]: value },
    });
  }
}

/**
 * Throws `EINVAL` naming `what` when `value` is not a non-negative safe integer (an address, an
 * offset).
 */
export function checkAddr(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new MicError('EINVAL', `${what} ${formatValue(value)} is not a non-negative integer`, {
      details: { [what]: value },
    });
  }
}

/** Throws `EINVAL` naming `what` when `value` is not an integer in `[min, max]`. */
export function checkInt(what: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new MicError('EINVAL', `${what} ${formatValue(value)} is not an integer in [${min}, ${max}]`, {
      details: { [what]: value, min, max },
    });
  }
}

/** Throws `ECANCELED` (with the signal's reason as cause) when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) {
    throw new MicError('ECANCELED', `${what} was cancelled`, { cause: signal.reason });
  }
}

export {
  BAD_VALUES,
  badArg,
  badArgCoverage,
  exportedCallables,
  optionsParam,
  sweepBadArguments,
} from './bad-args.js';
export type { BadArgEntry, BadParam, BadParamSpec } from './bad-args.js';
