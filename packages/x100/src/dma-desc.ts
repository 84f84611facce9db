/**
 * The X100 DMA engine's memory formats: 16-byte descriptors and the ring address in
 * `DRAR_LO`/`DRAR_HI`. These helpers are for tests, debug dumps and hardware models; the engine
 * itself decodes descriptors from raw words, and the driver (`@mic/mic-dma`) has its own encoder.
 *
 * Addresses are in the card's address space: card memory below `0x80_0000_0000`, host memory
 * through the SMPT window above it.
 *
 * @see drivers/dma/mic_x100_dma.c (mic_dma_memcpy_desc, mic_dma_prep_status_desc,
 * mic_dma_chan_set_desc_ring)
 * @see drivers/dma/mic_x100_dma.h
 */
import { MicError, formatValue } from '@mic/errors';
import { checkMemory, type Memory } from '@mic/memory';
import { u32Value } from './mmio.js';
import { X100_DMA_BIT, X100_DMA_DESC, X100_SMPT } from './constants.js';

const TWO32 = 2 ** 32;
/** Highest address a descriptor can carry, plus one (46 bits). */
const ADDR_LIMIT = 2 ** X100_DMA_DESC.ADDR_BITS;
/** Largest MEMCPY length: 18 bits of 64-byte units. */
const MAX_MEMCPY_UNITS = 2 ** (64 - X100_DMA_DESC.MEMCPY_LEN_SHIFT) - 1;

/** A decoded descriptor. */
export type X100DmaDescriptor =
  | { readonly type: 'nop' }
  | { readonly type: 'memcpy'; readonly src: number; readonly dst: number; readonly length: number }
  | { readonly type: 'status'; readonly dst: number; readonly value: bigint; readonly interrupt: boolean }
  | { readonly type: 'unknown'; readonly code: number; readonly qw0: bigint; readonly qw1: bigint };

function checkAddr(what: string, addr: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0 || addr >= ADDR_LIMIT) {
    throw new MicError('EINVAL', `${what} ${String(addr)} does not fit the descriptor's 46 address bits`, {
      details: { [what]: addr },
    });
  }
}

/**
 * Writes a MEMCPY descriptor at `offset` of `mem` (`mic_dma_memcpy_desc`).
 * @throws MicError EINVAL for an address beyond 46 bits or a length that is not a multiple of
 * 64 below 16 MiB
 */
export function writeDmaMemcpyDesc(
  mem: Memory,
  offset: number,
  src: number,
  dst: number,
  length: number,
): void {
  checkMemory('descriptor memory', mem);
  checkAddr('source', src);
  checkAddr('destination', dst);
  const units = typeof length === 'number' ? length / X100_DMA_DESC.ALIGN : NaN;
  if (!Number.isInteger(units) || units < 0 || units > MAX_MEMCPY_UNITS) {
    throw new MicError(
      'EINVAL',
      `MEMCPY length ${formatValue(length)} is not a multiple of 64 below 16 MiB`,
      {
        details: { length },
      },
    );
  }
  const shift = X100_DMA_DESC.MEMCPY_LEN_SHIFT - 32;
  mem.writeU32(offset, src % TWO32);
  mem.writeU32(offset + 4, (Math.floor(src / TWO32) | (units << shift)) >>> 0);
  mem.writeU32(offset + 8, dst % TWO32);
  mem.writeU32(offset + 12, (Math.floor(dst / TWO32) | (X100_DMA_DESC.MEMCPY << 28)) >>> 0);
}

/**
 * Writes a STATUS descriptor at `offset` of `mem` (`mic_dma_prep_status_desc`): `value` goes to
 * `dst`; with `interrupt` the channel interrupt is raised once it is written.
 * @throws MicError EINVAL for an address beyond 46 bits
 */
export function writeDmaStatusDesc(
  mem: Memory,
  offset: number,
  dst: number,
  value: bigint,
  interrupt: boolean,
): void {
  checkMemory('descriptor memory', mem);
  checkAddr('destination', dst);
  if (typeof value !== 'bigint') {
    throw new MicError('EINVAL', `STATUS value ${formatValue(value)} is not a BigInt`);
  }
  const v = BigInt.asUintN(64, value);
  mem.writeU32(offset, Number(v & 0xffffffffn));
  mem.writeU32(offset + 4, Number(v >> 32n));
  mem.writeU32(offset + 8, dst % TWO32);
  const hi = Math.floor(dst / TWO32) | (X100_DMA_DESC.STATUS << 28) | (interrupt ? 1 << 27 : 0);
  mem.writeU32(offset + 12, hi >>> 0);
}

