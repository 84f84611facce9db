/**
 * Numbers of the X100 card as hardware: PCI identity, the MMIO register map (BAR4), the SMPT
 * geometry, the firmware's scratchpads, interrupt sources and DMA channel registers. Every register offset here is relative to the start of the MMIO
 * space (BAR4 on the host, physical `0x08007C0000` on the card), i.e. the kernel's
 * `MIC_X100_SBOX_BASE_ADDRESS + MIC_X100_SBOX_*`; both sides see the same map.
 *
 * @see drivers/misc/mic/host/mic_x100.h
 * @see drivers/misc/mic/card/mic_x100.h
 * @see drivers/dma/mic_x100_dma.h
 */
import { MicError, checkInt, checkObject } from '@mic/errors';

/** Intel's PCI vendor id. */
export const X100_PCI_VENDOR_INTEL = 0x8086;

/**
 * The 15 PCI device ids of the X100 family (`MIC_X100_PCI_DEVICE_2250` ... `_225e`).
 * @see drivers/misc/mic/host/mic_x100.h
 */
export const X100_PCI_DEVICE_IDS: readonly number[] = Object.freeze(
  Array.from({ length: 15 }, (_, i) => 0x2250 + i),
);

/**
 * Steppings (the PCI revision), as `mic_device.h` names them (`MIC_A0_STEP` ...).
 * @see drivers/misc/mic/host/mic_device.h
 */
export const X100_STEPPING = {
  A0: 0x00,
  B0: 0x10,
  B1: 0x11,
  C0: 0x20,
} as const;

/** The aperture BAR (card GDDR) and the MMIO BAR (`MIC_X100_APER_BAR`, `MIC_X100_MMIO_BAR`). */
export const X100_BAR = { APER: 0, MMIO: 4 } as const;

/** Card physical address of the MMIO space as the card maps it (`MIC_X100_MMIO_BASE`). */
export const X100_CARD_MMIO_BASE = 0x08_007c_0000;

/** Size of the MMIO space (`MIC_X100_MMIO_LEN`, 128 KiB). */
export const X100_MMIO_SIZE = 0x20000;

/** Offset of the SBOX inside the MMIO space (`MIC_X100_SBOX_BASE_ADDRESS`). */
export const X100_SBOX_BASE = 0x10000;

/**
 * MMIO register offsets (BAR4-relative). Registers whose write has an effect in the model are
 * marked; all others only store what is written.
 *
 * - `SMPT00`: first of 32 SMPT entries, 4 bytes apart ({@link smptReg}).
 * - `RGCR`: reset control; writing bit 0 resets the card.
 * - `SICR0`: host interrupt status (pending sources); write 1s to clear them.
 * - `SICE0`: host interrupt enable; writing it enables sources.
 * - `SICC0`: writing 1s disables those sources in `SICE0`.
 * - `SIAC0`: auto-clear: a delivered source whose bit is set here is disabled in `SICE0` until
 *   {@link X100HostView.ackInterrupt} re-enables it (MSI-X auto-clear, B0 workaround).
 * - `MXAR0`, `MSIXPBACR`: MSI-X routing and pending-bit registers (storage only: the model has one
 *   vector).
 * - `DMA_CH0`, `DCR`: DMA channel registers and the DMA control register (storage only; reserved
 *   for a DMA engine, see {@link dmaChanReg}).
 * - `APICICR0`: 8 card interrupt command registers, 8 bytes apart; writing bit 13 (send) raises
 *   card doorbell n ({@link apicIcrReg}). `APICICR7` with vector 229 while the card firmware
 *   waits is the boot interrupt.
 * - `SPAD0`: 16 scratchpads, 4 bytes apart ({@link spadReg}).
 * - `RDMASR0`: 32 RDMASR registers, 4 bytes apart; writing `RDMASR[17 + k]` raises card
 *   doorbell 8 + k ({@link rdmasrReg}).
 * - `SDBIC0`: 4 host doorbell registers, 4 bytes apart; writing bit 31 (DBREQ) raises host
 *   doorbell n ({@link sdbicReg}).
 * - `POSTCODE`: card boot progress code (storage only).
 *
 * @see drivers/misc/mic/host/mic_x100.h
 */
