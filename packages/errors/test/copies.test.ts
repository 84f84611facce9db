// Two copies of @mic/errors in one process, as when an application installs two versions side by
// side: the built package is copied into a second node_modules folder and imported from there,
// which gives a second module instance with its own MicError class.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkInt, isMicError, MicError, toMicError } from '../src/index.js';
import type * as Errors from '../src/index.js';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
type ErrorsModule = typeof Errors;

describe('a second copy of @mic/errors', () => {
  let dir: string;
  let copy: ErrorsModule;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mic-errors-copy-'));
    const target = join(dir, 'node_modules', '@mic', 'errors');
    cpSync(join(pkgDir, 'dist'), join(target, 'dist'), { recursive: true });
    cpSync(join(pkgDir, 'package.json'), join(target, 'package.json'));
    copy = (await import(pathToFileURL(join(target, 'dist', 'index.js')).href)) as ErrorsModule;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is a separate class', () => {
    expect(copy.MicError).not.toBe(MicError);
  });

  it("recognises this copy's EINVAL, and this copy recognises the other's", () => {
    let thrown: unknown;
    try {
      checkInt('queue index', 4, 0, 3);
    } catch (err) {
      thrown = err;
    }
    expect(copy.isMicError(thrown)).toBe(true);
    expect(copy.isMicError(thrown, 'EINVAL')).toBe(true);
    expect(copy.isMicError(thrown, 'EIO')).toBe(false);
    expect(thrown instanceof copy.MicError).toBe(true);

    const foreign = new copy.MicError('EINVAL', 'from the other copy');
    expect(isMicError(foreign, 'EINVAL')).toBe(true);
    expect(foreign instanceof MicError).toBe(true);
    expect(toMicError(foreign, 'EIO', 'wrapped')).toBe(foreign);
  });

  it('does not take any error with a code property for a MicError', () => {
    const lookalike = Object.assign(new Error('x'), { code: 'EINVAL' });
    expect(isMicError(lookalike)).toBe(false);
    expect(copy.isMicError(lookalike)).toBe(false);
    expect(lookalike instanceof MicError).toBe(false);
    expect(toMicError(lookalike, 'EIO', 'wrapped').code).toBe('EIO');
  });

  it('keeps instanceof of a subclass to its own instances', () => {
    class ChannelError extends MicError {}
    const sub = new ChannelError('EBUSY', 'channel 3 is busy');
    expect(sub instanceof ChannelError).toBe(true);
    expect(sub instanceof MicError).toBe(true);
    expect(new MicError('EBUSY', 'x') instanceof ChannelError).toBe(false);
    expect(new copy.MicError('EBUSY', 'x') instanceof ChannelError).toBe(false);
  });
});
