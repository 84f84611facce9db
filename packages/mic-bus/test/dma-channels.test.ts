import { describe, expect, it } from '@jest/globals';
import type { DmaChannel } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import { createMemoryLogger } from '@mic/logger';
import {
  type DmaChannelProvider,
  type MbusDevice,
  loadDmaDriver,
  releaseChannels,
  requestDmaChans,
} from '../src/index.js';

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

describe('requestDmaChans', () => {
  // Only the name of the device is read here; the provider gets it as it is.
  const dev = { name: 'dma-host0' } as MbusDevice;

  it('takes none without a provider and says so at debug level', async () => {
    const logger = createMemoryLogger();
    await expect(requestDmaChans(undefined, dev, 4, logger)).resolves.toEqual([]);
    expect(logger.records.map((r) => [r.level, r.msg])).toEqual([
      ['debug', 'no DMA channel provider: SCIF and VOP copy with the CPU'],
    ]);
  });

  it('returns what the provider gave, asking for at most max', async () => {
    const asked: [MbusDevice, number][] = [];
    const dma: DmaChannelProvider = {
      requestChannels: async (d, max) => {
        asked.push([d, max]);
        return [chan(0), chan(1)];
      },
      releaseChannel: () => {},
    };
    const got = await requestDmaChans(dma, dev, 4, createMemoryLogger());
    expect(got.map((c) => c.chanId)).toEqual([0, 1]);
    expect(Object.isFrozen(got)).toBe(true);
    expect(asked).toEqual([[dev, 4]]);
  });

  it('fails with ENODEV for none or too many, giving back what it got', async () => {
    for (const count of [0, 5]) {
      const released: number[] = [];
      const dma: DmaChannelProvider = {
        requestChannels: () => Array.from({ length: count }, (_, i) => chan(i)),
        releaseChannel: (ch) => void released.push(ch.chanId),
      };
      await expect(requestDmaChans(dma, dev, 4, createMemoryLogger())).rejects.toMatchObject({
        code: 'ENODEV',
        message: `dma-host0 gave ${count} DMA channels, not 1 to 4`,
      });
      expect(released).toEqual(Array.from({ length: count }, (_, i) => count - 1 - i));
    }
  });

  it('turns a provider failure into ENODEV, and logs a failed give-back', async () => {
    const failing: DmaChannelProvider = {
      requestChannels: () => {
        throw new Error('driver not bound');
      },
      releaseChannel: () => {},
    };
    await expect(requestDmaChans(failing, dev, 4, createMemoryLogger())).rejects.toMatchObject({
      code: 'ENODEV',
      message: expect.stringContaining('requesting DMA channels of dma-host0 failed'),
    });
    const logger = createMemoryLogger();
    const stuck: DmaChannelProvider = {
      requestChannels: () => [chan(0), chan(1), chan(2), chan(3), chan(4)],
      releaseChannel: () => {
        throw new Error('busy');
      },
    };
    await expect(requestDmaChans(stuck, dev, 4, logger)).rejects.toMatchObject({ code: 'ENODEV' });
    expect(logger.records).toContainEqual(
      expect.objectContaining({ level: 'error', msg: 'giving back DMA channels failed' }),
    );
  });
});

describe('loadDmaDriver (mic_init: request_module("mic_x100_dma"))', () => {
  it('runs the loader once and logs it; an absent loader is nothing to do', async () => {
    const logger = createMemoryLogger();
    let loads = 0;
    await loadDmaDriver(async () => void loads++, logger);
    await loadDmaDriver(undefined, logger);
    expect(loads).toBe(1);
    expect(logger.records.map((r) => [r.level, r.msg])).toEqual([['debug', 'DMA driver loaded']]);
  });

  it('refuses a loader that is not a function, EINVAL', async () => {
    await expect(loadDmaDriver('mic_x100_dma', createMemoryLogger())).rejects.toMatchObject({
      code: 'EINVAL',
    });
  });

  it('a failing loader: its MicError as thrown, anything else as ENODEV, and logged', async () => {
    const logger = createMemoryLogger();
    await expect(
      loadDmaDriver(() => {
        throw new MicError('EBUSY', 'engine held');
      }, logger),
    ).rejects.toMatchObject({ code: 'EBUSY' });
    await expect(loadDmaDriver(() => Promise.reject(new Error('no module')), logger)).rejects.toMatchObject({
      code: 'ENODEV',
    });
    expect(logger.records.filter((r) => r.level === 'error')).toHaveLength(2);
  });
});
