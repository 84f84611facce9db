/**
 * The injectable logger of the MIC stack. Libraries never print: they take a {@link Logger}
 * (default {@link nullLogger}) and programs decide where lines go.
 */

/** Log levels, most to least severe. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Structured fields attached to a log line. */
export type LogFields = Readonly<Record<string, unknown>>;

/** What a library logs through. `child` adds a component name and fields to every line. */
export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  child(component: string, fields?: LogFields): Logger;
}

/** One log line as a {@link LogSink} receives it. */
export interface LogRecord {
  readonly level: LogLevel;
  /** Dotted component path, e.g. `mic0.vop.net`. Empty at the root. */
  readonly component: string;
  readonly msg: string;
  readonly fields: LogFields;
  /** `Date.now()` when the line was logged. */
  readonly time: number;
}

/** Where log records go. */
export type LogSink = (record: LogRecord) => void;

class SinkLogger implements Logger {
  readonly #sink: LogSink;
  readonly #component: string;
  readonly #fields: LogFields;
  readonly #max: number;

  constructor(sink: LogSink, component: string, fields: LogFields, level: LogLevel) {
    this.#sink = sink;
    this.#component = component;
    this.#fields = fields;
    this.#max = LOG_LEVELS.indexOf(level);
  }

  #log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LOG_LEVELS.indexOf(level) > this.#max) return;
    this.#sink({
      level,
      component: this.#component,
      msg,
      fields: fields ? { ...this.#fields, ...fields } : this.#fields,
      time: Date.now(),
    });
  }

  error(msg: string, fields?: LogFields): void {
    this.#log('error', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#log('warn', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#log('info', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.#log('debug', msg, fields);
  }
  child(component: string, fields?: LogFields): Logger {
    const name = this.#component ? `${this.#component}.${component}` : component;
    return new SinkLogger(
      this.#sink,
      name,
      fields ? { ...this.#fields, ...fields } : this.#fields,
      LOG_LEVELS[this.#max]!,
    );
  }
}

/**
 * A logger that hands every record at or above `level` to `sink`.
 *
 * @example
 * const log = createLogger((r) => process.stderr.write(formatRecord(r) + '\n'), 'info');
 * log.child('mic0').warn('magic mismatch', { magic: 0 });
 */
export function createLogger(sink: LogSink, level: LogLevel = 'info'): Logger {
  if (!LOG_LEVELS.includes(level)) throw new TypeError(`unknown log level '${String(level)}'`);
  return new SinkLogger(sink, '', {}, level);
}

const nop = (): void => {};

/** A logger that drops everything: the default of every library. */
export const nullLogger: Logger = {
  error: nop,
  warn: nop,
  info: nop,
  debug: nop,
  child: () => nullLogger,
};

/** A logger that keeps records in memory, for tests. */
export interface MemoryLogger extends Logger {
  readonly records: LogRecord[];
}

/** Creates a {@link MemoryLogger} that keeps every record (all levels). */
export function createMemoryLogger(): MemoryLogger {
  const records: LogRecord[] = [];
  const logger = createLogger((r) => records.push(r), 'debug');
  return Object.assign(logger, { records }) as MemoryLogger;
}

/** Formats a record as one line: `2026-11-25T13:00:00.000Z warn mic0.vop: msg key=value`. */
export function formatRecord(record: LogRecord): string {
  const fields = Object.entries(record.fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v, bigintSafe)}`)
    .join(' ');
  const comp = record.component ? ` ${record.component}:` : '';
  return `${new Date(record.time).toISOString()} ${record.level}${comp} ${record.msg}${fields ? ' ' + fields : ''}`;
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
