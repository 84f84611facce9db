/**
 * virtio-blk feature bits, request header, status bytes and `struct virtio_blk_config`.
 *
 * @see include/uapi/linux/virtio_blk.h
 * @see virtio 1.2 §5.2
 */
import { MicError } from '@mic/errors';

/** virtio-blk feature bit numbers (virtio 1.2 §5.2.3). */
export const VIRTIO_BLK_F = {
  SIZE_MAX: 1,
  SEG_MAX: 2,
  GEOMETRY: 4,
  RO: 5,
  BLK_SIZE: 6,
  FLUSH: 9,
  TOPOLOGY: 10,
  CONFIG_WCE: 11,
  MQ: 12,
  DISCARD: 13,
  WRITE_ZEROES: 14,
} as const;

/** Request types (`virtio_blk_outhdr.type`). */
export const VIRTIO_BLK_T = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  DISCARD: 11,
  WRITE_ZEROES: 13,
} as const;

/** Status byte values written at the end of a request. */
export const VIRTIO_BLK_S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

/** Bytes of the request header `{ le32 type; le32 ioprio; le64 sector }`. */
export const VIRTIO_BLK_OUTHDR_SIZE = 16;
/** Bytes of the GET_ID serial string. */
export const VIRTIO_BLK_ID_BYTES = 20;
/** Sector size of `sector` and `capacity`. */
export const VIRTIO_BLK_SECTOR_SIZE = 512;

/** `struct virtio_blk_outhdr`. */
export interface VirtioBlkOutHdr {
  type: number;
  ioprio: number;
  /** Sector number (bigint: 64 bits). */
  sector: bigint;
}

/** Encodes a request header. */
export function encodeBlkOutHdr(h: VirtioBlkOutHdr): Uint8Array {
  const b = new Uint8Array(VIRTIO_BLK_OUTHDR_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, h.type, true);
  dv.setUint32(4, h.ioprio, true);
  dv.setBigUint64(8, h.sector, true);
  return b;
}

