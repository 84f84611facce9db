/**
 * Host-side SMPT programming: maps host DMA address ranges to card-visible addresses in the
 * system window (`0x80_0000_0000 + 16 GiB × entry + offset`), with per-entry byte reference
 * counts, and publishes which entries are mapped so the card's translation can refuse the
 * others. Entry registers use the kernel encoding `(dma >> 34) << 2 | no_snoop` (snoop on).
 *
 * Differences from `mic_smpt.c`, on purpose:
 * - when a run of entries already pointing at the wanted host pages breaks off, the search falls
 *   back to free entries instead of failing;
 * - an unmap must name a range a {@link SmptTable.map} returned (the same card address and
 *   size) that is still mapped; anything else throws `EINVAL` and changes nothing (the kernel
 *   only warns when a count would go below zero, and a wrong range silently drops another
 *   mapping's references to the same entry);
 * - failures throw (`EINVAL`, `ENOSPC`) instead of returning address 0.
 *
 * @see drivers/misc/mic/host/mic_smpt.c
 * @see drivers/misc/mic/host/mic_x100.c (mic_x100_smpt_set)
 */
import { MicError, checkAddr } from '@mic/errors';
import { X100_SMPT, smptReg } from './constants.js';
import { checkHardware, type X100Hardware } from './hardware.js';

/** One SMPT entry as the host driver tracks it. */
export interface SmptEntry {
  /** Host DMA address the entry points at (a multiple of 16 GiB). */
  readonly dmaAddr: number;
  /** Mapped bytes through this entry. */
  readonly refCount: number;
}

const { BASE, PAGE_SIZE, NUM_REG } = X100_SMPT;
/** Total bytes the SMPT can map (`mic_max_system_memory`). */
const MAX_SYSTEM_MEMORY = NUM_REG * PAGE_SIZE;

const alignHigh = (x: number): number => Math.ceil(x / PAGE_SIZE) * PAGE_SIZE;
const alignLow = (x: number): number => Math.floor(x / PAGE_SIZE) * PAGE_SIZE;

/** Bytes of `[addr, addr + size)` in each 16 GiB page it touches (`mic_get_smpt_ref_count`). */
function refCounts(addr: number, size: number): number[] {
  const ref: number[] = [];
  let start = addr;
  const end = addr + size;
  while (start < end) {
    const next = alignHigh(start + 1);
    ref.push(Math.min(next, end) - start);
    start = next;
  }
  return ref;
}

/** The encoding of an SMPT register for host address `dmaAddr` (`BUILD_SMPT(SNOOP_ON, ...)`). */
export function smptRegValue(dmaAddr: number): number {
  checkAddr('SMPT DMA address', dmaAddr);
  return (Math.floor(dmaAddr / PAGE_SIZE) * 4) >>> 0;
}

/** True when `micAddr` lies in the SMPT system window (`mic_is_system_addr`). */
export function isSystemAddr(micAddr: number): boolean {
  return micAddr >= BASE && micAddr < BASE + MAX_SYSTEM_MEMORY;
}

/**
 * The host driver's SMPT table (`struct mic_smpt_info`). Construction is `mic_smpt_init`: entry
 * i points at host address `i × 16 GiB` with no references, and the registers are programmed.
 */
export class SmptTable {
  readonly #hw: X100Hardware;
  readonly #dmaAddr: number[] = [];
  readonly #refCount: number[] = [];
  /** Live mappings: `micAddr:size` → how many times it is mapped. */
  readonly #mapped = new Map<string, number>();

  constructor(hw: X100Hardware) {
    checkHardware('SMPT table', hw);
    this.#hw = hw;
    for (let i = 0; i < NUM_REG; i++) {
      this.#dmaAddr.push(i * PAGE_SIZE);
      this.#refCount.push(0);
      hw.mmio.store32(smptReg(i), smptRegValue(i * PAGE_SIZE));
      hw.setSmptValid(i, false);
    }
  }