export const X100_REG = {
  SMPT00: X100_SBOX_BASE + 0x3100,
  RGCR: X100_SBOX_BASE + 0x4010,
  SICR0: X100_SBOX_BASE + 0x9004,
  SICE0: X100_SBOX_BASE + 0x900c,
  SICC0: X100_SBOX_BASE + 0x9010,
  SIAC0: X100_SBOX_BASE + 0x9014,
  MXAR0: X100_SBOX_BASE + 0x9044,
  MSIXPBACR: X100_SBOX_BASE + 0x9084,
  DMA_CH0: 0x1a000,
  DCR: X100_SBOX_BASE + 0xa280,
  APICICR0: X100_SBOX_BASE + 0xa9d0,
  APICICR7: X100_SBOX_BASE + 0xaa08,
  SPAD0: X100_SBOX_BASE + 0xab20,
  RDMASR0: X100_SBOX_BASE + 0xb180,
  SDBIC0: X100_SBOX_BASE + 0xcc90,
  POSTCODE: 0x242c,
} as const;

/** Bit 0 of `RGCR`: reset the card. */
export const X100_RGCR_RESET = 0x1;
/** Bit 13 of an `APICICR` register: send the interrupt. */
export const X100_APICICR_SEND = 1 << 13;
/** Bit 31 of an `SDBIC` register: doorbell request (`MIC_X100_SBOX_SDBIC0_DBREQ_BIT`). */
export const X100_SDBIC_DBREQ = 0x80000000;
/** Vector of the host → card bootstrap interrupt (`MIC_X100_BSP_INTERRUPT_VECTOR`). */
export const X100_BSP_INTERRUPT_VECTOR = 229;

/**
 * The System Memory Page Table: 32 entries of 16 GiB through which the card reaches host
 * memory at card addresses `BASE + i * PAGE_SIZE + (dma & (PAGE_SIZE - 1))`.
 * @see drivers/misc/mic/host/mic_x100.c (mic_x100_smpt_hw_init)
 */
export const X100_SMPT = {
  NUM_REG: 32,
  PAGE_SHIFT: 34,
  PAGE_SIZE: 2 ** 34,
  BASE: 0x80_0000_0000,
} as const;

/**
 * Scratchpad count and the roles the card's firmware gives some of them. Which scratchpads the
 * drivers use for their own handshake (the device page address in 14/15) is theirs to say
 * (`MIC_DPLO_SPAD`/`MIC_DPHI_SPAD` in `@mic/mic-common`).
 * @see drivers/misc/mic/host/mic_x100.h
 */
export const X100_SPAD = {
  NUM: 16,
  /** Firmware download info: bit 0 ready, bits 9:1 APIC id, bits 31:12 boot address. */
  DOWNLOAD_INFO: 2,
  /** Firmware image size, written by the host. */
  FW_SIZE: 5,
} as const;

/**
 * Interrupt sources. Each side has one 32-bit status word: bit `n` is source `n`.
 * - host: doorbells 0–3 (`MIC_X100_DOORBELL_IDX_START`), DMA channel ch at 8 + ch
 *   (`MIC_X100_DMA_IDX_START`), error 30 (`MIC_X100_ERR_IDX_START`);
 * - card: doorbells 0–15 (0–7 rung through the SBOX `APICICR` registers, 8–15 through
 *   `RDMASR`), DMA channel ch at 16 + ch. (The kernel uses Linux IRQ numbers on the card; the
 *   model numbers the card's sources like this instead.)
 * @see drivers/misc/mic/host/mic_x100.h
 * @see drivers/misc/mic/card/mic_x100.h
 */
