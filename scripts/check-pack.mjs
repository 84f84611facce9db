#!/usr/bin/env node
// What a user installs: every published package's manifest, then its tarball.
//
// - Manifest: MIT license, repository (with its directory), engines.node, publishConfig.access
//   public, a "./package.json" export, `files` with LICENSE and without dist/.tsbuildinfo, the
//   prepack that builds from clean (scripts/prepack.mjs), a LICENSE equal to the root's and a
//   README. A package without these is private (tools/bench, tools/loopback and packages/e2e
//   are, deliberately).
// - Tarball (`pnpm pack`, which runs prepack, so a tarball can never lack dist): dist with .js and
//   .d.ts, every export target, README, LICENSE; no tests, no .tsbuildinfo, no node_modules, no
//   dist file whose source is gone, no `workspace:` range left.
// - Install: all tarballs together into an empty npm project (offline: nothing but the tarballs,
//   and each third-party runtime dependency linked from the copy the workspace installed), then
//   each package and its package.json import from there in a plain `node`.
//
// Exits 1 with one line per finding.
//
// Usage: node scripts/check-pack.mjs [--keep]
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  realpathSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workspacePackages } from './workspace.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PREPACK = 'node ../../scripts/prepack.mjs';
const PNPM = join(ROOT, '.tools', 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return r;
}

/** Findings about one published package's manifest and files in the repository. */
function checkManifest({ dir, pkg }, rootPkg, license) {
  const f = [];
  const at = `${dir}/package.json`;
  if (pkg.license !== 'MIT') f.push(`${at}: license is ${pkg.license}, not MIT`);
  if (pkg.repository?.url !== rootPkg.repository?.url || pkg.repository?.directory !== dir) {
    f.push(`${at}: repository must be { type: git, url: ${rootPkg.repository?.url}, directory: ${dir} }`);
  }
  if (pkg.engines?.node !== rootPkg.engines?.node)
    f.push(`${at}: engines.node must be ${rootPkg.engines?.node}`);
  if (pkg.publishConfig?.access !== 'public')
    f.push(`${at}: publishConfig.access must be public (or the package private)`);
  if (pkg.exports?.['./package.json'] !== './package.json')
    f.push(`${at}: exports lacks "./package.json": "./package.json"`);
  const main = pkg.exports?.['.'];
  if (!main || Object.keys(main)[0] !== 'types') f.push(`${at}: exports["."] must list "types" first`);
  for (const want of ['dist', '!dist/.tsbuildinfo', 'README.md', 'LICENSE']) {
    if (!pkg.files?.includes(want)) f.push(`${at}: files lacks "${want}"`);
  }
  if (pkg.scripts?.prepack !== PREPACK) f.push(`${at}: scripts.prepack must be "${PREPACK}" (a clean build)`);
  if (!existsSync(join(ROOT, dir, 'README.md'))) f.push(`${dir}: no README.md`);
  const own = join(ROOT, dir, 'LICENSE');
  if (!existsSync(own)) f.push(`${dir}: no LICENSE (a copy of the root's)`);
  else if (readFileSync(own, 'utf8') !== license) f.push(`${dir}/LICENSE differs from the root LICENSE`);
  return f;
}

