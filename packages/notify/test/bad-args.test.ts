// Every new public function of @mic/notify refuses a bad argument with a MicError that names it and
// shows the value, never a TypeError or a silent default.
import { describe, expect, it } from '@jest/globals';
import { BAD_VALUES, badArg, sweepBadArguments, type BadArgEntry } from '@mic/errors';
import { PollBackoff, napPoll } from '../src/index.js';

const e = badArg;
const yes = (): boolean => true;
/** A duration may be any finite number of ns ≥ 0. */
const NS = [1.5, 2 ** 32 + 1];
/** The empty object of {@link BAD_VALUES}: an options bag with every default. */
const EMPTY = BAD_VALUES.filter((v) => typeof v === 'object' && v !== null);

const TABLE: BadArgEntry[] = [
  e(
    'napPoll',
    (a) => napPoll(a[0] as never, a[1] as never, a[2] as never),
    [yes, 0, {}],
    [0, /ready/],
    [1, /budgetNs/, NS],
    [2, /options/, [undefined, ...EMPTY]],
  ),
  e(
    'napPoll.spinNs',
    (a) => napPoll(yes, 0, { spinNs: a[0] as never }),
    [0],
    [0, /spinNs/, [undefined, ...NS]],
  ),
  e('PollBackoff.polled', (a) => new PollBackoff().polled(a[0] as never), [true], [0, /paid/, [false]]),
];

describe('bad arguments', () => {
  it('napPoll and PollBackoff refuse each bad argument with a MicError naming it', async () => {
    expect(await sweepBadArguments(TABLE)).toEqual([]);
  });
});
