/**
 * One device entry of the device page: `struct mic_device_desc`, the variable part after it
 * (`mic_vqconfig[num_vq]`, host features, guest acks, config space) and `struct
 * mic_device_ctrl`, with the size helpers that give each part's offset.
 *
 * ```
 * desc (8) | mic_vqconfig[num_vq] (24 each) | host features [feature_len] |
 * guest acks [feature_len] | config [config_len] | pad to 8 | mic_device_ctrl (16)
 * ```
 *
 * @see include/uapi/linux/mic_common.h
 */
import { MicError, checkInt } from '@mic/errors';
import { BufferMemory, type Memory } from '@mic/memory';
import { readS8 } from './bytes.js';
import { MIC_DB_NONE, MIC_MAX_DESC_BLK_SIZE, MIC_MAX_VRINGS } from './constants.js';

/**
 * Field offsets of `struct mic_device_desc` (8 bytes, aligned(8)).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc`
 */
export const MIC_DEVICE_DESC_OFFSETS = {
  /** `__s8 type`: virtio device id; 0 ends the list, -1 marks a removed entry. */
  type: 0,
  /** `__u8 num_vq` */
  numVq: 1,
  /** `__u8 feature_len`: bytes of feature bits; the area holds twice this. */
  featureLen: 2,
  /** `__u8 config_len`: bytes of device config space. */
  configLen: 3,
  /** `__u8 status`: virtio status byte, written by the card. */
  status: 4,
  /** `__le64 config[0]`: start of the variable part. */
  config: 8,
} as const;

/**
 * `sizeof(struct mic_device_desc)`.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc`
 */
export const MIC_DEVICE_DESC_SIZE = 8;

/**
 * Field offsets of `struct mic_vqconfig` (24 bytes, aligned(8)).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_vqconfig`
 */
export const MIC_VQCONFIG_OFFSETS = {
  /** `__le64 address`: card-visible address of the host vring block. Written by the host. */
  address: 0,
  /** `__le64 used_address`: address of the card-resident used ring. Written by the card. */
  usedAddress: 8,
  /** `__le16 num`: entries in the vring. */
  num: 16,
} as const;

/**
 * `sizeof(struct mic_vqconfig)`.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_vqconfig`
 */
export const MIC_VQCONFIG_SIZE = 24;

/**
 * Field offsets of `struct mic_device_ctrl` (16 bytes, aligned(8)).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_ctrl`
 */
export const MIC_DEVICE_CTRL_OFFSETS = {
  /** `__le64 vdev`: opaque card handle of its device; never to be dereferenced. */
  vdev: 0,
  /** `__u8 config_change`: `MIC_VIRTIO_PARAM_DEV_REMOVE` (1) or `MIC_VIRTIO_PARAM_CONFIG_CHANGED` (2). */
  configChange: 8,
  /** `__u8 vdev_reset`: set to 1 by the card when its virtio device was reset. */
  vdevReset: 9,
  /** `__u8 guest_ack`: set to 1 by the card to ack a command. */
  guestAck: 10,
  /** `__u8 host_ack`: set to 1 by the host once a reset is done. */
  hostAck: 11,
  /** `__u8 used_address_updated`: set to 1 by the card after relocating the used rings. */
  usedAddressUpdated: 12,
  /** `__s8 c2h_vdev_db`: doorbell the card rings; set by the host; -1 none. */
  c2hVdevDb: 13,
  /** `__s8 h2c_vdev_db`: doorbell the host rings; set by the card; -1 none. */
  h2cVdevDb: 14,
} as const;

/**
 * `sizeof(struct mic_device_ctrl)`.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_ctrl`
 */
export const MIC_DEVICE_CTRL_SIZE = 16;

/**
 * The three `mic_device_desc` fields that fix the size of an entry.
 *
 * @see include/uapi/linux/mic_common.h `mic_desc_size`
 */
export interface MicDescHeader {
  readonly numVq: number;
  readonly featureLen: number;
  readonly configLen: number;
}

/**
 * Decoded `struct mic_device_desc`.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc`
 */
export interface MicDeviceDesc extends MicDescHeader {
  /** `__s8`: 0 ends the list, -1 is a removed entry, otherwise the virtio device id. */
  readonly type: number;
  readonly status: number;
}

