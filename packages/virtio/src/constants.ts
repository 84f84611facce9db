/**
 * Virtio constants: device ids, status bits, transport feature bits and ring flags.
 *
 * @see include/uapi/linux/virtio_ids.h, virtio_config.h, virtio_ring.h
 * @see virtio 1.2 §2.1 (status), §5 (device ids), §6 (reserved feature bits), §2.7.5 (descriptor flags)
 */

/** Virtio device ids (virtio 1.2 §5). */
export const VIRTIO_ID = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  RNG: 4,
  BALLOON: 5,
} as const;

/** Device status bits (virtio 1.2 §2.1). */
export const VIRTIO_CONFIG_S = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

/** Transport feature bit numbers (virtio 1.2 §6, `virtio_config.h`, `virtio_ring.h`). */
export const VIRTIO_F = {
  NOTIFY_ON_EMPTY: 24,
  ANY_LAYOUT: 27,
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
} as const;

/** Descriptor flags (virtio 1.2 §2.7.5). */
export const VRING_DESC_F = {
  /** The buffer continues in the `next` field. */
  NEXT: 1,
  /** The buffer is device write-only (otherwise device read-only). */
  WRITE: 2,
  /** The buffer holds a table of descriptors. */
  INDIRECT: 4,
} as const;

/** `avail.flags`: the driver asks the device not to interrupt (virtio 1.2 §2.7.7). */
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
/** `used.flags`: the device asks the driver not to kick (virtio 1.2 §2.7.10). */
export const VRING_USED_F_NO_NOTIFY = 1;

/** The bit mask of feature bit `bit`, as a bigint (features are 64 bits). */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** True when feature bit `bit` is set in `features`. */
export function hasFeature(features: bigint, bit: number): boolean {
  return (features & featureBit(bit)) !== 0n;
}

/** A feature set from a list of bit numbers. */
export function features(...bits: number[]): bigint {
  return bits.reduce((acc, b) => acc | featureBit(b), 0n);
}
