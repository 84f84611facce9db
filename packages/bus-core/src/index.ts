/**
 * `@mic/bus-core`: the small driver core under the MIC buses (vop, mbus, scif, cosm), the types
 * that cross from a bus to the hardware driver, and building blocks for mock hardware.
 */
export { ANY_ID, checkDeviceId, checkIdTable, formatModalias, idAttributes, matchIdTable } from './ids.js';
export type { DeviceId, IdTable } from './ids.js';
export { AsyncMutex } from './mutex.js';
export { IndexAllocator } from './ida.js';
export { Bus } from './bus.js';
export type { BusDevice, BusDriver, BusEvent, BusOptions, BusType } from './bus.js';
export { IRQ_RETURN, NO_DOORBELL } from './hw.js';
export { CardDoorbellAllocator, HostDoorbellAllocator } from './doorbells.js';
export type {
  DmaBuffer,
  DmaChannel,
  DmaMemcpyChannel,
  DmaMapOps,
  IrqHandler,
  IrqReturn,
  MicIrq,
  MicMw,
} from './hw.js';
export { DmaMappingCounts } from './dma-mappings.js';
export { DmaMapOpsBase } from './dma-map-ops.js';
export type { DmaAllocation } from './dma-map-ops.js';
export { DoorbellLinkOps, RemapBook, ThreadedIrqOps } from './link-ops.js';
export type { DoorbellLinkOpsOptions } from './link-ops.js';
export { unwind } from './unwind.js';
export type { UndoStep } from './unwind.js';
export { ThreadedIrqTable } from './irq-table.js';
export type { IrqSourceKind, IrqSourceOps, ThreadedIrqTableOptions } from './irq-table.js';
export { DOORBELL_POLICY, MockIrqLines } from './mock-irq.js';
export { MockLinkEnd } from './mock-link.js';
export type { MockLinkEndOptions } from './mock-link.js';
export type { DoorbellPolicy, MockIrqLinesOptions } from './mock-irq.js';
export { MockDmaMapOps, MockRemapper } from './mock-mem.js';
export { MemoryPool, RangeAllocator } from './range-allocator.js';
export type { MemoryPoolOptions, PoolBuffer } from './range-allocator.js';
export type { MockDmaMapOpsOptions, MockRemapRegion } from './mock-mem.js';
export {
  MOCK_APER_PA,
  MOCK_CARD_ALLOC_DOORBELLS,
  MOCK_CARD_DOORBELLS,
  MOCK_CARD_MMIO_PA,
  MOCK_HOST_DOORBELLS,
  MOCK_MMIO_LEN,
  MOCK_MMIO_PA,
  MOCK_SMPT_BASE,
} from './mock-defaults.js';
export { checkOps, checkWindow } from './validate.js';
