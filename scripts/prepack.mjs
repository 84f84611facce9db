#!/usr/bin/env node
// `prepack` of every published package (`pnpm pack`, `pnpm publish`, `changeset publish`): builds
// the package in the current folder from clean, so a tarball always has `dist` and never a file
// whose source is gone (tsc -b does not delete those, and turbo's cache can bring them back).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const tsc = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'typescript', 'bin', 'tsc');
rmSync(join(process.cwd(), 'dist'), { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-b'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
