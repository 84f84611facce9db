/**
 * The MIC virtual bus (`mic_bus`): registers mbus devices and drivers, binds them by id table and
 * calls `scan` after a successful probe.
 *
 * @see drivers/misc/mic/bus/mic_bus.c
 */
import { Bus, type BusOptions, checkIdTable, checkOps, formatModalias, matchIdTable } from '@mic/bus-core';
import { MicError, checkInt, toMicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { MBUS_DEV_ANY_ID, type MbusDevice, type MbusDeviceParams, type MbusDriver } from './mbus.js';

/** The ops every {@link MbusHwOps} implementation must have. */
export const MBUS_HW_OPS = ['requestThreadedIrq', 'freeIrq', 'ackInterrupt'] as const;

const DMA_MAP_OPS = ['alloc', 'free', 'mapSingle', 'unmapSingle'] as const;

function createMbusDevice(params: MbusDeviceParams): MbusDevice {
  if (typeof params !== 'object' || params === null) {
    throw new MicError('EINVAL', 'mbus device parameters are not an object');
  }
  checkInt('mbus device id', params.id, 0, 0xffffffff);
  checkInt('mbus device index', params.index, 0, 0xffffffff);
  checkOps('mbus hw ops', params.hwOps, MBUS_HW_OPS);
  checkOps('mbus dma ops', params.dmaOps, DMA_MAP_OPS);
  const mmio = params.mmioVa as { byteLength?: unknown } | null;
  if (
    typeof mmio !== 'object' ||
    mmio === null ||
    !Number.isInteger(mmio.byteLength) ||
    mmio.byteLength === 0
  ) {
    throw new MicError('EINVAL', 'mbus mmioVa is not a non-empty memory view');
  }
  return Object.freeze({
    name: `mbus-dev${params.index}`,
    mmioVa: params.mmioVa,
    hwOps: params.hwOps,
    id: Object.freeze({ device: params.id, vendor: MBUS_DEV_ANY_ID }),
    index: params.index,
    dmaOps: params.dmaOps,
  });
}

/**
 * The MIC virtual bus. `registerDevice(params)` is `mbus_register_device`: vendor ANY, name
 * `mbus-dev%u` of index, modalias `mbus:d%08Xv%08X`. Binding calls the driver's `probe` and then,
 * when it succeeded, its `scan`.
 *
 * @example
 * const bus = new MbusBus();
 * await bus.registerDriver(micX100Dma);
 * const mbdev = await bus.registerDevice({ id: MBUS_DEV_DMA_HOST, dmaOps, hwOps, index: 0, mmioVa });
 */
export class MbusBus extends Bus<MbusDevice, MbusDriver, MbusDeviceParams> {
  constructor(options: BusOptions = {}) {
    const log: Logger = (options.logger ?? nullLogger).child('mic_bus');
    super(
      {
        name: 'mic_bus',
        create: createMbusDevice,
        checkDriver: (drv) => {
          checkIdTable(`mbus driver ${drv.name} id table`, drv.idTable);
          if (drv.scan !== undefined && typeof drv.scan !== 'function') {
            throw new MicError('EINVAL', `mbus driver ${drv.name} scan is neither a function nor absent`);
          }
        },
        match: (dev, drv) => matchIdTable(drv.idTable, dev.id) !== undefined,
        probe: async (dev, drv) => {
          await drv.probe(dev);
          if (!drv.scan) return;
          try {
            await drv.scan(dev);
          } catch (err) {
            const e = toMicError(err, 'EIO', `scan of ${dev.name} by ${drv.name} failed`);
            log.error(`scan of ${dev.name} by ${drv.name} failed`, { error: e.toString() });
          }
        },
        modalias: (dev) => formatModalias('mbus', dev.id),
      },
      options,
    );
  }
}
