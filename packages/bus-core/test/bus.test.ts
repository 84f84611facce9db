import { describe, expect, it } from '@jest/globals';
import { createMemoryLogger } from '@mic/logger';
import { MicError } from '@mic/errors';
import { Bus, type BusDriver, type BusEvent, IndexAllocator, AsyncMutex } from '../src/index.js';

interface Dev {
  readonly name: string;
  readonly kind: string;
}
interface Drv extends BusDriver<Dev> {
  readonly kinds: readonly string[];
}

function makeBus(logger = createMemoryLogger()) {
  const bus = new Bus<Dev, Drv, Dev>(
    {
      name: 'test_bus',
      create: (d) => d,
      match: (dev, drv) => drv.kinds.includes(dev.kind),
      modalias: (d) => `test:${d.kind}`,
    },
    { logger },
  );
  const events: string[] = [];
  bus.subscribe((e: BusEvent<Dev, Drv>) => {
    const who = 'device' in e ? e.device.name : '';
    const drv = 'driver' in e ? e.driver.name : '';
    events.push([e.type, who, drv].filter(Boolean).join(' '));
  });
  return { bus, events, logger };
}

function driver(
  name: string,
  kinds: string[],
  log: string[],
  probe?: (dev: Dev) => void | Promise<void>,
): Drv {
  return {
    name,
    kinds,
    probe: async (dev) => {
      log.push(`probe ${name} ${dev.name}`);
      await probe?.(dev);
    },
    remove: (dev) => {
      log.push(`remove ${name} ${dev.name}`);
    },
  };
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { wait, open };
}

