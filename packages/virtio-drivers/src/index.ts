export {
  VirtioDriverBase,
  type BoundDevice,
  type VirtioDriverEvents,
  type WaitForDeviceOptions,
} from './common.js';
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
export {
  ETH_HLEN,
  VIRTIO_NET_MAX_FRAME,
  VIRTIO_NET_MERGEABLE_BUF_SIZE,
  VIRTIO_NET_RX_COALESCE_FRAMES,
  VIRTIO_NET_RX_COALESCE_MS,
  VirtioNet,
  VirtioNetDriver,
  formatMac,
  parseMac,
  type NetFrameInfo,
  type NetFramesOptions,
  type NetSendOptions,
  type VirtioNetCounters,
  type VirtioNetDriverOptions,
  type VirtioNetEvents,
} from './net.js';
export {
  ETH_P_ARP,
  ETH_P_IP,
  ETH_ZLEN,
  NetResponder,
  inetChecksum,
  parseIpv4,
  respond,
  type NetResponderCounters,
  type NetResponderOptions,
} from './responder.js';