/**
 * Decoded `struct mic_vqconfig`. Addresses are exact below 2^53 (see `Memory.readU64`).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_vqconfig`
 */
export interface MicVqconfig {
  readonly address: number;
  readonly usedAddress: number;
  readonly num: number;
}

/**
 * Decoded `struct mic_device_ctrl`. Doorbells are signed, -1 none. `vdev` is exact below 2^53
 * (see `Memory.readU64`); it is an opaque handle.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_ctrl`
 */
export interface MicDeviceCtrl {
  readonly vdev: number;
  readonly configChange: number;
  readonly vdevReset: number;
  readonly guestAck: number;
  readonly hostAck: number;
  readonly usedAddressUpdated: number;
  readonly c2hVdevDb: number;
  readonly h2cVdevDb: number;
}

/**
 * `mic_desc_size(d)`: `8 + num_vq*24 + feature_len*2 + config_len`, the bytes ADD_DEVICE copies.
 *
 * @see include/uapi/linux/mic_common.h `mic_desc_size`
 */
export function micDescSize(d: MicDescHeader): number {
  return MIC_DEVICE_DESC_SIZE + d.numVq * MIC_VQCONFIG_SIZE + d.featureLen * 2 + d.configLen;
}

/**
 * `mic_aligned_desc_size(d)`: {@link micDescSize} rounded up to 8; also the offset of the
 * `mic_device_ctrl` from the desc.
 *
 * @see include/uapi/linux/mic_common.h `mic_aligned_desc_size`
 */
export function micAlignedDescSize(d: MicDescHeader): number {
  return (micDescSize(d) + 7) & ~7;
}

/**
 * `mic_total_desc_size(d)`: {@link micAlignedDescSize} + 16, the stride to the next entry.
 *
 * @see include/uapi/linux/mic_common.h `mic_total_desc_size`
 */
export function micTotalDescSize(d: MicDescHeader): number {
  return micAlignedDescSize(d) + MIC_DEVICE_CTRL_SIZE;
}

/**
 * Offset from the desc of `mic_vqconfig[index]` (`mic_vq_config(d) + index`).
 *
 * @see include/uapi/linux/mic_common.h `mic_vq_config`
 */
export function micVqConfigOffset(index = 0): number {
  return MIC_DEVICE_DESC_SIZE + index * MIC_VQCONFIG_SIZE;
}

/**
 * Offset from the desc of the host feature bytes (`mic_vq_features(d)`).
 *
 * @see include/uapi/linux/mic_common.h `mic_vq_features`
 */
export function micVqFeaturesOffset(d: MicDescHeader): number {
  return micVqConfigOffset(d.numVq);
}

/**
 * Offset from the desc of the guest ack bytes: `mic_vq_features(d) + feature_len`.
 *
 * @see include/uapi/linux/mic_common.h `mic_vq_features`
 */
export function micGuestAcksOffset(d: MicDescHeader): number {
  return micVqFeaturesOffset(d) + d.featureLen;
}

/**
 * Offset from the desc of the device config space (`mic_vq_configspace(d)`).
 *
 * @see include/uapi/linux/mic_common.h `mic_vq_configspace`
 */
export function micVqConfigspaceOffset(d: MicDescHeader): number {
  return micVqFeaturesOffset(d) + d.featureLen * 2;
}

/**
 * Offset from the desc of its `mic_device_ctrl`: `mic_aligned_desc_size(d)`.
 *
 * @see include/uapi/linux/mic_common.h `mic_aligned_desc_size`
 */
export function micDeviceCtrlOffset(d: MicDescHeader): number {
  return micAlignedDescSize(d);
}

/**
 * Why `d` cannot be a device page entry, or `undefined` when it can: a field that is not a u8,
 * `num_vq` above {@link MIC_MAX_VRINGS}, or an aligned size above {@link MIC_MAX_DESC_BLK_SIZE}.
 */
