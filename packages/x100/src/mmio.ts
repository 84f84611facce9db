/**
 * The MMIO register file (BAR4 on the host, the card's own SBOX mapping on the card): 32-bit
 * registers in a SharedArrayBuffer, read and written with `Atomics`, like `ioread32` /
 * `iowrite32`. A register may have a write handler: then a {@link MmioRegisters.write32}
 * runs the handler instead of storing, which is how a doorbell write raises an interrupt or an
 * `RGCR` write resets the card. A DMA engine adds its own handlers the same way (e.g. on
 * `DHPR`).
 *
 * Handlers are per thread: each thread that holds an {@link X100Hardware} over the buffers
 * installs its own. Registers have no read side effects.
 *
 * @see drivers/misc/mic/common/mic_dev.h (mic_mmio_read, mic_mmio_write)
 */
import { MicError } from '@mic/errors';
import { BufferMemory } from '@mic/memory';

/** What a register write does instead of a plain store. `value` is an unsigned 32-bit number. */
export type MmioWriteHandler = (value: number, offset: number) => void;

/** 32-bit registers with optional write side effects. See the module comment. */
export class MmioRegisters {
  /** Bytes of register space. */
  readonly size: number;
  /** The registers as plain memory (no side effects); for dumps and tests. */
  readonly memory: BufferMemory;
  readonly #u32: Uint32Array;
  readonly #handlers = new Map<number, MmioWriteHandler>();

  /** @param sab - the register file's shared memory (a multiple of 4 bytes) */
  constructor(sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength % 4 !== 0) {
      throw new MicError('EINVAL', 'an MMIO register file needs a SharedArrayBuffer of whole 32-bit words');
    }
    this.size = sab.byteLength;
    this.memory = new BufferMemory(sab);
    this.#u32 = new Uint32Array(sab);
  }

  #index(offset: number): number {
    if (offset >>> 0 !== offset || (offset & 3) !== 0 || offset > this.size - 4) {
      throw new MicError(
        'EFAULT',
        `MMIO offset ${String(offset)} is not an aligned 32-bit register inside ${this.size} bytes`,
        { details: { offset, size: this.size } },
      );
    }
    return offset >>> 2;
  }

  /** Reads a register (`ioread32`). */
  read32(offset: number): number {
    return Atomics.load(this.#u32, this.#index(offset));
  }

  /** Writes a register (`iowrite32`), running its write handler if it has one. */
  write32(offset: number, value: number): void {
    const i = this.#index(offset);
    const handler = this.#handlers.get(offset);
    if (handler) handler(value >>> 0, offset);
    else Atomics.store(this.#u32, i, value >>> 0);
  }

  /** Stores a register without side effects (for handlers and hardware models). */
  store32(offset: number, value: number): void {
    Atomics.store(this.#u32, this.#index(offset), value >>> 0);
  }

  /** Atomically sets `bits`, without side effects. @returns the previous value */
  or32(offset: number, bits: number): number {
    return Atomics.or(this.#u32, this.#index(offset), bits >>> 0);
  }

  /** Atomically keeps only `mask`, without side effects. @returns the previous value */
  and32(offset: number, mask: number): number {
    return Atomics.and(this.#u32, this.#index(offset), mask >>> 0);
  }

  /**
   * Installs (or with `undefined` removes) the write handler of the register at `offset`.
   * @throws MicError EBUSY when the register already has a handler
   */
  setWriteHandler(offset: number, handler: MmioWriteHandler | undefined): void {
    this.#index(offset);
    if (handler === undefined) {
      this.#handlers.delete(offset);
      return;
    }
    if (this.#handlers.has(offset)) {
      throw new MicError('EBUSY', `MMIO register 0x${offset.toString(16)} already has a write handler`, {
        details: { offset },
      });
    }
    this.#handlers.set(offset, handler);
  }

  /** True when the register at `offset` has a write handler. */
  hasWriteHandler(offset: number): boolean {
    return this.#handlers.has(offset);
  }

  /** Sets every register to 0 without side effects (what a card reset does to the SBOX). */
  clear(): void {
    const u32 = this.#u32;
    for (let i = 0; i < u32.length; i++) Atomics.store(u32, i, 0);
  }
}
