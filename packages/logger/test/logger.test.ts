import { describe, expect, it } from '@jest/globals';
import { createLogger, createMemoryLogger, formatRecord, nullLogger, type LogRecord } from '../src/index.js';

describe('logger', () => {
  it('drops lines below the chosen level', () => {
    const seen: LogRecord[] = [];
    const log = createLogger((r) => seen.push(r), 'warn');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(seen.map((r) => r.level)).toEqual(['warn', 'error']);
  });

  it('children prefix the component and merge fields', () => {
    const log = createMemoryLogger();
    log.child('mic0', { card: 0 }).child('vop').info('linkup', { vq: 1 });
    expect(log.records).toHaveLength(1);
    expect(log.records[0]).toMatchObject({
      component: 'mic0.vop',
      msg: 'linkup',
      fields: { card: 0, vq: 1 },
    });
  });

  it('formats a record as one line', () => {
    const line = formatRecord({
      level: 'warn',
      component: 'mic0',
      msg: 'bad magic',
      fields: { magic: 5, big: 2n },
      time: 0,
    });
    expect(line).toBe('1970-01-01T00:00:00.000Z warn mic0: bad magic magic=5 big="2"');
  });

  it('the null logger accepts everything and prints nothing', () => {
    expect(() => nullLogger.child('x').error('nothing')).not.toThrow();
  });

  it('rejects an unknown level', () => {
    expect(() => createLogger(() => {}, 'loud' as never)).toThrow("unknown log level 'loud'");
  });
});
