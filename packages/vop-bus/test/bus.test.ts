import { describe, expect, it } from '@jest/globals';
import {
  MockVopLink,
  VOP_DEV_ANY_ID,
  VOP_DEV_TRNSP,
  VopBus,
  type VopDevice,
  type VopDriver,
  vopRole,
} from '../src/index.js';

function vopDriver(log: string[]): VopDriver {
  return {
    name: 'vop',
    idTable: [
      { device: VOP_DEV_TRNSP, vendor: VOP_DEV_ANY_ID },
      { device: 0, vendor: 0 },
    ],
    probe: (dev: VopDevice) => void log.push(`probe ${dev.name} ${vopRole(dev)}`),
    remove: (dev: VopDevice) => void log.push(`remove ${dev.name}`),
  };
}

describe('VopBus', () => {
  it('registers a host device as vop-dev<index> with vendor ANY and index dnode - 1', async () => {
    const link = new MockVopLink({ dnode: 3 });
    const bus = new VopBus();
    const dev = await bus.registerDevice(link.hostParams());
    expect(dev).toMatchObject({
      name: 'vop-dev2',
      id: { device: VOP_DEV_TRNSP, vendor: VOP_DEV_ANY_ID },
      dnode: 3,
      index: 2,
      aper: link.aper,
      dmaCh: null,
    });
    expect(dev.hwOps).toBe(link.host);
    expect(bus.modalias(dev)).toBe('vop:d00000001vFFFFFFFF');
    expect(Object.isFrozen(dev)).toBe(true);
  });

  it('names the card device with index -1 printed unsigned, as the kernel does', async () => {
    const bus = new VopBus();
    const dev = await bus.registerDevice(new MockVopLink().cardParams());
    expect(dev.index).toBe(-1);
    expect(dev.name).toBe('vop-dev4294967295');
    expect(vopRole(dev)).toBe('card');
  });

  it('binds the vop driver by its id table and lets it choose the role from dnode', async () => {
    const log: string[] = [];
    const host = new VopBus();
    const card = new VopBus();
    const link = new MockVopLink();
    await host.registerDriver(vopDriver(log));
    await card.registerDriver(vopDriver(log));
    const h = await host.registerDevice(link.hostParams());
    const c = await card.registerDevice(link.cardParams());
    expect(log).toEqual(['probe vop-dev0 host', 'probe vop-dev4294967295 card']);
    await host.unregisterDevice(h);
    await card.unregisterDevice(c);
    expect(log.slice(2)).toEqual(['remove vop-dev0', 'remove vop-dev4294967295']);
  });

  it('does not bind a driver whose table names another device id', async () => {
    const bus = new VopBus();
    await bus.registerDriver({
      ...vopDriver([]),
      name: 'other',
      idTable: [{ device: 2, vendor: VOP_DEV_ANY_ID }],
    });
    const dev = await bus.registerDevice(new MockVopLink().hostParams());
    expect(bus.driverOf(dev)).toBeUndefined();
  });

  it('rejects a second device for the same card with EEXIST', async () => {
    const bus = new VopBus();
    const link = new MockVopLink();
    await bus.registerDevice(link.hostParams());
    await expect(bus.registerDevice(link.hostParams())).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it.each([
    ['a dnode above 255', { dnode: 256 }],
    ['a negative device id', { id: -1 }],
    ['hw ops without sendIntr', { hwOps: { nextDb: () => 0 } }],
    ['dma ops that are null', { dmaOps: null }],
    ['an aperture whose view is shorter than len', { aper: { pa: 0, va: { byteLength: 4 }, len: 8 } }],
  ])('rejects registration with %s (EINVAL)', async (_what, patch) => {
    const bus = new VopBus();
    const params = { ...new MockVopLink().hostParams(), ...patch } as never;
    await expect(bus.registerDevice(params)).rejects.toMatchObject({ code: 'EINVAL' });
    expect(bus.devices()).toEqual([]);
  });

  it('rejects a driver without an id table with EINVAL', async () => {
    const bus = new VopBus();
    const { idTable: _ignored, ...noTable } = vopDriver([]);
    await expect(bus.registerDriver(noTable as VopDriver)).rejects.toMatchObject({ code: 'EINVAL' });
  });
});
