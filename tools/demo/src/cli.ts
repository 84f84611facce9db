#!/usr/bin/env node
/**
 * `mic-demo`: the README's first command (`npm run demo`). One card on the x100 worker platform
 * with console, net and block over VOP; each step is printed as it happens.
 *
 *   mic-demo [--json] [--scale X] [--log-level error|warn|info|debug]
 *
 * With `--json` the steps go to stderr and stdout gets one JSON object (one line). Exit codes:
 * 0 every check passed, 1 a step or a check failed, 2 a bad argument (one line on stderr).
 */
import { isMicError } from '@mic/errors';
import { createLogger, formatRecord, nullLogger } from '@mic/logger';
import { USAGE, parseArgs } from './args.js';
import { runDemo } from './demo.js';

const parsed = parseArgs(process.argv.slice(2));
if (!parsed.ok) {
  process.stderr.write(`mic-demo: ${parsed.error} (--help for usage)\n`);
  process.exit(2);
}
if (parsed.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const { json, scale, logLevel } = parsed.options;
const out = json ? process.stderr : process.stdout;
const logger = logLevel
  ? createLogger((r) => process.stderr.write(`${formatRecord(r)}\n`), logLevel)
  : nullLogger;
out.write('mic demo: one card on the x100 worker platform with console, net and block over VOP\n');
try {
  const result = await runDemo({ report: (line) => out.write(`  ${line}\n`), logger, scale });
  out.write(result.ok ? 'demo: OK\n' : 'demo: a check FAILED (see above)\n');
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(
    `mic-demo: ${isMicError(err) ? err.toString() : String((err as Error)?.stack ?? err)}\n`,
  );
  process.exit(1);
}
