/**
 * Constants of the MIC UAPI and of the shared device page.
 *
 * @see include/uapi/linux/mic_common.h
 * @see drivers/misc/mic/common/mic_dev.h
 */

/**
 * Size of the device page: one page per card holding `mic_bootparam` and the device entries.
 *
 * @see include/uapi/linux/mic_common.h `MIC_DP_SIZE`
 */
export const MIC_DP_SIZE = 4096;

/**
 * Magic value at offset 0 of the device page (`mic_bootparam.magic`), and the base of the
 * per-vring magic (see `micVringMagic`).
 *
 * @see include/uapi/linux/mic_common.h `MIC_MAGIC`
 */
export const MIC_MAGIC = 0xc0ffee00;

/**
 * Alignment of the used ring inside a vring (legacy split ring, `vring_init(.., align)`).
 *
 * @see include/uapi/linux/mic_common.h `MIC_VIRTIO_RING_ALIGN`
 */
export const MIC_VIRTIO_RING_ALIGN = 4096;

/**
 * Most virtqueues a device may have (`mic_device_desc.num_vq`).
 *
 * @see include/uapi/linux/mic_common.h `MIC_MAX_VRINGS`
 */
export const MIC_MAX_VRINGS = 4;

/**
 * Entries per vring that mpssd uses.
 *
 * @see include/uapi/linux/mic_common.h `MIC_VRING_ENTRIES`
 */
export const MIC_VRING_ENTRIES = 128;

/**
 * Largest `mic_vqconfig.num` the host accepts, so that desc and avail fit in one page.
 *
 * @see include/uapi/linux/mic_common.h `MIC_MAX_VRING_ENTRIES`
 */
export const MIC_MAX_VRING_ENTRIES = 128;

/**
 * Largest `mic_aligned_desc_size()` of a device entry: the desc, its vqconfigs, both feature
 * halves and the config space, rounded up to 8.
 *
 * @see include/uapi/linux/mic_common.h `MIC_MAX_DESC_BLK_SIZE`
 */
export const MIC_MAX_DESC_BLK_SIZE = 256;

/**
 * Value of `mic_device_ctrl.config_change` asking the card to remove the device (hot-unplug).
 *
 * @see drivers/misc/mic/common/mic_dev.h `MIC_VIRTIO_PARAM_DEV_REMOVE`
 */
export const MIC_VIRTIO_PARAM_DEV_REMOVE = 0x1;

/**
 * Value of `mic_device_ctrl.config_change` telling the card its config space changed.
 *
 * @see drivers/misc/mic/common/mic_dev.h `MIC_VIRTIO_PARAM_CONFIG_CHANGED`
 */
export const MIC_VIRTIO_PARAM_CONFIG_CHANGED = 0x2;

/**
 * Scratchpad holding the low 32 bits of the device page DMA address (read by the card).
 *
 * @see drivers/misc/mic/common/mic_dev.h `MIC_DPLO_SPAD`
 */
export const MIC_DPLO_SPAD = 14;

/**
 * Scratchpad holding the high 32 bits of the device page DMA address (read by the card).
 *
 * @see drivers/misc/mic/common/mic_dev.h `MIC_DPHI_SPAD`
 */
export const MIC_DPHI_SPAD = 15;

/**
 * A doorbell number of -1 means "not set, do not ring" in every `__s8` doorbell field
 * (`h2c_config_db`, `c2h_vdev_db`, `h2c_vdev_db`). Local name; the kernel writes `-1`.
 *
 * @see include/uapi/linux/mic_common.h
 */
export const MIC_DB_NONE = -1;

/**
 * `mic_device_desc.type` value that ends the list of device entries. Local name.
 *
 * @see include/uapi/linux/mic_common.h ("Type 0/-1 terminates")
 */
export const MIC_TYPE_END = 0;

/**
 * `mic_device_desc.type` value of a removed entry: walkers skip it, the host may reuse the slot.
 * Local name.
 *
 * @see include/uapi/linux/mic_common.h ("Type 0/-1 terminates")
 */
export const MIC_TYPE_REMOVED = -1;

/**
 * Virtio device id of a network device.
 *
 * @see include/uapi/linux/virtio_ids.h `VIRTIO_ID_NET`
 */
export const VIRTIO_ID_NET = 1;

