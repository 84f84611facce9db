// Real peers from Debian for the tests: installs a missing tool when the test runs as root (as
// the project's machines and CI do), else says why the test is skipped. Outside CI a non-root
// run skips; in CI a missing tool is a failure.
import { execFileSync, spawnSync } from 'node:child_process';

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Makes `cmd` available (`apt-get install -y <pkg>` as root). @returns null when it is there, or
 * the reason to skip (not root, not CI). @throws in CI when it cannot be installed
 */
export function ensureTool(cmd: string, pkg: string): string | null {
  if (have(cmd)) return null;
  if (isRoot) {
    execFileSync(
      'sh',
      ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`],
      {
        stdio: 'ignore',
        timeout: 600_000,
      },
    );
    if (have(cmd)) return null;
  }
  const why = `${cmd} is missing and cannot be installed (${isRoot ? 'apt-get install failed' : 'not root'})`;
  if (process.env.CI) throw new Error(why);
  return why;
}
