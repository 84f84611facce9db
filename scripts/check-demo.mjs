#!/usr/bin/env node
// The README's demo as a command-line program, run the way a user runs it (through npm and
// scripts/run.mjs, set-up included):
// - `npm run -s demo -- --json` prints exactly one line on stdout, a JSON object with ok: true
//   (pnpm's and turbo's install and build output go to stderr);
// - a bad value (`--payload 3`) exits 2 with nothing on stdout and one line from mic-loopback;
// - npm prints no warning about the project's config (a pnpm key in .npmrc, say).
//
// Usage: node scripts/check-demo.mjs
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = (args) => {
  const r = spawnSync('npm', args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
};
const findings = [];
const npmWarnings = (stderr) => stderr.split('\n').filter((l) => l.startsWith('npm warn'));

const ok = npm(['run', '-s', 'demo', '--', '--json', '--requests', '2000']);
const lines = ok.stdout.split('\n').filter(Boolean);
let parsed;
try {
  parsed = lines.length === 1 ? JSON.parse(lines[0]) : undefined;
} catch {
  parsed = undefined;
}
if (ok.status !== 0)
  findings.push(
    `npm run -s demo -- --json exited ${ok.status}:\n${ok.stderr.trim().split('\n').slice(-5).join('\n')}`,
  );
else if (parsed?.ok !== true) {
  findings.push(
    `npm run -s demo -- --json printed ${lines.length} lines on stdout, not one JSON object with ok: true:\n${lines.slice(0, 5).join('\n')}`,
  );
}
// -s hides npm's warnings: ask without it.
const help = npm(['run', 'demo', '--', '--help']);
if (help.status !== 0) findings.push(`npm run demo -- --help exited ${help.status}`);
findings.push(...npmWarnings(help.stderr).map((w) => `npm run demo warns: ${w}`));

const bad = npm(['run', '-s', 'demo', '--', '--payload', '3']);
const own = bad.stderr.split('\n').filter((l) => l.startsWith('mic-loopback:'));
if (bad.status !== 2) findings.push(`npm run -s demo -- --payload 3 exited ${bad.status}, not 2`);
if (bad.stdout.trim() !== '')
  findings.push(`npm run -s demo -- --payload 3 printed on stdout: ${bad.stdout.trim()}`);
if (own.length !== 1)
  findings.push(
    `npm run -s demo -- --payload 3 printed ${own.length} mic-loopback lines, not one:\n${bad.stderr.trim()}`,
  );

for (const f of findings) process.stderr.write(`${f}\n`);
process.stdout.write(
  findings.length === 0
    ? `demo: --json prints one JSON object on stdout, --payload 3 is refused with "${own[0]}" and exit 2\n`
    : `demo: ${findings.length} finding${findings.length === 1 ? '' : 's'}\n`,
);
process.exit(findings.length > 0 ? 1 : 0);
