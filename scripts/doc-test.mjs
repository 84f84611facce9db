#!/usr/bin/env node
// Doc-tests, like `cargo test` runs doc examples: every ```ts block of every README (the root's,
// packages/*, tools/*) and of docs/*.md is type-checked against the real exports, and run.
//
// - Each block becomes an ES module of its own (top-level await allowed) in .doc-test/ at the
//   workspace root, where node_modules/@mic/<name> links to every workspace package, so imports
//   resolve to the packages' built exports (`dist/`, what a user installs; `npm test` builds first).
// - One TypeScript program over all blocks with the repository's base config (strict,
//   noUncheckedIndexedAccess, NodeNext). Errors name the README line; a block with a syntax error
//   gets those only, and the others are still checked (tsc would stop at the syntax errors).
// - Then every block runs in its own `node` process and must exit 0 within 60 s (so it must also
//   let go of what it started: workers, timers). A block whose fence says ```ts no-run is only
//   type-checked: for examples that need a card module, a network or a long time.
// - A published package's README names its install line (```sh `npm i @mic/<name> ...`) with every
//   `@mic/*` package its examples import, and its minimum Node (`Node >= 20.10`, from `engines`).
//
// Exits 1 with one line per finding. `--self-test` checks the checker on made-up READMEs.
//
// Usage: node scripts/doc-test.mjs [--self-test] [--keep] [--verbose] [README.md ...]
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workspacePackages } from './workspace.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUN_TIMEOUT_MS = 60_000;
const TS_LANGS = new Set(['ts', 'typescript']);
const FLAGS = new Set(['no-run']);

/** The fenced blocks of a markdown text: `{ lang, flags, line (1-based, of the first code line), code }`. */
export function extractBlocks(text) {
  const lines = text.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang, rest] = open;
    const body = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = /^\s*(`{3,}|~{3,})\s*$/.exec(lines[j]);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break;
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j]);
    }
    blocks.push({ lang, flags: rest.split(/\s+/).filter(Boolean), line: i + 2, code: body.join('\n') });
    i = j;
  }
  return blocks;
}

/** The `@mic/*` packages a block imports (static imports, `import type`, `import()`). */
function micImports(code) {
  const names = new Set();
  for (const m of code.matchAll(/(?:from|import)\s*\(?\s*['"](@mic\/[^/'"]+)/g)) names.add(m[1]);
  return names;
}

/** The READMEs the doc-test reads: the root's, packages/*, tools/*, docs/*.md. */
function defaultFiles(root) {
  const files = [join(root, 'README.md')];
  for (const top of ['packages', 'tools']) {
    const dir = join(root, top);
    if (!existsSync(dir)) continue;
    for (const d of readdirSync(dir).sort()) {
      const readme = join(dir, d, 'README.md');
      if (existsSync(readme)) files.push(readme);
    }
  }
  const docs = join(root, 'docs');
  if (existsSync(docs))
    for (const f of readdirSync(docs).sort()) if (f.endsWith('.md')) files.push(join(docs, f));
  return files.filter((f) => existsSync(f));
}

/** Findings about a published package's install line and minimum Node. */
function checkInstall(readme, text, blocks, pkg) {
  const rel = relative(ROOT, readme);
  const findings = [];
  const install = blocks
    .filter((b) => b.lang === 'sh' || b.lang === 'bash')
    .flatMap((b) => b.code.split('\n').map((l, k) => ({ l, line: b.line + k })))
    .find(({ l }) => /^npm (i|install)\s/.test(l.trim()));
  if (!install) {
    findings.push(`${rel}: no install line (a \`\`\`sh block with \`npm i ${pkg.name}\`)`);
    return findings;
  }
  const named = new Set(install.l.split('#')[0].trim().split(/\s+/).slice(2));
  const wanted = new Set([pkg.name]);
  for (const b of blocks) if (TS_LANGS.has(b.lang)) for (const n of micImports(b.code)) wanted.add(n);
  const missing = [...wanted].filter((n) => !named.has(n));
  if (missing.length > 0) {
    findings.push(
      `${rel}:${install.line}: the install line lacks ${missing.join(', ')} (imported by the examples)`,
    );
  }
  const node = /^>=\s*(\S+)$/.exec(pkg.engines?.node ?? '');
  if (!node) findings.push(`${rel}: package.json has no engines.node ">=x.y"`);
  else if (!text.includes(`Node >= ${node[1]}`))
    findings.push(`${rel}: does not say "Node >= ${node[1]}" (engines.node)`);
  return findings;
}

/**
 * Type-checks and emits the blocks in `workDir` with its tsconfig.json. A block with a syntax
 * error gets only those (as tsc does for a whole program), the others their semantic errors too.
 * Returns `{ block (file name in workDir, or null), line, col, text }` per diagnostic.
 */
function typeCheck(root, workDir) {
  const ts = createRequire(join(root, 'package.json'))('typescript');
  const out = [];
  const report = (d) => {
    const text = `error TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n  ')}`;
    if (!d.file || d.start === undefined) return out.push({ block: null, line: 0, col: 0, text });
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    const block = relative(workDir, d.file.fileName);
    out.push({ block: block.includes('/') ? null : block, line: line + 1, col: character + 1, text });
  };
  const config = ts.getParsedCommandLineOfConfigFile(
    join(workDir, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: report,
    },
  );
  if (!config) return out;
  config.errors.forEach(report);
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options });
  program.getOptionsDiagnostics().forEach(report);
  program.getGlobalDiagnostics().forEach(report);
  for (const name of config.fileNames) {
    const sf = program.getSourceFile(name);
    if (!sf) continue;
    const syntax = program.getSyntacticDiagnostics(sf);
    (syntax.length > 0 ? syntax : program.getSemanticDiagnostics(sf)).forEach(report);
  }
  program.emit();
  return out;
}

function runBlock(file, cwd) {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [file], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, output });
    });
  });
}