describe('Bus', () => {
  it('binds a new device to the first registered driver that matches', async () => {
    const { bus } = makeBus();
    const log: string[] = [];
    const a = driver('a', ['x'], log);
    const b = driver('b', ['y'], log);
    const c = driver('c', ['y'], log);
    await bus.registerDriver(a);
    await bus.registerDriver(b);
    await bus.registerDriver(c);
    const dev = await bus.registerDevice({ name: 'dev0', kind: 'y' });
    expect(bus.driverOf(dev)).toBe(b);
    expect(log).toEqual(['probe b dev0']);
    expect(bus.modalias(dev)).toBe('test:y');
  });

  it('binds a new driver to every unbound matching device in registration order', async () => {
    const { bus } = makeBus();
    const log: string[] = [];
    const d0 = await bus.registerDevice({ name: 'd0', kind: 'x' });
    await bus.registerDevice({ name: 'd1', kind: 'z' });
    const d2 = await bus.registerDevice({ name: 'd2', kind: 'x' });
    const drv = driver('x-drv', ['x'], log);
    await bus.registerDriver(drv);
    expect(log).toEqual(['probe x-drv d0', 'probe x-drv d2']);
    expect(bus.devicesOf(drv)).toEqual([d0, d2]);
  });

  it('leaves a device unbound when probe fails, keeps the reason and lets the next driver try', async () => {
    const { bus, events, logger } = makeBus();
    const log: string[] = [];
    await bus.registerDriver(
      driver('bad', ['x'], log, () => {
        throw new MicError('EIO', 'handshake timed out');
      }),
    );
    const dev = await bus.registerDevice({ name: 'dev0', kind: 'x' });
    expect(bus.driverOf(dev)).toBeUndefined();
    expect(bus.probeError(dev)).toMatchObject({ code: 'EIO' });
    expect(bus.probeError(dev)?.message).toContain('probe of dev0 by bad failed: handshake timed out');
    expect(logger.records.some((r) => r.level === 'warn' && r.msg.includes('probe of dev0'))).toBe(true);

    const good = driver('good', ['x'], log);
    await bus.registerDriver(good);
    expect(bus.driverOf(dev)).toBe(good);
    expect(bus.probeError(dev)).toBeUndefined();
    expect(events).toEqual([
      'driver-added bad',
      'device-added dev0',
      'probe-failed dev0 bad',
      'driver-added good',
      'bound dev0 good',
    ]);
  });

  it('tries the next matching driver after a failed probe of the same device', async () => {
    const { bus } = makeBus();
    const log: string[] = [];
    await bus.registerDriver(driver('first', ['x'], log, () => Promise.reject(new Error('not mine'))));
    const second = driver('second', ['x'], log);
    await bus.registerDriver(second);
    const dev = await bus.registerDevice({ name: 'dev0', kind: 'x' });
    expect(log).toEqual(['probe first dev0', 'probe second dev0']);
    expect(bus.driverOf(dev)).toBe(second);
  });

  it('reports a non-MicError thrown by probe as EIO, and ENODEV quietly', async () => {
    const { bus, logger } = makeBus();
    await bus.registerDriver(driver('p', ['x'], [], () => Promise.reject(new Error('boom'))));
    await bus.registerDriver(
      driver('q', ['y'], [], () => Promise.reject(new MicError('ENODEV', 'no such card'))),
    );
    const x = await bus.registerDevice({ name: 'x0', kind: 'x' });
    const y = await bus.registerDevice({ name: 'y0', kind: 'y' });
    expect(bus.probeError(x)?.code).toBe('EIO');
    expect(bus.probeError(x)?.cause).toBeInstanceOf(Error);
    expect(bus.probeError(y)?.code).toBe('ENODEV');
    expect(logger.records.filter((r) => r.level === 'warn').map((r) => r.fields['code'])).toEqual(['EIO']);
  });

  it('calls remove when a bound device is unregistered', async () => {
    const { bus, events } = makeBus();
    const log: string[] = [];
    await bus.registerDriver(driver('d', ['x'], log));
    const dev = await bus.registerDevice({ name: 'dev0', kind: 'x' });
    await bus.unregisterDevice(dev);
    expect(log).toEqual(['probe d dev0', 'remove d dev0']);
    expect(bus.devices()).toEqual([]);
    expect(events.slice(-2)).toEqual(['unbound dev0 d', 'device-removed dev0']);
  });

  it('removes the devices of an unregistered driver in reverse bind order and keeps them registered', async () => {
    const { bus } = makeBus();
    const log: string[] = [];
    const drv = driver('d', ['x'], log);
    await bus.registerDriver(drv);
    for (const n of [0, 1, 2]) await bus.registerDevice({ name: `dev${n}`, kind: 'x' });
    log.length = 0;
    await bus.unregisterDriver(drv);
    expect(log).toEqual(['remove d dev2', 'remove d dev1', 'remove d dev0']);
    expect(bus.devices().map((d) => d.name)).toEqual(['dev0', 'dev1', 'dev2']);
    expect(bus.devices().every((d) => bus.driverOf(d) === undefined)).toBe(true);
    expect(bus.drivers()).toEqual([]);
  });

  it('unbinds the device even when remove throws, and reports the error', async () => {
    const { bus, logger } = makeBus();
    const unbound: unknown[] = [];
    bus.subscribe((e) => {
      if (e.type === 'unbound') unbound.push(e.error?.code);
    });
    const drv: Drv = {
      name: 'd',
      kinds: ['x'],
      probe: () => undefined,
      remove: () => {
        throw new MicError('EBUSY', 'still in use');
      },
    };
    await bus.registerDriver(drv);
    const dev = await bus.registerDevice({ name: 'dev0', kind: 'x' });
    await bus.unregisterDevice(dev);
    expect(bus.has(dev)).toBe(false);
    expect(unbound).toEqual(['EBUSY']);
    expect(
      logger.records.some((r) => r.level === 'error' && r.msg.includes('remove of dev0 by d failed')),
    ).toBe(true);
  });

  it('serializes a device unregistered while its probe is still running: remove follows the probe', async () => {
    const { bus, events } = makeBus();
    const log: string[] = [];
    const g = gate();
    await bus.registerDriver(driver('slow', ['x'], log, () => g.wait));
    let unregistering: Promise<void> | undefined;
    let hotplug: Promise<Dev> | undefined;
    const off = bus.subscribe((e) => {
      if (e.type === 'device-added' && e.device.name === 'dev0') {
        // Hot-unplug and hot-plug arrive while the probe of dev0 is still waiting.
        unregistering = bus.unregisterDevice(e.device);
        hotplug = bus.registerDevice({ name: 'dev1', kind: 'x' });
      }
    });
    const registering = bus.registerDevice({ name: 'dev0', kind: 'x' });
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['probe slow dev0']);
    g.open();
    await Promise.all([registering, unregistering, hotplug]);
    off();
    expect(log).toEqual(['probe slow dev0', 'remove slow dev0', 'probe slow dev1']);
    expect(events).toEqual([
      'driver-added slow',
      'device-added dev0',
      'bound dev0 slow',
      'unbound dev0 slow',
      'device-removed dev0',
      'device-added dev1',
      'bound dev1 slow',
    ]);
  });

  it('rejects a second device of the same name with EEXIST and releases it', async () => {
    const released: string[] = [];
    const bus = new Bus<Dev, Drv, Dev>({
      name: 'test_bus',
      create: (d) => ({ ...d }),
      release: (d) => released.push(d.name),
      match: () => true,
    });
    await bus.registerDevice({ name: 'dev0', kind: 'x' });
    await expect(bus.registerDevice({ name: 'dev0', kind: 'y' })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(released).toEqual(['dev0']);
    expect(bus.devices()).toHaveLength(1);
  });

  it('rejects unknown devices and drivers with ENODEV, and duplicate or malformed drivers', async () => {
    const { bus } = makeBus();
    const drv = driver('d', ['x'], []);
    await expect(bus.unregisterDevice({ name: 'ghost', kind: 'x' })).rejects.toMatchObject({
      code: 'ENODEV',
    });
    await expect(bus.unregisterDriver(drv)).rejects.toMatchObject({ code: 'ENODEV' });
    await bus.registerDriver(drv);
    await expect(bus.registerDriver(drv)).rejects.toMatchObject({ code: 'EBUSY' });
    await expect(bus.registerDriver({ ...drv })).rejects.toMatchObject({ code: 'EBUSY' });
    await expect(
      bus.registerDriver({ name: '', kinds: [], probe: () => {}, remove: () => {} }),
    ).rejects.toMatchObject({
      code: 'EINVAL',
    });
  });

  it('answers queries: devices by name, predicate, and bound drivers', async () => {
    const { bus } = makeBus();
    const drv = driver('d', ['x'], []);
    await bus.registerDriver(drv);
    const d0 = await bus.registerDevice({ name: 'dev0', kind: 'x' });
    const d1 = await bus.registerDevice({ name: 'dev1', kind: 'z' });
    expect(bus.deviceByName('dev1')).toBe(d1);
    expect(bus.findDevice((d) => d.kind === 'x')).toBe(d0);
    expect(bus.devicesOf(drv)).toEqual([d0]);
    expect(bus.has(d1)).toBe(true);
    await bus.idle();
  });

  it('keeps working when an event listener throws', async () => {
    const { bus, logger } = makeBus();
    bus.subscribe(() => {
      throw new Error('listener bug');
    });
    const dev = await bus.registerDevice({ name: 'dev0', kind: 'x' });
    expect(bus.has(dev)).toBe(true);
    expect(logger.records.some((r) => r.msg === 'bus event listener threw')).toBe(true);
  });

  it('stops reporting events after unsubscribe', async () => {
    const bus = new Bus<Dev, Drv, Dev>({ name: 'b', create: (d) => d, match: () => true });
    const seen: string[] = [];
    const off = bus.subscribe((e) => seen.push(e.type));
    await bus.registerDevice({ name: 'a', kind: 'x' });
    off();
    await bus.registerDevice({ name: 'b', kind: 'x' });
    expect(seen).toEqual(['device-added']);
  });
});

