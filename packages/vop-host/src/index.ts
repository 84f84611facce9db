/**
 * `@mic/vop-host`: the host side of Virtio over PCIe. The `vop` driver on the host's VOP bus,
 * the per-card control device (`/dev/vop_virtio<N>`), one handle per virtio device with
 * ADD_DEVICE, COPY_DESC (vringh over the card's rings, DMA or memcpy), CONFIG_CHANGE, poll, the
 * read-only mapping and hot-unplug, and the debugfs views.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c
 * @see drivers/misc/mic/vop/vop_main.c
 */
export {
  VOP_BOUNCE_SIZE,
  VOP_CONFIG_CHANGE_TIMEOUT_MS,
  VOP_DMA_MIN_BYTES,
  VOP_DMA_PIECE_MIN,
  VOP_DMA_PIPELINE_POLL_NS,
  VOP_DMA_TIMEOUT_MS,
  VOP_HANDSHAKE_POLL_MS,
  VOP_KNOWN_VIRTIO_TYPES,
  VOP_MAPPED_DRAIN_TIMEOUT_MS,
  VOP_NO_HEAD,
  VOP_NOTIFY_BATCH,
  VOP_NOTIFY_BATCH_PIPELINED,
  VOP_NOTIFY_BATCH_PIPELINED_MAX,
  VOP_REMOVE_TIMEOUT_MS,
} from './constants.js';
export { VopHostControl, VopVirtioHandle } from './control.js';
export type { VopDeviceInfo, VopHostOptions } from './control.js';
export { dumpDevicePage, formatDpDump, formatVdevInfo, vdevInfo } from './debug.js';
export type { VopBootparamDump, VopDpDump, VopDpEntryDump, VopVdevInfo, VopVringInfoDump } from './debug.js';
export {
  DMA_PREP_FENCE,
  DMA_PREP_INTERRUPT,
  memcpyChannel,
  startDma,
  submitDma,
  syncDma,
  waitDma,
} from './dma.js';
export { VopHostDriver } from './driver.js';
export type { VopHostEvent } from './driver.js';
export { VopChain, VopVdev, checkAddDevice } from './vdev.js';
export type {
  VopChainInfo,
  VopControlContext,
  VopCopyDesc,
  VopAddDeviceOptions,
  VopDeviceCtrlSnapshot,
  VopHandshakeTimeouts,
  VopPollEvents,
} from './vdev.js';
export { VopMapping } from './view.js';
export { VopVring, emptyStats } from './vring.js';
export type { VopCopyContext, VopVdevStats, ZeroCopyBatch } from './vring.js';
export type { VopDmaPool, VopDmaRegion } from './dma-buffers.js';
