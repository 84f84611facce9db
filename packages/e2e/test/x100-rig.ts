// What the end-to-end tests of the virtio devices on x100 share: a card booted with @mic/demo's
// rig (mic-host, the X100 DMA driver and vop-host on the host; the card program of @mic/demo, or
// a fixture, in the card's worker thread on `worker` and in this thread on `inProcess`), freed
// after each test with everything it served and every temporary directory.
import { spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from '@jest/globals';
import { type CardDevices, CardRig, type CardRigOptions, type ServedDevice } from '@mic/demo';
import type { VirtioBackend } from '@mic/virtio-backends';

export const PLATFORMS = ['inProcess', 'worker'] as const;
export type Platform = (typeof PLATFORMS)[number];

const rigs: CardRig[] = [];
const served: (CardDevices | ServedDevice<VirtioBackend>)[] = [];
const dirs: string[] = [];
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const d of served.splice(0).reverse()) await d.stop().catch(() => {});
  for (const r of rigs.splice(0)) await r.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Boots a card on `platform`; it is closed after the test. */
export async function bootCard(platform: Platform, options: CardRigOptions = {}): Promise<CardRig> {
  const rig = await CardRig.boot({ platform, ...options });
  rigs.push(rig);
  return rig;
}

/** Stops `d` (hot-unplug, backends closed) after the test, unless the test stopped it. */
export function track<T extends CardDevices | ServedDevice<VirtioBackend>>(d: T): T {
  served.push(d);
  return d;
}

/** Runs `f` after the test, before the devices and the card go (last registered first). */
export function cleanup(f: () => unknown): void {
  cleanups.push(f);
}

/** A temporary directory, removed after the test. */
export function tmp(prefix = 'e2e-x100-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Bytes that differ for each `seed` and position. */
export const pattern = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 7 + (i >> 9)) & 0xff);

/** Waits (bounded, real time) for `check`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 60_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** The MicError code a promise rejects with ('resolved' when it does not). */
export const rejection = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (e: unknown) => String((e as { code?: unknown }).code ?? e),
  );

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

const have = (cmd: string): boolean =>
  spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/**
 * Makes `cmd` available, installing Debian package `pkg` with apt-get when it is missing and this
 * runs as root (as the project's machines and CI do). @returns null when it is there, else why a
 * test that needs it is skipped. @throws in CI (`CI` set) when it cannot be had
 */
export function ensureTool(cmd: string, pkg: string): string | null {
  if (have(cmd)) return null;
  if (isRoot) {
    execFileSync(
      'sh',
      ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`],
      { stdio: 'ignore', timeout: 600_000 },
    );
    if (have(cmd)) return null;
  }
  const why = `${cmd} is missing and cannot be installed (${isRoot ? 'apt-get install failed' : 'not root'})`;
  if (process.env.CI) throw new Error(why);
  return why;
}
