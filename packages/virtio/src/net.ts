/**
 * virtio-net feature bits, `struct virtio_net_hdr` and `struct virtio_net_config`.
 *
 * @see include/uapi/linux/virtio_net.h
 * @see virtio 1.2 §5.1
 */
import { MicError } from '@mic/errors';

/** virtio-net feature bit numbers (virtio 1.2 §5.1.3). */
export const VIRTIO_NET_F = {
  CSUM: 0,
  GUEST_CSUM: 1,
  CTRL_GUEST_OFFLOADS: 2,
  MTU: 3,
  MAC: 5,
  GSO: 6,
  GUEST_TSO4: 7,
  GUEST_TSO6: 8,
  GUEST_ECN: 9,
  GUEST_UFO: 10,
  HOST_TSO4: 11,
  HOST_TSO6: 12,
  HOST_ECN: 13,
  HOST_UFO: 14,
  MRG_RXBUF: 15,
  STATUS: 16,
  CTRL_VQ: 17,
  CTRL_RX: 18,
  CTRL_VLAN: 19,
  GUEST_ANNOUNCE: 21,
  MQ: 22,
  CTRL_MAC_ADDR: 23,
  SPEED_DUPLEX: 63,
} as const;

/** `virtio_net_hdr.flags`. */
export const VIRTIO_NET_HDR_F = { NEEDS_CSUM: 1, DATA_VALID: 2, RSC_INFO: 4 } as const;
/** `virtio_net_hdr.gso_type`. */
export const VIRTIO_NET_HDR_GSO = { NONE: 0, TCPV4: 1, UDP: 3, TCPV6: 4, ECN: 0x80 } as const;
/** `virtio_net_config.status`. */
export const VIRTIO_NET_S = { LINK_UP: 1, ANNOUNCE: 2 } as const;

/** Bytes of the legacy header without `num_buffers`. */
export const VIRTIO_NET_HDR_SIZE = 10;
/** Bytes of the header with `num_buffers` (MRG_RXBUF or VERSION_1). */
export const VIRTIO_NET_HDR_MRG_RXBUF_SIZE = 12;

/** `struct virtio_net_hdr` / `virtio_net_hdr_mrg_rxbuf`. */
export interface VirtioNetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
  /** Only in the 12-byte header. */
  numBuffers?: number;
}

function checkHdrSize(size: number): void {
  if (size !== VIRTIO_NET_HDR_SIZE && size !== VIRTIO_NET_HDR_MRG_RXBUF_SIZE) {
    throw new MicError('EINVAL', `virtio_net_hdr size ${size} is neither 10 nor 12`);
  }
}

/** Encodes a header of `size` (10 or 12) bytes, little-endian. */
export function encodeNetHdr(hdr: VirtioNetHdr, size: 10 | 12 = VIRTIO_NET_HDR_SIZE): Uint8Array {
  checkHdrSize(size);
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint8(0, hdr.flags);
  dv.setUint8(1, hdr.gsoType);
  dv.setUint16(2, hdr.hdrLen, true);
  dv.setUint16(4, hdr.gsoSize, true);
  dv.setUint16(6, hdr.csumStart, true);
  dv.setUint16(8, hdr.csumOffset, true);
  if (size === 12) dv.setUint16(10, hdr.numBuffers ?? 1, true);
  return b;
}

/** Decodes a 10- or 12-byte header from the start of `bytes`. */
export function decodeNetHdr(bytes: Uint8Array, size: 10 | 12 = VIRTIO_NET_HDR_SIZE): VirtioNetHdr {
  checkHdrSize(size);
  if (bytes.length < size)
    throw new MicError('EINVAL', `virtio_net_hdr needs ${size} bytes, got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, size);
  const hdr: VirtioNetHdr = {
    flags: dv.getUint8(0),
    gsoType: dv.getUint8(1),
    hdrLen: dv.getUint16(2, true),
    gsoSize: dv.getUint16(4, true),
    csumStart: dv.getUint16(6, true),
    csumOffset: dv.getUint16(8, true),
  };
  if (size === 12) hdr.numBuffers = dv.getUint16(10, true);
  return hdr;
}

/** `struct virtio_net_config` (17 bytes up to `duplex`). */
export interface VirtioNetConfig {
  /** 6 bytes. */
  mac: Uint8Array;
  status: number;
  maxVirtqueuePairs: number;
  mtu: number;
  speed: number;
  duplex: number;
}

/** Bytes of `struct virtio_net_config` through `duplex`. */
export const VIRTIO_NET_CONFIG_SIZE = 17;

/** Encodes the net config space (17 bytes). */
export function encodeNetConfig(c: VirtioNetConfig): Uint8Array {
  if (c.mac.length !== 6) throw new MicError('EINVAL', `MAC address has ${c.mac.length} bytes, not 6`);
  const b = new Uint8Array(VIRTIO_NET_CONFIG_SIZE);
  const dv = new DataView(b.buffer);
  b.set(c.mac, 0);
  dv.setUint16(6, c.status, true);
  dv.setUint16(8, c.maxVirtqueuePairs, true);
  dv.setUint16(10, c.mtu, true);
  dv.setUint32(12, c.speed, true);
  dv.setUint8(16, c.duplex);
  return b;
}

/** Decodes the net config space. */
export function decodeNetConfig(bytes: Uint8Array): VirtioNetConfig {
  if (bytes.length < VIRTIO_NET_CONFIG_SIZE) {
    throw new MicError(
      'EINVAL',
      `virtio_net_config needs ${VIRTIO_NET_CONFIG_SIZE} bytes, got ${bytes.length}`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, VIRTIO_NET_CONFIG_SIZE);
  return {
    mac: bytes.slice(0, 6),
    status: dv.getUint16(6, true),
    maxVirtqueuePairs: dv.getUint16(8, true),
    mtu: dv.getUint16(10, true),
    speed: dv.getUint32(12, true),
    duplex: dv.getUint8(16),
  };
}
