/**
 * The X100 DMA engine as the driver sees it: channel split, transfer limits, register offsets and
 * bits, descriptor format, and the dmaengine flags and statuses this driver uses. The driver has
 * its own copy of these facts; it never imports the hardware model.
 *
 * @see drivers/dma/mic_x100_dma.h
 * @see drivers/dma/mic_x100_dma.c
 * @see include/linux/dmaengine.h
 */
import { checkInt } from '@mic/errors';

/** Channels of the engine, channels per side, first channel of each side (`MIC_DMA_*_NUM_CHAN`). */
export const MIC_DMA_MAX_NUM_CHAN = 8;
/** Channels each side uses (`MIC_DMA_NUM_CHAN`); also what the host and card drivers request (`MIC_MAX_DMA_CHAN`). */
export const MIC_DMA_NUM_CHAN = 4;

/** Who owns a channel (`enum mic_dma_chan_owner`): the host owns 0–3, the card 4–7. */
export const MIC_DMA_OWNER = {
  MIC: 'mic',
  HOST: 'host',
} as const;
/** One of {@link MIC_DMA_OWNER}. */
export type MicDmaOwner = (typeof MIC_DMA_OWNER)[keyof typeof MIC_DMA_OWNER];

/** `MIC_DMA_ALIGN_SHIFT` (`DMAENGINE_ALIGN_64_BYTES`): addresses and lengths are 64-byte multiples. */
export const MIC_DMA_ALIGN_SHIFT = 6;
/** `MIC_DMA_ALIGN_BYTES`. */
export const MIC_DMA_ALIGN_BYTES = 1 << MIC_DMA_ALIGN_SHIFT;
/** Largest transfer per descriptor on the card (`MIC_DMA_MAX_XFER_SIZE_CARD`, 1 MiB − 64). */
export const MIC_DMA_MAX_XFER_SIZE_CARD = 1024 * 1024 - MIC_DMA_ALIGN_BYTES;
/** Largest transfer per descriptor on the host (`MIC_DMA_MAX_XFER_SIZE_HOST`, 512 KiB). */
export const MIC_DMA_MAX_XFER_SIZE_HOST = (1024 * 1024) >> 1;
/** Descriptors per ring (`MIC_DMA_DESC_RX_SIZE`, 128 Ki − 4). */
export const MIC_DMA_DESC_RX_SIZE = 128 * 1024 - 4;
/** Bytes per descriptor (`struct mic_dma_desc`). */
export const MIC_DMA_DESC_SIZE = 16;
/** The ring size field of `DRAR_HI` is 17 bits. */
export const MIC_DMA_MAX_RING_SIZE = 0x1ffff;
/** Pending descriptors beyond which a submit issues them at once (`mic_dma_pending_level`). */
export const MIC_DMA_PENDING_LEVEL = 4;
/** How long releasing a channel waits for it to drain (ms), as `dma_sync_wait` does. */
export const MIC_DMA_DRAIN_TIMEOUT_MS = 5000;
/**
 * How long `syncWait` busy-polls the completion count before it sleeps, by default (ns): 50 µs.
 * Linux's `dma_sync_wait` polls (`cpu_relax`) for up to its whole 5 s; here the poll blocks the
 * event loop, so it is bounded, about what a sleeping thread takes to be woken on these machines
 * (a 64 KiB copy takes ~10 µs, a 512 KiB descriptor ~70 µs).
 */
export const MIC_DMA_POLL_NS = 50_000;

/** DMA register offsets: `DCR` from the start of MMIO, channel ch's block at `CH_BASE + ch·CHAN_OFF`. */
export const MIC_DMA_SBOX = {
  DCR: 0x10000 + 0xa280,
  CH_BASE: 0x1a000,
  CHAN_OFF: 0x40,
} as const;

/** Per-channel register offsets (`MIC_DMA_REG_*`). */
export const MIC_DMA_REG = {
  DCAR: 0,
  DHPR: 4,
  DTPR: 8,
  DRAR_LO: 20,
  DRAR_HI: 24,
  DSTAT: 32,
  DCHERR: 44,
  DCHERRMSK: 48,
} as const;

