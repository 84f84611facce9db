/**
 * Writing descriptors into a ring (`mic_dma_memcpy_desc`, `mic_dma_prep_status_desc`) and the ring
 * address into `DRAR_LO`/`DRAR_HI` form (`mic_dma_chan_set_desc_ring`). The 64-bit words are
 * written as 32-bit halves: addresses are at most 46 bits, so a `number` holds them exactly.
 *
 * @see drivers/dma/mic_x100_dma.c
 */
import type { Memory } from '@mic/memory';
import {
  MIC_DMA_ALIGN_SHIFT,
  MIC_DMA_BIT,
  MIC_DMA_DESC,
  MIC_DMA_DESC_SIZE,
  MIC_DMA_SMPT_PAGE_SIZE,
  MIC_DMA_SYSTEM_BASE,
} from './constants.js';

const TWO32 = 2 ** 32;
const HI_ADDR_MASK = 0x3fff;

/** Writes a MEMCPY descriptor of `len` bytes (a multiple of 64) at ring slot `idx`. */
export function writeMemcpyDesc(ring: Memory, idx: number, src: number, dst: number, len: number): void {
  const off = idx * MIC_DMA_DESC_SIZE;
  const units = len / (1 << MIC_DMA_ALIGN_SHIFT);
  ring.writeU32(off, src % TWO32);
  ring.writeU32(
    off + 4,
    ((Math.floor(src / TWO32) & HI_ADDR_MASK) | (units << (MIC_DMA_DESC.MEMCPY_LEN_SHIFT - 32))) >>> 0,
  );
  ring.writeU32(off + 8, dst % TWO32);
  ring.writeU32(
    off + 12,
    ((Math.floor(dst / TWO32) & HI_ADDR_MASK) | (MIC_DMA_DESC.MEMCPY << (MIC_DMA_DESC.TYPE_SHIFT - 32))) >>>
      0,
  );
}

/** Writes a STATUS descriptor (`value` to `dst`, raising the interrupt with `intr`) at ring slot `idx`. */
export function writeStatusDesc(ring: Memory, idx: number, value: bigint, dst: number, intr: boolean): void {
  const off = idx * MIC_DMA_DESC_SIZE;
  const v = BigInt.asUintN(64, value);
  ring.writeU32(off, Number(v & 0xffffffffn));
  ring.writeU32(off + 4, Number(v >> 32n));
  ring.writeU32(off + 8, dst % TWO32);
  let hi = (Math.floor(dst / TWO32) & HI_ADDR_MASK) | (MIC_DMA_DESC.STATUS << (MIC_DMA_DESC.TYPE_SHIFT - 32));
  if (intr) hi |= 1 << (MIC_DMA_DESC.STAT_INTR_SHIFT - 32);
  ring.writeU32(off + 12, hi >>> 0);
}

/**
 * `DRAR_LO`/`DRAR_HI` for a ring of `entries` descriptors at DMA address `addr`. A card-owned
 * channel's ring carries address bits 35:32 in bits 3:0; a host-owned channel's ring is in host
 * memory behind the SMPT: `SYS`, the SMPT entry in bits 25:21 and address bits 33:32 in bits 1:0.
 */
export function encodeRing(addr: number, entries: number, system: boolean): { lo: number; hi: number } {
  let hi = (entries & 0x1ffff) << 4;
  if (system) {
    hi |= MIC_DMA_BIT.DRARHI_SYS;
    hi |= (Math.floor(addr / MIC_DMA_SMPT_PAGE_SIZE) & 0x1f) << 21;
    hi |= Math.floor(addr / TWO32) & 0x3;
  } else {
    hi |= Math.floor(addr / TWO32) & 0xf;
  }
  return { lo: addr % TWO32, hi: hi >>> 0 };
}

/** True when `addr` is in the card's window onto host memory. */
export function isSystemAddr(addr: number): boolean {
  return addr >= MIC_DMA_SYSTEM_BASE;
}
