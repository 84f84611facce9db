/**
 * The SCIF hardware bus (`scif_bus`): registers SCIF devices and drivers and binds them by id table.
 *
 * @see drivers/misc/mic/bus/scif_bus.c
 */
import {
  Bus,
  type BusOptions,
  checkIdTable,
  checkOps,
  checkWindow,
  formatModalias,
  matchIdTable,
} from '@mic/bus-core';
import { MicError, checkInt } from '@mic/errors';
import {
  MIC_MAX_DMA_CHAN,
  SCIF_DEV_ANY_ID,
  SCIF_MAX_NODE,
  type ScifDriver,
  type ScifHwDev,
  type ScifHwDevParams,
} from './scif.js';

/** The ops every {@link ScifHwOps} implementation must have (`sendP2pIntr` is card-only). */
export const SCIF_HW_OPS = [
  'nextDb',
  'requestIrq',
  'freeIrq',
  'ackInterrupt',
  'sendIntr',
  'remap',
  'unmap',
] as const;

const DMA_MAP_OPS = ['alloc', 'free', 'mapSingle', 'unmapSingle'] as const;

function isView(v: unknown): boolean {
  return typeof v === 'object' && v !== null && Number.isInteger((v as { byteLength?: unknown }).byteLength);
}

function createScifHwDev(params: ScifHwDevParams): ScifHwDev {
  if (typeof params !== 'object' || params === null) {
    throw new MicError('EINVAL', 'scif device parameters are not an object');
  }
  checkInt('scif device id', params.id, 0, 0xffffffff);
  checkInt('scif dnode', params.dnode, 0, SCIF_MAX_NODE);
  checkInt('scif snode', params.snode, 0, SCIF_MAX_NODE);
  if (params.dnode === params.snode) {
    throw new MicError('EINVAL', `scif dnode and snode are both ${params.dnode}`);
  }
  checkOps('scif hw ops', params.hwOps, SCIF_HW_OPS);
  const p2p = (params.hwOps as { sendP2pIntr?: unknown }).sendP2pIntr;
  if (p2p !== undefined && typeof p2p !== 'function') {
    throw new MicError('EINVAL', 'scif hw ops sendP2pIntr is neither a function nor absent');
  }
  checkOps('scif dma ops', params.dmaOps, DMA_MAP_OPS);
  checkWindow('scif mmio', params.mmio);
  if (params.aper !== null) checkWindow('scif aperture', params.aper);
  if (params.dp !== null && !isView(params.dp))
    throw new MicError('EINVAL', 'scif dp is neither memory nor null');
  if (params.rdp !== null && !isView(params.rdp))
    throw new MicError('EINVAL', 'scif rdp is neither memory nor null');
  if (!Array.isArray(params.dmaCh) || params.dmaCh.length > MIC_MAX_DMA_CHAN) {
    throw new MicError('EINVAL', `scif needs an array of at most ${MIC_MAX_DMA_CHAN} DMA channels`, {
      details: { count: Array.isArray(params.dmaCh) ? params.dmaCh.length : undefined },
    });
  }
  if (typeof params.cardRelDa !== 'boolean') throw new MicError('EINVAL', 'scif cardRelDa is not a boolean');
  return Object.freeze({
    name: `scif-dev${params.dnode}`,
    hwOps: params.hwOps,
    id: Object.freeze({ device: params.id, vendor: SCIF_DEV_ANY_ID }),
    dmaOps: params.dmaOps,
    mmio: params.mmio,
    aper: params.aper,
    dnode: params.dnode,
    snode: params.snode,
    dp: params.dp,
    rdp: params.rdp,
    dmaCh: Object.freeze([...params.dmaCh]),
    cardRelDa: params.cardRelDa,
  });
}

/**
 * The SCIF hardware bus. `registerDevice(params)` is `scif_register_device`: it builds the device
 * (vendor ANY, name `scif-dev%u` of dnode) and binds a driver whose id table matches; the modalias
 * is `scif:d%08Xv%08X`.
 *
 * @example
 * const bus = new ScifBus();
 * await bus.registerDriver(scifDriver);
 * const sdev = await bus.registerDevice({ id: MIC_SCIF_DEV, dnode: 1, snode: 0, ... });
 */
export class ScifBus extends Bus<ScifHwDev, ScifDriver, ScifHwDevParams> {
  constructor(options: BusOptions = {}) {
    super(
      {
        name: 'scif_bus',
        create: createScifHwDev,
        checkDriver: (drv) => checkIdTable(`scif driver ${drv.name} id table`, drv.idTable),
        match: (dev, drv) => matchIdTable(drv.idTable, dev.id) !== undefined,
        modalias: (dev) => formatModalias('scif', dev.id),
      },
      options,
    );
  }
}
