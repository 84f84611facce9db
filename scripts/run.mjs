#!/usr/bin/env node
// The README's two commands: `npm run demo` and `npm test`. Works on a fresh machine with only
// Node 20 and npm: pnpm is installed into ./.tools (no global install, no root needed), then the
// workspace is installed and built with turbo, then the job runs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
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

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function must(title, cmd, args) {
  step(title);
  const status = run(cmd, args);
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

function pnpm(title, args) {
  must(title, process.execPath, [pnpmBin, ...args]);
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
    ]);
  }
  pnpm('installing workspace dependencies', ['install', '--frozen-lockfile', '--reporter=append-only']);
  pnpm('building packages', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only']);
}

/** Sums jest's --json report into the one line CI counts. */
function summarize(reportPath) {
  if (!existsSync(reportPath)) {
    process.stdout.write('tests: 0 passed, 1 failed\n');
    return 1;
  }
  const report = JSON.parse(readFileSync(reportPath, 'utf8'));
  const failedSuites = report.numFailedTestSuites ?? 0;
  // A suite that fails to load has no test results; count it as one failure so it is seen.
  const loadFailures = (report.testResults ?? []).filter(
    (s) => s.status === 'failed' && (s.assertionResults ?? []).length === 0,
  ).length;
  const passed = report.numPassedTests ?? 0;
  const failed = (report.numFailedTests ?? 0) + loadFailures;
  process.stdout.write(`tests: ${passed} passed, ${failed} failed\n`);
  return failed > 0 || failedSuites > 0 || report.success === false ? 1 : 0;
}

const job = process.argv[2] ?? 'setup';
setup();
if (job === 'setup') process.exit(0);

if (job === 'demo') {
  must('loopback demo: a virtio driver in a worker, the device in this thread', process.execPath, [
    join(root, 'tools', 'loopback', 'dist', 'cli.js'),
    ...process.argv.slice(3),
  ]);
  process.exit(0);
}

if (job === 'test') {
  must('dependency and layering check (scripts/check-deps.mjs)', process.execPath, [
    join(root, 'scripts', 'check-deps.mjs'),
  ]);
  must('dependency check self-test', process.execPath, [join(root, 'scripts', 'check-deps.mjs'), '--self-test']);
  pnpm('typecheck and lint', ['exec', 'turbo', 'run', 'typecheck', 'lint', '--output-logs=errors-only']);
  step('tests (jest, all packages)');
  mkdirSync(join(root, 'reports'), { recursive: true });
  const reportPath = join(root, 'reports', 'jest.json');
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
