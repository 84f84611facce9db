/**
 * One channel's hardware side: its registers (`DCR` bits, `DCAR` mask, `DHPR`, `DSTAT`,
 * `DCHERR`, the ring address), the descriptor ring with the driver's indices (`head`,
 * `last_tail`, `issued`, `submitted`) and its arithmetic, and the channel setup sequence. What
 * a transaction is, and when descriptors complete, is the channel's business (`chan.ts`).
 *
 * @see drivers/dma/mic_x100_dma.c (mic_dma_hw_ring_inc, mic_dma_ring_count, mic_dma_chan_setup,
 * mic_dma_issue_pending, mic_dma_memcpy_desc, mic_dma_prep_status_desc)
 */
import { MicError } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { MIC_DMA_BIT, MIC_DMA_OWNER, MIC_DMA_REG, MIC_DMA_SBOX, micDmaChanReg } from './constants.js';
import type { MicDmaOwner } from './constants.js';
import { encodeRing, writeMemcpyDesc, writeStatusDesc } from './desc.js';

/** The channel registers the kernel's debugfs `mic_dma_reg` dumps. */
export type MicDmaChanRegisters = Record<
  'DCAR' | 'DTPR' | 'DHPR' | 'DRAR_HI' | 'DRAR_LO' | 'DCHERR' | 'DCHERRMSK' | 'DSTAT',
  number
>;

/** Explains a `DCHERR` value the way the x100 model reports it. */
export function describeCherr(code: number): string {
  const parts: string[] = [];
  if (code & 0x1) parts.push('unknown descriptor type');
  if (code & 0x2) parts.push('misaligned address');
  if (code & 0x4) parts.push('address outside mapped memory');
  if (code & 0x8) parts.push('host-to-host copy');
  if (code & 0x10) parts.push('bad ring');
  if (code & 0x20) parts.push('bad head');
  if (code & 0x40) parts.push('engine fault');
  return parts.length > 0 ? parts.join(', ') : 'engine error';
}

/** A channel's registers and descriptor ring. See the module comment. */
export class MicDmaRing {
  readonly chanId: number;
  readonly #name: string;
  readonly #owner: MicDmaOwner;
  readonly #mmio: Memory;
  /** Where the channel's registers start (`micDmaChanReg(chanId, 0)`): each access adds its offset. */
  readonly #regs: number;
  #va: Memory | undefined;
  /** Descriptors in the ring (0 while none is attached). */
  entries = 0;
  /** Next free descriptor (`head`). */
  head = 0;
  /** Completed up to here (`last_tail`). */
  lastTail = 0;
  /** Handed to the engine up to here (`issued`, the last `DHPR` written). */
  issued = 0;
  /** Submitted up to here (`submitted`). */
  submitted = 0;

  constructor(mmio: Memory, chanId: number, name: string, owner: MicDmaOwner) {
    this.#mmio = mmio;
    this.chanId = chanId;
    this.#regs = micDmaChanReg(chanId, 0);
    this.#name = name;
    this.#owner = owner;
  }

  // Registers

  /** Reads channel register `r` (`MIC_DMA_REG`). */
  read(r: number): number {
    return this.#mmio.readU32(this.#regs + r);
  }

  /** Writes channel register `r`. */
  write(r: number, value: number): void {
    this.#mmio.writeU32(this.#regs + r, value >>> 0);
  }