export const X100_INTR = {
  /** Host doorbells (`MIC_X100_NUM_DOORBELL`). */
  HOST_NUM_DB: 4,
  /** First host DMA source (`MIC_X100_DMA_IDX_START`). */
  HOST_DMA_START: 8,
  /** The host's error source (`MIC_X100_ERR_IDX_START`). */
  HOST_ERR: 30,
  /** Card doorbells: 8 SBOX + 8 RDMASR (`MIC_X100_NUM_SBOX_IRQ + MIC_X100_NUM_RDMASR_IRQ`). */
  CARD_NUM_DB: 16,
  /** Card doorbells rung through `APICICR0..7` (`MIC_X100_NUM_SBOX_IRQ`). */
  CARD_NUM_SBOX_DB: 8,
  /** `RDMASR` register of card doorbell 8 (`MIC_X100_RDMASR_IRQ_BASE`): doorbell 8 + k is `RDMASR[17 + k]`. */
  RDMASR_IRQ_BASE: 17,
  /** First card DMA source. */
  CARD_DMA_START: 16,
  NUM_DMA: 8,
} as const;

/** The DMA engine: 8 channels, host owns 0–3, card 4–7. @see drivers/dma/mic_x100_dma.h */
export const X100_DMA = {
  MAX_NUM_CHAN: 8,
  NUM_CHAN: 4,
  HOST_START_CH: 0,
  CARD_START_CH: 4,
  /** Bytes between two channels' register blocks (`MIC_DMA_SBOX_CHAN_OFF`). */
  CHAN_STRIDE: 0x40,
} as const;

/** Per-channel DMA register offsets inside a channel block (`MIC_DMA_REG_*`). @see drivers/dma/mic_x100_dma.h */
export const X100_DMA_REG = {
  DCAR: 0,
  DHPR: 4,
  DTPR: 8,
  DRAR_LO: 20,
  DRAR_HI: 24,
  DSTAT: 32,
  DCHERR: 44,
  DCHERRMSK: 48,
} as const;

/** Doorbells the host listens on (0–3). @see drivers/misc/mic/host/mic_x100.h */
export const X100_HOST_NUM_DOORBELLS = X100_INTR.HOST_NUM_DB;
/** Doorbells the card listens on (0–15). @see drivers/misc/mic/card/mic_x100.c (mic_hw_intr_init) */
export const X100_CARD_NUM_DOORBELLS = X100_INTR.CARD_NUM_DB;
/** Number of `RDMASR` registers in the model. */
export const X100_NUM_RDMASR = 32;

/** Offset of SMPT entry `i` (0–31). */
export function smptReg(i: number): number {
  checkInt('SMPT entry', i, 0, X100_SMPT.NUM_REG - 1);
  return X100_REG.SMPT00 + 4 * i;
}

/** Offset of scratchpad `i` (0–15). */
export function spadReg(i: number): number {
  checkInt('scratchpad index', i, 0, X100_SPAD.NUM - 1);
  return X100_REG.SPAD0 + 4 * i;
}

/** Offset of the `APICICR` register that rings card doorbell `db` (0–7). */
export function apicIcrReg(db: number): number {
  checkInt('SBOX card doorbell', db, 0, X100_INTR.CARD_NUM_SBOX_DB - 1);
  return X100_REG.APICICR0 + 8 * db;
}

/** Offset of `RDMASR` register `idx` (0–31); card doorbell 8 + k is `idx = 17 + k`. */
export function rdmasrReg(idx: number): number {
  checkInt('RDMASR index', idx, 0, X100_NUM_RDMASR - 1);
  return X100_REG.RDMASR0 + 4 * idx;
}

/** Offset of the `SDBIC` register that rings host doorbell `db` (0–3). */
export function sdbicReg(db: number): number {
  checkInt('host doorbell', db, 0, X100_HOST_NUM_DOORBELLS - 1);
  return X100_REG.SDBIC0 + 4 * db;
}

/**
 * Offset of register `reg` (one of {@link X100_DMA_REG}) of DMA channel `ch` (0–7):
 * `0x1A000 + 0x40 * ch + reg`.
 * @see drivers/dma/mic_x100_dma.h (mic_dma_read_reg)
 */
