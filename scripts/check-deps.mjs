#!/usr/bin/env node
// Declared dependencies equal imports, and the layering of docs/architecture.md holds.
//
// For every workspace package (packages/*, tools/*):
// - what `src/` imports (a `@mic/*` or npm package) must be in `dependencies`;
// - what `test/` and `bench/` import must be in `dependencies` or `devDependencies` (or, for the
//   shared test tools such as `@jest/globals` and `fast-check`, in the root `devDependencies`);
// - every entry of `dependencies` must be imported by `src/`, every entry of `devDependencies` by
//   something (an entry only the tests use belongs in `devDependencies`);
// - `tsconfig.json` references exactly the workspace packages in `dependencies` (the build order);
// - no import crosses a forbidden edge of the table below;
// - docs/architecture.md has one row per package in its table of edges, listing exactly its
//   workspace `dependencies` and `devDependencies`.
// Exits 1 with one line per finding. `--self-test` checks the checker on a made-up workspace.
//
// Usage: node scripts/check-deps.mjs [--self-test]
import { builtinModules } from 'node:module';
import {
  existsSync,
  mkdtempSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Packages by role (some are on their way; an entry for a package that does not exist is unused). */
const LEAVES = ['errors', 'logger', 'clock', 'memory', 'notify'];
const BUSES = ['bus-core', 'mic-bus', 'scif-bus', 'vop-bus', 'cosm-bus'];
const HW_DRIVERS = ['mic-host', 'mic-card'];
const HOST_SIDE = ['mic-host', 'vop-host', 'virtio-backends', 'cosm', 'micd', 'micctrl'];
const CARD_SIDE = ['mic-card', 'vop-card', 'virtio-drivers', 'cosm-client'];
const BUS_DRIVERS = ['mic-dma', 'vop-host', 'vop-card', 'scif', 'cosm', 'cosm-client'];
const TEST_ONLY = ['hwops-compliance', 'e2e'];

/**
 * The mechanical rules of docs/architecture.md: packages in `from` never import those in `to`.
 * `scope` is `all` (sources and tests) or `src` (tests may, e.g. a bus driver's tests on the real
 * hardware drivers).
 */
export const FORBIDDEN = [
  {
    from: ['x100'],
    to: [...BUSES, ...HW_DRIVERS, ...BUS_DRIVERS, 'mic-common', 'virtio', ...TEST_ONLY],
    scope: 'all',
    why: 'x100 is the hardware and nothing else: it imports no bus, no driver and no UAPI layout',
  },
  {
    from: BUSES,
    to: ['x100', ...HW_DRIVERS, ...BUS_DRIVERS],
    scope: 'all',
    why: 'buses never import x100, mic-host or mic-card (nor the drivers above them)',
  },
  {
    from: CARD_SIDE,
    to: HOST_SIDE,
    scope: 'all',
    why: 'card-side packages never import host-side ones: only bytes and doorbells cross',
  },
  {
    from: HOST_SIDE,
    to: CARD_SIDE,
    scope: 'all',
    why: 'host-side packages never import card-side ones: only bytes and doorbells cross',
  },
  {
    // bus-core's generic driver core (Bus, id tables) is fine; the MIC buses are not
    from: ['virtio'],
    to: ['mic-common', 'x100', ...BUSES.filter((b) => b !== 'bus-core'), ...HW_DRIVERS, ...BUS_DRIVERS],
    scope: 'all',
    why: 'virtio knows nothing about MIC: it is a general virtio core',
  },
  {
    from: ['mic-common'],
    to: ['x100', ...BUSES, ...HW_DRIVERS, ...BUS_DRIVERS],
    scope: 'all',
    why: 'mic-common holds only byte layouts and constants',
  },
  {
    from: BUS_DRIVERS,
    to: ['x100', ...HW_DRIVERS],
    scope: 'src',
    why: 'drivers above a bus see only their bus device and *HwOps',
  },
  {
    from: LEAVES,
    to: [...BUSES, ...HW_DRIVERS, ...BUS_DRIVERS, 'x100', 'mic-common', 'virtio', ...TEST_ONLY],
    scope: 'all',
    why: 'the shared leaves import nothing above them',
  },
];

const SCOPE = 'mic';
const SOURCE_EXT = /\.(?:[cm]?ts|[cm]?js)$/;
const BUILTINS = new Set(builtinModules);

/** Replaces comments with spaces, keeping strings (so a doc example's `import` is not an import). */
function stripComments(code) {
  let out = '';
  let i = 0;
  const n = code.length;
  let prev = ''; // last significant character, to tell a regex literal from a division
  while (i < n) {
    const c = code[i];
    const d = code[i + 1];
    if (c === '/' && d === '/') {
      while (i < n && code[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && d === '*') {
      const end = code.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      out += code.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < n && code[j] !== c) j += code[j] === '\\' ? 2 : 1;
      out += code.slice(i, j + 1);
      i = j + 1;
      prev = c;
      continue;
    }
    if (c === '/' && (prev === '' || '(,=:[!&|?{};+-*%<>~^'.includes(prev))) {
      // a regex literal: skip to its closing slash (outside a character class)
      let j = i + 1;
      let inClass = false;
      while (j < n && code[j] !== '\n') {
        if (code[j] === '\\') j++;
        else if (code[j] === '[') inClass = true;
        else if (code[j] === ']') inClass = false;
        else if (code[j] === '/' && !inClass) break;
        j++;
      }
      out += code.slice(i, j + 1);
      i = j + 1;
      prev = '/';
      continue;
    }
    out += c;
    if (!/\s/.test(c)) prev = c;
    i++;
  }
  return out;
}

/** The module specifiers a source file imports (static, `export … from`, and literal `import()`). */
export function importsOf(code) {
  const text = stripComments(code);
  const found = new Set();
  const patterns = [
    /\bimport\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]/g,
    /\bexport\s+(?:type\s+)?(?:\*(?:\s+as\s+\w+)?|\{[^}]*\})\s*from\s+['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.add(m[1]);
  return [...found];
}

/** The package a bare specifier names (`@scope/name` or `name`), or undefined for a relative or builtin one. */
function packageOf(spec) {
  if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || spec.includes(':'))
    return undefined;
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  return BUILTINS.has(name) ? undefined : name;
}

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else if (SOURCE_EXT.test(entry)) out.push(path);
  }
  return out;
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** The workspace packages: `{ name, short, dir, pkg }` for packages/* and tools/*. */
function workspacePackages(root) {
  const out = [];
  for (const group of ['packages', 'tools']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const entry of readdirSync(base).sort()) {
      const pj = join(base, entry, 'package.json');
      if (!existsSync(pj)) continue;
      const pkg = readJson(pj);
      out.push({ name: pkg.name, short: entry, dir: join(base, entry), pkg });
    }
  }
  return out;
}

