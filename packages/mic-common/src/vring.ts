/**
 * The vring memory block VOP allocates per virtqueue: a legacy split ring laid out with
 * `vring_init(num, MIC_VIRTIO_RING_ALIGN)`, then `struct _mic_vring_info` at
 * `round_up(vring_size, 4)`, the whole rounded up to a page. The split ring itself (`vring_size`,
 * the offsets of its parts) is `@mic/virtio`'s `vringLayout`, the one copy of that formula; this
 * module adds what VOP puts around it.
 *
 * @see include/uapi/linux/mic_common.h `struct _mic_vring_info`, `MIC_VIRTIO_RING_ALIGN`
 * @see include/uapi/linux/virtio_ring.h `vring_size`
 */
import { MicError, checkInt } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { alignUp, vringLayout } from '@mic/virtio';
import { MIC_MAGIC, MIC_VIRTIO_RING_ALIGN } from './constants.js';

/** Page size of the host and the card (x86-64): vring blocks are whole pages. */
const PAGE_SIZE = 4096;

/**
 * Field offsets of `struct _mic_vring_info` (8 bytes).
 *
 * @see include/uapi/linux/mic_common.h `struct _mic_vring_info`
 */
export const MIC_VRING_INFO_OFFSETS = {
  /** `__u16 avail_idx`: the host's last seen avail index, for the user-space backend. */
  availIdx: 0,
  /** `__le32 magic`: {@link micVringMagic} of the vring, checked by the card. */
  magic: 4,
} as const;

/**
 * `sizeof(struct _mic_vring_info)`.
 *
 * @see include/uapi/linux/mic_common.h `struct _mic_vring_info`
 */
export const MIC_VRING_INFO_SIZE = 8;

/**
 * Decoded `struct _mic_vring_info`.
 *
 * @see include/uapi/linux/mic_common.h `struct _mic_vring_info`
 */
export interface MicVringInfo {
  readonly availIdx: number;
  readonly magic: number;
}

/**
 * Layout of one VOP vring block, offsets from its start.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_virtio_add_device`
 * @see include/uapi/linux/mic_common.h `struct _mic_vring_info`
 */
export interface MicVringLayout {
  readonly num: number;
  /** Descriptor table, 16 × num bytes. */
  readonly descOffset: number;
  /** Avail ring: flags, idx, ring[num], used_event. */
  readonly availOffset: number;
  /** The host's used ring (stale once the card relocates the used ring to its memory). */
  readonly usedOffset: number;
  /** `vring_size(num, 4096)` (`vringSize` of `@mic/virtio`). */
  readonly vringSize: number;
  /** `_mic_vring_info` at `round_up(vring_size, 4)`. */
  readonly infoOffset: number;
  /** `PAGE_ALIGN(infoOffset + 8)`: bytes the host allocates and the card maps. */
  readonly size: number;
}

/**
 * The VOP vring block for `num` entries, as host, card and user space compute it since
 * v5.10-rc1: info at `round_up(vring_size, 4)`, size `PAGE_ALIGN(info + 8)`. For num = 128:
 * info at 5128, size 8192.
 *
 * @param num - ring entries, a power of two from 1 to 32768 (EINVAL otherwise, as virtio's
 *   `checkQueueSize`; `vringh_init_kern` refuses other sizes too)
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_virtio_add_device`
 * @see drivers/misc/mic/vop/vop_main.c `vop_find_vq`
 * @see include/uapi/linux/mic_common.h `MIC_VIRTIO_RING_ALIGN`
 */
export function micVringLayout(num: number): MicVringLayout {
  const ring = vringLayout(num, MIC_VIRTIO_RING_ALIGN);
  const infoOffset = alignUp(ring.size, 4);
  return {
    num,
    descOffset: ring.desc,
    availOffset: ring.avail,
    usedOffset: ring.used,
    vringSize: ring.size,
    infoOffset,
    size: alignUp(infoOffset + MIC_VRING_INFO_SIZE, PAGE_SIZE),
  };
}

/**
 * The magic the host writes in `_mic_vring_info.magic` of vring `index` of a device of virtio
 * `type`: `MIC_MAGIC + type + index` as a u32 (console: 0xC0FFEE03 and 0xC0FFEE04).
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_virtio_add_device`
 * @see include/uapi/linux/mic_common.h `MIC_MAGIC`
 */
export function micVringMagic(type: number, index: number): number {
  checkInt('type', type, -128, 255);
  checkInt('vring index', index, 0, 255);
  return (MIC_MAGIC + type + index) >>> 0;
}

/**
 * Reads the `_mic_vring_info` at `offset` (the layout's `infoOffset` in a vring block).
 *
 * @see include/uapi/linux/mic_common.h `struct _mic_vring_info`
 */
export function readVringInfo(mem: Memory, offset: number): MicVringInfo {
  return {
    availIdx: mem.readU16(offset + MIC_VRING_INFO_OFFSETS.availIdx),
    magic: mem.readU32(offset + MIC_VRING_INFO_OFFSETS.magic),
  };
}

/**
 * Writes the `_mic_vring_info` at `offset`. Throws `EINVAL` for a value that does not fit.
 *
 * @see include/uapi/linux/mic_common.h `struct _mic_vring_info`
 */
export function writeVringInfo(mem: Memory, offset: number, info: MicVringInfo): void {
  checkInt('avail_idx', info.availIdx, 0, 0xffff);
  checkInt('magic', info.magic, 0, 0xffffffff);
  mem.writeU16(offset + MIC_VRING_INFO_OFFSETS.availIdx, info.availIdx);
  mem.writeU32(offset + MIC_VRING_INFO_OFFSETS.magic, info.magic);
}

/**
 * Checks `_mic_vring_info.magic` at `infoOffset` against {@link micVringMagic}, as the card does
 * after mapping a host vring and as mpssd does after mapping it. Throws `EIO` naming the value
 * found and the one expected.
 *
 * @see drivers/misc/mic/vop/vop_main.c `vop_find_vq` ("magic mismatch")
 * @see include/uapi/linux/mic_common.h `struct _mic_vring_info`
 */
export function checkVringMagic(mem: Memory, infoOffset: number, type: number, index: number): void {
  const expected = micVringMagic(type, index);
  const magic = mem.readU32(infoOffset + MIC_VRING_INFO_OFFSETS.magic);
  if (magic !== expected) {
    throw new MicError(
      'EIO',
      `vring ${index} magic mismatch: found 0x${magic.toString(16)}, expected 0x${expected.toString(16)}`,
      { details: { magic, expected, type, index } },
    );
  }
}
