#!/usr/bin/env node
// The README's two commands: `npm run demo` and `npm test`. Works on a fresh machine with only
// Node 20 and npm: pnpm is installed into ./.tools (no global install, no root needed), then the
// workspace is installed and built with turbo, then the job runs. Everything the set-up prints
// goes to stderr, so stdout carries only the job's output (`npm run -s demo -- --json` is JSON).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pnpmVersion = rootPkg.packageManager.split('@')[1];
const toolsDir = join(root, '.tools');
const pnpmBin = join(toolsDir, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');
const env = {
  ...process.env,
  // turbo looks the package manager up on PATH
  PATH: `${join(toolsDir, 'node_modules', '.bin')}${delimiter}${process.env.PATH ?? ''}`,
  TURBO_TELEMETRY_DISABLED: '1',
  DO_NOT_TRACK: '1',
};

function step(title) {
  process.stderr.write(`\n==> ${title}\n`);
}

/** Runs a command; its stdout goes to our stdout, or with `toStderr` to our stderr. */
function run(cmd, args, { toStderr = false, ...opts } = {}) {
  const stdio = toStderr ? ['inherit', process.stderr.fd, 'inherit'] : 'inherit';
  const r = spawnSync(cmd, args, { cwd: root, stdio, env, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function must(title, cmd, args, { toStderr = false } = {}) {
  step(title);
  const status = run(cmd, args, { toStderr });
  if (status !== 0) {
    process.stderr.write(`\n${title} failed (exit ${status})\n`);
    process.exit(status);
  }
}

function installedPnpm() {
  if (!existsSync(pnpmBin)) return null;
  try {
    return JSON.parse(readFileSync(join(toolsDir, 'node_modules', 'pnpm', 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

function pnpm(title, args, opts) {
  must(title, process.execPath, [pnpmBin, ...args], opts);
}

function setup() {
  if (installedPnpm() !== pnpmVersion) {
    mkdirSync(toolsDir, { recursive: true });
    must(`installing pnpm ${pnpmVersion} into .tools`, 'npm', [
      'install',
      '--prefix',
      toolsDir,
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      `pnpm@${pnpmVersion}`,
    ], { toStderr: true });
  }
  const quiet = { toStderr: true };
  const install = ['install', '--frozen-lockfile', '--reporter=append-only'];
  pnpm('installing workspace dependencies', install, quiet);
  pnpm('building packages', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only'], quiet);
}

/**
 * A check before jest: its failure is recorded, not fatal, so jest still runs and is counted;
 * each failed check counts as one failed test in the last line.
 */
const failedChecks = [];
function check(title, cmd, args) {
  step(title);
  const status = run(cmd, args);
  if (status !== 0) {
    process.stderr.write(`\n${title} failed (exit ${status})\n`);
    failedChecks.push(title);
  }
}

/** Sums jest's --json report (and the failed checks) into the one line CI counts. */
function summarize(reportPath) {
  for (const title of failedChecks) process.stderr.write(`check failed: ${title}\n`);
  if (!existsSync(reportPath)) {
    process.stdout.write(`tests: 0 passed, ${1 + failedChecks.length} failed\n`);
    return 1;
  }
  const report = JSON.parse(readFileSync(reportPath, 'utf8'));
  const failedSuites = report.numFailedTestSuites ?? 0;
  // A suite that fails to load has no test results; count it as one failure so it is seen.
  const loadFailures = (report.testResults ?? []).filter(
    (s) => s.status === 'failed' && (s.assertionResults ?? []).length === 0,
  ).length;
  const passed = report.numPassedTests ?? 0;
  const failed = (report.numFailedTests ?? 0) + loadFailures + failedChecks.length;
  process.stdout.write(`tests: ${passed} passed, ${failed} failed\n`);
  return failed > 0 || failedSuites > 0 || report.success === false ? 1 : 0;
}

const job = process.argv[2] ?? 'setup';
setup();
if (job === 'setup') process.exit(0);

if (job === 'demo') {
  // The demo's own exit code and messages (exit 2 and one line for a bad argument), nothing added.
  step('demo: one card on the x100 worker platform with console, net and block over VOP');
  const cli = join(root, 'tools', 'demo', 'dist', 'cli.js');
  process.exit(run(process.execPath, [cli, ...process.argv.slice(3)]));
}

if (job === 'test') {
  check('dependency and layering check (scripts/check-deps.mjs)', process.execPath, [
    join(root, 'scripts', 'check-deps.mjs'),
  ]);
  check('dependency check self-test', process.execPath, [join(root, 'scripts', 'check-deps.mjs'), '--self-test']);
  const script = (name, ...args) => [join(root, 'scripts', name), ...args];
  check('changesets (scripts/check-changesets.mjs)', process.execPath, script('check-changesets.mjs'));
  check('changesets check self-test', process.execPath, script('check-changesets.mjs', '--self-test'));
  check('typecheck and lint', process.execPath, [
    pnpmBin,
    'exec',
    'turbo',
    'run',
    'typecheck',
    'lint',
    '--output-logs=errors-only',
  ]);
  check('doc-tests: README examples (scripts/doc-test.mjs)', process.execPath, script('doc-test.mjs'));
  check('doc-test self-test', process.execPath, script('doc-test.mjs', '--self-test'));
  check('API docs (TypeDoc into docs/api, warnings are errors)', process.execPath, [
    join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'),
  ]);
  check('published packages (scripts/check-pack.mjs)', process.execPath, script('check-pack.mjs'));
  check('the demo as a program (scripts/check-demo.mjs)', process.execPath, script('check-demo.mjs'));
  step('tests (jest, all packages)');
  mkdirSync(join(root, 'reports'), { recursive: true });
  const reportPath = join(root, 'reports', 'jest.json');
  rmSync(reportPath, { force: true }); // a report left by an earlier run is never counted
  const status = run(
    process.execPath,
    [
      '--experimental-vm-modules',
      '--no-warnings=ExperimentalWarning',
      join(root, 'node_modules', 'jest', 'bin', 'jest.js'),
      '--json',
      `--outputFile=${reportPath}`,
      ...process.argv.slice(3),
    ],
    // setup() has just built every package: jest.global-setup.js need not run turbo again.
    { env: { ...env, MIC_JEST_BUILD: '0' } },
  );
  const counted = summarize(reportPath);
  process.exit(status !== 0 ? status : counted);
}

process.stderr.write(`unknown job '${job}': expected setup, demo or test\n`);
process.exit(2);