describe('AsyncMutex', () => {
  it('runs callers one at a time in call order, even when one fails', async () => {
    const m = new AsyncMutex();
    const order: string[] = [];
    const g = gate();
    const a = m.run(async () => {
      order.push('a start');
      await g.wait;
      order.push('a end');
    });
    const b = m.run(() => {
      order.push('b');
      throw new Error('b failed');
    });
    const c = m.run(() => order.push('c'));
    expect(m.locked).toBe(true);
    g.open();
    await a;
    await expect(b).rejects.toThrow('b failed');
    await c;
    expect(order).toEqual(['a start', 'a end', 'b', 'c']);
    expect(m.locked).toBe(false);
  });
});

describe('IndexAllocator', () => {
  it('hands out the lowest free id and reuses ids given back', () => {
    const ida = new IndexAllocator();
    expect([ida.get(), ida.get(), ida.get()]).toEqual([0, 1, 2]);
    ida.remove(1);
    expect(ida.get()).toBe(1);
    expect(ida.get(10)).toBe(10);
    expect(ida.size).toBe(4);
    expect(() => ida.remove(5)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('throws ENOSPC when every id is taken', () => {
    const ida = new IndexAllocator(1);
    ida.get();
    ida.get();
    expect(() => ida.get()).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
  });
});