export function descHeaderProblem(d: MicDescHeader): string | undefined {
  for (const [name, v] of [
    ['num_vq', d.numVq],
    ['feature_len', d.featureLen],
    ['config_len', d.configLen],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) return `${name} ${String(v)} is not a u8`;
  }
  if (d.numVq > MIC_MAX_VRINGS) return `num_vq ${d.numVq} exceeds MIC_MAX_VRINGS ${MIC_MAX_VRINGS}`;
  const aligned = micAlignedDescSize(d);
  if (aligned > MIC_MAX_DESC_BLK_SIZE) {
    return `aligned desc size ${aligned} exceeds MIC_MAX_DESC_BLK_SIZE ${MIC_MAX_DESC_BLK_SIZE}`;
  }
  return undefined;
}

/**
 * Checks the limits the host applies to an ADD_DEVICE header: `num_vq` ≤ {@link MIC_MAX_VRINGS}
 * and `mic_aligned_desc_size` ≤ {@link MIC_MAX_DESC_BLK_SIZE}. Throws `EINVAL` naming the value.
 *
 * @see include/uapi/linux/mic_common.h `MIC_MAX_DESC_BLK_SIZE`
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_ioctl` (MIC_VIRTIO_ADD_DEVICE)
 */
export function checkDescHeader(d: MicDescHeader): void {
  const problem = descHeaderProblem(d);
  if (problem !== undefined) {
    throw new MicError('EINVAL', `device desc: ${problem}`, {
      details: { numVq: d.numVq, featureLen: d.featureLen, configLen: d.configLen },
    });
  }
}

/**
 * Reads the `mic_device_desc` at `offset`. Plain reads: to read `type` as a publish flag use
 * `loadDpType` (acquire).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc`
 */
export function readDeviceDesc(mem: Memory, offset: number): MicDeviceDesc {
  const o = MIC_DEVICE_DESC_OFFSETS;
  return {
    type: readS8(mem, offset + o.type),
    numVq: mem.readU8(offset + o.numVq),
    featureLen: mem.readU8(offset + o.featureLen),
    configLen: mem.readU8(offset + o.configLen),
    status: mem.readU8(offset + o.status),
  };
}

/**
 * Writes the five fields of a `mic_device_desc` at `offset` with plain writes (the padding is
 * left alone). Throws `EINVAL` for a value that does not fit its field, before writing. To add
 * an entry to a live device page use `copyDpEntry` and `publishDpEntry`, which order the writes.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc`
 */
export function writeDeviceDesc(mem: Memory, offset: number, d: MicDeviceDesc): void {
  checkInt('type', d.type, -128, 127);
  checkInt('num_vq', d.numVq, 0, 0xff);
  checkInt('feature_len', d.featureLen, 0, 0xff);
  checkInt('config_len', d.configLen, 0, 0xff);
  checkInt('status', d.status, 0, 0xff);
  const o = MIC_DEVICE_DESC_OFFSETS;
  mem.writeU8(offset + o.type, d.type & 0xff);
  mem.writeU8(offset + o.numVq, d.numVq);
  mem.writeU8(offset + o.featureLen, d.featureLen);
  mem.writeU8(offset + o.configLen, d.configLen);
  mem.writeU8(offset + o.status, d.status);
}

/**
 * Reads the `mic_vqconfig` at `offset`.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_vqconfig`
 */
export function readVqconfig(mem: Memory, offset: number): MicVqconfig {
  const o = MIC_VQCONFIG_OFFSETS;
  return {
    address: mem.readU64(offset + o.address),
    usedAddress: mem.readU64(offset + o.usedAddress),
    num: mem.readU16(offset + o.num),
  };
}

/**
 * Writes a `mic_vqconfig` at `offset` (the padding is left alone). Throws `EINVAL` for an
 * address that is not a non-negative safe integer or a `num` that is not a u16.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_vqconfig`
 */
export function writeVqconfig(mem: Memory, offset: number, v: MicVqconfig): void {
  checkInt('address', v.address, 0, Number.MAX_SAFE_INTEGER);
  checkInt('used_address', v.usedAddress, 0, Number.MAX_SAFE_INTEGER);
  checkInt('num', v.num, 0, 0xffff);
  const o = MIC_VQCONFIG_OFFSETS;
  mem.writeU64(offset + o.address, v.address);
  mem.writeU64(offset + o.usedAddress, v.usedAddress);
  mem.writeU16(offset + o.num, v.num);
}

