import { describe, expect, it } from '@jest/globals';
import {
  checkAddr,
  checkInt,
  checkSize,
  ERRNO,
  errorMessage,
  formatAddr,
  isMicError,
  MicError,
  throwIfAborted,
  toMicError,
} from '../src/index.js';

describe('MicError', () => {
  it('carries the code, the errno number, the message and the cause', () => {
    const cause = new Error('inner');
    const err = new MicError('EINVAL', 'queue size 100 is not a power of two', {
      cause,
      details: { num: 100 },
    });
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('EINVAL');
    expect(err.errno).toBe(22);
    expect(err.message).toBe('queue size 100 is not a power of two');
    expect(err.cause).toBe(cause);
    expect(err.details).toEqual({ num: 100 });
    expect(String(err)).toBe('EINVAL: queue size 100 is not a power of two');
  });

  it('uses the Linux errno numbers', () => {
    expect(ERRNO.ENODEV).toBe(19);
    expect(ERRNO.EBUSY).toBe(16);
    expect(ERRNO.ETIMEDOUT).toBe(110);
    expect(ERRNO.ENOSPC).toBe(28);
    expect(ERRNO.EROFS).toBe(30);
    expect(ERRNO.EIO).toBe(5);
  });

  it('is recognised by code', () => {
    const err = new MicError('EBUSY', 'channel 3 is busy');
    expect(isMicError(err)).toBe(true);
    expect(isMicError(err, 'EBUSY')).toBe(true);
    expect(isMicError(err, 'EIO')).toBe(false);
    expect(isMicError(new Error('x'))).toBe(false);
  });

  it('wraps foreign errors and keeps MicErrors as they are', () => {
    const foreign = new RangeError('offset out of bounds');
    const wrapped = toMicError(foreign, 'EIO', 'copy failed');
    expect(wrapped.code).toBe('EIO');
    expect(wrapped.message).toBe('copy failed: offset out of bounds');
    expect(wrapped.cause).toBe(foreign);
    const own = new MicError('ENODEV', 'gone');
    expect(toMicError(own, 'EIO', 'x')).toBe(own);
  });

  it('checkInt names the bad value and the range', () => {
    expect(() => checkInt('queue index', 4, 0, 3)).toThrow('queue index 4 is not an integer in [0, 3]');
    expect(() => checkInt('length', 1.5, 0, 10)).toThrow(MicError);
    expect(() => checkInt('length', 10, 0, 10)).not.toThrow();
  });

  it('checkSize and checkAddr name the bad value and what it should have been', () => {
    expect(() => checkSize('allocation size', 0)).toThrow('allocation size 0 is not a positive integer');
    expect(() => checkSize('remap length', 2 ** 53)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => checkSize('length', 1)).not.toThrow();
    expect(() => checkAddr('remap address', -1)).toThrow('remap address -1 is not a non-negative integer');
    expect(() => checkAddr('remap address', 0.5)).toThrow(MicError);
    expect(() => checkAddr('address', 0)).not.toThrow();
  });

  it('formats addresses and thrown values for messages', () => {
    expect(formatAddr(0x80_0000_0000)).toBe('0x8000000000');
    expect(formatAddr(undefined)).toBe('undefined');
    expect(formatAddr(NaN)).toBe('NaN');
    expect(errorMessage(new Error('gone'))).toBe('gone');
    expect(errorMessage('plain')).toBe('plain');
  });

  it('throwIfAborted reports ECANCELED with the reason as cause', () => {
    const ac = new AbortController();
    expect(() => throwIfAborted(ac.signal, 'reset')).not.toThrow();
    ac.abort(new Error('stop'));
    try {
      throwIfAborted(ac.signal, 'reset');
      throw new Error('did not throw');
    } catch (err) {
      expect(isMicError(err, 'ECANCELED')).toBe(true);
      expect((err as MicError).cause).toEqual(new Error('stop'));
    }
  });
});
