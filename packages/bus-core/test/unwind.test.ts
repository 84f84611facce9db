import { describe, expect, it } from '@jest/globals';
import { createMemoryLogger } from '@mic/logger';
import { type UndoStep, unwind } from '../src/index.js';

describe('unwind', () => {
  it('undoes in reverse, awaits each step, logs failures, runs the rest and empties the list', async () => {
    const logger = createMemoryLogger();
    const log: string[] = [];
    const undo: UndoStep[] = [
      () => void log.push('a'),
      async () => {
        await new Promise((r) => setImmediate(r));
        log.push('b');
      },
      () => {
        throw new Error('c failed');
      },
      () => void log.push('d'),
    ];
    await unwind(undo, logger, 'mic0 probe');
    expect(log).toEqual(['d', 'b', 'a']);
    expect(undo).toEqual([]);
    expect(logger.records).toEqual([
      expect.objectContaining({
        level: 'error',
        msg: 'mic0 probe: an unwind step failed',
        fields: expect.objectContaining({ error: 'c failed' }),
      }),
    ]);
  });
});
