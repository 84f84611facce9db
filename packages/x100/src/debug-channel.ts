/**
 * The card debug channel: what crosses between the host platform and the card's code besides the
 * hardware (shared memory and interrupt lines). It is a test and debug channel, apart from the
 * hardware model, like a serial console or a JTAG probe on a real card: the card code's entry may
 * return debug methods ({@link CardDebugMethods}) that tests and tools call through the card's
 * {@link CardDebugHandle}; drivers never use it (they meet only through memory and doorbells).
 *
 * On the `worker` platform it also carries the card thread's plumbing: the worker's start data,
 * the boot result, log records, and errors as plain data (a structured clone keeps neither the
 * class nor `code` of an error). On `inProcess` the methods are called directly, with the same
 * structured cloning of arguments and results.
 */
import { ERRNO, MicError } from '@mic/errors';
import type { ErrnoCode } from '@mic/errors';
import type { LogFields, LogLevel } from '@mic/logger';
import type { X100Buffers, X100Config } from './hardware.js';

/** An error as data. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly stack?: string;
}

/** Turns any thrown value into {@link SerializedError}. */
export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const code = (err as { code?: unknown }).code;
  const details = (err as { details?: unknown }).details;
  let cloned: Readonly<Record<string, unknown>> | undefined;
  if (details !== null && typeof details === 'object') {
    try {
      cloned = structuredClone(details) as Record<string, unknown>;
    } catch {
      cloned = undefined;
    }
  }
  return {
    name: err.name,
    message: err.message,
    ...(typeof code === 'string' ? { code } : {}),
    ...(cloned ? { details: cloned } : {}),
    ...(err.stack === undefined ? {} : { stack: err.stack }),
  };
}

/** Rebuilds an error: a {@link MicError} when the code is an errno name, an `Error` otherwise. */
export function deserializeError(s: SerializedError): Error {
  const err =
    s.code !== undefined && Object.hasOwn(ERRNO, s.code)
      ? new MicError(s.code as ErrnoCode, s.message, s.details ? { details: s.details } : {})
      : Object.assign(new Error(s.message), s.code === undefined ? {} : { code: s.code });
  if (s.stack !== undefined) err.stack = s.stack;
  return err;
}

/** The card worker's start data. */
export interface CardWorkerData {
  readonly buffers: X100Buffers;
  readonly config: X100Config;
  readonly generation: number;
  /** URL (or bare specifier) of the card module to import. */
  readonly cardModule: string;
  /** Name of the entry function it exports. */
  readonly cardExport: string;
  readonly cardData: unknown;
  readonly spinNs: number | undefined;
  /** The platform runs a DMA engine: install the DMA register handlers in the card's thread. */
  readonly dmaEngine: boolean;
}

/** Host → card: a debug method call. */
export interface DebugCallMessage {
  readonly type: 'call';
  readonly id: number;
  readonly method: string;
  readonly args: readonly unknown[];
}

/** Card → host: the boot result, a debug call's result, a log record. */
export type CardWorkerMessage =
  | { readonly type: 'booted'; readonly methods: readonly string[] }
  | { readonly type: 'failed'; readonly error: SerializedError }
  | { readonly type: 'result'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'result'; readonly id: number; readonly ok: false; readonly error: SerializedError }
  | {
      readonly type: 'log';
      readonly level: LogLevel;
      readonly component: string;
      readonly msg: string;
      readonly fields: LogFields;
    };

/** A debug method the card code offers to the host (tests, tools). */
export type CardDebugMethod = (...args: never[]) => unknown;

/** The debug methods the card code offers (function-valued own properties count). */
export interface CardDebugMethods {
  readonly [name: string]: CardDebugMethod;
}

/**
 * The host's debug handle on a booted card's code: calls into the methods the card code's entry
 * returned. A test/debug channel (what a serial console or JTAG probe would be), not hardware.
 */
export interface CardDebugHandle {
  /** Names of the methods the card code returned. */
  readonly methods: readonly string[];
  /**
   * Calls a card method; arguments and result are structured-cloned.
   * @throws MicError EINVAL for an unknown method, ENODEV once the card was reset, or what the
   * method threw (a MicError keeps its code)
   */
  call(method: string, ...args: unknown[]): Promise<unknown>;
}

/** The debug method names of what a card entry returned. @throws MicError EINVAL for a non-object */
export function debugMethodNames(result: unknown): string[] {
  if (result === undefined || result === null) return [];
  if (typeof result !== 'object') {
    throw new MicError('EINVAL', `the card entry returned a ${typeof result}, not an object of methods`);
  }
  return Object.keys(result).filter((k) => typeof (result as Record<string, unknown>)[k] === 'function');
}

/**
 * Calls card method `method` of `methods` with structured-cloned arguments and result (used by
 * the in-process handle and inside the card worker).
 */
export async function invokeDebugMethod(
  methods: unknown,
  method: string,
  args: readonly unknown[],
): Promise<unknown> {
  const fn =
    methods !== null && typeof methods === 'object' && Object.hasOwn(methods, method)
      ? (methods as Record<string, unknown>)[method]
      : undefined;
  if (typeof fn !== 'function') {
    throw new MicError('EINVAL', `the card code has no method '${method}'`, { details: { method } });
  }
  const result: unknown = await (fn as (...a: unknown[]) => unknown).apply(
    methods,
    structuredClone([...args]),
  );
  return structuredClone(result);
}
