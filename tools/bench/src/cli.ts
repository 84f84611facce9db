#!/usr/bin/env node
/**
 * `pnpm bench <suite> [--json] [--pin | --pin=same] [--trials N] [--scale X]`
 *
 * Runs a benchmark suite and prints its records: a table on stderr as it goes, and with --json
 * one JSON array of `{suite, name, unit, value, baseline: {name, value}, ratio, target, met,
 * regime}` on stdout.
 */
import type { BenchRecord, Suite, SuiteOptions } from './common.js';
import { suites } from './index.js';

function usage(message?: string): never {
  if (message) process.stderr.write(`${message}\n`);
  process.stderr.write(
    `usage: pnpm bench <suite|all> [--json] [--pin | --pin=same] [--trials N] [--scale X]\nsuites: ${Object.keys(suites).join(', ')}\n`,
  );
  process.exit(2);
}

const args = process.argv.slice(2);
let json = false;
let pin: SuiteOptions['pin'] = null;
let trials = 5;
let scale = 1;
const names: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--json') json = true;
  else if (a === '--pin') pin = 'split';
  else if (a === '--pin=same') pin = 'same';
  else if (a === '--trials') trials = Number(args[++i]);
  else if (a === '--scale') scale = Number(args[++i]);
  else if (a === '--help' || a === '-h') usage();
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else names.push(a);
}
if (!Number.isInteger(trials) || trials < 1)
  usage(`--trials takes a positive integer, not ${String(trials)}`);
if (!(scale > 0)) usage(`--scale takes a positive number, not ${String(scale)}`);
if (names.length === 0) usage('name a suite');
const chosen = names.includes('all') ? Object.keys(suites) : names;
for (const n of chosen) if (!(n in suites)) usage(`unknown suite '${n}'`);

const options: SuiteOptions = { pin, trials, scale, progress: (line) => process.stderr.write(`  ${line}\n`) };
const all: BenchRecord[] = [];
for (const n of chosen) {
  process.stderr.write(`== ${n}${pin ? ` (pinned: ${pin})` : ''}\n`);
  const records = await (suites[n] as Suite)(options);
  for (const r of records) {
    const met = r.met === null ? '' : r.met ? '  ok' : '  MISSED';
    process.stderr.write(
      `  ${r.name.padEnd(26)} ${String(r.value).padStart(10)} ${r.unit.padEnd(6)} vs ${r.baseline.name.padEnd(28)} ${String(r.baseline.value).padStart(10)}  x${r.ratio}  ${r.target}${met}  [${r.regime}]\n`,
    );
  }
  all.push(...records);
}
if (json) process.stdout.write(JSON.stringify(all, null, 2) + '\n');
