/**
 * Defaults of the mock hardware, chosen so a mock link looks like an x100 one: doorbell counts,
 * where the card sees host memory, where the BARs sit. They are the mocks' own defaults, not the
 * hardware's facts (those live in `@mic/x100`), and every mock takes them as options.
 *
 * @see drivers/misc/mic/host/mic_x100.h `MIC_X100_NUM_DOORBELL`
 * @see drivers/misc/mic/card/mic_x100.h `MIC_X100_NUM_SBOX_IRQ`, `MIC_X100_NUM_RDMASR_IRQ`,
 * `MIC_X100_MAX_DOORBELL_IDX`
 */

/** Doorbells a mock host listens on (as the x100 host's 4), handed out round-robin. */
export const MOCK_HOST_DOORBELLS = 4;

/** Doorbells a mock card listens on (as the x100 card's 8 SBOX doorbells plus 8 RDMASR). */
export const MOCK_CARD_DOORBELLS = 16;

/**
 * Card doorbells a mock card's `nextDb` hands out, least-used first: the first 8 of
 * {@link MOCK_CARD_DOORBELLS}, as the x100 card driver's `mic_next_card_db`.
 */
export const MOCK_CARD_ALLOC_DOORBELLS = 8;

/**
 * Base of the mock host's DMA addresses (as the x100 SMPT window, 32 entries of 16 GiB from
 * `0x80_0000_0000`): mock host DMA addresses are this plus the offset in host RAM.
 *
 * @see drivers/misc/mic/host/mic_x100.c `mic_x100_smpt_hw_init`
 */
export const MOCK_SMPT_BASE = 0x80_0000_0000;

/** Host physical address the mocks give the card's aperture BAR (an arbitrary, aligned value). */
export const MOCK_APER_PA = 0x38_0000_0000;

/** Host physical address the mocks give the first card's MMIO BAR; card `n` is `n * 0x10_0000` above. */
export const MOCK_MMIO_PA = 0x3f_0000_0000;

/** Physical address of a mock card's own MMIO as the card sees it (as x100's `MIC_X100_MMIO_BASE`). */
export const MOCK_CARD_MMIO_PA = 0x08_007c_0000;

/** Length of a mock MMIO space (as x100's `MIC_X100_MMIO_LEN`, 128 KiB). */
export const MOCK_MMIO_LEN = 0x20000;