/** Findings about one tarball's file list and packed package.json. */
function checkTarball({ dir, pkg }, tarball) {
  const f = [];
  const list = run('tar', ['-tzf', tarball]);
  if (list.status !== 0) return [`${dir}: cannot list ${tarball}: ${list.stderr}`];
  const files = list.stdout
    .split('\n')
    .filter(Boolean)
    .map((p) => p.replace(/^package\//, ''));
  const has = new Set(files);
  for (const want of ['package.json', 'README.md', 'LICENSE'])
    if (!has.has(want)) f.push(`${dir}: tarball lacks ${want}`);
  if (!files.some((p) => /^dist\/.*\.js$/.test(p))) f.push(`${dir}: tarball has no dist/*.js`);
  if (!files.some((p) => /^dist\/.*\.d\.ts$/.test(p))) f.push(`${dir}: tarball has no dist/*.d.ts types`);
  const targets = [];
  const walk = (v) =>
    typeof v === 'string' ? targets.push(v) : v && typeof v === 'object' && Object.values(v).forEach(walk);
  walk(pkg.exports);
  for (const bin of Object.values(pkg.bin ?? {})) targets.push(bin);
  for (const t of targets)
    if (!has.has(t.replace(/^\.\//, ''))) f.push(`${dir}: tarball lacks ${t} (exports/bin)`);
  for (const p of files) {
    if (/(^|\/)(test|tests|__tests__)\//.test(p) || /\.test\.[cm]?[jt]s$/.test(p))
      f.push(`${dir}: tarball ships a test: ${p}`);
    if (p.endsWith('.tsbuildinfo')) f.push(`${dir}: tarball ships ${p}`);
    if (p.includes('node_modules/')) f.push(`${dir}: tarball ships ${p}`);
    const m = /^dist\/(.+?)(\.d)?\.(js|ts)(\.map)?$/.exec(p);
    if (m && !has.has(`src/${m[1]}.ts`))
      f.push(
        `${dir}: tarball ships ${p}, whose source src/${m[1]}.ts is gone (stale dist: rebuild from clean)`,
      );
  }
  const packed = run('tar', ['-xzOf', tarball, 'package/package.json']);
  if (packed.status === 0 && packed.stdout.includes('"workspace:'))
    f.push(`${dir}: packed package.json keeps a workspace: range`);
  return f;
}

function main() {
  const keep = process.argv.includes('--keep');
  const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
  const findings = [];
  const all = workspacePackages(ROOT);
  const published = all.filter((p) => p.pkg.private !== true);
  const work = mkdtempSync(join(tmpdir(), 'mic-pack-'));
  const tarballs = [];
  try {
    for (const p of published) {
      const manifest = checkManifest(p, rootPkg, license);
      findings.push(...manifest);
      const before = readdirSync(work);
      const r = run(process.execPath, [PNPM, 'pack', '--pack-destination', work], { cwd: join(ROOT, p.dir) });
      const made = readdirSync(work).filter((x) => !before.includes(x) && x.endsWith('.tgz'));
      if (r.status !== 0 || made.length !== 1) {
        findings.push(
          `${p.dir}: pnpm pack failed (exit ${r.status}):\n${`${r.stdout}${r.stderr}`.trim().split('\n').slice(-8).join('\n')}`,
        );
        continue;
      }
      const tarball = join(work, made[0]);
      tarballs.push(tarball);
      findings.push(...checkTarball(p, tarball));
    }

    // Install every tarball into an empty project, offline, and import each package from it.
    const app = join(work, 'app');
    mkdirSync(app);
    // Offline, a third-party dependency (koffi) comes from the workspace's installed copy.
    const external = {};
    for (const p of published) {
      for (const dep of Object.keys(p.pkg.dependencies ?? {})) {
        if (dep.startsWith('@mic/') || external[dep]) continue;
        const at = join(ROOT, p.dir, 'node_modules', dep);
        if (existsSync(at)) external[dep] = `file:${realpathSync(at)}`;
        else findings.push(`${p.dir}: dependency ${dep} is not installed in the workspace`);
      }
    }
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: external }) + '\n',
    );
    const npm = run(
      'npm',
      [
        'install',
        '--offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        '--loglevel=error',
        ...tarballs,
      ],
      { cwd: app, env: { ...process.env, npm_config_cache: join(work, 'npm-cache') } },
    );
    if (npm.status !== 0) {
      findings.push(
        `npm install of the tarballs failed:\n${`${npm.stdout}${npm.stderr}`.trim().split('\n').slice(-8).join('\n')}`,
      );
    } else {
      const names = published.map((p) => p.pkg.name);
      const script = [
        `const names = ${JSON.stringify(names)};`,
        'for (const n of names) {',
        '  const m = await import(n);',
        "  if (Object.keys(m).length === 0) throw new Error(n + ' exports nothing');",
        "  const { default: pj } = await import(n + '/package.json', { with: { type: 'json' } });",
        "  if (pj.name !== n) throw new Error(n + '/package.json is ' + pj.name);",
        '}',
        "process.stdout.write('imported ' + names.length + '\\n');",
      ].join('\n');
      writeFileSync(join(app, 'check.mjs'), script);
      const imp = run(process.execPath, ['--no-warnings', 'check.mjs'], { cwd: app });
      if (imp.status !== 0)
        findings.push(
          `importing the installed packages failed:\n${`${imp.stdout}${imp.stderr}`.trim().split('\n').slice(-8).join('\n')}`,
        );
    }
  } finally {
    if (keep) process.stderr.write(`kept ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
  for (const p of all.filter((q) => q.pkg.private === true)) {
    if (p.pkg.publishConfig) findings.push(`${p.dir}/package.json: private, but has publishConfig`);
  }
  for (const f of findings) process.stderr.write(`${f}\n`);
  process.stdout.write(
    `pack: ${tarballs.length} of ${published.length} published packages packed, installed and imported; ${all.length - published.length} private (${all
      .filter((q) => q.pkg.private === true)
      .map((q) => q.dir)
      .join(', ')}); ${findings.length} finding${findings.length === 1 ? '' : 's'}\n`,
  );
  process.exit(findings.length > 0 ? 1 : 0);
}

main();
