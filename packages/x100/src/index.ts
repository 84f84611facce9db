/**
 * `@mic/x100`: the Intel Xeon Phi X100 card as hardware (memory, aperture, SMPT, MMIO
 * registers, doorbells, scratchpads, interrupt lines, the DMA engine) on two platforms,
 * `inProcess` and `worker`. It imports no bus and no driver.
 */
export { X100CardView } from './card-view.js';
export type { X100CardViewOptions } from './card-view.js';
export {
  X100_APICICR_SEND,
  X100_BAR,
  X100_BSP_INTERRUPT_VECTOR,
  X100_CARD_MMIO_BASE,
  X100_CARD_NUM_DOORBELLS,
  X100_DMA,
  X100_DMA_BIT,
  X100_DMA_CHERR,
  X100_DMA_DESC,
  X100_DMA_REG,
  X100_HOST_NUM_DOORBELLS,
  X100_INTR,
  X100_MMIO_SIZE,
  X100_NUM_RDMASR,
  X100_PCI_DEVICE_IDS,
  X100_PCI_VENDOR_INTEL,
  X100_REG,
  X100_RGCR_RESET,
  X100_SBOX_BASE,
  X100_SDBIC_DBREQ,
  X100_SMPT,
  X100_SPAD,
  X100_STEPPING,
  apicIcrReg,
  cardDmaSrc,
  decodeSpad2,
  dmaChanReg,
  dmaDcrEnableBit,
  dmaDcrOwnerBit,
  encodeSpad2,
  hostDmaSrc,
  rdmasrReg,
  sdbicReg,
  smptReg,
  spadReg,
} from './constants.js';
export type { Spad2 } from './constants.js';
export {
  decodeDmaRing,
  encodeDmaRing,
  readDmaDesc,
  writeDmaMemcpyDesc,
  writeDmaStatusDesc,
} from './dma-desc.js';
export type { X100DmaDescriptor, X100DmaRing } from './dma-desc.js';
export { X100DmaEngine } from './dma-engine.js';
export type { X100DmaEngineOptions, X100DmaEngineStats } from './dma-engine.js';
export { installDmaRegisterHandlers } from './dma-regs.js';
export type { DmaRegisterHandlerOptions } from './dma-regs.js';
export { InProcessDmaRunner } from './dma-runner.js';
export {
  X100_CARD_SOURCES,
  X100_CARD_STATE,
  X100_HOST_SOURCES,
  X100Hardware,
  resolveX100Config,
} from './hardware.js';
export type {
  X100Buffers,
  X100CardState,
  X100Config,
  X100HardwareHooks,
  X100HardwareOptions,
} from './hardware.js';
export { X100HostView } from './host-view.js';
export { X100_IOMMU } from './iommu.js';
export { X100_CARD_WINDOWS } from './card-windows.js';
export type { X100CardWindow, X100CardWindowInfo, X100CardWindowTable } from './card-windows.js';
export type { X100Iommu, X100IommuFault, X100IommuFaults, X100IommuRange, X100IommuTable } from './iommu.js';
export type { X100HostViewOptions, X100PciId } from './host-view.js';
export { InterruptLine, IrqController } from './irq.js';
export type {
  InterruptLineLayout,
  IrqControllerOptions,
  IrqCookie,
  IrqDelivery,
  InterruptSourceHandler,
  X100Side,
} from './irq.js';
export { MmioMemory, MmioRegisters } from './mmio.js';
export type { MmioWriteHandler } from './mmio.js';
export type { CardDebugHandle, CardDebugMethod, CardDebugMethods } from './debug-channel.js';
export type { CardMain, X100Platform, X100PlatformKind, X100PlatformOptions } from './platform.js';
export { createInProcessPlatform } from './platform-in-process.js';
export type { InProcessPlatform, InProcessPlatformOptions } from './platform-in-process.js';
export { createWorkerPlatform } from './platform-worker.js';
export type { WorkerPlatform, WorkerPlatformOptions, X100CardExit } from './platform-worker.js';
export { SmptTable, isSystemAddr, smptRegValue } from './smpt.js';
export type { SmptEntry } from './smpt.js';