/**
 * Reads the `mic_device_ctrl` at `offset`.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_ctrl`
 */
export function readDeviceCtrl(mem: Memory, offset: number): MicDeviceCtrl {
  const o = MIC_DEVICE_CTRL_OFFSETS;
  return {
    vdev: mem.readU64(offset + o.vdev),
    configChange: mem.readU8(offset + o.configChange),
    vdevReset: mem.readU8(offset + o.vdevReset),
    guestAck: mem.readU8(offset + o.guestAck),
    hostAck: mem.readU8(offset + o.hostAck),
    usedAddressUpdated: mem.readU8(offset + o.usedAddressUpdated),
    c2hVdevDb: readS8(mem, offset + o.c2hVdevDb),
    h2cVdevDb: readS8(mem, offset + o.h2cVdevDb),
  };
}

/**
 * Writes every field of a `mic_device_ctrl` at `offset` (the padding is left alone). Throws
 * `EINVAL` for a value that does not fit its field, before writing.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_ctrl`
 */
export function writeDeviceCtrl(mem: Memory, offset: number, c: MicDeviceCtrl): void {
  checkInt('vdev', c.vdev, 0, Number.MAX_SAFE_INTEGER);
  checkInt('config_change', c.configChange, 0, 0xff);
  checkInt('vdev_reset', c.vdevReset, 0, 0xff);
  checkInt('guest_ack', c.guestAck, 0, 0xff);
  checkInt('host_ack', c.hostAck, 0, 0xff);
  checkInt('used_address_updated', c.usedAddressUpdated, 0, 0xff);
  checkInt('c2h_vdev_db', c.c2hVdevDb, -128, 127);
  checkInt('h2c_vdev_db', c.h2cVdevDb, -128, 127);
  const o = MIC_DEVICE_CTRL_OFFSETS;
  mem.writeU64(offset + o.vdev, c.vdev);
  mem.writeU8(offset + o.configChange, c.configChange);
  mem.writeU8(offset + o.vdevReset, c.vdevReset);
  mem.writeU8(offset + o.guestAck, c.guestAck);
  mem.writeU8(offset + o.hostAck, c.hostAck);
  mem.writeU8(offset + o.usedAddressUpdated, c.usedAddressUpdated);
  mem.writeU8(offset + o.c2hVdevDb, c.c2hVdevDb & 0xff);
  mem.writeU8(offset + o.h2cVdevDb, c.h2cVdevDb & 0xff);
}

/**
 * Resets the `mic_device_ctrl` at `offset` for a new device, as the host does before
 * publishing it: every flag 0 and both doorbells -1. `vdev` is left alone, like the kernel.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_init_device_ctrl`
 * @see include/uapi/linux/mic_common.h `struct mic_device_ctrl`
 */
export function deviceCtrlInit(mem: Memory, offset: number): void {
  const o = MIC_DEVICE_CTRL_OFFSETS;
  mem.writeU8(offset + o.configChange, 0);
  mem.writeU8(offset + o.guestAck, 0);
  mem.writeU8(offset + o.vdevReset, 0);
  mem.writeU8(offset + o.hostAck, 0);
  mem.writeU8(offset + o.usedAddressUpdated, 0);
  mem.writeU8(offset + o.c2hVdevDb, MIC_DB_NONE & 0xff);
  mem.writeU8(offset + o.h2cVdevDb, MIC_DB_NONE & 0xff);
}

/**
 * Most feature bits a MIC device can carry: the card reads at most 8 bytes (a u64).
 *
 * @see drivers/misc/mic/vop/vop_main.c `vop_get_features`
 */
export const MIC_MAX_FEATURE_BITS = 64;

/**
 * The feature bits that `feature_len` bytes can carry: bits below `min(feature_len, 8) * 8`.
 * With mpssd's `feature_len = 4` that is bits 0–31 only (so `VIRTIO_F_VERSION_1`, bit 32,
 * can never be offered or acked).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc` (`feature_len`)
 */
