/**
 * `@mic/virtio-backends`: the host ends of virtio devices (mpssd's backends, done properly),
 * written against a transport-neutral device interface ({@link BackendTransport}) with two
 * adapters: VOP (`@mic/vop-host` handles) and in-process (`@mic/virtio`'s `InProcessTransport`).
 *
 * @see samples/mic/mpssd/mpssd.c
 * @see virtio 1.2 §5.1 (net), §5.2 (block), §5.3 (console)
 */
export {
  checkDescription,
  isDriverOk,
  waitForDriverOk,
  type BackendChain,
  type BackendTransport,
  type BackendTransportEvent,
  type BackendTransportStats,
  type VirtioDeviceDescription,
} from './transport.js';
export { ServiceLoop, type ServeOptions, type VirtioBackend } from './service.js';
export { InProcessBackendTransport, type InProcessBackendOptions } from './in-process.js';
export { VopBackendTransport, type VopBackendOptions } from './vop.js';
export {
  BLOCK_DEFAULT_QUEUE_DEPTH,
  BLOCK_MAX_DISCARD_SECTORS,
  BLOCK_MAX_DISCARD_SEGMENTS,
  BlockBackend,
  VIRTIO_BLK_DISCARD_SEGMENT_SIZE,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
  type BlockBackendOptions,
  type BlockBackendStats,
} from './block.js';
export { openBlockFile, type BlockFile, type OpenBlockFile } from './block-file.js';
export {
  CONSOLE_RECEIVEQ,
  CONSOLE_TRANSMITQ,
  ConsoleBackend,
  type ConsoleBackendOptions,
  type ConsoleBackendStats,
} from './console.js';
export { openPty, type Pty } from './pty.js';
export {
  NET_CPU_COPY_BYTES,
  NET_DEFAULT_RX_QUEUE,
  NET_MAX_FRAME,
  NET_RECEIVEQ,
  NET_TRANSMITQ,
  NetBackend,
  completeChecksum,
  formatMac,
  parseMac,
  type NetBackendOptions,
  type NetBackendStats,
  type NetLinkOptions,
} from './net.js';
export type { FrameLink, FrameLinkStats } from './link.js';
export { ETH_HLEN, SwitchPort, VirtualSwitch, type VirtualSwitchStats } from './switch.js';
export {
  QEMU_STREAM_MAX_FRAME,
  QEMU_STREAM_PREFIX,
  QemuStreamLink,
  StreamFramer,
  encodeStreamFrame,
  type QemuStreamOptions,
} from './qemu-stream.js';
export {
  IFF_NO_PI,
  IFF_TAP,
  IFF_TUN_EXCL,
  TUNSETIFF,
  TapLink,
  micTapAddresses,
  type TapOptions,
} from './tap.js';
export {
  LINKTYPE_ETHERNET,
  PCAP_MAGIC,
  PCAP_SNAPLEN,
  PcapWriter,
  pcapFileHeader,
  pcapRecord,
  type PcapWriterOptions,
} from './pcap.js';
