import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseArgs } from '../src/args.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

describe('mic-loopback arguments', () => {
  it('uses the defaults when given nothing', () => {
    const r = parseArgs([]);
    expect(r).toMatchObject({
      ok: true,
      options: { requests: 200_000, payload: 64, batch: 32, queueSize: 256 },
    });
  });

  it('names the flag and the bad value', () => {
    expect(parseArgs(['--payload', 'abc'])).toMatchObject({
      ok: false,
      error: '--payload takes a positive integer, not "abc"',
    });
    expect(parseArgs(['--batch'])).toMatchObject({
      ok: false,
      error: '--batch takes a positive integer, not ""',
    });
    expect(parseArgs(['--frobnicate'])).toMatchObject({
      ok: false,
      error: 'unknown argument "--frobnicate"',
    });
  });
});

describe('mic-loopback program', () => {
  it('exchanges requests across threads and reports an OK integrity verdict', async () => {
    const { stdout } = await run(process.execPath, [cli, '--requests', '20000', '--payload', '256']);
    expect(stdout).toMatch(/rate: [\d,]+ requests\/s/);
    expect(stdout).toContain('data integrity: OK (20,000 responses, every byte checked)');
  });

  it('prints one JSON object with --json', async () => {
    const { stdout } = await run(process.execPath, [cli, '--requests', '5000', '--json']);
    const r = JSON.parse(stdout) as { ok: boolean; driver: { requests: number; mismatches: number } };
    expect(r.ok).toBe(true);
    expect(r.driver).toMatchObject({ requests: 5000, mismatches: 0 });
  });

  it('exits 2 with the reason for a bad argument and 1 with the library error for a bad value', async () => {
    await expect(run(process.execPath, [cli, '--requests', '-3'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--requests takes a positive integer, not "-3"'),
    });
    await expect(run(process.execPath, [cli, '--payload', '6'])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('EINVAL: loopback payload 6 is not a multiple of 4'),
    });
  });
});