/**
 * Checks `files` (README paths). `workDir` is where blocks are written (inside the workspace, so
 * `@mic/*`, `@types/node` and the root's dev tools resolve). Returns `{ findings, checked, ran }`.
 */
export async function docTest({
  root = ROOT,
  files = defaultFiles(root),
  workDir = join(root, '.doc-test'),
  keep = false,
  verbose = false,
} = {}) {
  const findings = [];
  const packages = workspacePackages(root);
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(join(workDir, 'node_modules', '@mic'), { recursive: true });
  for (const { path, pkg } of packages) {
    if (!pkg.name) continue;
    symlinkSync(
      relative(join(workDir, 'node_modules', '@mic'), path),
      join(workDir, 'node_modules', pkg.name),
      'dir',
    );
  }
  writeFileSync(join(workDir, 'package.json'), JSON.stringify({ private: true, type: 'module' }) + '\n');
  writeFileSync(
    join(workDir, 'tsconfig.json'),
    JSON.stringify(
      {
        extends: relative(workDir, join(ROOT, 'tsconfig.base.json')),
        compilerOptions: {
          composite: false,
          declaration: false,
          declarationMap: false,
          sourceMap: false,
          rootDir: '.',
          outDir: 'out',
          tsBuildInfoFile: null,
        },
        include: ['*.ts'],
      },
      null,
      2,
    ) + '\n',
  );

  /** Generated file name → `{ readme, line, run }`. */
  const generated = new Map();
  for (const readme of files) {
    const text = readFileSync(readme, 'utf8');
    const blocks = extractBlocks(text);
    const rel = relative(root, readme);
    const slug = rel.replace(/\.md$/i, '').replace(/[^A-Za-z0-9]+/g, '-');
    let n = 0;
    for (const b of blocks) {
      if (!TS_LANGS.has(b.lang)) continue;
      const unknown = b.flags.filter((f) => !FLAGS.has(f));
      if (unknown.length > 0) {
        findings.push(
          `${relative(ROOT, readme)}:${b.line - 1}: unknown doc-test flag ${unknown.join(' ')} (known: ${[...FLAGS].join(', ')})`,
        );
        continue;
      }
      const name = `${slug}-${++n}.ts`;
      // Lines stay where they are (an error on line k is on README line b.line + k - 1); the
      // trailing export makes a block without imports a module too (top-level await).
      writeFileSync(join(workDir, name), `${b.code}\nexport {};\n`);
      generated.set(name, { readme, line: b.line, run: !b.flags.includes('no-run') });
    }
    const dir = dirname(readme);
    const owner = packages.find((p) => p.path === dir);
    if (owner && owner.pkg.private !== true && basename(readme) === 'README.md') {
      findings.push(...checkInstall(readme, text, blocks, owner.pkg));
    }
  }

  const failedTypes = new Set();
  if (generated.size > 0) {
    for (const { block, line, col, text } of typeCheck(root, workDir)) {
      if (!block) {
        findings.push(`tsc: ${text}`);
        continue;
      }
      const b = generated.get(block);
      failedTypes.add(b);
      findings.push(`${relative(ROOT, b.readme)}:${b.line + line - 1}:${col}: ${text}`);
    }
  }

  const toRun = [...generated].filter(([, b]) => b.run && !failedTypes.has(b));
  let next = 0;
  let ran = 0;
  const worker = async () => {
    while (next < toRun.length) {
      const [name, block] = toRun[next++];
      const where = `${relative(ROOT, block.readme)}:${block.line - 1}`;
      const r = await runBlock(join(workDir, 'out', name.replace(/\.ts$/, '.js')), workDir);
      ran++;
      if (r.code !== 0) {
        const why =
          r.signal === 'SIGKILL'
            ? `did not exit within ${RUN_TIMEOUT_MS / 1000} s`
            : `exited ${r.code ?? r.signal}`;
        const out = r.output
          .trim()
          .split('\n')
          .slice(-12)
          .map((l) => `  ${l}`)
          .join('\n');
        findings.push(
          `${where}: the example ${why} (mark the fence \`\`\`ts no-run if it cannot run here)\n${out}`,
        );
      } else if (verbose) {
        process.stderr.write(`ran ${where}\n${r.output}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(2, availableParallelism())) }, worker));
  if (!keep) rmSync(workDir, { recursive: true, force: true });
  return { findings, checked: generated.size, ran, files: files.length };
}

async function selfTest() {
  const base = join(ROOT, '.doc-test-self');
  rmSync(base, { recursive: true, force: true });
  const write = (path, content) => {
    mkdirSync(dirname(join(base, path)), { recursive: true });
    writeFileSync(join(base, path), content);
  };
  const fence = '```';
  try {
    write(
      'good/README.md',
      [
        '# good',
        `${fence}ts`,
        "import { MicError, isMicError } from '@mic/errors';",
        "const e = new MicError('EINVAL', 'x');",
        "if (!isMicError(e, 'EINVAL')) throw new Error('not a MicError');",
        'await Promise.resolve();',
        fence,
        `${fence}ts no-run`,
        "throw new Error('not run');",
        fence,
        `${fence}sh`,
        'this is not checked',
        fence,
      ].join('\n'),
    );
    write(
      'bad/README.md',
      [
        '# bad',
        `${fence}ts`,
        'const n: number = "one";', // line 3: a type error
        fence,
        `${fence}ts`,
        "throw new Error('boom at run time');", // fence on line 5
        fence,
        `${fence}ts sometimes`, // line 8
        'export {};',
        fence,
        `${fence}ts`,
        "import { nope } from '@mic/errors';", // line 12
        'nope();',
        fence,
        `${fence}ts`,
        'process.exitCode = 3;', // fence on line 15
        fence,
        `${fence}ts`,
        'const = 1;', // line 19: a syntax error, which must not hide line 3's
        fence,
      ].join('\n'),
    );
    const { findings } = await docTest({
      root: ROOT,
      files: [join(base, 'good', 'README.md'), join(base, 'bad', 'README.md')],
      workDir: join(base, 'work'),
    });
    // The install-line check, on a made-up published package.
    const readme = join(base, 'pub', 'README.md');
    const text = [
      '# @mic/pub',
      `${fence}sh`,
      'npm i @mic/pub # Node >= 20.10',
      fence,
      `${fence}ts`,
      "import { MicError } from '@mic/errors';",
      fence,
    ].join('\n');
    write('pub/README.md', text);
    findings.push(
      ...checkInstall(readme, text, extractBlocks(text), { name: '@mic/pub', engines: { node: '>=20.10' } }),
    );
    findings.push(...checkInstall(readme, '# none', [], { name: '@mic/pub', engines: { node: '>=20.10' } }));

    const rel = (p) => relative(ROOT, join(base, p));
    const expected = [
      `${rel('bad/README.md')}:3:`,
      `${rel('bad/README.md')}:5: the example exited 1`,
      `${rel('bad/README.md')}:8: unknown doc-test flag sometimes`,
      `${rel('bad/README.md')}:12:`,
      `${rel('bad/README.md')}:15: the example exited 3`,
      `${rel('bad/README.md')}:19:`,
      `${rel('pub/README.md')}:3: the install line lacks @mic/errors`,
      `${rel('pub/README.md')}: no install line`,
    ];
    const missing = expected.filter((e) => !findings.some((f) => f.startsWith(e)));
    const unexpected = findings.filter((f) => !expected.some((e) => f.startsWith(e)));
    if (missing.length > 0 || unexpected.length > 0) {
      process.stderr.write(
        `doc-test self-test failed\n  missing:\n${missing.map((m) => `    ${m}`).join('\n')}\n  unexpected:\n${unexpected.map((u) => `    ${u}`).join('\n')}\n`,
      );
      return 1;
    }
    process.stdout.write(`doc-test self-test: ${expected.length} findings as expected\n`);
    return 0;
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes('--self-test')) process.exit(await selfTest());
  const files = args.filter((a) => !a.startsWith('--')).map((f) => resolve(f));
  const {
    findings,
    checked,
    ran,
    files: nFiles,
  } = await docTest({
    ...(files.length > 0 ? { files } : {}),
    keep: args.includes('--keep'),
    verbose: args.includes('--verbose'),
  });
  for (const f of findings) process.stderr.write(`${f}\n`);
  process.stdout.write(
    `doc-test: ${checked} examples in ${nFiles} files type-checked, ${ran} run, ${findings.length} finding${findings.length === 1 ? '' : 's'}\n`,
  );
  process.exit(findings.length > 0 ? 1 : 0);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