/**
 * Virtio device id of a block device.
 *
 * @see include/uapi/linux/virtio_ids.h `VIRTIO_ID_BLOCK`
 */
export const VIRTIO_ID_BLOCK = 2;

/**
 * Virtio device id of a console.
 *
 * @see include/uapi/linux/virtio_ids.h `VIRTIO_ID_CONSOLE`
 */
export const VIRTIO_ID_CONSOLE = 3;

/**
 * Card states (final uapi `enum mic_states`). `LAST` is the count, not a state.
 *
 * @see include/uapi/linux/mic_common.h `enum mic_states`
 */
export const MIC_STATES = {
  READY: 0,
  BOOTING: 1,
  ONLINE: 2,
  SHUTTING_DOWN: 3,
  RESETTING: 4,
  RESET_FAILED: 5,
  LAST: 6,
} as const;

/** A card state, one of {@link MIC_STATES} other than `LAST`. */
export type MicState = (typeof MIC_STATES)[Exclude<keyof typeof MIC_STATES, 'LAST'>];

/**
 * The sysfs `state` string of each card state, indexed by {@link MicState}.
 *
 * @see drivers/misc/mic/cosm/cosm_sysfs.c `cosm_state_string`
 * @see include/uapi/linux/mic_common.h `enum mic_states`
 */
export const MIC_STATE_STRINGS = {
  [MIC_STATES.READY]: 'ready',
  [MIC_STATES.BOOTING]: 'booting',
  [MIC_STATES.ONLINE]: 'online',
  [MIC_STATES.SHUTTING_DOWN]: 'shutting_down',
  [MIC_STATES.RESETTING]: 'resetting',
  [MIC_STATES.RESET_FAILED]: 'reset_failed',
} as const;

/** A sysfs `state` string, one of the values of {@link MIC_STATE_STRINGS}. */
export type MicStateString = (typeof MIC_STATE_STRINGS)[MicState];

/**
 * Shutdown status reported by the card (final uapi `enum mic_status`). `STATUS_LAST` is the
 * count, not a status.
 *
 * @see include/uapi/linux/mic_common.h `enum mic_status`
 */
export const MIC_STATUS = {
  NOP: 0,
  CRASHED: 1,
  HALTED: 2,
  POWER_OFF: 3,
  RESTART: 4,
  STATUS_LAST: 5,
} as const;

/** A shutdown status, one of {@link MIC_STATUS} other than `STATUS_LAST`. */
export type MicStatus = (typeof MIC_STATUS)[Exclude<keyof typeof MIC_STATUS, 'STATUS_LAST'>];

/**
 * The sysfs `shutdown_status` string of each status, indexed by {@link MicStatus}. Note
 * `POWER_OFF` is spelled `poweroff`.
 *
 * @see drivers/misc/mic/cosm/cosm_sysfs.c `cosm_shutdown_status_string`
 * @see include/uapi/linux/mic_common.h `enum mic_status`
 */
export const MIC_STATUS_STRINGS = {
  [MIC_STATUS.NOP]: 'nop',
  [MIC_STATUS.CRASHED]: 'crashed',
  [MIC_STATUS.HALTED]: 'halted',
  [MIC_STATUS.POWER_OFF]: 'poweroff',
  [MIC_STATUS.RESTART]: 'restart',
} as const;

/** A sysfs `shutdown_status` string, one of the values of {@link MIC_STATUS_STRINGS}. */
export type MicStatusString = (typeof MIC_STATUS_STRINGS)[MicStatus];

/**
 * The card state whose sysfs string is `s`, or `undefined` for any other string.
 *
 * @see drivers/misc/mic/cosm/cosm_sysfs.c `cosm_state_string`
 */
export function micStateFromString(s: string): MicState | undefined {
  for (const [value, name] of Object.entries(MIC_STATE_STRINGS)) {
    if (name === s) return Number(value) as MicState;
  }
  return undefined;
}

/**
 * The shutdown status whose sysfs string is `s`, or `undefined` for any other string.
 *
 * @see drivers/misc/mic/cosm/cosm_sysfs.c `cosm_shutdown_status_string`
 */
export function micStatusFromString(s: string): MicStatus | undefined {
  for (const [value, name] of Object.entries(MIC_STATUS_STRINGS)) {
    if (name === s) return Number(value) as MicStatus;
  }
  return undefined;
}
