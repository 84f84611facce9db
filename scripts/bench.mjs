#!/usr/bin/env node
// `pnpm bench <suite> [--json] ...`: builds what the suites need, then runs tools/bench.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1' };
const build = spawnSync('pnpm', ['exec', 'turbo', 'run', 'build', '--filter=@mic/bench...', '--output-logs=errors-only'], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  env,
});
if (build.status !== 0) {
  process.stderr.write(build.stdout?.toString() ?? '');
  process.exit(build.status ?? 1);
}
const run = spawnSync(process.execPath, [join(root, 'tools', 'bench', 'dist', 'cli.js'), ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env,
});
process.exit(run.status ?? 1);