export function micFeatureMask(featureLen: number): bigint {
  checkInt('feature_len', featureLen, 0, 0xff);
  return (1n << BigInt(Math.min(featureLen, 8) * 8)) - 1n;
}

/**
 * Decodes feature bytes (byte `i/8`, bit `i%8`, LSB first) into bits. Reads at most 8 bytes.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc` (`feature_len`)
 */
export function featureBytesToBits(bytes: Uint8Array): bigint {
  let bits = 0n;
  const n = Math.min(bytes.length, 8);
  for (let i = n - 1; i >= 0; i--) bits = (bits << 8n) | BigInt(bytes[i] ?? 0);
  return bits;
}

function checkFeatureBits(bits: bigint, featureLen: number): void {
  const mask = micFeatureMask(featureLen);
  if (bits < 0n || (bits & ~mask) !== 0n) {
    throw new MicError(
      'EINVAL',
      `feature bits 0x${bits.toString(16)} do not fit in feature_len ${featureLen} (mask 0x${mask.toString(16)})`,
      { details: { bits, featureLen } },
    );
  }
}

/**
 * Encodes feature bits into `featureLen` bytes (byte `i/8`, bit `i%8`). Throws `EINVAL` when a
 * bit does not fit (see {@link micFeatureMask}); mask first to drop such bits like the card.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc` (`feature_len`)
 */
export function featureBitsToBytes(bits: bigint, featureLen: number): Uint8Array {
  checkFeatureBits(bits, featureLen);
  const out = new Uint8Array(featureLen);
  for (let i = 0; i < Math.min(featureLen, 8); i++) out[i] = Number((bits >> BigInt(i * 8)) & 0xffn);
  return out;
}

/**
 * Reads the feature half (host features or guest acks) of `featureLen` bytes at `offset` as
 * bits, like the card's `get_features`: at most 64 bits.
 *
 * @see drivers/misc/mic/vop/vop_main.c `vop_get_features`
 * @see include/uapi/linux/mic_common.h `mic_vq_features`
 */
export function readFeatureBits(mem: Memory, offset: number, featureLen: number): bigint {
  checkInt('feature_len', featureLen, 0, 0xff);
  const bytes = new Uint8Array(Math.min(featureLen, 8));
  mem.read(offset, bytes);
  return featureBytesToBits(bytes);
}

/**
 * Writes a feature half of `featureLen` bytes at `offset`: clears all of them, then sets the
 * bits (like the card's `finalize_features` for the guest acks). Throws `EINVAL` before writing
 * when a bit does not fit (see {@link micFeatureMask}).
 *
 * @see drivers/misc/mic/vop/vop_main.c `vop_finalize_features`
 * @see include/uapi/linux/mic_common.h `mic_vq_features`
 */
export function writeFeatureBits(mem: Memory, offset: number, featureLen: number, bits: bigint): void {
  mem.write(offset, featureBitsToBytes(bits, featureLen));
}

/**
 * A whole device entry block as ADD_DEVICE passes it: desc, vqconfigs, both feature halves and
 * the config space (`mic_desc_size` bytes). The header fields come from the array lengths.
 *
 * @see include/uapi/linux/mic_ioctl.h `MIC_VIRTIO_ADD_DEVICE`
 * @see include/uapi/linux/mic_common.h `mic_desc_size`
 */
export interface MicDescBlock {
  /** `__s8` virtio device id. */
  readonly type: number;
  readonly status: number;
  readonly vqconfigs: readonly MicVqconfig[];
  /** `feature_len` bytes. */
  readonly hostFeatures: Uint8Array;
  /** `feature_len` bytes. */
  readonly guestAcks: Uint8Array;
  /** `config_len` bytes. */
  readonly config: Uint8Array;
}

/** Input of {@link encodeDescBlock}: `status` defaults to 0, `guestAcks` to zeros. */
export interface MicDescBlockInit extends Omit<MicDescBlock, 'status' | 'guestAcks'> {
  readonly status?: number;
  readonly guestAcks?: Uint8Array;
}

