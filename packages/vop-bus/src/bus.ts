/**
 * The VOP bus (`vop_bus`): registers VOP devices and drivers and binds them by id table.
 *
 * @see drivers/misc/mic/bus/vop_bus.c
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
import { VOP_DEV_ANY_ID, type VopDevice, type VopDeviceParams, type VopDriver } from './vop.js';

/** The ops every {@link VopHwOps} implementation must have. */
export const VOP_HW_OPS = [
  'nextDb',
  'requestIrq',
  'freeIrq',
  'ackInterrupt',
  'getRemoteDp',
  'getDp',
  'sendIntr',
  'remap',
  'unmap',
] as const;

const DMA_MAP_OPS = ['alloc', 'free', 'mapSingle', 'unmapSingle'] as const;

function createVopDevice(params: VopDeviceParams): VopDevice {
  if (typeof params !== 'object' || params === null) {
    throw new MicError('EINVAL', 'vop device parameters are not an object');
  }
  checkInt('vop device id', params.id, 0, 0xffffffff);
  checkInt('vop dnode', params.dnode, 0, 255);
  checkOps('vop hw ops', params.hwOps, VOP_HW_OPS);
  checkOps('vop dma ops', params.dmaOps, DMA_MAP_OPS);
  if (params.aper !== null) checkWindow('vop aperture', params.aper);
  if (params.dmaCh !== null && typeof params.dmaCh !== 'object') {
    throw new MicError('EINVAL', 'vop dma channel is neither a channel nor null');
  }
  const index = params.dnode - 1;
  return Object.freeze({
    name: `vop-dev${index >>> 0}`,
    hwOps: params.hwOps,
    id: Object.freeze({ device: params.id, vendor: VOP_DEV_ANY_ID }),
    dnode: params.dnode,
    aper: params.aper,
    dmaCh: params.dmaCh,
    dmaOps: params.dmaOps,
    index,
  });
}

/**
 * The VOP bus. `registerDevice(params)` is `vop_register_device`: it builds the device (vendor
 * ANY, `index = dnode - 1`, name `vop-dev%u`) and binds a driver whose id table matches; the
 * modalias is `vop:d%08Xv%08X`.
 *
 * @example
 * const bus = new VopBus();
 * await bus.registerDriver(vopDriver);
 * const vpdev = await bus.registerDevice({ id: VOP_DEV_TRNSP, dmaOps, hwOps, dnode: 1, aper, dmaCh: null });
 * await bus.unregisterDevice(vpdev);
 */
export class VopBus extends Bus<VopDevice, VopDriver, VopDeviceParams> {
  constructor(options: BusOptions = {}) {
    super(
      {
        name: 'vop_bus',
        create: createVopDevice,
        checkDriver: (drv) => checkIdTable(`vop driver ${drv.name} id table`, drv.idTable),
        match: (dev, drv) => matchIdTable(drv.idTable, dev.id) !== undefined,
        modalias: (dev) => formatModalias('vop', dev.id),
      },
      options,
    );
  }
}
