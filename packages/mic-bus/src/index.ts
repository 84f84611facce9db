/**
 * `@mic/mic-bus`: the MIC virtual bus (device, driver, hardware ops) the DMA engine sits on, and
 * mock mbus hardware.
 *
 * @see include/linux/mic_bus.h
 */
export { MBUS_DEV_ANY_ID, MBUS_DEV_DMA_HOST, MBUS_DEV_DMA_MIC } from './mbus.js';
export type { MbusDevice, MbusDeviceParams, MbusDriver, MbusHwOps } from './mbus.js';
export { MBUS_HW_OPS, MbusBus } from './bus.js';
export { loadDmaDriver, releaseChannels, requestDmaChans } from './dma-channels.js';
export type { DmaChannelProvider, DmaDriverLoader } from './dma-channels.js';
export { MOCK_MBUS_SOURCES, MockMbusHardware, MockMbusHwOps } from './mock.js';
export type { MockMbusHardwareOptions, MockMbusHwOpsOptions } from './mock.js';
export { IRQ_RETURN } from '@mic/bus-core';
export type { DmaBuffer, DmaMapOps, IrqHandler, IrqReturn, MicIrq } from '@mic/bus-core';
