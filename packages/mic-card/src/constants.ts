/**
 * Numbers of the card driver that the x100 model leaves to it.
 *
 * @see drivers/misc/mic/card/mic_x100.h
 */

/**
 * Card doorbells the driver hands out (`MIC_X100_MAX_DOORBELL_IDX`): `mic_next_card_db` picks the
 * least used of the first 8, although the card listens on all 16 (8 SBOX doorbells, 8 RDMASR).
 *
 * @see drivers/misc/mic/card/mic_x100.h, drivers/misc/mic/card/mic_device.c (mic_next_card_db)
 */
export const MIC_X100_MAX_DOORBELL_IDX = 8;