/** Register bits (`MIC_DMA_SBOX_*`, `MIC_DMA_HW_CMP_CNT_MASK`, `MIC_DMA_CHAN_QUIESCE`). */
export const MIC_DMA_BIT = {
  /** `DCAR` interrupt mask of a card-owned channel. */
  DCAR_IM0: 0x0100_0000,
  /** `DCAR` interrupt mask of a host-owned channel. */
  DCAR_IM1: 0x0200_0000,
  /** `DRAR_HI`: the ring is in system (host) memory, reached through the SMPT. */
  DRARHI_SYS: 0x0400_0000,
  /** `DSTAT` 16:0: the completion count. */
  HW_CMP_CNT_MASK: 0x1ffff,
  /** `DSTAT`: the channel has stopped. */
  CHAN_QUIESCE: 0x2000_0000,
} as const;

/** Descriptor format (`MIC_DMA_DESC_TYPE_SHIFT`, `MIC_DMA_MEMCPY_LEN_SHIFT`, `MIC_DMA_STAT_INTR_SHIFT`). */
export const MIC_DMA_DESC = {
  TYPE_SHIFT: 60,
  MEMCPY_LEN_SHIFT: 46,
  STAT_INTR_SHIFT: 59,
  MEMCPY: 1,
  STATUS: 2,
} as const;

/** Base of the card's window onto host memory (the SMPT, `0x80_0000_0000`), where SYS rings live. */
export const MIC_DMA_SYSTEM_BASE = 0x80_0000_0000;
/** Bytes each SMPT entry maps (16 GiB, `MIC_X100_SMPT_PAGE_SHIFT` 34). */
export const MIC_DMA_SMPT_PAGE_SIZE = 2 ** 34;
/** Descriptors carry 46-bit addresses. */
export const MIC_DMA_ADDR_LIMIT = 2 ** 46;

/**
 * `enum dma_ctrl_flags` bits this driver understands: `INTERRUPT` (two STATUS descriptors, the
 * second interrupting), `FENCE` (one STATUS descriptor, an ordering barrier) and `CTRL_ACK`
 * (accepted and ignored, as by the kernel driver).
 */
export const DMA_PREP = {
  INTERRUPT: 1 << 0,
  CTRL_ACK: 1 << 1,
  FENCE: 1 << 5,
} as const;

/** `enum dma_status` values `txStatus` reports. */
export const DMA_STATUS = {
  COMPLETE: 'complete',
  IN_PROGRESS: 'in-progress',
  ERROR: 'error',
} as const;
/** One of {@link DMA_STATUS}. */
export type DmaStatus = (typeof DMA_STATUS)[keyof typeof DMA_STATUS];

/** What a completion callback is told: its cookie and whether the transfer completed. */
export interface DmaTxResult {
  readonly cookie: DmaCookie;
  readonly status: typeof DMA_STATUS.COMPLETE | typeof DMA_STATUS.ERROR;
  /** Why, when the status is `error`. */
  readonly error?: Error;
}

/** A transaction's id (`dma_cookie_t`): positive, increasing per channel, wrapping at 2^31 − 1 to 1. */
export type DmaCookie = number;

/** A completion callback (`dma_async_tx_callback_result`). */
export type DmaTxCallback = (result: DmaTxResult) => void;

/**
 * Register offset of channel `ch`'s register `reg`.
 * @throws MicError EINVAL for a channel outside 0–7 or a register offset outside its 64-byte block
 */
export function micDmaChanReg(ch: number, reg: number): number {
  // A typeof and range test first; checkInt builds the message only for a bad value.
  if (!(
    typeof ch === 'number' &&
    typeof reg === 'number' &&
    ch >= 0 &&
    ch < MIC_DMA_MAX_NUM_CHAN &&
    reg >= 0 &&
    reg < MIC_DMA_SBOX.CHAN_OFF &&
    (ch | 0) === ch &&
    (reg | 0) === reg
  )) {
    checkInt('DMA channel', ch, 0, MIC_DMA_MAX_NUM_CHAN - 1);
    checkInt('DMA channel register offset', reg, 0, MIC_DMA_SBOX.CHAN_OFF - 1);
  }
  return MIC_DMA_SBOX.CH_BASE + ch * MIC_DMA_SBOX.CHAN_OFF + reg;
}