  /**
   * Maps `[dmaAddr, dmaAddr + size)` of host memory for the card (`mic_map`).
   * @returns the card-visible address
   * @throws MicError EINVAL for a bad range, ENOSPC when no run of entries is free
   */
  map(dmaAddr: number, size: number): number {
    if (!Number.isSafeInteger(dmaAddr) || dmaAddr < 0) {
      throw new MicError('EINVAL', `DMA address ${String(dmaAddr)} is not a non-negative safe integer`, {
        details: { dmaAddr: String(dmaAddr) },
      });
    }
    if (!Number.isSafeInteger(size) || size < 1 || size > MAX_SYSTEM_MEMORY) {
      throw new MicError('EINVAL', `SMPT map size ${String(size)} is not an integer in [1, 512 GiB]`, {
        details: { dmaAddr, size: String(size) },
      });
    }
    if (!Number.isSafeInteger(dmaAddr + size)) {
      throw new MicError('EINVAL', `DMA range 0x${dmaAddr.toString(16)} +${size} is beyond 2^53`, {
        details: { dmaAddr, size },
      });
    }
    const ref = refCounts(dmaAddr, size);
    const first = alignLow(dmaAddr);
    const spt = this.#findExisting(first, ref.length) ?? this.#findFree(ref.length);
    if (spt === undefined) {
      throw new MicError(
        'ENOSPC',
        `no ${ref.length} contiguous SMPT entries are free to map DMA address 0x${dmaAddr.toString(16)} +${size}`,
        { details: { dmaAddr, size, entries: ref.length } },
      );
    }
    for (let k = 0; k < ref.length; k++) {
      const i = spt + k;
      const addr = first + k * PAGE_SIZE;
      if (this.#refCount[i] === 0 && this.#dmaAddr[i] !== addr) {
        this.#dmaAddr[i] = addr;
        this.#hw.mmio.store32(smptReg(i), smptRegValue(addr));
      }
      this.#refCount[i]! += ref[k]!;
      this.#hw.setSmptValid(i, true);
    }
    const micAddr = BASE + spt * PAGE_SIZE + (dmaAddr - first);
    const key = `${micAddr}:${size}`;
    this.#mapped.set(key, (this.#mapped.get(key) ?? 0) + 1);
    return micAddr;
  }

  /**
   * Drops the references a {@link map} of the same range took (`mic_unmap`): `micAddr` and
   * `size` must be what that map was given and returned. A size of 0 does nothing.
   * @throws MicError EINVAL for a range that is not mapped (never mapped, already unmapped, or
   * another address or size than the map's), or arguments that are not integers
   */
  unmap(micAddr: number, size: number): void {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new MicError('EINVAL', `SMPT unmap size ${String(size)} is not a non-negative integer`, {
        details: { micAddr: String(micAddr), size: String(size) },
      });
    }
    if (
      !Number.isSafeInteger(micAddr) ||
      !isSystemAddr(micAddr) ||
      micAddr + size > BASE + MAX_SYSTEM_MEMORY
    ) {
      throw new MicError('EINVAL', `card range ${String(micAddr)} +${size} is not in the SMPT window`, {
        details: { micAddr: String(micAddr), size },
      });
    }
    if (size === 0) return;
    const key = `${micAddr}:${size}`;
    const count = this.#mapped.get(key) ?? 0;
    const spt = Math.floor((micAddr - BASE) / PAGE_SIZE);
    const ref = refCounts(micAddr, size);
    if (count === 0 || ref.some((bytes, k) => this.#refCount[spt + k]! < bytes)) {
      throw new MicError(
        'EINVAL',
        `card range 0x${micAddr.toString(16)} +${size} is not mapped: unmap what map() returned, with its size`,
        { details: { micAddr, size, entry: spt, refCount: this.#refCount[spt] } },
      );
    }
    if (count === 1) this.#mapped.delete(key);
    else this.#mapped.set(key, count - 1);
    for (let k = 0; k < ref.length; k++) {
      const i = spt + k;
      this.#refCount[i]! -= ref[k]!;
      if (this.#refCount[i] === 0) this.#hw.setSmptValid(i, false);
    }
  }

  /**
   * The host DMA address behind card address `micAddr` (`mic_to_dma_addr`).
   * @throws MicError EINVAL outside the SMPT window
   */
  toDmaAddr(micAddr: number): number {
    if (!Number.isSafeInteger(micAddr) || !isSystemAddr(micAddr)) {
      throw new MicError('EINVAL', `card address ${String(micAddr)} is not in the SMPT window`, {
        details: { micAddr },
      });
    }
    const spt = Math.floor((micAddr - BASE) / PAGE_SIZE);
    return this.#dmaAddr[spt]! + ((micAddr - BASE) % PAGE_SIZE);
  }

  /** Reprograms every register from the table (`mic_smpt_restore`), needed after a card reset. */
  restore(): void {
    for (let i = 0; i < NUM_REG; i++) this.#hw.mmio.store32(smptReg(i), smptRegValue(this.#dmaAddr[i]!));
  }

  /** A snapshot of the 32 entries. */
  entries(): SmptEntry[] {
    return this.#dmaAddr.map((dmaAddr, i) => ({ dmaAddr, refCount: this.#refCount[i]! }));
  }

  #findExisting(first: number, entries: number): number | undefined {
    for (let spt = 0; spt + entries <= NUM_REG; spt++) {
      let k = 0;
      while (k < entries && this.#dmaAddr[spt + k] === first + k * PAGE_SIZE) k++;
      if (k === entries) return spt;
    }
    return undefined;
  }

  #findFree(entries: number): number | undefined {
    let run = 0;
    for (let i = 0; i < NUM_REG; i++) {
      run = this.#refCount[i] === 0 ? run + 1 : 0;
      if (run === entries) return i - entries + 1;
    }
    return undefined;
  }
}