/**
 * Encodes a device entry block (`mic_desc_size` bytes; padding zero). Throws `EINVAL` when the
 * arrays do not fit the u8 header fields or the two feature halves differ in length.
 *
 * @example
 * // mpssd's console template: type 3, two 128-entry queues, feature_len 4, 12 config bytes
 * const block = encodeDescBlock({
 *   type: VIRTIO_ID_CONSOLE,
 *   vqconfigs: [0, 1].map(() => ({ address: 0, usedAddress: 0, num: 128 })),
 *   hostFeatures: featureBitsToBytes(0n, 4),
 *   config: new Uint8Array(12),
 * });
 * @see include/uapi/linux/mic_common.h `mic_desc_size`
 */
export function encodeDescBlock(block: MicDescBlockInit): Uint8Array {
  const featureLen = block.hostFeatures.length;
  const guestAcks = block.guestAcks ?? new Uint8Array(featureLen);
  if (guestAcks.length !== featureLen) {
    throw new MicError(
      'EINVAL',
      `guest acks have ${guestAcks.length} bytes but host features have ${featureLen}`,
      { details: { featureLen, guestAcks: guestAcks.length } },
    );
  }
  const header = { numVq: block.vqconfigs.length, featureLen, configLen: block.config.length };
  checkInt('num_vq', header.numVq, 0, 0xff);
  checkInt('feature_len', header.featureLen, 0, 0xff);
  checkInt('config_len', header.configLen, 0, 0xff);
  const size = micDescSize(header);
  const mem = BufferMemory.allocate(size);
  writeDeviceDesc(mem, 0, { ...header, type: block.type, status: block.status ?? 0 });
  block.vqconfigs.forEach((v, i) => writeVqconfig(mem, micVqConfigOffset(i), v));
  mem.write(micVqFeaturesOffset(header), block.hostFeatures);
  mem.write(micGuestAcksOffset(header), guestAcks);
  mem.write(micVqConfigspaceOffset(header), block.config);
  return mem.bytes(0, size);
}

/**
 * Reads the device entry block at `offset` (any memory: the device page or a copy). Every
 * access is bounds-checked by `mem` (`EFAULT`).
 *
 * @see include/uapi/linux/mic_common.h `mic_desc_size`
 */
export function readDescBlock(mem: Memory, offset: number): MicDescBlock {
  const d = readDeviceDesc(mem, offset);
  const copy = (at: number, len: number): Uint8Array => {
    const out = new Uint8Array(len);
    mem.read(offset + at, out);
    return out;
  };
  const vqconfigs: MicVqconfig[] = [];
  for (let i = 0; i < d.numVq; i++) vqconfigs.push(readVqconfig(mem, offset + micVqConfigOffset(i)));
  return {
    type: d.type,
    status: d.status,
    vqconfigs,
    hostFeatures: copy(micVqFeaturesOffset(d), d.featureLen),
    guestAcks: copy(micGuestAcksOffset(d), d.featureLen),
    config: copy(micVqConfigspaceOffset(d), d.configLen),
  };
}

/**
 * Decodes a device entry block from bytes (e.g. an ADD_DEVICE argument). Throws `EINVAL` when
 * `bytes` is shorter than the header or than the `mic_desc_size` the header gives.
 *
 * @see include/uapi/linux/mic_common.h `mic_desc_size`
 */
export function decodeDescBlock(bytes: Uint8Array): MicDescBlock {
  const mem = new BufferMemory(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  checkBlockLength(mem);
  return readDescBlock(mem, 0);
}

/** Throws `EINVAL` unless `mem` holds a whole desc block from offset 0; returns its header. */
export function checkBlockLength(mem: Memory): MicDeviceDesc {
  if (mem.byteLength < MIC_DEVICE_DESC_SIZE) {
    throw new MicError(
      'EINVAL',
      `desc block of ${mem.byteLength} bytes is shorter than the ${MIC_DEVICE_DESC_SIZE}-byte header`,
      { details: { length: mem.byteLength } },
    );
  }
  const d = readDeviceDesc(mem, 0);
  const size = micDescSize(d);
  if (mem.byteLength < size) {
    throw new MicError(
      'EINVAL',
      `desc block of ${mem.byteLength} bytes is shorter than its mic_desc_size ${size}`,
      { details: { length: mem.byteLength, descSize: size } },
    );
  }
  return d;
}
