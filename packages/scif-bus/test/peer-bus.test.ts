import { describe, expect, it } from '@jest/globals';
import { MicError } from '@mic/errors';
import { createMemoryLogger } from '@mic/logger';
import { ScifPeerBus, type ScifClient } from '../src/index.js';

function client(name: string, log: string[], probe?: () => void | Promise<void>): ScifClient {
  return {
    name,
    probe: async (p) => {
      log.push(`${name} probe ${p.dnode}`);
      await probe?.();
    },
    remove: (p) => void log.push(`${name} remove ${p.dnode}`),
  };
}

describe('ScifPeerBus', () => {
  it('makes a node alive at initialization, before clients hear of it', async () => {
    const bus = new ScifPeerBus();
    const log: string[] = [];
    await bus.registerClient(client('cosm', log));
    const dev = bus.initializeDevice(2);
    expect(dev).toEqual({ name: 'scif_peer-dev2', dnode: 2 });
    expect(bus.isAlive(2)).toBe(true);
    expect(log).toEqual([]);
    await bus.addDevice(2);
    expect(log).toEqual(['cosm probe 2']);
  });

  it('probes every added device when a client registers, and removes them when it leaves', async () => {
    const bus = new ScifPeerBus();
    const log: string[] = [];
    await bus.registerDevice(0);
    await bus.registerDevice(1);
    bus.initializeDevice(2);
    const c = client('c', log);
    await bus.registerClient(c);
    expect(log).toEqual(['c probe 0', 'c probe 1']);
    await bus.unregisterClient(c);
    expect(log.slice(2)).toEqual(['c remove 1', 'c remove 0']);
  });

  it('removes a device from every client in reverse probe order and marks the node dead', async () => {
    const bus = new ScifPeerBus();
    const log: string[] = [];
    await bus.registerClient(client('a', log));
    await bus.registerClient(client('b', log));
    await bus.registerDevice(1);
    await bus.unregisterDevice(1);
    expect(log).toEqual(['a probe 1', 'b probe 1', 'b remove 1', 'a remove 1']);
    expect(bus.isAlive(1)).toBe(false);
    await expect(bus.unregisterDevice(1)).rejects.toMatchObject({ code: 'ENODEV' });
  });

  it('waits for a pending add before unregistering, like flush_work', async () => {
    const bus = new ScifPeerBus();
    const log: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    await bus.registerClient(client('slow', log, () => gate));
    bus.initializeDevice(3);
    const adding = bus.addDevice(3);
    const removing = bus.unregisterDevice(3);
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['slow probe 3']);
    open();
    await Promise.all([adding, removing]);
    expect(log).toEqual(['slow probe 3', 'slow remove 3']);
  });

  it('logs a failed client probe, skips its remove and still serves the other clients', async () => {
    const logger = createMemoryLogger();
    const bus = new ScifPeerBus({ logger });
    const log: string[] = [];
    await bus.registerClient(
      client('bad', log, () => {
        throw new MicError('ECONNREFUSED', 'no listener');
      }),
    );
    await bus.registerClient(client('good', log));
    await bus.registerDevice(1);
    await bus.unregisterDevice(1);
    expect(log).toEqual(['bad probe 1', 'good probe 1', 'good remove 1']);
    expect(
      logger.records.some((r) => r.level === 'warn' && String(r.fields['error']).includes('ECONNREFUSED')),
    ).toBe(true);
  });

  it('rejects duplicate devices, adds and clients, and unknown nodes', async () => {
    const bus = new ScifPeerBus();
    bus.initializeDevice(1);
    expect(() => bus.initializeDevice(1)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(() => bus.initializeDevice(129)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    await bus.addDevice(1);
    await expect(bus.addDevice(1)).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(bus.addDevice(5)).rejects.toMatchObject({ code: 'ENODEV' });
    const c = client('c', []);
    await bus.registerClient(c);
    await expect(bus.registerClient({ ...c })).rejects.toMatchObject({ code: 'EBUSY' });
    await expect(bus.unregisterClient(client('x', []))).rejects.toMatchObject({ code: 'ENODEV' });
    expect(bus.devices().map((d) => d.dnode)).toEqual([1]);
    expect(bus.get(1)?.name).toBe('scif_peer-dev1');
    expect(bus.clients()).toEqual([c]);
  });
});
