import { describe, expect, it } from '@jest/globals';
import {
  badArg,
  checkFunction,
  checkObject,
  checkSize,
  formatValue,
  optionsParam,
  sweepBadArguments,
} from '../src/index.js';

describe('formatValue, checkObject and checkFunction', () => {
  it('show a value of the wrong kind as a message should', () => {
    expect([10n, '', {}, null, undefined, NaN, -1].map(formatValue)).toEqual([
      '10n',
      '""',
      'an Object',
      'null',
      'undefined',
      'NaN',
      '-1',
    ]);
    expect(() => checkObject('options', null)).toThrow('options null is not an object');
    expect(() => checkFunction('interrupt handler', {})).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: 'interrupt handler an Object is not a function' }),
    );
    expect(() => checkFunction('interrupt handler', () => undefined)).not.toThrow();
    expect(() => checkSize('length', 10n as unknown as number)).toThrow(
      'length 10n is not a positive integer',
    );
  });
});

describe('badArg', () => {
  it('turns the short form of a table row into an entry', () => {
    const call = (a: unknown[]) => a[0];
    expect(badArg('f', call, [1, 2], [0, /x/], [1, /y/, [undefined]], optionsParam(2))).toEqual({
      name: 'f',
      call,
      args: [1, 2],
      params: [{ at: 0, names: /x/ }, { at: 1, names: /y/, valid: [undefined] }, optionsParam(2)],
    });
  });
});

describe('sweepBadArguments', () => {
  it('reports a TypeError, an accepted bad value and a message that does not name the argument', async () => {
    const problems = await sweepBadArguments([
      { name: 'len', call: (a) => (a[0] as string).length, args: ['x'], params: [{ at: 0, names: /s/ }] },
      { name: 'lax', call: () => 1, args: [1], params: [{ at: 0, names: /x/ }] },
      {
        name: 'vague',
        call: (a) => checkSize('n', a[0] as number),
        args: [1],
        params: [{ at: 0, names: /length/ }],
      },
    ]);
    expect(problems).toContain(
      "len arg 0 = undefined: threw TypeError: Cannot read properties of undefined (reading 'length')",
    );
    expect(problems).toContain('lax arg 0 = -1: accepted');
    expect(problems).toContain(
      'vague arg 0 = -1: message "n -1 is not a positive integer" does not name /length/',
    );
    expect(
      await sweepBadArguments([
        {
          name: 'ok',
          call: (a) => checkSize('n', a[0] as number),
          args: [1],
          params: [{ at: 0, names: /n/, valid: [2 ** 32 + 1] }],
        },
      ]),
    ).toEqual([]);
  });
});
