// The workspace packages as the repository's scripts read them: every packages/* and tools/*
// folder with a package.json, in name order.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** `{ dir ('packages/x', relative to root), path (absolute), pkg (its package.json) }` per package. */
export function workspacePackages(root) {
  const out = [];
  for (const top of ['packages', 'tools']) {
    if (!existsSync(join(root, top))) continue;
    for (const d of readdirSync(join(root, top)).sort()) {
      const path = join(root, top, d);
      if (!existsSync(join(path, 'package.json'))) continue;
      out.push({
        dir: `${top}/${d}`,
        path,
        pkg: JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')),
      });
    }
  }
  return out;
}
