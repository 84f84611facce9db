/**
 * Split virtqueue layout (virtio 1.2 §2.7, legacy `vring_init()` in include/uapi/linux/virtio_ring.h).
 *
 * ```
 * desc   16 × num      { le64 addr; le32 len; le16 flags; le16 next }
 * avail  6 + 2 × num   { le16 flags; le16 idx; le16 ring[num]; le16 used_event }
 * (pad to `align`)
 * used   6 + 8 × num   { le16 flags; le16 idx; { le32 id; le32 len } ring[num]; le16 avail_event }
 * ```
 */
import { MicError } from '@mic/errors';

/** Bytes of one descriptor. */
export const VRING_DESC_SIZE = 16;
/** Bytes of one used ring element `{ id, len }`. */
export const VRING_USED_ELEM_SIZE = 8;
/** Largest queue size of a split virtqueue (virtio 1.2 §2.7: 32768). */
export const VIRTQUEUE_MAX_SIZE = 32768;

/** Offsets inside a descriptor. */
export const DESC = { ADDR: 0, LEN: 8, FLAGS: 12, NEXT: 14 } as const;
/** Offsets inside the available ring. */
export const AVAIL = { FLAGS: 0, IDX: 2, RING: 4 } as const;
/** Offsets inside the used ring. */
export const USED = { FLAGS: 0, IDX: 2, RING: 4 } as const;

/** Offset of `used_event` in the avail ring (after `ring[num]`). */
export const usedEventOffset = (num: number): number => AVAIL.RING + 2 * num;
/** Offset of `avail_event` in the used ring (after `ring[num]`). */
export const availEventOffset = (num: number): number => USED.RING + VRING_USED_ELEM_SIZE * num;
/** Bytes of the descriptor table. */
export const descTableSize = (num: number): number => VRING_DESC_SIZE * num;
/** Bytes of the avail ring including `used_event`. */
export const availRingSize = (num: number): number => 6 + 2 * num;
/** Bytes of the used ring including `avail_event`. */
export const usedRingSize = (num: number): number => 6 + VRING_USED_ELEM_SIZE * num;

/** True when `n` is a power of two in [1, 2^31]. */
export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && n <= 0x80000000 && (n & (n - 1)) === 0;
}

/**
 * Throws EINVAL unless `num` is a valid split-queue size: a power of two from 1 to 32768
 * (virtio 1.2 §2.7: "Queue Size ... MUST be a power of 2", maximum 32768).
 */
export function checkQueueSize(num: number): void {
  if (!isPowerOfTwo(num) || num > VIRTQUEUE_MAX_SIZE) {
    throw new MicError(
      'EINVAL',
      `queue size ${String(num)} is not a power of two from 1 to ${VIRTQUEUE_MAX_SIZE}`,
      { details: { num } },
    );
  }
}

function checkAlign(align: number): void {
  if (!isPowerOfTwo(align) || align < 2) {
    throw new MicError('EINVAL', `ring alignment ${String(align)} is not a power of two of at least 2`, {
      details: { align },
    });
  }
}

/**
 * Bytes of a legacy split ring with the used ring aligned to `align`, exactly as Linux
 * `vring_size()`: `((16·num + 2·(3+num) + align−1) & ~(align−1)) + 2·3 + 8·num`.
 * For num 128, align 4096: 5126.
 */
export function vringSize(num: number, align: number): number {
  checkQueueSize(num);
  checkAlign(align);
  return alignUp(descTableSize(num) + availRingSize(num), align) + usedRingSize(num);
}

/** Rounds `n` up to a multiple of the power of two `align`. */
export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** Where the three parts of a split ring start, as addresses. */
export interface VringLayout {
  readonly num: number;
  /** Address of the descriptor table. */
  readonly desc: number;
  /** Address of the available ring. */
  readonly avail: number;
  /** Address of the used ring. */
  readonly used: number;
  /** Bytes from `desc` to the end of the used ring ({@link vringSize}). */
  readonly size: number;
}

/**
 * The layout `vring_init(vr, num, base, align)` gives: desc at `base`, avail right after it, used
 * at the next multiple of `align`. For num 128, align 4096, base 0: avail 2048, used 4096.
 */
export function vringLayout(num: number, align: number, base = 0): VringLayout {
  const size = vringSize(num, align);
  if (!Number.isSafeInteger(base) || base < 0 || base % align !== 0) {
    throw new MicError('EINVAL', `ring base ${String(base)} is not a non-negative multiple of ${align}`, {
      details: { base, align },
    });
  }
  const desc = base;
  const avail = desc + descTableSize(num);
  const used = base + alignUp(descTableSize(num) + availRingSize(num), align);
  return { num, desc, avail, used, size };
}

/**
 * `vring_need_event()`: true when an index moving from `oldIdx` to `newIdx` passes `eventIdx`,
 * all u16 with wrap-around (virtio 1.2 §2.7.10, `include/uapi/linux/virtio_ring.h`).
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}
