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
  --batch N         requests posted per kick, at most half the queue size (default 32)
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

/** Largest payload the loopback layout takes (1 MiB). */
export const MAX_PAYLOAD = 1 << 20;
/** Largest virtqueue size (virtio 1.2 §2.7: 32768). */
export const MAX_QUEUE_SIZE = 32768;

/**
 * Why a set of values cannot run, or undefined. Checked before anything starts, so a bad value is
 * one line and exit 2, never a half-started run. Each request takes two descriptors (request
 * and response), so a queue of N entries holds N / 2 requests: a batch cannot be larger.
 */
export function checkOptions(o: LoopbackCliOptions): string | undefined {
  if (o.payload % 4 !== 0 || o.payload > MAX_PAYLOAD) {
    return `--payload ${o.payload} is not a multiple of 4 from 4 to ${MAX_PAYLOAD}`;
  }
  if (o.queueSize < 2 || o.queueSize > MAX_QUEUE_SIZE || (o.queueSize & (o.queueSize - 1)) !== 0) {
    return `--queue-size ${o.queueSize} is not a power of two from 2 to ${MAX_QUEUE_SIZE}`;
  }
  if (o.batch > o.queueSize / 2) {
    return `--batch ${o.batch} is more than the ${o.queueSize / 2} requests a ${o.queueSize}-entry queue holds (two descriptors each)`;
  }
  return undefined;
}

/** Parses argv (without node and the script) and checks the values ({@link checkOptions}). */
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
  const error = help ? undefined : checkOptions(options);
  if (error !== undefined) return { ok: false, error, usage: USAGE };
  return { ok: true, help, options, usage: USAGE };
}