/** Every finding for the workspace at `root`, as lines `<package>: <what is wrong>`. */
export function checkWorkspace(root) {
  const rootPkg = readJson(join(root, 'package.json'));
  const rootDev = new Set(Object.keys(rootPkg.devDependencies ?? {}));
  const packages = workspacePackages(root);
  const byName = new Map(packages.map((p) => [p.name, p]));
  const findings = [];
  for (const p of packages) {
    const deps = new Set(Object.keys(p.pkg.dependencies ?? {}));
    const devDeps = new Set(Object.keys(p.pkg.devDependencies ?? {}));
    const used = { src: new Map(), test: new Map() };
    const scan = (scope, dir) => {
      for (const file of filesUnder(dir)) {
        for (const spec of importsOf(readFileSync(file, 'utf8'))) {
          const name = packageOf(spec);
          if (name === undefined || name === p.name) continue;
          if (!used[scope].has(name)) used[scope].set(name, relative(root, file));
        }
      }
    };
    scan('src', join(p.dir, 'src'));
    scan('test', join(p.dir, 'test'));
    scan('test', join(p.dir, 'bench'));

    for (const [name, file] of used.src) {
      if (!deps.has(name)) {
        findings.push(
          `${p.name}: ${file} imports ${name}, which is not in its dependencies${devDeps.has(name) ? ' (it is a devDependency: src needs it at run time)' : ''}`,
        );
      }
    }
    for (const [name, file] of used.test) {
      if (!deps.has(name) && !devDeps.has(name) && !rootDev.has(name)) {
        findings.push(
          `${p.name}: ${file} imports ${name}, which is in neither its dependencies nor its devDependencies`,
        );
      }
    }
    for (const name of deps) {
      if (used.src.has(name)) continue;
      findings.push(
        used.test.has(name)
          ? `${p.name}: declares ${name} in dependencies, but only its tests import it: move it to devDependencies`
          : `${p.name}: declares ${name} in dependencies, but nothing imports it`,
      );
    }
    for (const name of devDeps) {
      if (deps.has(name))
        findings.push(`${p.name}: declares ${name} in both dependencies and devDependencies`);
      else if (!used.test.has(name) && !used.src.has(name)) {
        findings.push(`${p.name}: declares ${name} in devDependencies, but nothing imports it`);
      }
    }

    const tsconfig = join(p.dir, 'tsconfig.json');
    if (existsSync(tsconfig)) {
      const refs = new Set(
        (readJson(tsconfig).references ?? []).map((r) => {
          const target = [...byName.values()].find((q) => resolve(p.dir, r.path) === q.dir);
          return target ? target.name : `(${r.path})`;
        }),
      );
      const wanted = [...deps].filter((d) => byName.has(d));
      for (const d of wanted) {
        if (!refs.has(d))
          findings.push(`${p.name}: tsconfig.json does not reference ${d}, a dependency (build order)`);
      }
      for (const r of refs) {
        if (!wanted.includes(r))
          findings.push(`${p.name}: tsconfig.json references ${r}, which is not a workspace dependency`);
      }
    }

    for (const rule of FORBIDDEN) {
      if (!rule.from.includes(p.short)) continue;
      const scopes = rule.scope === 'all' ? ['src', 'test'] : ['src'];
      for (const scope of scopes) {
        for (const [name, file] of used[scope]) {
          const short = name.startsWith(`@${SCOPE}/`) ? name.slice(SCOPE.length + 2) : undefined;
          if (short !== undefined && rule.to.includes(short)) {
            findings.push(`${p.name}: ${file} imports ${name}, a forbidden edge: ${rule.why}`);
          }
        }
      }
    }
  }
  return findings;
}

