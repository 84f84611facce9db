/**
 * A view whose bounds were checked once, for hot paths: the rings of a virtqueue (offsets come
 * from indices already reduced modulo the queue size) or the data memory of a device whose
 * segments were checked when a chain was fetched. It is what vringh's `_kern` accessors are to
 * its checked `_user` ones (drivers/vhost/vringh.c).
 */
import { MicError, formatValue } from '@mic/errors';
import { BufferMemory, LITTLE_ENDIAN_HOST, SMALL_COPY, SmallCopy, checkRange } from './memory.js';

const TWO32 = 4294967296;
const swap16 = (v: number): number => ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
const swap32 = (v: number): number =>
  (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;

/**
 * A little-endian view of `[offset, offset + length)` of a {@link BufferMemory}, checked once when
 * it is made. Accesses skip the per-call checks of `Memory` (range, integer offset); the caller
 * guarantees its offsets lie inside the view, because it checked them once itself. What stays
 * per access is a backstop that costs next to nothing: the DataView and the byte and atomic views
 * underneath cover exactly this range, so a wrong offset throws a `RangeError` (or reads
 * `undefined`) and never reaches a byte outside it; copies compare their range against the view
 * (`EFAULT`) before they move a byte.
 *
 * It takes a `BufferMemory` because it reads the bytes directly: a memory whose accesses have
 * effects (MMIO, translation) cannot be wrapped, by type.
 *
 * Ordering as in `Memory`: `load*`/`store*` are `Atomics` operations on shared memory and need
 * natural alignment in the underlying buffer (EINVAL otherwise); on an ArrayBuffer they are plain
 * accesses.
 *
 * @example
 * const ring = BufferMemory.allocate(8192, { shared: true });
 * const avail = new CheckedView(ring, 2048, 6 + 2 * 128); // checked here, once
 * avail.storeU16(2, 1); // publish avail.idx
 */
export class CheckedView {
  /** Bytes in this view. */
  readonly byteLength: number;
  /** True when backed by a SharedArrayBuffer (atomic `load*`/`store*`). */
  readonly shared: boolean;
  readonly #dv: DataView;
  readonly #u8: Uint8Array;
  /** Where the view starts in its buffer, and small reads of that buffer (which check their range first). */
  readonly #start: number;
  readonly #copy: SmallCopy;
  /** For atomics: set only when shared and the view starts 2-byte (4-byte) aligned. */
  readonly #a16: Uint16Array | null;
  readonly #a32: Uint32Array | null;

  /**
   * @param mem - the memory
   * @param offset - start of the view in `mem` (default 0)
   * @param length - bytes in the view (default: to the end of `mem`)
   * @throws EINVAL when `mem` is not a BufferMemory, EFAULT when the range is not inside it
   */
  constructor(mem: BufferMemory, offset = 0, length = mem.byteLength - offset) {
    if (!(mem instanceof BufferMemory)) {
      throw new MicError(
        'EINVAL',
        `a checked view needs a BufferMemory (plain bytes, no access effects), got ${formatValue(mem)}`,
      );
    }
    checkRange('checked view', offset, length, mem.byteLength);
    const buffer = mem.buffer;
    const start = mem.byteOffset + offset;
    this.byteLength = length;
    this.shared = mem.shared;
    this.#dv = new DataView(buffer, start, length);
    this.#u8 = new Uint8Array(buffer, start, length);
    this.#start = start;
    this.#copy = new SmallCopy(buffer);
    this.#a16 = mem.shared && start % 2 === 0 ? new Uint16Array(buffer, start, length >>> 1) : null;
    this.#a32 = mem.shared && start % 4 === 0 ? new Uint32Array(buffer, start, length >>> 2) : null;
  }

  /** The u8 at `off`. */
  readU8(off: number): number {
    return this.#dv.getUint8(off);
  }
  /** The little-endian u16 at `off` (plain read). */
  readU16(off: number): number {
    return this.#dv.getUint16(off, true);
  }
  /** The little-endian u32 at `off` (plain read). */
  readU32(off: number): number {
    return this.#dv.getUint32(off, true);
  }
  /** A u64 as a number (exact below 2^53, like `Memory.readU64`). */
  readU64(off: number): number {
    return this.#dv.getUint32(off, true) + this.#dv.getUint32(off + 4, true) * TWO32;
  }
  /** Writes the u8 `v` at `off`. */
  writeU8(off: number, v: number): void {
    this.#dv.setUint8(off, v);
  }
  /** Writes the little-endian u16 `v` at `off` (plain write). */
  writeU16(off: number, v: number): void {
    this.#dv.setUint16(off, v, true);
  }
  /** Writes the little-endian u32 `v` at `off` (plain write). */
  writeU32(off: number, v: number): void {
    this.#dv.setUint32(off, v, true);
  }
  /** Writes a u64 given as a non-negative safe integer (the caller checked it). */
  writeU64(off: number, v: number): void {
    // Splitting without `%`: a float modulo by 2^32 is a library call, and most values fit 32 bits.
    const hi = v > 0xffffffff ? Math.floor(v / TWO32) : 0;
    this.#dv.setUint32(off, v - hi * TWO32, true);
    this.#dv.setUint32(off + 4, hi, true);
  }

  /** Atomic (when shared) u16 load; `off` must be even. */
  loadU16(off: number): number {
    const a = this.#a16;
    if (a === null || (off & 1) !== 0) return this.#plainLoad(off, 2);
    const v = Atomics.load(a, off >>> 1);
    return LITTLE_ENDIAN_HOST ? v : swap16(v);
  }
  /** Atomic (when shared) u16 store; `off` must be even. */
  storeU16(off: number, v: number): void {
    const a = this.#a16;
    if (a === null || (off & 1) !== 0) return this.#plainStore(off, 2, v);
    Atomics.store(a, off >>> 1, LITTLE_ENDIAN_HOST ? v : swap16(v & 0xffff));
  }
  /** Atomic (when shared) u32 load; `off` must be a multiple of 4. */
  loadU32(off: number): number {
    const a = this.#a32;
    if (a === null || (off & 3) !== 0) return this.#plainLoad(off, 4);
    const v = Atomics.load(a, off >>> 2);
    return LITTLE_ENDIAN_HOST ? v : swap32(v);
  }
  /** Atomic (when shared) u32 store; `off` must be a multiple of 4. */
  storeU32(off: number, v: number): void {
    const a = this.#a32;
    if (a === null || (off & 3) !== 0) return this.#plainStore(off, 4, v);
    Atomics.store(a, off >>> 2, LITTLE_ENDIAN_HOST ? v : swap32(v >>> 0));
  }

  /** The slow side of the atomic loads: plain on an ArrayBuffer, EINVAL when shared and misaligned. */
  #plainLoad(off: number, size: 2 | 4): number {
    if (this.shared) this.#misaligned(off, size);
    return size === 2 ? this.readU16(off) : this.readU32(off);
  }
  #plainStore(off: number, size: 2 | 4, v: number): void {
    if (this.shared) this.#misaligned(off, size);
    if (size === 2) this.writeU16(off, v);
    else this.writeU32(off, v);
  }
  #misaligned(off: number, size: number): never {
    throw new MicError('EINVAL', `atomic ${size * 8}-bit access at offset ${off} is not aligned`, {
      details: { offset: off, absolute: this.#dv.byteOffset + off },
    });
  }

  /** Copies `dst.length` bytes from `off` into `dst`. */
  read(off: number, dst: Uint8Array): void {
    const n = dst.length;
    if (!(off >= 0 && off <= this.byteLength - n)) checkRange('checked view read', off, n, this.byteLength);
    if (n <= SMALL_COPY) this.#copy.read(this.#start + off, dst);
    else dst.set(this.#u8.subarray(off, off + n));
  }
  /** Copies `src` to `off`. */
  write(off: number, src: Uint8Array): void {
    const n = src.length;
    if (!(off >= 0 && off <= this.byteLength - n)) checkRange('checked view write', off, n, this.byteLength);
    this.#u8.set(src, off);
  }
  /** Sets `length` bytes at `off` to `value`. */
  fill(off: number, length: number, value: number): void {
    checkRange('checked view fill', off, length, this.byteLength);
    this.#u8.fill(value, off, off + length);
  }
}
