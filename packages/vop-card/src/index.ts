/**
 * `@mic/vop-card`: the card side of VOP, the virtio transport over the host's device page.
 *
 * @see drivers/misc/mic/vop/vop_main.c (card role)
 */
export {
  VOP_CARD_ID_TABLE,
  VopCardDriver,
  type VopCardDriverOptions,
  type VopCardEvent,
  type VopCardRemoveReason,
} from './driver.js';
export {
  VOP_POLL_INTERVAL_MS,
  VOP_RELOCATION_TIMEOUT_MS,
  VOP_RESET_TIMEOUT_MS,
  type VopCardDeviceInfo,
  type VopVringConfig,
} from './vdev.js';
