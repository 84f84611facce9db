/** Command-line parsing of `mic-loopback`. */

/** The demo's settings. */
export interface LoopbackCliOptions {
  requests: number;
  payload: number;
  batch: number;
  queueSize: number;
  json: boolean;
}

export const USAGE = `usage: mic-loopback [--requests N] [--payload BYTES] [--batch N] [--queue-size N] [--json]
  --requests N      requests to exchange (default 200000)
  --payload BYTES   bytes per request and per response, a multiple of 4 up to 1048576 (default 64)
  --batch N         requests posted per kick (default 32)
  --queue-size N    virtqueue size, a power of two from 2 to 32768 (default 256)
  --json            print one JSON object instead of text`;

export type ParseResult =
  | { ok: true; help: boolean; options: LoopbackCliOptions; usage: string }
  | { ok: false; error: string; usage: string };

const INT_FLAGS = {
  '--requests': 'requests',
  '--payload': 'payload',
  '--batch': 'batch',
  '--queue-size': 'queueSize',
} as const;

/** Parses argv (without node and the script). Range checks of the values are left to the library. */
export function parseArgs(argv: readonly string[]): ParseResult {
  const options: LoopbackCliOptions = {
    requests: 200_000,
    payload: 64,
    batch: 32,
    queueSize: 256,
    json: false,
  };
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json') options.json = true;
    else if (arg === '--help' || arg === '-h') help = true;
    else if (arg in INT_FLAGS) {
      const value = argv[++i];
      const n = Number(value);
      if (value === undefined || value.trim() === '' || !Number.isSafeInteger(n) || n < 1) {
        return {
          ok: false,
          error: `${arg} takes a positive integer, not ${JSON.stringify(value ?? '')}`,
          usage: USAGE,
        };
      }
      options[INT_FLAGS[arg as keyof typeof INT_FLAGS]] = n;
    } else {
      return { ok: false, error: `unknown argument ${JSON.stringify(arg)}`, usage: USAGE };
    }
  }
  return { ok: true, help, options, usage: USAGE };
}
