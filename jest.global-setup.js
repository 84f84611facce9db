// Runs once before any test (every project's config names this one file, so jest runs it once per
// run): builds, with turbo, the workspace packages the selected tests need and their dependencies.
// In-thread code needs no build (jest.preset.js maps `@mic/*` to `src/`), but some tests start
// worker threads or programs from `dist/` (the x100 card and DMA engine workers, card modules that
// import `@mic/*`, the loopback CLI), and those are plain Node. turbo rebuilds only what changed,
// so on a built tree this takes about a second.
//
// MIC_JEST_BUILD=0 skips it (`npm test` sets it: it has just built everything).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { delimiter, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));

/** Workspace packages as `{ name, dir }`. */
function workspacePackages() {
  const out = [];
  for (const group of ['packages', 'tools']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const entry of readdirSync(base)) {
      const pj = join(base, entry, 'package.json');
      if (existsSync(pj))
        out.push({ name: JSON.parse(readFileSync(pj, 'utf8')).name, dir: join(base, entry) });
    }
  }
  return out;
}

/** Whether test path pattern `pattern` (a path or a regular expression) can select tests of `dir`. */
function selects(pattern, dir) {
  const abs = resolve(root, pattern);
  if (abs === dir || abs.startsWith(dir + sep) || dir.startsWith(abs + sep)) return true;
  try {
    return new RegExp(pattern).test(join(dir, 'test', 'a.test.ts'));
  } catch {
    return false;
  }
}

/** turbo `--filter`s for the packages whose tests this run may select (none: build everything). */
function filters(globalConfig, projectConfig) {
  const packages = workspacePackages();
  const own = packages.find((p) => p.dir === projectConfig.rootDir);
  // `pnpm test` inside one package: its config is the only project.
  if (own && (globalConfig.projects ?? []).length === 0) return [`--filter=${own.name}...`];
  const patterns = globalConfig.testPathPatterns?.patterns ?? [];
  if (patterns.length === 0) return [];
  const chosen = packages.filter((p) => patterns.some((pattern) => selects(pattern, p.dir)));
  return chosen.length === 0 ? [] : chosen.map((p) => `--filter=${p.name}...`);
}

export default async function buildWorkspace(globalConfig, projectConfig) {
  if (process.env.MIC_JEST_BUILD === '0') return;
  const turbo = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'turbo.cmd' : 'turbo');
  const tools = join(root, '.tools', 'node_modules', '.bin'); // where `npm test` installs pnpm
  const args = ['run', 'build', ...filters(globalConfig, projectConfig), '--output-logs=errors-only'];
  const r = existsSync(turbo)
    ? spawnSync(turbo, args, {
        cwd: root,
        encoding: 'utf8',
        env: {
          ...process.env,
          PATH: [tools, join(root, 'node_modules', '.bin'), process.env.PATH ?? ''].join(delimiter),
          TURBO_TELEMETRY_DISABLED: '1',
          DO_NOT_TRACK: '1',
        },
      })
    : undefined;
  if (!r || r.error || r.status !== 0) {
    const why = !r
      ? `${turbo} is missing (run \`pnpm install\`)`
      : r.error
        ? r.error.message
        : `turbo ${args.join(' ')} exited with ${r.status}:\n${`${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-30).join('\n')}`;
    throw new Error(
      `the tests need the workspace packages built (some start worker threads from dist/), and building them failed: ${why}\nRun \`pnpm build\` (or \`npm test\`, which also installs pnpm) and look at its output; MIC_JEST_BUILD=0 skips this build (for tests that start no workers).`,
    );
  }
}
