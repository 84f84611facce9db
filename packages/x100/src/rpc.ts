/**
 * What crosses between the host platform and the card's worker thread besides shared memory:
 * the worker's start data, the control messages (boot result, method calls, log records) and
 * errors as plain data (a structured clone keeps neither the class nor `code` of an error).
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

/** Host → card. */
export interface CallMessage {
  readonly type: 'call';
  readonly id: number;
  readonly method: string;
  readonly args: readonly unknown[];
}

/** Card → host. */
export type CardMessage =
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
