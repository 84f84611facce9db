import { describe, expect, it } from '@jest/globals';
import type { DmaChannel } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import { type DmaChannelProvider, releaseChannels } from '../src/index.js';

const chan = (chanId: number): DmaChannel => ({ chanId, name: `dma0chan${chanId}` });

describe('releaseChannels', () => {
  it('gives channels back in reverse order, each release awaited before the next', async () => {
    const log: string[] = [];
    const dma: DmaChannelProvider = {
      requestChannels: () => [],
      releaseChannel: async (ch) => {
        log.push(`start ${ch.chanId}`);
        await new Promise((r) => setImmediate(r));
        log.push(`done ${ch.chanId}`);
      },
    };
    await releaseChannels(dma, [chan(0), chan(1), chan(2)]);
    expect(log).toEqual(['start 2', 'done 2', 'start 1', 'done 1', 'start 0', 'done 0']);
  });

  it('releases every channel even when some fail, then rethrows the first failure', async () => {
    const released: number[] = [];
    const dma: DmaChannelProvider = {
      requestChannels: () => [],
      releaseChannel: (ch) => {
        released.push(ch.chanId);
        if (ch.chanId !== 1) throw new MicError('EIO', `channel ${ch.chanId} did not drain`);
      },
    };
    await expect(releaseChannels(dma, [chan(0), chan(1), chan(2)])).rejects.toThrow(
      'channel 2 did not drain',
    );
    expect(released).toEqual([2, 1, 0]);
  });
});
