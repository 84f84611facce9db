import { describe, expect, it } from '@jest/globals';
import {
  MIC_SCIF_DEV,
  MockScifFabric,
  SCIF_DEV_ANY_ID,
  ScifBus,
  type ScifDriver,
  type ScifHwDev,
} from '../src/index.js';

const unused = (): never => {
  throw new Error('not called');
};
const allOps = Object.fromEntries(
  ['nextDb', 'requestIrq', 'freeIrq', 'ackInterrupt', 'sendIntr', 'remap', 'unmap'].map((n) => [n, unused]),
);

function scifDriver(log: string[]): ScifDriver {
  return {
    name: 'scif',
    idTable: [
      { device: MIC_SCIF_DEV, vendor: SCIF_DEV_ANY_ID },
      { device: 0, vendor: 0 },
    ],
    probe: (dev: ScifHwDev) => void log.push(`probe ${dev.name} ${dev.snode}->${dev.dnode}`),
    remove: (dev: ScifHwDev) => void log.push(`remove ${dev.name}`),
  };
}

describe('ScifBus', () => {
  it('registers the host and card devices of a link with the x100 field layout', async () => {
    const link = new MockScifFabric().links[0]!;
    const hostBus = new ScifBus();
    const cardBus = new ScifBus();
    const host = await hostBus.registerDevice(link.hostParams());
    const card = await cardBus.registerDevice(link.cardParams());
    expect(host).toMatchObject({
      name: 'scif-dev1',
      dnode: 1,
      snode: 0,
      aper: link.aper,
      rdp: null,
      cardRelDa: true,
    });
    expect(host.dp).toBe(link.dp.va);
    expect(card).toMatchObject({
      name: 'scif-dev0',
      dnode: 0,
      snode: 1,
      aper: null,
      dp: null,
      cardRelDa: true,
    });
    expect(card.id).toEqual({ device: MIC_SCIF_DEV, vendor: SCIF_DEV_ANY_ID });
    expect(hostBus.modalias(host)).toBe('scif:d00000001vFFFFFFFF');
    expect(typeof card.hwOps.sendP2pIntr).toBe('function');
    expect(host.hwOps.sendP2pIntr).toBeUndefined();
  });

  it('binds the scif driver by id table on both sides and removes it on unregister', async () => {
    const log: string[] = [];
    const link = new MockScifFabric().links[0]!;
    const bus = new ScifBus();
    await bus.registerDriver(scifDriver(log));
    const dev = await bus.registerDevice(link.hostParams());
    expect(bus.driverOf(dev)?.name).toBe('scif');
    await bus.unregisterDevice(dev);
    expect(log).toEqual(['probe scif-dev1 0->1', 'remove scif-dev1']);
  });

  it.each([
    [
      'more than four DMA channels',
      { dmaCh: Array.from({ length: 5 }, (_, i) => ({ chanId: i, name: `c${i}` })) },
    ],
    ['a node id above 128', { dnode: 129 }],
    ['dnode equal to snode', { dnode: 0, snode: 0 }],
    ['no mmio window', { mmio: null }],
    ['cardRelDa that is not a boolean', { cardRelDa: 1 }],
    ['a sendP2pIntr that is not a function', { hwOps: { ...allOps, sendP2pIntr: 3 } }],
    ['hw ops without remap', { hwOps: { ...allOps, remap: undefined } }],
  ])('rejects registration with %s (EINVAL)', async (_what, patch) => {
    const link = new MockScifFabric().links[0]!;
    const params = { ...link.hostParams(), ...patch };
    await expect(new ScifBus().registerDevice(params as never)).rejects.toMatchObject({ code: 'EINVAL' });
  });
});
