#!/usr/bin/env node
// The release rules that `npm test` checks (the policy is in the root README, "Releases"):
//
// 1. A change to a published package's `src/` carries a changeset naming the package. Compared
//    with the merge base of `main` on a branch (committed and uncommitted changes both count); on
//    `main` itself with the last release tag (`@mic/<name>@<version>`, which `changeset publish`
//    creates), or skipped with one line when nothing was released yet.
// 2. Every pending changeset names workspace packages only, and none says `major` while the
//    packages are below 1.0.0 (a breaking change in 0.x is a minor bump).
// 3. A published package's version is either 0.0.0 (never released: the first `changeset version`
//    makes it 0.1.0) or a released one (its tag exists).
// 4. A dry run of `changeset version` in a scratch copy (package.json files and .changeset only):
//    every published package comes out at one version (the fixed group), a first release at
//    0.1.0, and no changelog section repeats dependency lines.
//
// Exits 1 with one line per finding. `--self-test` checks the checker in a made-up repository.
//
// Usage: node scripts/check-changesets.mjs [--self-test] [--no-dry-run]
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workspacePackages as listPackages } from './workspace.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHANGESET_BIN = join(ROOT, 'node_modules', '@changesets', 'cli', 'bin.js');

function git(root, args, { allowFail = false } = {}) {
  const r = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    if (allowFail) return null;
    throw new Error(`git ${args.join(' ')} failed: ${r.stderr.trim()}`);
  }
  return r.stdout.trim();
}

/** Workspace packages: `{ dir (relative), name, version, private }`. */
function workspacePackages(root) {
  return listPackages(root).map(({ dir, pkg }) => ({
    dir,
    name: pkg.name,
    version: pkg.version,
    private: pkg.private === true,
  }));
}

/** The packages and bump types a changeset file names (its front matter). */
export function parseChangeset(text) {
  const m = /^---\r?\n([\s\S]*?)\r?\n?---/.exec(text);
  if (!m) return null;
  const releases = [];
  for (const line of m[1].split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const r = /^\s*['"]?([^'":]+)['"]?\s*:\s*(major|minor|patch|none)\s*$/.exec(line);
    if (!r) return null;
    releases.push({ name: r[1], type: r[2] });
  }
  return releases;
}

function pendingChangesets(root) {
  const dir = join(root, '.changeset');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.md') && f !== 'README.md')
    .sort()
    .map((f) => ({ file: `.changeset/${f}`, releases: parseChangeset(readFileSync(join(dir, f), 'utf8')) }));
}

/** What to compare with: `{ base, label }`, or `{ skip }` with the reason. */
function comparisonBase(root) {
  const branch = git(root, ['rev-parse', '--abbrev-ref', 'HEAD']);
  const head = git(root, ['rev-parse', 'HEAD']);
  const main = git(root, ['rev-parse', '--verify', '--quiet', 'main'], { allowFail: true });
  if (branch === 'main' || (branch === 'HEAD' && main !== null && main === head)) {
    const tag = git(root, ['describe', '--tags', '--abbrev=0', '--match', '@mic/*@*'], { allowFail: true });
    if (!tag) return { skip: 'on main with no release tag yet (nothing released to compare with)' };
    return { base: tag, label: `the last release tag ${tag}` };
  }
  if (main === null) return { skip: `no main branch to compare ${branch} with` };
  return { base: git(root, ['merge-base', 'HEAD', 'main']), label: 'the merge base with main' };
}

