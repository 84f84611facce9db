import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseArgs } from '../src/args.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

describe('mic-demo arguments', () => {
  it('uses the defaults when given nothing, and takes each option', () => {
    expect(parseArgs([])).toEqual({
      ok: true,
      help: false,
      options: { json: false, scale: 1, logLevel: null },
    });
    expect(parseArgs(['--json', '--scale', '0.25', '--log-level', 'debug'])).toEqual({
      ok: true,
      help: false,
      options: { json: true, scale: 0.25, logLevel: 'debug' },
    });
    expect(parseArgs(['--scale', '100', '--help'])).toMatchObject({ ok: true, help: true });
  });

  it('names the flag and the bad value', () => {
    const error = (...argv: string[]) => {
      const r = parseArgs(argv);
      return r.ok ? undefined : r.error;
    };
    expect(error('--scale', '0')).toBe('--scale takes a number in (0, 100], not "0"');
    expect(error('--scale', '101')).toBe('--scale takes a number in (0, 100], not "101"');
    expect(error('--scale', 'x')).toBe('--scale takes a number in (0, 100], not "x"');
    expect(error('--scale')).toBe('--scale takes a number in (0, 100], not ""');
    expect(error('--scale', ' ')).toBe('--scale takes a number in (0, 100], not " "');
    expect(error('--log-level', 'trace')).toBe(
      '--log-level takes one of error, warn, info, debug, not "trace"',
    );
    expect(error('--frobnicate')).toBe('unknown argument "--frobnicate"');
  });
});

describe('mic-demo program', () => {
  it('refuses a bad value with one line on stderr, nothing on stdout and exit 2, before booting a card', async () => {
    const err = await run(process.execPath, [cli, '--json', '--scale', '-1']).then(
      () => null,
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.code).toBe(2);
    expect(err!.stdout).toBe('');
    expect(err!.stderr).toBe('mic-demo: --scale takes a number in (0, 100], not "-1" (--help for usage)\n');
  });

  it('prints its usage for --help', async () => {
    const { stdout } = await run(process.execPath, [cli, '--help']);
    expect(stdout).toMatch(/^usage: mic-demo \[--json\]/);
    expect(stdout).toContain('--log-level LEVEL');
  });
});
