/**
 * `@mic/vop-bus`: the VOP bus (device, driver, hardware ops) and mock VOP hardware.
 *
 * @see drivers/misc/mic/bus/vop_bus.h
 */
export { VOP_DEV_ANY_ID, VOP_DEV_TRNSP, VOP_INT_DMA_BUF_SIZE, vopRole } from './vop.js';
export type { VopDevice, VopDeviceParams, VopDriver, VopHwOps } from './vop.js';
export { VOP_HW_OPS, VopBus } from './bus.js';
export { MockVopHwOps, MockVopLink } from './mock.js';
export type { MockVopHwOpsOptions, MockVopLinkOptions } from './mock.js';
export { IRQ_RETURN, NO_DOORBELL } from '@mic/bus-core';
export type { DmaBuffer, DmaChannel, DmaMapOps, IrqHandler, IrqReturn, MicIrq, MicMw } from '@mic/bus-core';
