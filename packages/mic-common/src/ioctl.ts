/**
 * The user-space ABI of `/dev/vop_virtio<N>`: `struct mic_copy_desc` (LP64 and ILP32 layouts)
 * and the ioctl numbers.
 *
 * @see include/uapi/linux/mic_ioctl.h
 */
import { checkInt } from '@mic/errors';
import type { Memory } from '@mic/memory';

/**
 * A C data model: `lp64` (64-bit user space, 8-byte pointers) or `ilp32` (4-byte pointers).
 * The kernel has no `compat_ioctl`, so only `lp64` user space talks to a 64-bit kernel.
 */
export type MicAbi = 'lp64' | 'ilp32';

/**
 * Field offsets and `sizeof(struct mic_copy_desc)` per data model.
 *
 * @see include/uapi/linux/mic_ioctl.h `struct mic_copy_desc`
 */
export const MIC_COPY_DESC_OFFSETS = {
  lp64: { iov: 0, iovcnt: 8, vrIdx: 12, updateUsed: 13, outLen: 16, size: 24 },
  ilp32: { iov: 0, iovcnt: 4, vrIdx: 8, updateUsed: 9, outLen: 12, size: 16 },
} as const;

/**
 * Decoded `struct mic_copy_desc`. `iov` is the user pointer to the iovec array (exact below
 * 2^53); `outLen` is the only field the kernel writes back.
 *
 * @see include/uapi/linux/mic_ioctl.h `struct mic_copy_desc`
 */
export interface MicCopyDesc {
  readonly iov: number;
  readonly iovcnt: number;
  readonly vrIdx: number;
  readonly updateUsed: number;
  readonly outLen: number;
}

/**
 * Reads a `mic_copy_desc` at `offset` in the given data model (default `lp64`).
 *
 * @see include/uapi/linux/mic_ioctl.h `struct mic_copy_desc`
 */
export function readCopyDesc(mem: Memory, offset: number, abi: MicAbi = 'lp64'): MicCopyDesc {
  const o = MIC_COPY_DESC_OFFSETS[abi];
  return {
    iov: abi === 'lp64' ? mem.readU64(offset + o.iov) : mem.readU32(offset + o.iov),
    iovcnt: mem.readU32(offset + o.iovcnt),
    vrIdx: mem.readU8(offset + o.vrIdx),
    updateUsed: mem.readU8(offset + o.updateUsed),
    outLen: mem.readU32(offset + o.outLen),
  };
}

/**
 * Writes a `mic_copy_desc` at `offset` in the given data model (default `lp64`); padding is
 * left alone. Throws `EINVAL` for a value that does not fit its field, before writing.
 *
 * @see include/uapi/linux/mic_ioctl.h `struct mic_copy_desc`
 */
export function writeCopyDesc(mem: Memory, offset: number, v: MicCopyDesc, abi: MicAbi = 'lp64'): void {
  checkInt('iov', v.iov, 0, abi === 'lp64' ? Number.MAX_SAFE_INTEGER : 0xffffffff);
  checkInt('iovcnt', v.iovcnt, 0, 0xffffffff);
  checkInt('vr_idx', v.vrIdx, 0, 0xff);
  checkInt('update_used', v.updateUsed, 0, 0xff);
  checkInt('out_len', v.outLen, 0, 0xffffffff);
  const o = MIC_COPY_DESC_OFFSETS[abi];
  if (abi === 'lp64') mem.writeU64(offset + o.iov, v.iov);
  else mem.writeU32(offset + o.iov, v.iov);
  mem.writeU32(offset + o.iovcnt, v.iovcnt);
  mem.writeU8(offset + o.vrIdx, v.vrIdx);
  mem.writeU8(offset + o.updateUsed, v.updateUsed);
  mem.writeU32(offset + o.outLen, v.outLen);
}

/**
 * `_IOWR(type, nr, size)`: an ioctl number with direction read|write (3 << 30), the argument
 * size in bits 16–29, the type character in bits 8–15 and `nr` in bits 0–7.
 *
 * @see include/uapi/asm-generic/ioctl.h `_IOWR`
 */
export function ioctlIowr(type: string, nr: number, size: number): number {
  checkInt('ioctl type', type.length === 1 ? type.charCodeAt(0) : -1, 0, 0xff);
  checkInt('ioctl nr', nr, 0, 0xff);
  checkInt('ioctl size', size, 0, 0x3fff);
  return ((3 << 30) | (size << 16) | (type.charCodeAt(0) << 8) | nr) >>> 0;
}

/**
 * `MIC_VIRTIO_ADD_DEVICE = _IOWR('s', 1, struct mic_device_desc *)` (LP64: the size field is
 * the 8-byte pointer). Argument: a whole desc block, `mic_desc_size` bytes.
 *
 * @see include/uapi/linux/mic_ioctl.h `MIC_VIRTIO_ADD_DEVICE`
 */
export const MIC_VIRTIO_ADD_DEVICE = 0xc0087301;

/**
 * `MIC_VIRTIO_COPY_DESC = _IOWR('s', 2, struct mic_copy_desc *)` (LP64). Argument: a
 * `mic_copy_desc`.
 *
 * @see include/uapi/linux/mic_ioctl.h `MIC_VIRTIO_COPY_DESC`
 */
export const MIC_VIRTIO_COPY_DESC = 0xc0087302;

/**
 * `MIC_VIRTIO_CONFIG_CHANGE = _IOWR('s', 5, __u8 *)` (LP64). Argument: `config_len` bytes of
 * new config space.
 *
 * @see include/uapi/linux/mic_ioctl.h `MIC_VIRTIO_CONFIG_CHANGE`
 */
export const MIC_VIRTIO_CONFIG_CHANGE = 0xc0087305;

/**
 * The same three ioctl numbers as an ILP32 build computes them (4-byte pointer in the size
 * field). A 64-bit kernel does not accept them: there is no `compat_ioctl`.
 *
 * @see include/uapi/linux/mic_ioctl.h
 */
export const MIC_VIRTIO_IOCTL_ILP32 = {
  ADD_DEVICE: 0xc0047301,
  COPY_DESC: 0xc0047302,
  CONFIG_CHANGE: 0xc0047305,
} as const;
