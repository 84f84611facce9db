#!/usr/bin/env node
// The README's demo as a command-line program, run the way a user runs it (through npm and
// scripts/run.mjs, set-up included):
// - `npm run -s demo -- --json` prints exactly one line on stdout, a JSON object with ok: true,
//   the three devices at DRIVER_OK, the card's console line, a ping with its round-trip times,
//   the block's two sha256 equal, a throughput figure per device and a clean shutdown (pnpm's and
//   turbo's install and build output and the demo's steps go to stderr);
// - a bad value (`--scale 0`) exits 2 with nothing on stdout and one line from mic-demo;
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

/** What is wrong with the demo's JSON result, as findings. */
function checkResult(r) {
  const out = [];
  if (r.ok !== true) out.push(`ok is ${JSON.stringify(r.ok)}, not true`);
  const kinds = (r.devices ?? []).map((d) => d.kind).sort();
  if (kinds.join() !== 'block,console,net') out.push(`devices at DRIVER_OK: ${kinds.join(', ') || 'none'}`);
  if (typeof r.console?.line !== 'string' || !r.console.line.startsWith('mic0:'))
    out.push(`no console line from the card: ${JSON.stringify(r.console?.line)}`);
  const rtt = r.ping?.rttMs ?? [];
  if (rtt.length === 0 || !rtt.every((x) => x > 0)) out.push(`ping round trips: ${JSON.stringify(rtt)}`);
  if (!/^[0-9a-f]{64}$/.test(r.block?.hostSha256 ?? '') || r.block.hostSha256 !== r.block.cardSha256)
    out.push(`block sha256 card ${r.block?.cardSha256} host ${r.block?.hostSha256}`);
  const tp = r.throughput ?? [];
  for (const dev of ['block', 'net', 'console'])
    if (!tp.some((t) => t.what.startsWith(dev) && t.bytesPerSecond > 0)) out.push(`no ${dev} throughput`);
  if (r.shutdown?.tempDirRemoved !== true) out.push(`temp dir ${r.tempDir} not removed`);
  return out;
}

const ok = npm(['run', '-s', 'demo', '--', '--json', '--scale', '0.1']);
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
else if (parsed === undefined || typeof parsed !== 'object') {
  findings.push(
    `npm run -s demo -- --json printed ${lines.length} lines on stdout, not one JSON object:\n${lines.slice(0, 5).join('\n')}`,
  );
} else {
  findings.push(...checkResult(parsed).map((f) => `npm run -s demo -- --json: ${f}`));
}
// -s hides npm's warnings: ask without it.
const help = npm(['run', 'demo', '--', '--help']);
if (help.status !== 0) findings.push(`npm run demo -- --help exited ${help.status}`);
findings.push(...npmWarnings(help.stderr).map((w) => `npm run demo warns: ${w}`));

const bad = npm(['run', '-s', 'demo', '--', '--scale', '0']);
const own = bad.stderr.split('\n').filter((l) => l.startsWith('mic-demo:'));
if (bad.status !== 2) findings.push(`npm run -s demo -- --scale 0 exited ${bad.status}, not 2`);
if (bad.stdout.trim() !== '')
  findings.push(`npm run -s demo -- --scale 0 printed on stdout: ${bad.stdout.trim()}`);
if (own.length !== 1)
  findings.push(
    `npm run -s demo -- --scale 0 printed ${own.length} mic-demo lines, not one:\n${bad.stderr.trim()}`,
  );

for (const f of findings) process.stderr.write(`${f}\n`);
process.stdout.write(
  findings.length === 0
    ? `demo: --json prints one JSON object on stdout (devices, console line, ping, block sha256, throughput, shutdown), --scale 0 is refused with "${own[0]}" and exit 2\n`
    : `demo: ${findings.length} finding${findings.length === 1 ? '' : 's'}\n`,
);
process.exit(findings.length > 0 ? 1 : 0);