/** Reads the descriptor at `offset` of `mem`. */
export function readDmaDesc(mem: Memory, offset: number): X100DmaDescriptor {
  checkMemory('descriptor memory', mem);
  const lo0 = mem.readU32(offset);
  const hi0 = mem.readU32(offset + 4);
  const lo1 = mem.readU32(offset + 8);
  const hi1 = mem.readU32(offset + 12);
  const code = hi1 >>> 28;
  const dst = lo1 + (hi1 & 0x3fff) * TWO32;
  switch (code) {
    case X100_DMA_DESC.NOP:
      return { type: 'nop' };
    case X100_DMA_DESC.MEMCPY:
      return {
        type: 'memcpy',
        src: lo0 + (hi0 & 0x3fff) * TWO32,
        dst,
        length: (hi0 >>> 14) * X100_DMA_DESC.ALIGN,
      };
    case X100_DMA_DESC.STATUS:
      return {
        type: 'status',
        dst,
        value: (BigInt(hi0) << 32n) | BigInt(lo0),
        interrupt: ((hi1 >>> 27) & 1) === 1,
      };
    default:
      return {
        type: 'unknown',
        code,
        qw0: (BigInt(hi0) << 32n) | BigInt(lo0),
        qw1: (BigInt(hi1) << 32n) | BigInt(lo1),
      };
  }
}

/** A ring as `DRAR_LO`/`DRAR_HI` describe it. */
export interface X100DmaRing {
  /** Card address of descriptor 0. */
  readonly addr: number;
  /** Descriptors in the ring. */
  readonly entries: number;
  /** True when the ring is in host memory (the `SYS` bit: the address goes through the SMPT). */
  readonly system: boolean;
}

/**
 * The register values that describe a ring of `entries` descriptors at card address `addr`
 * (`mic_dma_chan_set_desc_ring`): a ring in the SMPT window gets the `SYS` bit, its SMPT entry
 * and address bits 33:32; a ring in card memory its address bits 35:32.
 * @throws MicError EINVAL for an address that neither form can carry, or a size outside 1–0x1ffff
 */
export function encodeDmaRing(addr: number, entries: number): { drarLo: number; drarHi: number } {
  if (!Number.isInteger(entries) || entries < 1 || entries > X100_DMA_DESC.MAX_RING_ENTRIES) {
    throw new MicError('EINVAL', `ring size ${formatValue(entries)} is not in [1, 131071] descriptors`, {
      details: { entries },
    });
  }
  const b = X100_DMA_BIT;
  let drarHi = (entries & b.DRAR_HI_SIZE_MASK) << b.DRAR_HI_SIZE_SHIFT;
  const { BASE, PAGE_SIZE, NUM_REG } = X100_SMPT;
  if (Number.isSafeInteger(addr) && addr >= BASE && addr < BASE + NUM_REG * PAGE_SIZE) {
    const entry = Math.floor((addr - BASE) / PAGE_SIZE);
    drarHi |= b.DRAR_HI_SYS | (entry << b.DRAR_HI_SMPT_SHIFT);
    drarHi |= Math.floor((addr - BASE) / TWO32) & b.DRAR_HI_SYS_ADDR_MASK;
  } else if (Number.isSafeInteger(addr) && addr >= 0 && addr < 2 ** 36) {
    drarHi |= Math.floor(addr / TWO32) & b.DRAR_HI_CARD_ADDR_MASK;
  } else {
    throw new MicError(
      'EINVAL',
      `ring address ${formatValue(addr)} is neither in card memory nor in the SMPT window`,
      {
        details: { addr },
      },
    );
  }
  return { drarLo: addr % TWO32, drarHi: drarHi >>> 0 };
}

/** Decodes `DRAR_LO`/`DRAR_HI` (the inverse of {@link encodeDmaRing}). */
export function decodeDmaRing(drarLo: number, drarHi: number): X100DmaRing {
  u32Value('DRAR_LO', drarLo);
  u32Value('DRAR_HI', drarHi);
  const b = X100_DMA_BIT;
  const entries = (drarHi >>> b.DRAR_HI_SIZE_SHIFT) & b.DRAR_HI_SIZE_MASK;
  const lo = drarLo >>> 0;
  if ((drarHi & b.DRAR_HI_SYS) !== 0) {
    const entry = (drarHi >>> b.DRAR_HI_SMPT_SHIFT) & b.DRAR_HI_SMPT_MASK;
    const addr =
      X100_SMPT.BASE + entry * X100_SMPT.PAGE_SIZE + (drarHi & b.DRAR_HI_SYS_ADDR_MASK) * TWO32 + lo;
    return { addr, entries, system: true };
  }
  return { addr: (drarHi & b.DRAR_HI_CARD_ADDR_MASK) * TWO32 + lo, entries, system: false };
}
