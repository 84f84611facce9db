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
import { MicError, checkInt, formatValue } from '@mic/errors';
import { BufferMemory, checkRange } from '@mic/memory';
import type { Memory } from '@mic/memory';

/** What a register write does instead of a plain store. `value` is an unsigned 32-bit number. */
export type MmioWriteHandler = (value: number, offset: number) => void;

/**
 * Throws EINVAL naming `what` unless `value` is a 32-bit register value: an integer in
 * [-2^31, 2^32) (a signed value such as `~bits` is taken as its two's complement). A fast test
 * first: this is on every register write.
 */
export function u32Value(what: string, value: number): void {
  if (typeof value !== 'number' || (value >>> 0 !== value && (value | 0) !== value)) {
    checkInt(what, value, -0x8000_0000, 0xffff_ffff);
  }
}

/** 32-bit registers with optional write side effects. See the module comment. */
export class MmioRegisters {
  /** Bytes of register space. */
  readonly size: number;
  /** The registers as plain memory (no side effects); for dumps and tests. */
  readonly memory: BufferMemory;
  readonly #u32: Uint32Array;
  /** Write handlers by register index (an array: a write looks its handler up on every call). */
  readonly #handlers: (MmioWriteHandler | undefined)[];

  /** @param sab - the register file's shared memory (a multiple of 4 bytes) */
  constructor(sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength % 4 !== 0) {
      throw new MicError(
        'EINVAL',
        `MMIO register buffer ${formatValue(sab)} is not a SharedArrayBuffer of whole 32-bit words`,
      );
    }
    this.size = sab.byteLength;
    this.memory = new BufferMemory(sab);
    this.#u32 = new Uint32Array(sab);
    this.#handlers = Array.from({ length: this.#u32.length }, () => undefined);
  }

  #index(offset: number): number {
    if (
      typeof offset !== 'number' ||
      offset >>> 0 !== offset ||
      (offset & 3) !== 0 ||
      offset > this.size - 4
    ) {
      throw new MicError(
        'EFAULT',
        `MMIO offset ${formatValue(offset)} is not an aligned 32-bit register inside ${this.size} bytes`,
        { details: { offset: String(offset), size: this.size } },
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
    u32Value('register value', value);
    const handler = this.#handlers[i];
    if (handler !== undefined) handler(value >>> 0, offset);
    else Atomics.store(this.#u32, i, value >>> 0);
  }

  /** Stores a register without side effects (for handlers and hardware models). */
  store32(offset: number, value: number): void {
    u32Value('register value', value);
    Atomics.store(this.#u32, this.#index(offset), value >>> 0);
  }

  /**
   * Stores a register without side effects unless it already holds `value`: what a write handler
   * does when the write's only lasting effect is that a self-clearing bit reads back as 0 (a
   * doorbell register rung again and again keeps the same value, and a store costs more than a
   * read). The comparison is a plain read: typed-array reads of aligned words never tear, and if
   * another thread writes the register concurrently either order of the two writes is valid.
   */
  settle32(offset: number, value: number): void {
    const i = this.#index(offset);
    u32Value('register value', value);
    const v = value >>> 0;
    if (this.#u32[i] !== v) Atomics.store(this.#u32, i, v);
  }

  /** Atomically sets `bits`, without side effects. @returns the previous value */
  or32(offset: number, bits: number): number {
    u32Value('register bits', bits);
    return Atomics.or(this.#u32, this.#index(offset), bits >>> 0);
  }

  /** Atomically keeps only `mask`, without side effects. @returns the previous value */
  and32(offset: number, mask: number): number {
    u32Value('register mask', mask);
    return Atomics.and(this.#u32, this.#index(offset), mask >>> 0);
  }

  /**
   * Installs (or with `undefined` removes) the write handler of the register at `offset`.
   * @throws MicError EBUSY when the register already has a handler
   */
  setWriteHandler(offset: number, handler: MmioWriteHandler | undefined): void {
    const i = this.#index(offset);
    if (handler !== undefined && typeof handler !== 'function') {
      throw new MicError('EINVAL', `MMIO write handler ${formatValue(handler)} is not a function`);
    }
    if (handler === undefined) {
      this.#handlers[i] = undefined;
      return;
    }
    if (this.#handlers[i] !== undefined) {
      throw new MicError('EBUSY', `MMIO register 0x${offset.toString(16)} already has a write handler`, {
        details: { offset },
      });
    }
    this.#handlers[i] = handler;
  }

  /** True when the register at `offset` has a write handler. */
  hasWriteHandler(offset: number): boolean {
    return this.#handlers[this.#index(offset)] !== undefined;
  }

  /** Sets every register to 0 without side effects (what a card reset does to the SBOX). */
  clear(): void {
    const u32 = this.#u32;
    for (let i = 0; i < u32.length; i++) Atomics.store(u32, i, 0);
  }
}

/**
 * The register file as a {@link Memory} (`void __iomem *`), for code that takes a memory view of
 * MMIO, such as the `mmioVa` of a bus device: 32-bit reads and writes go through
 * {@link MmioRegisters.read32} / {@link MmioRegisters.write32}, so writes run the registers'
 * handlers (`iowrite32`); a u64 write is two 32-bit writes, low word first. Narrower writes, byte
 * copies and fills are refused (`EINVAL`): the registers are 32 bits wide. Reads of any width
 * come from the stored values and have no side effects. It has no raw byte view (`Memory` has
 * none): nothing can write the registers without running their handlers.
 *
 * @example
 * const regs = new MmioMemory(host.mmio);
 * regs.writeU32(dmaChanReg(0, X100_DMA_REG.DHPR), 1); // runs the DHPR handler
 */
export class MmioMemory implements Memory {
  readonly byteLength: number;
  readonly shared = true;
  /** Where this view starts in the register file. */
  readonly base: number;
  readonly #regs: MmioRegisters;
  readonly #raw: BufferMemory;

  /**
   * @param regs - the register file
   * @param base - start of the view (a multiple of 4; default 0)
   * @param length - bytes (default: to the end of the register file)
   */
  constructor(regs: MmioRegisters, base = 0, length = regs instanceof MmioRegisters ? regs.size - base : 0) {
    if (!(regs instanceof MmioRegisters)) {
      throw new MicError('EINVAL', `MMIO registers ${formatValue(regs)} are not an MmioRegisters`);
    }
    checkRange('MMIO view', base, length, regs.size);
    if (base % 4 !== 0) {
      throw new MicError('EINVAL', `MMIO view offset ${base} is not a multiple of 4`, { details: { base } });
    }
    this.#regs = regs;
    this.base = base;
    this.byteLength = length;
    this.#raw = regs.memory.window(base, length);
  }

  #reg(offset: number, size: number): number {
    checkRange('MMIO access', offset, size, this.byteLength);
    if (offset % 4 !== 0) {
      throw new MicError('EINVAL', `MMIO access at offset ${offset} is not 32-bit aligned`, {
        details: { offset: this.base + offset },
      });
    }
    return this.base + offset;
  }

  #narrow(what: string, offset: number): never {
    throw new MicError(
      'EINVAL',
      `MMIO registers take 32-bit writes only, not a ${what} at offset ${offset}`,
      {
        details: { offset: this.base + offset },
      },
    );
  }

  readU8(offset: number): number {
    return this.#raw.readU8(offset);
  }
  readU16(offset: number): number {
    return this.#raw.readU16(offset);
  }
  readU32(offset: number): number {
    return this.#regs.read32(this.#reg(offset, 4));
  }
  readU64(offset: number): number {
    const at = this.#reg(offset, 8);
    return this.#regs.read32(at) + this.#regs.read32(at + 4) * 2 ** 32;
  }
  readBigU64(offset: number): bigint {
    const at = this.#reg(offset, 8);
    return (BigInt(this.#regs.read32(at + 4)) << 32n) | BigInt(this.#regs.read32(at));
  }
  writeU8(offset: number, _value: number): void {
    this.#narrow('u8 write', offset);
  }
  writeU16(offset: number, _value: number): void {
    this.#narrow('u16 write', offset);
  }
  writeU32(offset: number, value: number): void {
    this.#regs.write32(this.#reg(offset, 4), value);
  }
  writeU64(offset: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new MicError('EINVAL', `u64 value ${String(value)} is not a non-negative safe integer`);
    }
    const at = this.#reg(offset, 8);
    this.#regs.write32(at, value % 2 ** 32);
    this.#regs.write32(at + 4, Math.floor(value / 2 ** 32));
  }
  writeBigU64(offset: number, value: bigint): void {
    if (typeof value !== 'bigint') {
      throw new MicError('EINVAL', `u64 value ${formatValue(value)} is not a BigInt`);
    }
    const at = this.#reg(offset, 8);
    const v = BigInt.asUintN(64, value);
    this.#regs.write32(at, Number(v & 0xffffffffn));
    this.#regs.write32(at + 4, Number(v >> 32n));
  }
  loadU8(offset: number): number {
    return this.#raw.loadU8(offset);
  }
  storeU8(offset: number, _value: number): void {
    this.#narrow('u8 store', offset);
  }
  loadU16(offset: number): number {
    return this.#raw.loadU16(offset);
  }
  storeU16(offset: number, _value: number): void {
    this.#narrow('u16 store', offset);
  }
  loadU32(offset: number): number {
    return this.readU32(offset);
  }
  storeU32(offset: number, value: number): void {
    this.writeU32(offset, value);
  }
  read(offset: number, dst: Uint8Array): void {
    this.#raw.read(offset, dst);
  }
  write(offset: number, _src: Uint8Array): void {
    this.#narrow('byte copy', offset);
  }
  fill(offset: number, _length: number, _value: number): void {
    this.#narrow('fill', offset);
  }
  window(offset: number, length: number): MmioMemory {
    checkRange('MMIO window', offset, length, this.byteLength);
    return new MmioMemory(this.#regs, this.base + offset, length);
  }
}