  #dcr(): number {
    return this.#mmio.readU32(MIC_DMA_SBOX.DCR);
  }

  #setDcr(value: number): void {
    this.#mmio.writeU32(MIC_DMA_SBOX.DCR, value >>> 0);
  }

  #imBit(): number {
    return this.#owner === MIC_DMA_OWNER.MIC ? MIC_DMA_BIT.DCAR_IM0 : MIC_DMA_BIT.DCAR_IM1;
  }

  /** Masks the channel interrupt (`DCAR` IM0 or IM1, by owner). */
  maskIntr(): void {
    this.write(MIC_DMA_REG.DCAR, this.read(MIC_DMA_REG.DCAR) | this.#imBit());
  }

  /** Unmasks the channel interrupt. */
  unmaskIntr(): void {
    this.write(MIC_DMA_REG.DCAR, this.read(MIC_DMA_REG.DCAR) & ~this.#imBit());
  }

  /** Sets the channel's enable bit in `DCR`. */
  enable(): void {
    this.#setDcr(this.#dcr() | (2 << (this.chanId * 2)));
  }

  /** Clears the channel's enable bit in `DCR`. */
  disable(): void {
    this.#setDcr(this.#dcr() & ~(2 << (this.chanId * 2)));
  }

  /**
   * Marks the channel card-owned (`mic_dma_chan_set_owner` for MIC channels). The model reads an
   * owner bit that is set as card-owned, clear (the power-on state, which the host never changes)
   * as host-owned; the kernel writes `MIC_DMA_CHAN_MIC` (0) here, see the README.
   */
  #setOwner(): void {
    this.#setDcr(this.#dcr() | (1 << (this.chanId * 2)));
  }

  /** `DCHERR`: non-zero once the engine stopped the channel. */
  error(): number {
    return this.read(MIC_DMA_REG.DCHERR);
  }

  /** The hardware completion count in `DSTAT`, which is the engine's tail. */
  completionCount(): number {
    return this.read(MIC_DMA_REG.DSTAT) & MIC_DMA_BIT.HW_CMP_CNT_MASK;
  }

  /** The channel's registers (the kernel's debugfs `mic_dma_reg` line). */
  registers(): MicDmaChanRegisters {
    return {
      DCAR: this.read(MIC_DMA_REG.DCAR),
      DTPR: this.read(MIC_DMA_REG.DTPR),
      DHPR: this.read(MIC_DMA_REG.DHPR),
      DRAR_HI: this.read(MIC_DMA_REG.DRAR_HI),
      DRAR_LO: this.read(MIC_DMA_REG.DRAR_LO),
      DCHERR: this.read(MIC_DMA_REG.DCHERR),
      DCHERRMSK: this.read(MIC_DMA_REG.DCHERRMSK),
      DSTAT: this.read(MIC_DMA_REG.DSTAT),
    };
  }

  // Set-up

  /**
   * Takes the ring `va` of `entries` descriptors at DMA address `addr` and sets the channel up
   * (`mic_dma_chan_setup`): owner (card), disable, mask, `DCHERRMSK` = 0, ring address, indices
   * from `DTPR`, unmask, enable, check.
   * @throws MicError EBUSY when the engine reports an error or a quiesced channel after enabling
   * it, or a tail beyond the ring (the channel is disabled and masked again, the ring let go)
   */
  setup(va: Memory, addr: number, entries: number): void {
    this.#va = va;
    this.entries = entries;
    if (this.#owner === MIC_DMA_OWNER.MIC) this.#setOwner();
    this.disable();
    this.maskIntr();
    this.write(MIC_DMA_REG.DCHERRMSK, 0);
    const { lo, hi } = encodeRing(addr, entries, this.#owner === MIC_DMA_OWNER.HOST);
    this.write(MIC_DMA_REG.DRAR_LO, lo);
    this.write(MIC_DMA_REG.DRAR_HI, hi);
    const tail = this.read(MIC_DMA_REG.DTPR);
    this.lastTail = tail;
    this.head = tail;
    // The kernel sets issued to 0; starting at the tail only avoids an early auto-issue.
    this.issued = tail;
    this.submitted = tail;
    this.unmaskIntr();
    this.enable();
    // mic_dma_check_chan
    const cherr = this.read(MIC_DMA_REG.DCHERR);
    const dstat = this.read(MIC_DMA_REG.DSTAT);
    if (cherr !== 0 || (dstat & MIC_DMA_BIT.CHAN_QUIESCE) !== 0 || tail >= entries) {
      this.disable();
      this.maskIntr();
      this.detach();
      const why =
        cherr !== 0
          ? `DCHERR 0x${cherr.toString(16)} (${describeCherr(cherr)})`
          : (dstat & MIC_DMA_BIT.CHAN_QUIESCE) !== 0
            ? 'it is quiesced (DSTAT 0x' + dstat.toString(16) + ')'
            : `its tail ${tail} is beyond the ring of ${entries}`;
      throw new MicError('EBUSY', `error setting up DMA channel ${this.#name}: ${why}`, {
        details: { chan: this.#name, dcherr: cherr, dstat },
      });
    }
  }

  /** Lets the ring go (after the channel was disabled). */
  detach(): void {
    this.#va = undefined;
  }

  /** True while a ring is attached. */
  get attached(): boolean {
    return this.#va !== undefined;
  }

  // Ring arithmetic (`mic_dma_hw_ring_inc`, `mic_dma_ring_count`)

  /** The index after `x`. */
  inc(x: number): number {
    return x + 1 === this.entries ? 0 : x + 1;
  }

  /** The index before `x`. */
  dec(x: number): number {
    return x === 0 ? this.entries - 1 : x - 1;
  }

  /** Free descriptors between `head` and `last_tail`, one slot always left free. */
  free(): number {
    const { head, lastTail: tail } = this;
    const count = head >= tail ? tail + (this.entries - head) : tail - head;
    return count - 1;
  }

  /** Descriptors from `from` up to (not including) `to`. */
  distance(from: number, to: number): number {
    return to >= from ? to - from : to + this.entries - from;
  }

  // Descriptors

  /** Writes a MEMCPY descriptor of `len` bytes at `head` and advances it. */
  putMemcpy(src: number, dst: number, len: number): void {
    writeMemcpyDesc(this.#va!, this.head, src, dst, len);
    this.head = this.inc(this.head);
  }

  /** Writes a STATUS descriptor (`value` to `dst`, interrupting with `intr`) at `head` and advances it. */
  putStatus(value: bigint, dst: number, intr: boolean): void {
    writeStatusDesc(this.#va!, this.head, value, dst, intr);
    this.head = this.inc(this.head);
  }

  /**
   * Hands every submitted descriptor to the engine (`mic_dma_issue_pending`): writes the head
   * register, never with the value it already holds (the engine would read a full ring).
   */
  issue(): void {
    if (this.issued === this.submitted) return;
    this.issued = this.submitted;
    this.write(MIC_DMA_REG.DHPR, this.issued);
  }
}
