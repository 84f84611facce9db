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

  it('refuses values the loopback cannot run, naming the value and the limit', () => {
    const error = (...argv: string[]) => {
      const r = parseArgs(argv);
      return r.ok ? undefined : r.error;
    };
    expect(error('--payload', '3')).toBe('--payload 3 is not a multiple of 4 from 4 to 1048576');
    expect(error('--payload', '6')).toBe('--payload 6 is not a multiple of 4 from 4 to 1048576');
    expect(error('--payload', String(2 << 20))).toBe(
      '--payload 2097152 is not a multiple of 4 from 4 to 1048576',
    );
    expect(error('--queue-size', '100')).toBe('--queue-size 100 is not a power of two from 2 to 32768');
    expect(error('--queue-size', '1')).toBe('--queue-size 1 is not a power of two from 2 to 32768');
    expect(error('--queue-size', '65536')).toBe('--queue-size 65536 is not a power of two from 2 to 32768');
    expect(error('--batch', '1000')).toBe(
      '--batch 1000 is more than the 128 requests a 256-entry queue holds (two descriptors each)',
    );
    expect(error('--batch', '65', '--queue-size', '128')).toBe(
      '--batch 65 is more than the 64 requests a 128-entry queue holds (two descriptors each)',
    );
    expect(parseArgs(['--batch', '64', '--queue-size', '128', '--payload', String(1 << 20)])).toMatchObject({
      ok: true,
      options: { batch: 64, queueSize: 128, payload: 1 << 20 },
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

  it('exits 2 with one line on stderr and nothing on stdout for a bad argument or value, before starting', async () => {
    for (const argv of [
      ['--requests', '-3'],
      ['--payload', '3'],
      ['--batch', '1000'],
      ['--queue-size', '3'],
    ]) {
      const failed = await run(process.execPath, [cli, ...argv]).then(
        () => undefined,
        (err: unknown) => err as { code: number; stdout: string; stderr: string },
      );
      expect(failed).toMatchObject({ code: 2, stdout: '' });
      const lines = failed!.stderr.split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^mic-loopback: ${argv[0]} .* \\(--help for usage\\)$`));
    }
  });
});
