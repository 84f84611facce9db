/**
 * `@mic/cosm-bus`: the COSM bus (device, driver, hardware ops) and a mock card.
 *
 * @see drivers/misc/mic/bus/cosm_bus.h
 */
export { COSM_FAMILY, COSM_STEPPINGS, steppingName } from './cosm.js';
export type { CosmBootConfig, CosmDevice, CosmDeviceParams, CosmDriver, CosmHwOps } from './cosm.js';
export type { MicMw } from '@mic/bus-core';
export { COSM_HW_OPS, CosmBus } from './bus.js';
export { MockCosmHwOps } from './mock.js';
export type { MockCosmHwOpsOptions, MockCosmStart } from './mock.js';