export function dmaChanReg(ch: number, reg: number): number {
  checkInt('DMA channel', ch, 0, X100_DMA.MAX_NUM_CHAN - 1);
  checkInt('DMA register offset', reg, 0, X100_DMA.CHAN_STRIDE - 4);
  return X100_REG.DMA_CH0 + X100_DMA.CHAN_STRIDE * ch + reg;
}

/** Host interrupt source of DMA channel `ch` (0–7): 8 + ch. */
export function hostDmaSrc(ch: number): number {
  checkInt('DMA channel', ch, 0, X100_DMA.MAX_NUM_CHAN - 1);
  return X100_INTR.HOST_DMA_START + ch;
}

/** Card interrupt source of DMA channel `ch` (0–7): 16 + ch. */
export function cardDmaSrc(ch: number): number {
  checkInt('DMA channel', ch, 0, X100_DMA.MAX_NUM_CHAN - 1);
  return X100_INTR.CARD_DMA_START + ch;
}

/** The fields of scratchpad 2 (`MIC_X100_DOWNLOAD_INFO`). */
export interface Spad2 {
  /** Bit 0: the firmware waits for an OS download. */
  readonly ready: boolean;
  /** Bits 9:1: the bootstrap processor's APIC id. */
  readonly apicId: number;
  /** Bits 31:12: where in GDDR the OS goes (4 KiB aligned). */
  readonly bootAddr: number;
}

/** Decodes scratchpad 2. @see drivers/misc/mic/host/mic_x100.h (MIC_X100_SPAD2_*) */
export function decodeSpad2(value: number): Spad2 {
  checkInt('SPAD2 value', value, -0x8000_0000, 0xffff_ffff);
  return {
    ready: (value & 1) === 1,
    apicId: (value >>> 1) & 0x1ff,
    bootAddr: (value & 0xfffff000) >>> 0,
  };
}

/** Encodes scratchpad 2 (what the card firmware writes when it is ready). */
export function encodeSpad2(spad2: Spad2): number {
  checkObject('SPAD2 fields', spad2);
  checkInt('APIC id', spad2.apicId, 0, 0x1ff);
  const b = spad2.bootAddr;
  if (!Number.isInteger(b) || b < 0 || b > 0xfffff000 || b % 4096 !== 0) {
    throw new MicError('EINVAL', `boot address ${String(b)} is not a 4 KiB aligned 32-bit address`, {
      details: { bootAddr: b },
    });
  }
  return ((spad2.bootAddr & 0xfffff000) | (spad2.apicId << 1) | (spad2.ready ? 1 : 0)) >>> 0;
}

/**
 * Bits and fields of the DMA registers (`MIC_DMA_SBOX_*`, `MIC_DMA_HW_CMP_CNT_MASK`,
 * `MIC_DMA_CHAN_QUIESCE`).
 *
 * - `DCAR_IM0` / `DCAR_IM1`: the interrupt mask of a card-owned / host-owned channel.
 * - `DRAR_HI_*`: bits 3:0 are address bits 35:32 of a ring in card memory; bits 20:4 the ring
 *   size in descriptors; with `SYS` (bit 26) the ring is in host memory and bits 25:21 are its
 *   SMPT entry, bits 1:0 address bits 33:32 inside that entry.
 * - `DSTAT_CMP_CNT_MASK`: bits 16:0 of `DSTAT`, the completion count (the index of the next
 *   descriptor the engine will take, equal to `DTPR`). `DSTAT_QUIESCE` (bit 29 of the status
 *   field 31:28): the channel has stopped on an error.
 *
 * @see drivers/dma/mic_x100_dma.h
 */
