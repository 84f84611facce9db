import { describe, expect, it } from '@jest/globals';
import { createMemoryLogger } from '@mic/logger';
import {
  MBUS_DEV_ANY_ID,
  MBUS_DEV_DMA_HOST,
  MBUS_DEV_DMA_MIC,
  MbusBus,
  type MbusDevice,
  type MbusDriver,
  MockMbusHardware,
} from '../src/index.js';

function dmaDriver(log: string[], extra: Partial<MbusDriver> = {}): MbusDriver {
  return {
    name: 'mic_x100_dma',
    idTable: [
      { device: MBUS_DEV_DMA_HOST, vendor: MBUS_DEV_ANY_ID },
      { device: MBUS_DEV_DMA_MIC, vendor: MBUS_DEV_ANY_ID },
      { device: 0, vendor: 0 },
    ],
    probe: (dev: MbusDevice) => void log.push(`probe ${dev.name}`),
    remove: (dev: MbusDevice) => void log.push(`remove ${dev.name}`),
    scan: (dev: MbusDevice) => void log.push(`scan ${dev.name}`),
    ...extra,
  };
}

describe('MbusBus', () => {
  it('registers the host DMA device as mbus-dev<index> with vendor ANY and its modalias', async () => {
    const hw = new MockMbusHardware({ role: 'host' });
    const bus = new MbusBus();
    const dev = await bus.registerDevice(hw.params(2));
    expect(dev).toMatchObject({ name: 'mbus-dev2', index: 2, id: { device: 2, vendor: MBUS_DEV_ANY_ID } });
    expect(dev.mmioVa).toBe(hw.mmio);
    expect(bus.modalias(dev)).toBe('mbus:d00000002vFFFFFFFF');
  });

  it('runs scan after a successful probe, for host and card devices alike', async () => {
    const log: string[] = [];
    const bus = new MbusBus();
    await bus.registerDriver(dmaDriver(log));
    await bus.registerDevice(new MockMbusHardware({ role: 'host' }).params(0));
    const card = await bus.registerDevice(new MockMbusHardware({ role: 'card' }).params(1));
    expect(card.id.device).toBe(MBUS_DEV_DMA_MIC);
    expect(log).toEqual(['probe mbus-dev0', 'scan mbus-dev0', 'probe mbus-dev1', 'scan mbus-dev1']);
  });

  it('does not scan after a failed probe, and keeps the device unbound', async () => {
    const log: string[] = [];
    const bus = new MbusBus();
    await bus.registerDriver(
      dmaDriver(log, {
        probe: () => {
          throw new Error('no channels');
        },
      }),
    );
    const dev = await bus.registerDevice(new MockMbusHardware({ role: 'host' }).params());
    expect(log).toEqual([]);
    expect(bus.driverOf(dev)).toBeUndefined();
    expect(bus.probeError(dev)?.message).toContain('no channels');
  });

  it('keeps a device bound when scan fails, and logs the failure', async () => {
    const logger = createMemoryLogger();
    const bus = new MbusBus({ logger });
    await bus.registerDriver(
      dmaDriver([], {
        scan: () => {
          throw new Error('scan broke');
        },
      }),
    );
    const dev = await bus.registerDevice(new MockMbusHardware({ role: 'card' }).params());
    expect(bus.driverOf(dev)?.name).toBe('mic_x100_dma');
    expect(logger.records.some((r) => r.level === 'error' && r.msg.includes('scan of mbus-dev0'))).toBe(true);
  });

  it('rejects bad registrations and drivers with EINVAL', async () => {
    const bus = new MbusBus();
    const hw = new MockMbusHardware({ role: 'host' });
    await expect(bus.registerDevice({ ...hw.params(), index: -1 })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(bus.registerDevice({ ...hw.params(), hwOps: {} as never })).rejects.toMatchObject({
      code: 'EINVAL',
    });
    await expect(bus.registerDriver(dmaDriver([], { scan: 5 as never }))).rejects.toMatchObject({
      code: 'EINVAL',
    });
  });
});