/** Decodes a request header from the first 16 bytes of `bytes`. */
export function decodeBlkOutHdr(bytes: Uint8Array): VirtioBlkOutHdr {
  if (bytes.length < VIRTIO_BLK_OUTHDR_SIZE) {
    throw new MicError('EINVAL', `virtio_blk_outhdr needs 16 bytes, got ${bytes.length}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, VIRTIO_BLK_OUTHDR_SIZE);
  return { type: dv.getUint32(0, true), ioprio: dv.getUint32(4, true), sector: dv.getBigUint64(8, true) };
}

/** `struct virtio_blk_config` as of Linux 5.9 (60 bytes). Absent fields encode as 0. */
export interface VirtioBlkConfig {
  /** Sectors of 512 bytes. */
  capacity: bigint;
  sizeMax?: number;
  segMax?: number;
  geometry?: { cylinders: number; heads: number; sectors: number };
  blkSize?: number;
  topology?: { physicalBlockExp: number; alignmentOffset: number; minIoSize: number; optIoSize: number };
  writeback?: number;
  numQueues?: number;
  maxDiscardSectors?: number;
  maxDiscardSeg?: number;
  discardSectorAlignment?: number;
  maxWriteZeroesSectors?: number;
  maxWriteZeroesSeg?: number;
  writeZeroesMayUnmap?: number;
}

/** Bytes of `struct virtio_blk_config` (Linux 5.9 headers). */
export const VIRTIO_BLK_CONFIG_SIZE = 60;

/** Offsets in `struct virtio_blk_config`. */
export const VIRTIO_BLK_CONFIG = {
  CAPACITY: 0,
  SIZE_MAX: 8,
  SEG_MAX: 12,
  CYLINDERS: 16,
  HEADS: 18,
  SECTORS: 19,
  BLK_SIZE: 20,
  PHYSICAL_BLOCK_EXP: 24,
  ALIGNMENT_OFFSET: 25,
  MIN_IO_SIZE: 26,
  OPT_IO_SIZE: 28,
  WRITEBACK: 32,
  NUM_QUEUES: 34,
  MAX_DISCARD_SECTORS: 36,
  MAX_DISCARD_SEG: 40,
  DISCARD_SECTOR_ALIGNMENT: 44,
  MAX_WRITE_ZEROES_SECTORS: 48,
  MAX_WRITE_ZEROES_SEG: 52,
  WRITE_ZEROES_MAY_UNMAP: 56,
} as const;

/** Encodes the block config space (60 bytes). */
export function encodeBlkConfig(c: VirtioBlkConfig): Uint8Array {
  const o = VIRTIO_BLK_CONFIG;
  const b = new Uint8Array(VIRTIO_BLK_CONFIG_SIZE);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(o.CAPACITY, c.capacity, true);
  dv.setUint32(o.SIZE_MAX, c.sizeMax ?? 0, true);
  dv.setUint32(o.SEG_MAX, c.segMax ?? 0, true);
  dv.setUint16(o.CYLINDERS, c.geometry?.cylinders ?? 0, true);
  dv.setUint8(o.HEADS, c.geometry?.heads ?? 0);
  dv.setUint8(o.SECTORS, c.geometry?.sectors ?? 0);
  dv.setUint32(o.BLK_SIZE, c.blkSize ?? 0, true);
  dv.setUint8(o.PHYSICAL_BLOCK_EXP, c.topology?.physicalBlockExp ?? 0);
  dv.setUint8(o.ALIGNMENT_OFFSET, c.topology?.alignmentOffset ?? 0);
  dv.setUint16(o.MIN_IO_SIZE, c.topology?.minIoSize ?? 0, true);
  dv.setUint32(o.OPT_IO_SIZE, c.topology?.optIoSize ?? 0, true);
  dv.setUint8(o.WRITEBACK, c.writeback ?? 0);
  dv.setUint16(o.NUM_QUEUES, c.numQueues ?? 0, true);
  dv.setUint32(o.MAX_DISCARD_SECTORS, c.maxDiscardSectors ?? 0, true);
  dv.setUint32(o.MAX_DISCARD_SEG, c.maxDiscardSeg ?? 0, true);
  dv.setUint32(o.DISCARD_SECTOR_ALIGNMENT, c.discardSectorAlignment ?? 0, true);
  dv.setUint32(o.MAX_WRITE_ZEROES_SECTORS, c.maxWriteZeroesSectors ?? 0, true);
  dv.setUint32(o.MAX_WRITE_ZEROES_SEG, c.maxWriteZeroesSeg ?? 0, true);
  dv.setUint8(o.WRITE_ZEROES_MAY_UNMAP, c.writeZeroesMayUnmap ?? 0);
  return b;
}

/** Decodes the block config space (all 60 bytes). */
export function decodeBlkConfig(bytes: Uint8Array): Required<VirtioBlkConfig> {
  if (bytes.length < VIRTIO_BLK_CONFIG_SIZE) {
    throw new MicError(
      'EINVAL',
      `virtio_blk_config needs ${VIRTIO_BLK_CONFIG_SIZE} bytes, got ${bytes.length}`,
    );
  }
  const o = VIRTIO_BLK_CONFIG;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, VIRTIO_BLK_CONFIG_SIZE);
  return {
    capacity: dv.getBigUint64(o.CAPACITY, true),
    sizeMax: dv.getUint32(o.SIZE_MAX, true),
    segMax: dv.getUint32(o.SEG_MAX, true),
    geometry: {
      cylinders: dv.getUint16(o.CYLINDERS, true),
      heads: dv.getUint8(o.HEADS),
      sectors: dv.getUint8(o.SECTORS),
    },
    blkSize: dv.getUint32(o.BLK_SIZE, true),
    topology: {
      physicalBlockExp: dv.getUint8(o.PHYSICAL_BLOCK_EXP),
      alignmentOffset: dv.getUint8(o.ALIGNMENT_OFFSET),
      minIoSize: dv.getUint16(o.MIN_IO_SIZE, true),
      optIoSize: dv.getUint32(o.OPT_IO_SIZE, true),
    },
    writeback: dv.getUint8(o.WRITEBACK),
    numQueues: dv.getUint16(o.NUM_QUEUES, true),
    maxDiscardSectors: dv.getUint32(o.MAX_DISCARD_SECTORS, true),
    maxDiscardSeg: dv.getUint32(o.MAX_DISCARD_SEG, true),
    discardSectorAlignment: dv.getUint32(o.DISCARD_SECTOR_ALIGNMENT, true),
    maxWriteZeroesSectors: dv.getUint32(o.MAX_WRITE_ZEROES_SECTORS, true),
    maxWriteZeroesSeg: dv.getUint32(o.MAX_WRITE_ZEROES_SEG, true),
    writeZeroesMayUnmap: dv.getUint8(o.WRITE_ZEROES_MAY_UNMAP),
  };
}

/**
 * The 20-byte GET_ID answer: the serial as ASCII, NUL-padded, not NUL-terminated when it is 20
 * bytes long (virtio 1.2 §5.2.6.1). Longer serials are cut.
 */
export function encodeBlkSerial(serial: string): Uint8Array {
  const out = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  for (let i = 0; i < Math.min(serial.length, VIRTIO_BLK_ID_BYTES); i++) {
    const c = serial.charCodeAt(i);
    if (c > 0x7e || c < 0x20)
      throw new MicError('EINVAL', `serial ${JSON.stringify(serial)} is not printable ASCII`);
    out[i] = c;
  }
  return out;
}
