import { describe, expect, it } from '@jest/globals';
import { CosmBus, type CosmDevice, type CosmDriver, MockCosmHwOps, steppingName } from '../src/index.js';

function cosmDriver(log: string[]): CosmDriver {
  return {
    name: 'mic_cosm',
    probe: (d: CosmDevice) => void log.push(`probe ${d.name}`),
    remove: (d: CosmDevice) => void log.push(`remove ${d.name}`),
  };
}

describe('CosmBus', () => {
  it('names devices cosm-dev<index> with the lowest free index and binds the driver to each', async () => {
    const log: string[] = [];
    const bus = new CosmBus();
    await bus.registerDriver(cosmDriver(log));
    const a = await bus.registerDevice({ hwOps: new MockCosmHwOps() });
    const b = await bus.registerDevice({ hwOps: new MockCosmHwOps() });
    expect([a.name, a.index, b.name, b.index]).toEqual(['cosm-dev0', 0, 'cosm-dev1', 1]);
    expect(log).toEqual(['probe cosm-dev0', 'probe cosm-dev1']);
    expect(bus.modalias(a)).toBeUndefined();
  });

  it('frees the index of an unregistered device for the next one', async () => {
    const bus = new CosmBus();
    const a = await bus.registerDevice({ hwOps: new MockCosmHwOps() });
    await bus.registerDevice({ hwOps: new MockCosmHwOps() });
    await bus.unregisterDevice(a);
    expect(bus.indexesInUse).toBe(1);
    const c = await bus.registerDevice({ hwOps: new MockCosmHwOps() });
    expect(c.index).toBe(0);
  });

  it('finds a device by id, as cosm_find_cdev_by_id does', async () => {
    const bus = new CosmBus();
    await bus.registerDevice({ hwOps: new MockCosmHwOps() });
    const b = await bus.registerDevice({ hwOps: new MockCosmHwOps() });
    expect(bus.findCdevById(1)).toBe(b);
    expect(bus.findCdevById(7)).toBeUndefined();
  });

  it('rejects hw ops that lack an op with EINVAL without using an index', async () => {
    const bus = new CosmBus();
    const { start: _start, ...partial } = Object.fromEntries(
      ['reset', 'forceReset', 'ready', 'start', 'stop', 'family', 'stepping', 'aper'].map((n) => [
        n,
        () => undefined,
      ]),
    );
    await expect(bus.registerDevice({ hwOps: partial as never })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(bus.indexesInUse).toBe(0);
  });
});

describe('steppingName', () => {
  it('maps the x100 revision ids and prints ?? for others', () => {
    expect([0x00, 0x10, 0x11, 0x20, 0x30].map(steppingName)).toEqual(['A0', 'B0', 'B1', 'C0', '??']);
  });
});