/** Rules 1–3. Returns `{ findings, notes }`. */
export function checkRules(root) {
  const findings = [];
  const notes = [];
  const packages = workspacePackages(root);
  const byName = new Map(packages.map((p) => [p.name, p]));
  const published = packages.filter((p) => !p.private);
  const changesets = pendingChangesets(root);
  const belowOne = published.every((p) => /^0\./.test(p.version));

  for (const cs of changesets) {
    if (cs.releases === null) {
      findings.push(`${cs.file}: no front matter of "'@mic/<name>': patch|minor|major" lines`);
      continue;
    }
    for (const r of cs.releases) {
      if (!byName.has(r.name)) findings.push(`${cs.file}: ${r.name} is not a workspace package`);
      if (r.type === 'major' && belowOne) {
        findings.push(
          `${cs.file}: ${r.name} is 'major', but the packages are below 1.0.0: a breaking change in 0.x is 'minor'`,
        );
      }
    }
  }

  const tags = new Set(
    (git(root, ['tag', '--list', '@mic/*@*'], { allowFail: true }) ?? '').split('\n').filter(Boolean),
  );
  for (const p of published) {
    if (p.version !== '0.0.0' && !tags.has(`${p.name}@${p.version}`)) {
      findings.push(
        `${p.dir}/package.json: version ${p.version} was never released (no tag ${p.name}@${p.version}); an unreleased package stays at 0.0.0 and changesets set its version`,
      );
    }
  }

  const cmp = comparisonBase(root);
  if (cmp.skip) {
    notes.push(`changesets: src check skipped: ${cmp.skip}`);
    return { findings, notes };
  }
  const changed = new Set(
    [
      ...(git(root, ['diff', '--name-only', cmp.base]) ?? '').split('\n'),
      ...(git(root, ['ls-files', '--others', '--exclude-standard']) ?? '').split('\n'),
    ].filter(Boolean),
  );
  const touched = new Map();
  for (const path of changed) {
    const m = /^((?:packages|tools)\/[^/]+)\/src\//.exec(path);
    if (!m) continue;
    const p = packages.find((q) => q.dir === m[1]);
    if (!p || p.private) continue;
    if (!touched.has(p.name)) touched.set(p.name, []);
    touched.get(p.name).push(path);
  }
  const named = new Set();
  for (const cs of changesets) {
    if (!changed.has(cs.file)) continue;
    for (const r of cs.releases ?? []) named.add(r.name);
  }
  for (const [name, paths] of touched) {
    if (named.has(name)) continue;
    const shown = paths.slice(0, 3).join(', ') + (paths.length > 3 ? `, ... (${paths.length} files)` : '');
    findings.push(
      `${name}: src changed since ${cmp.label} (${shown}) but no new changeset names it: run \`pnpm changeset\``,
    );
  }
  notes.push(`changesets: ${touched.size} published package(s) changed in src since ${cmp.label}`);
  return { findings, notes };
}

/**
 * Rule 4: `changeset version` in a scratch copy. Returns `{ findings, note, releases }`, where
 * `releases` lists `{ name, dir, from, to, changelog }` (the new changelog section) per package
 * that the dry run moved.
 */
