#!/usr/bin/env node
// `pnpm release`: build every package, run the whole test command, `changeset version`, commit
// the release, `changeset publish` (pnpm publish per package: prepack builds it from clean; tags
// `@mic/<name>@<version>`). Pushing the commit and its tags is left to the maintainer.
//
// `pnpm release --dry-run` changes nothing and sends nothing anywhere: the same build and tests,
// then `changeset version` in a scratch copy (the versions and changelog sections it would
// write) and `pnpm pack` of every published package (the tarballs it would upload).
// `--skip-tests` leaves the tests out (for a quick look at the versions with --dry-run only).
//
// Usage: pnpm release [--dry-run] [--skip-tests]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dryRunVersion } from './check-changesets.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const dryRun = args.includes('--dry-run');
const skipTests = args.includes('--skip-tests');
const unknown = args.filter((a) => a !== '--dry-run' && a !== '--skip-tests');
if (unknown.length > 0 || (skipTests && !dryRun)) {
  process.stderr.write(
    unknown.length > 0
      ? `release: unknown argument ${unknown[0]}; usage: pnpm release [--dry-run] [--skip-tests]\n`
      : 'release: --skip-tests only goes with --dry-run: a release runs the tests\n',
  );
  process.exit(2);
}

const env = {
  ...process.env,
  PATH: `${join(root, '.tools', 'node_modules', '.bin')}${delimiter}${join(root, 'node_modules', '.bin')}${delimiter}${process.env.PATH ?? ''}`,
  TURBO_TELEMETRY_DISABLED: '1',
};
const changeset = join(root, 'node_modules', '@changesets', 'cli', 'bin.js');

function step(title, cmd, cmdArgs) {
  process.stderr.write(`\n==> release: ${title}\n`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    process.stderr.write(`\nrelease: ${title} failed (exit ${r.status}); nothing was published\n`);
    process.exit(r.status ?? 1);
  }
}

function git(...gitArgs) {
  const r = spawnSync('git', gitArgs, { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${gitArgs.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

if (!dryRun && git('status', '--porcelain') !== '') {
  process.stderr.write('release: the working tree has changes; commit or stash them first\n');
  process.exit(1);
}

// npm test builds every package (turbo) before its checks; with --skip-tests only the build runs.
if (skipTests) step('build every package', process.execPath, [join(root, 'scripts', 'run.mjs'), 'setup']);
else step('build and test (npm test)', process.execPath, [join(root, 'scripts', 'run.mjs'), 'test']);

if (dryRun) {
  process.stderr.write('\n==> release: changeset version in a scratch copy\n');
  const { findings, releases = [], note } = dryRunVersion(root);
  for (const r of releases.filter((x) => !x.private)) {
    process.stdout.write(`\n${r.name}: ${r.from} -> ${r.to}\n${r.changelog.replace(/^/gm, '  ')}\n`);
  }
  if (note) process.stdout.write(`\n${note}\n`);
  for (const f of findings) process.stderr.write(`${f}\n`);
  if (findings.length > 0) process.exit(1);
  step('pack every published package (what publish uploads)', process.execPath, [
    join(root, 'scripts', 'check-pack.mjs'),
  ]);
  process.stdout.write('\nrelease --dry-run: nothing changed, nothing published\n');
  process.exit(0);
}

// One version for every published package (the fixed group): @mic/errors shows it.
const groupVersion = () =>
  JSON.parse(readFileSync(join(root, 'packages', 'errors', 'package.json'), 'utf8')).version;
const from = groupVersion();
step('changeset version', process.execPath, [changeset, 'version']);
const to = groupVersion();
git('add', '-A');
git(
  'commit',
  '-qm',
  `Release ${to}`,
  '-m',
  `changeset version: the published @mic packages from ${from} to ${to}.`,
);
step('changeset publish', process.execPath, [changeset, 'publish']);
process.stdout.write(`\nrelease: ${to} published and tagged; push with: git push --follow-tags\n`);