/** Splits a table cell of package names (`—` for none) into short names. */
function namesIn(cell) {
  const text = cell.replace(/`/g, '').trim();
  if (text === '' || text === '—' || text === '-') return [];
  return text
    .split(',')
    .map((n) => n.trim().replace(/^@mic\//, ''))
    .filter((n) => n !== '');
}

/** Findings for the table of edges in docs/architecture.md against the packages' declarations. */
export function checkArchitectureDoc(root) {
  const doc = join(root, 'docs', 'architecture.md');
  if (!existsSync(doc)) return [`docs/architecture.md is missing`];
  const rows = new Map();
  for (const line of readFileSync(doc, 'utf8').split('\n')) {
    const m = /^\|\s*`(@[^`]+)`/.exec(line);
    if (!m) continue;
    const cells = line.split('|').map((c) => c.trim());
    rows.set(m[1], { deps: namesIn(cells[3] ?? ''), devDeps: namesIn(cells[4] ?? '') });
  }
  const findings = [];
  const short = (deps) =>
    Object.keys(deps ?? {})
      .filter((d) => d.startsWith(`@${SCOPE}/`))
      .map((d) => d.slice(SCOPE.length + 2));
  const same = (a, b) => a.length === b.length && a.every((x) => b.includes(x));
  const packages = workspacePackages(root);
  for (const p of packages) {
    const deps = short(p.pkg.dependencies);
    const devDeps = short(p.pkg.devDependencies);
    const row = rows.get(p.name);
    const want = `depends on: ${deps.join(', ') || '—'}; tests also use: ${devDeps.join(', ') || '—'}`;
    if (!row) findings.push(`docs/architecture.md: the table of edges has no row for ${p.name} (${want})`);
    else if (!same(row.deps, deps) || !same(row.devDeps, devDeps)) {
      findings.push(`docs/architecture.md: the row of ${p.name} does not match its package.json (${want})`);
    }
  }
  for (const name of rows.keys()) {
    if (!packages.some((p) => p.name === name)) {
      findings.push(
        `docs/architecture.md: the table of edges has a row for ${name}, which is not a workspace package`,
      );
    }
  }
  return findings;
}

/** Builds a made-up workspace with one violation of each kind and checks each is reported. */
function selfTest() {
  const root = mkdtempSync(join(tmpdir(), 'check-deps-'));
  const write = (path, content) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), typeof content === 'string' ? content : JSON.stringify(content));
  };
  try {
    write('package.json', { name: 'ws', devDependencies: { '@jest/globals': '1' } });
    const pkg = (name, deps = {}, devDependencies = {}) => ({
      name: `@mic/${name}`,
      dependencies: deps,
      devDependencies,
    });
    write('packages/errors/package.json', pkg('errors'));
    write('packages/errors/src/index.ts', 'export const x = 1;\n');
    write('packages/mic-common/package.json', pkg('mic-common'));
    write('packages/x100/package.json', pkg('x100', { '@mic/errors': 'w', '@mic/mic-common': 'w' }));
    write('packages/x100/tsconfig.json', { references: [{ path: '../errors' }] });
    write(
      'packages/x100/src/index.ts',
      [
        "import { MicError } from '@mic/errors';",
        "import { readFileSync } from 'node:fs';",
        "import { join } from 'path';",
        '// import { nope } from "@mic/ghost";',
        '/** @example import { y } from "@mic/ghost2"; */',
        'const re = /[\'"]/;',
        'export { MicError, readFileSync, join, re };',
      ].join('\n'),
    );
    write(
      'packages/x100/test/a.test.ts',
      "import { it } from '@jest/globals';\nimport { Bus } from '@mic/bus-core';\n",
    );
    write('packages/bus-core/package.json', pkg('bus-core', {}, { '@mic/x100': 'w' }));
    write('packages/bus-core/src/index.ts', "export type { A } from '@mic/x100';\n");
    write('packages/mic-card/package.json', pkg('mic-card', {}, { '@mic/mic-host': 'w' }));
    write('packages/mic-card/test/t.test.ts', "const m = await import('@mic/mic-host');\n");
    write('packages/mic-host/package.json', pkg('mic-host'));
    write(
      'docs/architecture.md',
      [
        '| package | layer | depends on (src) | tests also use |',
        '| --- | --- | --- | --- |',
        '| `@mic/errors` | leaf | — | — |',
        '| `@mic/x100` | hw | errors | — |',
        '| `@mic/gone` | old | — | — |',
      ].join('\n'),
    );
    const got = [...checkWorkspace(root), ...checkArchitectureDoc(root)];
    const expected = [
      '@mic/x100: declares @mic/mic-common in dependencies, but nothing imports it',
      '@mic/x100: tsconfig.json does not reference',
      '@mic/x100: packages/x100/test/a.test.ts imports @mic/bus-core, which is in neither',
      '@mic/x100: packages/x100/test/a.test.ts imports @mic/bus-core, a forbidden edge',
      '@mic/bus-core: packages/bus-core/src/index.ts imports @mic/x100, which is not in its dependencies (it is a devDependency',
      '@mic/bus-core: packages/bus-core/src/index.ts imports @mic/x100, a forbidden edge',
      '@mic/mic-card: packages/mic-card/test/t.test.ts imports @mic/mic-host, a forbidden edge',
      'docs/architecture.md: the row of @mic/x100 does not match its package.json (depends on: errors, mic-common',
      'docs/architecture.md: the table of edges has no row for @mic/mic-common',
      'docs/architecture.md: the table of edges has no row for @mic/bus-core',
      'docs/architecture.md: the table of edges has no row for @mic/mic-card',
      'docs/architecture.md: the table of edges has no row for @mic/mic-host',
      'docs/architecture.md: the table of edges has a row for @mic/gone',
    ];
    const missing = expected.filter((e) => !got.some((g) => g.startsWith(e)));
    const unexpected = got.filter((g) => !expected.some((e) => g.startsWith(e)));
    if (missing.length > 0 || unexpected.length > 0) {
      process.stderr.write(
        `check-deps self-test failed\n  missing:\n${missing.map((m) => `    ${m}`).join('\n')}\n  unexpected:\n${unexpected.map((u) => `    ${u}`).join('\n')}\n`,
      );
      return 1;
    }
    process.stdout.write(`check-deps self-test: ${expected.length} findings as expected\n`);
    return 0;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function main() {
  if (process.argv.includes('--self-test')) process.exit(selfTest());
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const findings = [...checkWorkspace(root), ...checkArchitectureDoc(root)];
  if (findings.length > 0) {
    process.stderr.write(
      `Dependency check failed: declared dependencies must equal imports, and the layering of docs/architecture.md must hold (scripts/check-deps.mjs):\n${findings.map((f) => `  ${f}`).join('\n')}\n`,
    );
    process.exit(1);
  }
  process.stdout.write('dependencies: declared equal imported, layering holds\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