export function dryRunVersion(root) {
  const findings = [];
  const releases = [];
  const changesets = pendingChangesets(root);
  if (changesets.length === 0) return { findings, note: 'changesets: none pending, no version dry run' };
  const scratch = mkdtempSync(join(tmpdir(), 'changeset-dry-run-'));
  try {
    const copy = (rel) => {
      if (!existsSync(join(root, rel))) return;
      mkdirSync(dirname(join(scratch, rel)), { recursive: true });
      cpSync(join(root, rel), join(scratch, rel), { recursive: true });
    };
    for (const rel of ['package.json', 'pnpm-workspace.yaml', '.changeset', 'scripts/changelog.cjs'])
      copy(rel);
    const packages = workspacePackages(root);
    for (const p of packages) for (const f of ['package.json', 'CHANGELOG.md']) copy(`${p.dir}/${f}`);
    const run = (cmd, args) => {
      const r = spawnSync(cmd, args, { cwd: scratch, encoding: 'utf8' });
      if (r.error) throw r.error;
      return r;
    };
    for (const args of [
      ['init', '-q'],
      ['add', '-A'],
      ['-c', 'user.name=dry run', '-c', 'user.email=dry-run@localhost', 'commit', '-qm', 'scratch'],
    ]) {
      const r = run('git', args);
      if (r.status !== 0) throw new Error(`git ${args[0]} in the scratch copy failed: ${r.stderr}`);
    }
    const v = run(process.execPath, [CHANGESET_BIN, 'version']);
    if (v.status !== 0) {
      findings.push(
        `changeset version (dry run) failed:\n${`${v.stdout}${v.stderr}`.trim().split('\n').slice(-8).join('\n')}`,
      );
      return { findings };
    }
    const after = workspacePackages(scratch);
    const published = after.filter((p) => !p.private);
    const versions = new Set(published.map((p) => p.version));
    if (versions.size > 1) {
      findings.push(
        `changeset version (dry run): the published packages end at different versions (${[...versions].join(', ')}); they are one fixed group`,
      );
    }
    for (const p of after) {
      const before = packages.find((q) => q.dir === p.dir);
      if (before && before.version !== p.version) {
        const log = join(scratch, p.dir, 'CHANGELOG.md');
        const changelog = existsSync(log)
          ? `## ${readFileSync(log, 'utf8').split(/^## /m)[1] ?? ''}`.trim()
          : '';
        releases.push({
          name: p.name,
          dir: p.dir,
          from: before.version,
          to: p.version,
          private: p.private,
          changelog,
        });
      }
    }
    for (const p of published) {
      const before = packages.find((q) => q.dir === p.dir);
      if (before?.version === '0.0.0' && p.version !== '0.1.0') {
        findings.push(
          `changeset version (dry run): ${p.name} goes from 0.0.0 to ${p.version}; a first release is 0.1.0`,
        );
      }
      const log = join(scratch, p.dir, 'CHANGELOG.md');
      if (!existsSync(log)) continue;
      const section = readFileSync(log, 'utf8').split(/^## /m)[1] ?? '';
      const dependencyLines = section
        .split('\n')
        .filter((l) => /^- (Updated dependencies|Dependencies:)/.test(l));
      if (dependencyLines.length > 1 || dependencyLines.some((l) => l.startsWith('- Updated dependencies'))) {
        findings.push(
          `changeset version (dry run): ${p.dir}/CHANGELOG.md repeats dependency lines (${dependencyLines.length}); the changelog module writes one`,
        );
      }
    }
    return {
      findings,
      releases,
      note: `changesets: ${changesets.length} pending; version dry run: ${published.length} published packages at ${[...versions].join(', ')}`,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function selfTest() {
  const root = mkdtempSync(join(tmpdir(), 'check-changesets-'));
  const write = (path, content) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(
      join(root, path),
      typeof content === 'string' ? content : JSON.stringify(content, null, 2) + '\n',
    );
  };
  const g = (...args) => {
    const r = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  };
  const commit = (msg) => {
    g('add', '-A');
    g('-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-qm', msg);
  };
  const results = [];
  const check = (label, expected) => {
    const { findings, notes } = checkRules(root);
    const all = [...findings, ...notes];
    const missing = expected.filter((e) => !all.some((f) => f.includes(e)));
    const unexpected = findings.filter((f) => !expected.some((e) => f.includes(e)));
    if (missing.length > 0 || unexpected.length > 0) results.push({ label, missing, unexpected });
  };
  try {
    write('package.json', { name: 'ws', private: true });
    write('pnpm-workspace.yaml', 'packages:\n  - packages/*\n');
    write(
      '.changeset/config.json',
      JSON.parse(readFileSync(join(ROOT, '.changeset', 'config.json'), 'utf8')),
    );
    write('scripts/changelog.cjs', readFileSync(join(ROOT, 'scripts', 'changelog.cjs'), 'utf8'));
    write('packages/a/package.json', {
      name: '@mic/a',
      version: '0.0.0',
      dependencies: { '@mic/c': 'workspace:^' },
    });
    write('packages/a/src/index.ts', 'export const a = 1;\n');
    write('packages/b/package.json', { name: '@mic/b', version: '0.0.0', private: true });
    write('packages/b/src/index.ts', 'export const b = 1;\n');
    write('packages/c/package.json', { name: '@mic/c', version: '0.0.0' });
    write('packages/c/src/index.ts', 'export const c = 1;\n');
    g('init', '-q', '-b', 'main');
    commit('start');
    check('main without tags', ['src check skipped: on main with no release tag yet']);

    g('checkout', '-q', '-b', 'work');
    write('packages/a/src/index.ts', 'export const a = 2;\n'); // uncommitted
    write('packages/b/src/index.ts', 'export const b = 2;\n'); // private: needs none
    write('packages/c/README.md', '# c\n'); // not src: needs none
    check('a src change without a changeset', ['@mic/a: src changed since the merge base with main']);

    write('.changeset/old.md', "---\n'@mic/a': patch\n---\n\nAn old line.\n");
    commit('a changeset committed on main before');
    g('checkout', '-q', 'main');
    g('merge', '-q', '--ff-only', 'work');
    g('checkout', '-q', '-b', 'work2');
    write('packages/a/src/index.ts', 'export const a = 3;\n');
    check('a changeset from before the merge base does not count', [
      '@mic/a: src changed since the merge base',
    ]);

    write('.changeset/new.md', "---\n'@mic/a': major\n'@mic/nope': patch\n---\n\nBreaking.\n");
    write('.changeset/broken.md', 'no front matter\n');
    write('packages/c/package.json', { name: '@mic/c', version: '0.1.0' });
    check('bad changesets and an unreleased version', [
      ".changeset/new.md: @mic/a is 'major', but the packages are below 1.0.0",
      '.changeset/new.md: @mic/nope is not a workspace package',
      '.changeset/broken.md: no front matter',
      'packages/c/package.json: version 0.1.0 was never released',
    ]);
    g('tag', '@mic/c@0.1.0');
    write('.changeset/new.md', "---\n'@mic/a': minor\n---\n\nA new thing.\n");
    rmSync(join(root, '.changeset', 'broken.md'));
    check('a good changeset and a released version', []);

    // The dry run: a and c in one fixed group, a first release from 0.0.0 is 0.1.0.
    write('packages/c/package.json', { name: '@mic/c', version: '0.0.0' });
    const good = dryRunVersion(root);
    if (good.findings.length > 0)
      results.push({ label: 'dry run, good', missing: [], unexpected: good.findings });
    // Without the fixed group and with the default changelog: a (minor) and c (two patches) split,
    // and a's section gets one "Updated dependencies" line per changeset of c.
    const config = JSON.parse(readFileSync(join(root, '.changeset', 'config.json'), 'utf8'));
    write('.changeset/config.json', { ...config, fixed: [], changelog: '@changesets/cli/changelog' });
    write('.changeset/c.md', "---\n'@mic/c': patch\n---\n\nFix.\n");
    write('.changeset/c2.md', "---\n'@mic/c': patch\n---\n\nAnother fix.\n");
    const split = dryRunVersion(root);
    for (const e of [
      'end at different versions',
      '@mic/c goes from 0.0.0 to 0.0.1',
      'packages/a/CHANGELOG.md repeats',
    ]) {
      if (!split.findings.some((f) => f.includes(e)))
        results.push({ label: 'dry run, no fixed group', missing: [e], unexpected: [] });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  if (results.length > 0) {
    for (const r of results) {
      process.stderr.write(
        `check-changesets self-test failed: ${r.label}\n  missing:\n${r.missing.map((m) => `    ${m}`).join('\n')}\n  unexpected:\n${r.unexpected.map((u) => `    ${u}`).join('\n')}\n`,
      );
    }
    return 1;
  }
  process.stdout.write('check-changesets self-test: every case as expected\n');
  return 0;
}

function main() {
  if (process.argv.includes('--self-test')) process.exit(selfTest());
  const { findings, notes } = checkRules(ROOT);
  if (!process.argv.includes('--no-dry-run')) {
    const dry = dryRunVersion(ROOT);
    findings.push(...dry.findings);
    if (dry.note) notes.push(dry.note);
  }
  for (const n of notes) process.stdout.write(`${n}\n`);
  for (const f of findings) process.stderr.write(`${f}\n`);
  process.exit(findings.length > 0 ? 1 : 0);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