export const X100_DMA_BIT = {
  DCAR_IM0: 0x0100_0000,
  DCAR_IM1: 0x0200_0000,
  DRAR_HI_CARD_ADDR_MASK: 0xf,
  DRAR_HI_SYS_ADDR_MASK: 0x3,
  DRAR_HI_SIZE_SHIFT: 4,
  DRAR_HI_SIZE_MASK: 0x1ffff,
  DRAR_HI_SMPT_SHIFT: 21,
  DRAR_HI_SMPT_MASK: 0x1f,
  DRAR_HI_SYS: 0x0400_0000,
  DSTAT_CMP_CNT_MASK: 0x1ffff,
  DSTAT_QUIESCE: 0x2000_0000,
} as const;

/**
 * The 16-byte DMA descriptor (`struct mic_dma_desc { u64 qw0; u64 qw1; }`): type in qw1 bits
 * 63:60; MEMCPY: source in qw0 bits 45:0, length in 64-byte units in qw0 bits 63:46, destination
 * in qw1 bits 45:0; STATUS: the 64-bit value in qw0, destination in qw1 bits 45:0, bit 59 raises
 * the channel interrupt. NOP (type 0, a zeroed descriptor) is never emitted by the kernel driver;
 * the model completes it without doing anything.
 *
 * @see drivers/dma/mic_x100_dma.c (mic_dma_memcpy_desc, mic_dma_prep_status_desc)
 */
export const X100_DMA_DESC = {
  SIZE: 16,
  TYPE_SHIFT: 60,
  MEMCPY_LEN_SHIFT: 46,
  STAT_INTR_SHIFT: 59,
  ADDR_BITS: 46,
  NOP: 0,
  MEMCPY: 1,
  STATUS: 2,
  /** Sources, destinations and lengths of MEMCPY descriptors are multiples of this. */
  ALIGN: 64,
  /** STATUS destinations are multiples of this (a DWORD, as SCIF signals need). */
  STATUS_ALIGN: 4,
  /** The largest ring the `DRAR_HI` size field can describe. */
  MAX_RING_ENTRIES: 0x1ffff,
  /** Ring size the kernel driver programs (`MIC_DMA_DESC_RX_SIZE`). */
  KERNEL_RING_ENTRIES: 128 * 1024 - 4,
} as const;

/**
 * What the model writes to `DCHERR` when a channel stops (the kernel only tests the register
 * for non-zero; these values are the model's own). The channel then sets `DSTAT_QUIESCE` and
 * takes no more descriptors until it is disabled.
 */
export const X100_DMA_CHERR = {
  /** A descriptor type other than NOP, MEMCPY or STATUS. */
  DESC_TYPE: 0x1,
  /** A MEMCPY address not 64-byte aligned, or a STATUS destination not 4-byte aligned. */
  ALIGN: 0x2,
  /** An address that reaches no memory: beyond card memory, or not mapped by the SMPT. */
  ADDR: 0x4,
  /** A MEMCPY from host memory to host memory, which this engine cannot do. */
  SYS_TO_SYS: 0x8,
  /** The ring: size below 2 or above 0x1ffff, not 64-byte aligned, unreachable, or the tail beyond it. */
  RING: 0x10,
  /** A head the engine cannot take: the current head written again (read as a full ring) or beyond the ring. */
  HEAD: 0x20,
  /**
   * The model itself failed while working on the channel (an exception it did not foresee): the
   * channel stops instead of the engine, and the others keep working.
   */
  FAULT: 0x40,
} as const;

/** `DCR` bit that makes channel `ch` card-owned when set (bit 2·ch). @see drivers/dma/mic_x100_dma.h */
export function dmaDcrOwnerBit(ch: number): number {
  checkInt('DMA channel', ch, 0, X100_DMA.MAX_NUM_CHAN - 1);
  return (1 << (2 * ch)) >>> 0;
}

/** `DCR` bit that enables channel `ch` (bit 2·ch + 1). @see drivers/dma/mic_x100_dma.h */
export function dmaDcrEnableBit(ch: number): number {
  checkInt('DMA channel', ch, 0, X100_DMA.MAX_NUM_CHAN - 1);
  return (2 << (2 * ch)) >>> 0;
}
