/**
 * x100 facts the mock hardware of every bus shares: doorbell counts and where the card sees host
 * memory. Mocks use them as defaults; the real values live in `@mic/x100`.
 *
 * @see drivers/misc/mic/host/mic_x100.h `MIC_X100_NUM_DOORBELL`
 * @see drivers/misc/mic/card/mic_x100.h `MIC_X100_NUM_SBOX_IRQ`, `MIC_X100_NUM_RDMASR_IRQ`
 */

/** Doorbells the host listens on (`MIC_X100_NUM_DOORBELL`), handed out round-robin. */
export const X100_HOST_DOORBELLS = 4;

/** Doorbells the card listens on: 8 SBOX doorbells plus 8 RDMASR registers (`num_intr`). */
export const X100_CARD_DOORBELLS = 16;

/**
 * Card doorbells `mic_next_card_db()` hands out, least-used first (`MIC_X100_MAX_DOORBELL_IDX`):
 * the first 8 of {@link X100_CARD_DOORBELLS}.
 *
 * @see drivers/misc/mic/card/mic_x100.h, card/mic_device.c
 */
export const X100_CARD_ALLOC_DOORBELLS = 8;

/**
 * Base of the system memory window through which the card reaches host memory (the SMPT window,
 * 32 entries of 16 GiB from `0x80_0000_0000`). Mock host DMA addresses are this plus the offset
 * in host RAM.
 *
 * @see drivers/misc/mic/host/mic_x100.c `mic_x100_smpt_hw_init`
 */
export const MOCK_SMPT_BASE = 0x80_0000_0000;

/** Host physical address the mocks give the card's aperture BAR (an arbitrary, aligned value). */
export const MOCK_APER_PA = 0x38_0000_0000;

/** Host physical address the mocks give the first card's MMIO BAR; card `n` is `n * 0x10_0000` above. */
export const MOCK_MMIO_PA = 0x3f_0000_0000;

/** Physical address of the card's own SBOX MMIO as the card sees it (`MIC_X100_MMIO_BASE`). */
export const X100_CARD_MMIO_PA = 0x08_007c_0000;

/** Length of the x100 MMIO space (`MIC_X100_MMIO_LEN`, 128 KiB). */
export const X100_MMIO_LEN = 0x20000;
