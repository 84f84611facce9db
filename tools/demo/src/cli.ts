#!/usr/bin/env node
/**
 * `mic-demo`: the README's first command (`npm run demo`). One card on the x100 worker platform
 * with console, net and block over VOP; each step is printed as it happens.
 *
 *   mic-demo [--json] [--scale X] [--log-level error|warn|info|debug]
 *
 * With `--json` the steps go to stderr and stdout gets one JSON object. Exit codes: 0 every check
 * passed, 1 a step failed (printed as `CODE: message`), 2 a bad argument.
 */
import { isMicError } from '@mic/errors';
import { LOG_LEVELS, type LogLevel, createLogger, formatRecord, nullLogger } from '@mic/logger';
import { runDemo } from './demo.js';

const USAGE = 'usage: mic-demo [--json] [--scale X] [--log-level error|warn|info|debug]';

function fail(message: string): never {
  process.stderr.write(`mic-demo: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let json = false;
let scale = 1;
let level: LogLevel | null = null;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--json') json = true;
  else if (a === '--help' || a === '-h') {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  } else if (a === '--scale') {
    scale = Number(args[++i]);
    if (!(scale > 0 && scale <= 100)) fail(`--scale takes a number in (0, 100], not ${String(args[i])}`);
  } else if (a === '--log-level') {
    const l = args[++i];
    if (!LOG_LEVELS.includes(l as LogLevel))
      fail(`--log-level takes one of ${LOG_LEVELS.join(', ')}, not ${String(l)}`);
    level = l as LogLevel;
  } else fail(`unknown argument ${a}`);
}

const out = json ? process.stderr : process.stdout;
const logger = level ? createLogger((r) => process.stderr.write(`${formatRecord(r)}\n`), level) : nullLogger;
out.write('mic demo: one card on the x100 worker platform with console, net and block over VOP\n');
try {
  const result = await runDemo({ report: (line) => out.write(`  ${line}\n`), logger, scale });
  out.write(result.ok ? 'demo: OK\n' : 'demo: a check FAILED (see above)\n');
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.exit(result.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(
    `mic-demo: ${isMicError(err) ? err.toString() : String((err as Error)?.stack ?? err)}\n`,
  );
  process.exit(1);
}
