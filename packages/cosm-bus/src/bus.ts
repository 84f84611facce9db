/**
 * The COSM bus (`cosm_bus`): no id table and no match function, so a driver binds every device;
 * devices get the lowest free index.
 *
 * @see drivers/misc/mic/bus/cosm_bus.c
 */
import { Bus, type BusOptions, IndexAllocator, checkOps } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import type { CosmDevice, CosmDeviceParams, CosmDriver } from './cosm.js';

/** The ops every {@link CosmHwOps} implementation must have (`postReset` is optional). */
export const COSM_HW_OPS = [
  'reset',
  'forceReset',
  'ready',
  'start',
  'stop',
  'family',
  'stepping',
  'aper',
] as const;

/**
 * The COSM bus. `registerDevice(params)` is `cosm_register_device`: it takes the lowest free index,
 * names the device `cosm-dev%u` and binds the driver; unregistering frees the index.
 *
 * @example
 * const bus = new CosmBus();
 * await bus.registerDriver(cosmDriver);
 * const cdev = await bus.registerDevice({ hwOps });
 * bus.findCdevById(cdev.index) === cdev;
 */
export class CosmBus extends Bus<CosmDevice, CosmDriver, CosmDeviceParams> {
  readonly #ida: IndexAllocator;

  constructor(options: BusOptions = {}) {
    const ida = new IndexAllocator();
    super(
      {
        name: 'cosm_bus',
        create: (params) => {
          if (typeof params !== 'object' || params === null) {
            throw new MicError('EINVAL', 'cosm device parameters are not an object');
          }
          checkOps('cosm hw ops', params.hwOps, COSM_HW_OPS);
          const post = (params.hwOps as { postReset?: unknown }).postReset;
          if (post !== undefined && typeof post !== 'function') {
            throw new MicError('EINVAL', 'cosm hw ops postReset is neither a function nor absent');
          }
          const index = ida.get();
          return Object.freeze({ name: `cosm-dev${index}`, index, hwOps: params.hwOps });
        },
        release: (dev) => ida.remove(dev.index),
        match: () => true,
      },
      options,
    );
    this.#ida = ida;
  }

  /** Indexes in use. */
  get indexesInUse(): number {
    return this.#ida.size;
  }

  /** The device with index `id` (`cosm_find_cdev_by_id`); COSM id = SCIF node id - 1. */
  findCdevById(id: number): CosmDevice | undefined {
    return this.findDevice((dev) => dev.index === id);
  }
}
