/**
 * `@mic/mic-dma`: the X100 DMA engine driver (`mic_x100_dma`) on the MIC bus, with a
 * dmaengine-style channel API.
 *
 * @see drivers/dma/mic_x100_dma.c
 * @see drivers/dma/mic_x100_dma.h
 */
export { MIC_DMA_CHAN_STATE, MicDmaChan } from './chan.js';
export type { DmaTx, MicDmaChanContext, MicDmaChanState, SyncWaitOptions } from './chan.js';
export type { MicDmaChanRegisters } from './ring.js';
export {
  DMA_PREP,
  DMA_STATUS,
  MIC_DMA_ALIGN_BYTES,
  MIC_DMA_ALIGN_SHIFT,
  MIC_DMA_BIT,
  MIC_DMA_DESC,
  MIC_DMA_DESC_RX_SIZE,
  MIC_DMA_DESC_SIZE,
  MIC_DMA_DRAIN_TIMEOUT_MS,
  MIC_DMA_MAX_NUM_CHAN,
  MIC_DMA_MAX_RING_SIZE,
  MIC_DMA_MAX_XFER_SIZE_CARD,
  MIC_DMA_MAX_XFER_SIZE_HOST,
  MIC_DMA_NUM_CHAN,
  MIC_DMA_OWNER,
  MIC_DMA_PENDING_LEVEL,
  MIC_DMA_POLL_NS,
  MIC_DMA_REG,
  MIC_DMA_SBOX,
  micDmaChanReg,
} from './constants.js';
export type { DmaCookie, DmaStatus, DmaTxCallback, DmaTxResult, MicDmaOwner } from './constants.js';
export { MicDmaDevice, isDmaCopyAligned } from './device.js';
export type { MicDmaCapabilities, MicDmaDeviceOptions } from './device.js';
export {
  MIC_DMA_ID_TABLE,
  MicDmaDriver,
  dmaChannelProvider,
  micDmaFilter,
  releaseDmaChannels,
  requestDmaChannels,
} from './driver.js';
export type { MicDmaDriverOptions, MicDmaFilter } from './driver.js';
