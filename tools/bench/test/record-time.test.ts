import { describe, expect, it } from '@jest/globals';
import { recordTime } from '../src/common.js';

describe('recordTime, the record of a figure where lower is better', () => {
  const base = { name: 'spin-then-wait', value: 2 };

  it('reports value / baseline as the ratio and meets an upper bound only at or below it', () => {
    expect(recordTime('s', 'rtt', 'µs', 3, base, 1.5, 'different-cpus')).toMatchObject({
      ratio: 1.5,
      met: true,
      target: '<= 1.5x spin-then-wait',
    });
    expect(recordTime('s', 'rtt', 'µs', 3.2, base, 1.5, 'different-cpus')).toMatchObject({
      ratio: 1.6,
      met: false,
    });
  });

  it('judges a regime-bound target only in that regime and has no verdict without a target', () => {
    const onlyIn = { onlyIn: 'different-cpus' as const };
    expect(recordTime('s', 'rtt', 'µs', 9, base, 1.5, 'same-cpu', onlyIn)).toMatchObject({
      met: null,
      target: '<= 1.5x spin-then-wait (different-cpus)',
    });
    expect(recordTime('s', 'rtt', 'µs', 9, base, 1.5, 'different-cpus', onlyIn).met).toBe(false);
    expect(recordTime('s', 'rtt', 'µs', 1, base, null, 'different-cpus')).toMatchObject({
      met: null,
      target: '',
    });
  });
});
