export { VirtioDriverBase, type VirtioDriverEvents, type WaitForDeviceOptions } from './common.js';
export {
  VIRTIO_BLK_DISCARD_SEGMENT_SIZE,
  VIRTIO_BLK_DEFAULT_SEGMENT_SIZE,
  VirtioBlk,
  VirtioBlkDriver,
  type BlkRequestOptions,
  type BlkWriteZeroesOptions,
  type VirtioBlkCounters,
  type VirtioBlkDriverOptions,
  type VirtioBlkEvents,
  type VirtioBlkLimits,
} from './blk.js';
export {
  VIRTIO_CONSOLE_BUF_SIZE,
  VirtioConsole,
  VirtioConsoleDriver,
  type ConsoleSize,
  type VirtioConsoleCounters,
  type VirtioConsoleDriverOptions,
} from './console.js';
