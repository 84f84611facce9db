/**
 * `@mic/scif-bus`: the SCIF hardware bus (device, driver, hardware ops), the SCIF peer bus, and
 * mock SCIF hardware.
 *
 * @see drivers/misc/mic/bus/scif_bus.h
 * @see drivers/misc/mic/scif/scif_peer_bus.c
 */
export { MIC_MAX_DMA_CHAN, MIC_SCIF_DEV, SCIF_DEV_ANY_ID, SCIF_MAX_NODE } from './scif.js';
export type { ScifDriver, ScifHwDev, ScifHwDevParams, ScifHwOps } from './scif.js';
export { SCIF_HW_OPS, ScifBus } from './bus.js';
export { ScifPeerBus } from './peer-bus.js';
export type { ScifClient, ScifPeerBusOptions, ScifPeerDev } from './peer-bus.js';
export { MockScifFabric, MockScifHwOps, MockScifLink } from './mock.js';
export type { MockP2pInterrupt, MockScifFabricOptions, MockScifHwOpsOptions } from './mock.js';
export { IRQ_RETURN, NO_DOORBELL } from '@mic/bus-core';
export type { DmaBuffer, DmaChannel, DmaMapOps, IrqHandler, IrqReturn, MicIrq, MicMw } from '@mic/bus-core';
