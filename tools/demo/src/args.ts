/** Command-line parsing of `mic-demo`. */
import { LOG_LEVELS, type LogLevel } from '@mic/logger';

/** The demo's settings from the command line. */
export interface DemoCliOptions {
  /** Print one JSON object on stdout (the steps go to stderr). */
  readonly json: boolean;
  /** Scales the measured bursts. */
  readonly scale: number;
  /** Library log records to stderr from this level (null: none). */
  readonly logLevel: LogLevel | null;
}

export const USAGE = `usage: mic-demo [--json] [--scale X] [--log-level error|warn|info|debug]
  --json              print the steps on stderr and one JSON object on stdout
  --scale X           scale the measured bursts, a number in (0, 100] (default 1)
  --log-level LEVEL   print the stack's log records from LEVEL up on stderr (default none)`;

/** What {@link parseArgs} returns. */
export type DemoParseResult =
  | { readonly ok: true; readonly help: boolean; readonly options: DemoCliOptions }
  | { readonly ok: false; readonly error: string };

/**
 * Parses argv (without node and the script). A bad value is refused here, before anything
 * starts, so it is one line and exit 2, never a half-started card.
 */
export function parseArgs(argv: readonly string[]): DemoParseResult {
  let json = false;
  let scale = 1;
  let logLevel: LogLevel | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return { ok: true, help: true, options: { json, scale, logLevel } };
    if (a === '--json') {
      json = true;
    } else if (a === '--scale') {
      const v = argv[++i] ?? '';
      scale = v.trim() === '' ? Number.NaN : Number(v);
      if (!(scale > 0 && scale <= 100))
        return { ok: false, error: `--scale takes a number in (0, 100], not "${v}"` };
    } else if (a === '--log-level') {
      const v = argv[++i] ?? '';
      if (!LOG_LEVELS.includes(v as LogLevel))
        return { ok: false, error: `--log-level takes one of ${LOG_LEVELS.join(', ')}, not "${v}"` };
      logLevel = v as LogLevel;
    } else {
      return { ok: false, error: `unknown argument "${a}"` };
    }
  }
  return { ok: true, help: false, options: { json, scale, logLevel } };
}
