/**
 * The memory seam of the MIC stack: a little-endian, bounds-checked view of a byte range.
 * Rings, device pages, apertures and DMA buffers are all reached through it, like the kernel's
 * `ioread*`/`iowrite*` and `memcpy_{to,from}io` on an `__iomem` pointer.
 *
 * {@link Memory} is the seam: its methods are the only way to the bytes, so an implementation
 * whose accesses have effects (MMIO registers, a translating window) cannot be bypassed. It has
 * no raw byte view. {@link BufferMemory} is the memory that is plain bytes in an ArrayBuffer or a
 * SharedArrayBuffer; code that needs raw bytes (the checked-once views of hot paths, a zero-copy
 * `bytes()`) takes a `BufferMemory` and says so in its type.
 *
 * Every access checks its range and throws `EFAULT` naming the offset and length; a window made
 * with {@link Memory.window} cannot reach outside itself. All values are little-endian, as the
 * virtio and MIC layouts require (`include/uapi/linux/mic_common.h`, virtio 1.2 §2.7).
 *
 * Ordering: plain reads and writes are unordered between threads. The `load*`/`store*` methods
 * are `Atomics` operations (sequentially consistent) when the memory is shared: a writer stores
 * its data with plain writes and then publishes an index with `store*`; a reader `load*`s the
 * index and then reads the data. On an ArrayBuffer they are plain accesses.
 */
import { MicError, checkAddr, checkObject, formatValue } from '@mic/errors';

/** True when this machine stores integers little-endian (Atomics use native order). */
export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const swap16 = (v: number): number => ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
const swap32 = (v: number): number =>
  (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;

/** Copies up to this many bytes with a loop instead of a temporary view. */
export const SMALL_COPY = 64;

/**
 * Small reads (at most {@link SMALL_COPY} bytes) from one buffer into a caller's byte array,
 * without a temporary view: below ~100 bytes `subarray()` + `set()` costs more than the copy (a
 * view allocation, and V8 copies out of shared memory with a relaxed-atomic loop). On a
 * little-endian host a word-aligned read moves words into a word view of the caller's array,
 * made once that array came back a second time in a row (a request buffer reused for every
 * request, the common case), else loads words and stores bytes. The view is kept per memory (not
 * per process), so two memories read into two arrays in turn keep both. Arrays in the buffer
 * itself never take the word path (a forward word loop is no memmove). The caller checked the
 * range; offsets are absolute in the buffer. (Small writes stay one `set()`: a word loop was not
 * faster.)
 * @internal
 */
export class SmallCopy {
  readonly #buffer: ArrayBufferLike;
  readonly #u8: Uint8Array;
  readonly #words: Uint32Array;
  #readBytes: Uint8Array | null = null;
  #readWords: Uint32Array | null = null;

  constructor(buffer: ArrayBufferLike) {
    this.#buffer = buffer;
    this.#u8 = new Uint8Array(buffer);
    this.#words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }

  /** Copies `dst.length` bytes from byte `abs` of the buffer into `dst`. */
  read(abs: number, dst: Uint8Array): void {
    const n = dst.length;
    if (LITTLE_ENDIAN_HOST && ((abs | n) & 3) === 0) {
      const words = this.#words;
      const w0 = abs >>> 2;
      const nw = n >>> 2;
      let d = this.#readWords;
      if (dst !== this.#readBytes || d === null || d.length !== nw) {
        d = this.#readWords = this.#wordsOf(dst, this.#readBytes, nw);
        this.#readBytes = dst;
      }
      if (d !== null) {
        for (let k = 0; k < nw; k++) d[k] = words[w0 + k]!;
        return;
      }
      for (let k = 0, i = 0; k < nw; k++, i += 4) {
        const w = words[w0 + k]!;
        dst[i] = w;
        dst[i + 1] = w >>> 8;
        dst[i + 2] = w >>> 16;
        dst[i + 3] = w >>> 24;
      }
      return;
    }
    const u8 = this.#u8;
    for (let i = 0; i < n; i++) dst[i] = u8[abs + i]!;
  }

  /**
   * A word view of `bytes` when it is the array of the previous copy too, word-aligned and not in
   * this buffer; else null.
   */
  #wordsOf(bytes: Uint8Array, previous: Uint8Array | null, nw: number): Uint32Array | null {
    if (bytes !== previous || (bytes.byteOffset & 3) !== 0 || bytes.buffer === this.#buffer) return null;
    return new Uint32Array(bytes.buffer, bytes.byteOffset, nw);
  }
}

/** 2^32, for splitting 64-bit values held in a `number`. */
const TWO32 = 4294967296;

/**
 * A bounds-checked little-endian view of bytes. See the module comment. Implementations may give
 * accesses effects (register handlers, address translation): callers reach the bytes through
 * these methods only.
 */
export interface Memory {
  /** Bytes in this view. */
  readonly byteLength: number;
  /** True when backed by a SharedArrayBuffer (atomic `load*`/`store*`). */
  readonly shared: boolean;

  readU8(offset: number): number;
  readU16(offset: number): number;
  readU32(offset: number): number;
  /**
   * Reads a u64 as a number. Exact below 2^53; larger values come back rounded but still at
   * least 2^53, so a range check against any real memory size rejects them.
   */
  readU64(offset: number): number;
  /** Reads a u64 exactly. */
  readBigU64(offset: number): bigint;
  writeU8(offset: number, value: number): void;
  writeU16(offset: number, value: number): void;
  writeU32(offset: number, value: number): void;
  /** Writes a u64 given as a non-negative safe integer. */
  writeU64(offset: number, value: number): void;
  writeBigU64(offset: number, value: bigint): void;

  /** Atomic (when shared) u8 load (`ioread8` of a flag the peer writes). */
  loadU8(offset: number): number;
  /** Atomic (when shared) u8 store of `value & 0xff` (`iowrite8`). */
  storeU8(offset: number, value: number): void;
  /** Atomic (when shared) u16 load; `offset` must be even. */
  loadU16(offset: number): number;
  /** Atomic (when shared) u16 store; `offset` must be even. */
  storeU16(offset: number, value: number): void;
  /** Atomic (when shared) u32 load; `offset` must be a multiple of 4. */
  loadU32(offset: number): number;
  /** Atomic (when shared) u32 store; `offset` must be a multiple of 4. */
  storeU32(offset: number, value: number): void;

  /** Copies `dst.length` bytes from `offset` into `dst`. */
  read(offset: number, dst: Uint8Array): void;
  /** Copies `src` to `offset`. */
  write(offset: number, src: Uint8Array): void;
  /** Sets `length` bytes at `offset` to `value`. */
  fill(offset: number, length: number, value: number): void;
  /** A view of `[offset, offset + length)` that cannot reach outside it. */
  window(offset: number, length: number): Memory;
}

/**
 * Throws EFAULT unless `[offset, offset + length)` lies inside `[0, size)`; EINVAL when `size`
 * itself is not a non-negative integer.
 */
export function checkRange(what: string, offset: number, length: number, size: number): void {
  checkAddr(`${what}: size`, size);
  if (
    !Number.isInteger(offset) ||
    !Number.isInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset > size - length
  ) {
    throw new MicError(
      'EFAULT',
      `${what}: range [${String(offset)}, +${String(length)}) is outside ${size} bytes`,
      { details: { offset, length, size } },
    );
  }
}

/**
 * {@link Memory} over a range of an ArrayBuffer or SharedArrayBuffer: plain bytes, with no effect
 * on access. It is the one memory with raw views ({@link BufferMemory.bytes}, `CheckedView`), so
 * a subclass must not give accesses effects.
 *
 * @example
 * const mem = BufferMemory.allocate(8192, { shared: true });
 * mem.writeU32(0, 0xc0ffee00);
 * mem.window(4096, 4096).storeU16(2, 7); // publish an index at 4098
 */
export class BufferMemory implements Memory {
  readonly byteLength: number;
  readonly shared: boolean;
  /** The underlying buffer. */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Where this view starts in {@link buffer}. */
  readonly byteOffset: number;
  readonly #dv: DataView;
  readonly #u8: Uint8Array;
  readonly #u16: Uint16Array;
  readonly #u32: Uint32Array;
  readonly #copy: SmallCopy;

  /**
   * @param buffer - the bytes
   * @param byteOffset - start of the view in `buffer`
   * @param byteLength - length of the view (default: to the end of `buffer`)
   */
  constructor(buffer: ArrayBuffer | SharedArrayBuffer, byteOffset = 0, byteLength?: number) {
    if (!(
      buffer instanceof ArrayBuffer ||
      (typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer)
    )) {
      throw new MicError(
        'EINVAL',
        `memory buffer ${formatValue(buffer)} is not an ArrayBuffer or SharedArrayBuffer`,
      );
    }
    checkAddr('memory view offset', byteOffset);
    const len = byteLength === undefined ? buffer.byteLength - byteOffset : byteLength;
    checkRange('memory view', byteOffset, len, buffer.byteLength);
    this.buffer = buffer;
    this.byteOffset = byteOffset;
    this.byteLength = len;
    this.shared = typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer;
    this.#dv = new DataView(buffer, byteOffset, len);
    this.#u8 = new Uint8Array(buffer, byteOffset, len);
    // Whole-buffer views for atomics, indexed by absolute offset.
    this.#u16 = new Uint16Array(buffer, 0, buffer.byteLength >>> 1);
    this.#u32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    this.#copy = new SmallCopy(buffer);
  }

  /** Allocates a zeroed buffer of `size` bytes (shared when `shared` is true). */
  static allocate(size: number, options: { shared?: boolean } = {}): BufferMemory {
    checkAddr('memory size', size);
    checkObject('allocate options', options);
    return new BufferMemory(options.shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size));
  }

  #check(offset: number, length: number): void {
    if (!(offset >= 0 && offset <= this.byteLength - length && Number.isInteger(offset))) {
      checkRange('memory access', offset, length, this.byteLength);
    }
  }

  readU8(offset: number): number {
    this.#check(offset, 1);
    return this.#dv.getUint8(offset);
  }
  readU16(offset: number): number {
    this.#check(offset, 2);
    return this.#dv.getUint16(offset, true);
  }
  readU32(offset: number): number {
    this.#check(offset, 4);
    return this.#dv.getUint32(offset, true);
  }
  readU64(offset: number): number {
    this.#check(offset, 8);
    return this.#dv.getUint32(offset, true) + this.#dv.getUint32(offset + 4, true) * TWO32;
  }
  readBigU64(offset: number): bigint {
    this.#check(offset, 8);
    return this.#dv.getBigUint64(offset, true);
  }
  writeU8(offset: number, value: number): void {
    this.#check(offset, 1);
    this.#dv.setUint8(offset, value);
  }
  writeU16(offset: number, value: number): void {
    this.#check(offset, 2);
    this.#dv.setUint16(offset, value, true);
  }
  writeU32(offset: number, value: number): void {
    this.#check(offset, 4);
    this.#dv.setUint32(offset, value, true);
  }
  writeU64(offset: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new MicError('EINVAL', `u64 value ${String(value)} is not a non-negative safe integer`);
    }
    this.#check(offset, 8);
    const hi = value > 0xffffffff ? Math.floor(value / TWO32) : 0; // no float modulo
    this.#dv.setUint32(offset, value - hi * TWO32, true);
    this.#dv.setUint32(offset + 4, hi, true);
  }
  writeBigU64(offset: number, value: bigint): void {
    if (typeof value !== 'bigint') {
      throw new MicError('EINVAL', `u64 value ${formatValue(value)} is not a BigInt`);
    }
    this.#check(offset, 8);
    this.#dv.setBigUint64(offset, BigInt.asUintN(64, value), true);
  }

  #aligned(offset: number, size: number): number {
    this.#check(offset, size);
    const abs = this.byteOffset + offset;
    if (abs % size !== 0) {
      throw new MicError('EINVAL', `atomic ${size * 8}-bit access at offset ${offset} is not aligned`, {
        details: { offset, absolute: abs },
      });
    }
    return abs / size;
  }

  loadU8(offset: number): number {
    this.#check(offset, 1);
    return this.shared ? Atomics.load(this.#u8, offset) : this.#u8[offset]!;
  }
  storeU8(offset: number, value: number): void {
    this.#check(offset, 1);
    if (this.shared) Atomics.store(this.#u8, offset, value & 0xff);
    else this.#u8[offset] = value & 0xff;
  }
  loadU16(offset: number): number {
    if (!this.shared) return this.readU16(offset);
    const v = Atomics.load(this.#u16, this.#aligned(offset, 2));
    return LITTLE_ENDIAN_HOST ? v : swap16(v);
  }
  storeU16(offset: number, value: number): void {
    if (!this.shared) return this.writeU16(offset, value);
    Atomics.store(this.#u16, this.#aligned(offset, 2), LITTLE_ENDIAN_HOST ? value : swap16(value & 0xffff));
  }
  loadU32(offset: number): number {
    if (!this.shared) return this.readU32(offset);
    const v = Atomics.load(this.#u32, this.#aligned(offset, 4));
    return LITTLE_ENDIAN_HOST ? v : swap32(v);
  }
  storeU32(offset: number, value: number): void {
    if (!this.shared) return this.writeU32(offset, value);
    Atomics.store(this.#u32, this.#aligned(offset, 4), LITTLE_ENDIAN_HOST ? value : swap32(value >>> 0));
  }

  read(offset: number, dst: Uint8Array): void {
    if (!(dst instanceof Uint8Array)) notBytes('read destination', dst);
    const n = dst.length;
    this.#check(offset, n);
    if (n <= SMALL_COPY) {
      this.#copy.read(this.byteOffset + offset, dst);
    } else {
      dst.set(this.#u8.subarray(offset, offset + n));
    }
  }
  write(offset: number, src: Uint8Array): void {
    if (!(src instanceof Uint8Array)) notBytes('write source', src);
    this.#check(offset, src.length);
    this.#u8.set(src, offset);
  }
  fill(offset: number, length: number, value: number): void {
    checkAddr('fill length', length);
    this.#check(offset, length);
    this.#u8.fill(value, offset, offset + length);
  }
  /**
   * A live byte view of `[offset, offset + length)` (no copy). Only buffer-backed memory has one;
   * through a {@link Memory} use `read`/`write`.
   */
  bytes(offset: number, length: number): Uint8Array {
    checkAddr('bytes length', length);
    this.#check(offset, length);
    return this.#u8.subarray(offset, offset + length);
  }
  window(offset: number, length: number): BufferMemory {
    checkRange('memory window', offset, length, this.byteLength);
    return new BufferMemory(this.buffer, this.byteOffset + offset, length);
  }
}

/**
 * A copy of `length` bytes at `offset` of any memory, read through {@link Memory.read}
 * (`memcpy_fromio` into a fresh buffer). Throws EFAULT like `read`.
 */
export function readBytes(mem: Memory, offset: number, length: number): Uint8Array {
  checkMemory('readBytes memory', mem);
  checkRange('readBytes', offset, length, mem.byteLength);
  const bytes = new Uint8Array(length);
  mem.read(offset, bytes);
  return bytes;
}

/**
 * Copies `length` bytes between two memories, like `memmove` (overlapping ranges come out right).
 * Between two {@link BufferMemory}s it is one `Uint8Array.set`; with any other {@link Memory} on
 * either side it goes through that memory's `read`/`write` (with a bounce buffer of `length`
 * bytes), so an MMIO or translating memory sees every access.
 */
export function copyMemory(
  dst: Memory,
  dstOffset: number,
  src: Memory,
  srcOffset: number,
  length: number,
): void {
  checkMemory('copy destination', dst);
  checkMemory('copy source', src);
  checkRange('copy source', srcOffset, length, src.byteLength);
  checkRange('copy destination', dstOffset, length, dst.byteLength);
  if (src instanceof BufferMemory && dst instanceof BufferMemory) {
    const from = src.bytes(srcOffset, length);
    const to = dst.bytes(dstOffset, length);
    if (from.buffer === to.buffer && Math.abs(from.byteOffset - to.byteOffset) < length) {
      to.set(from.slice());
    } else {
      to.set(from);
    }
    return;
  }
  if (length === 0) return;
  const bounce = new Uint8Array(length);
  src.read(srcOffset, bounce);
  dst.write(dstOffset, bounce);
}

/**
 * `mem` as a {@link BufferMemory}, for code that needs plain bytes (a ring read through a
 * `CheckedView`) and gets its memory from an interface typed {@link Memory} (a remapped
 * window of the peer's RAM). Throws EINVAL naming `what` when `mem` is any other memory (an MMIO
 * window whose accesses have effects), so the seam is never bypassed silently.
 */
export function asBufferMemory(mem: Memory, what: string): BufferMemory {
  if (mem instanceof BufferMemory) return mem;
  throw new MicError('EINVAL', `${what}: needs plain memory (a BufferMemory), got ${formatValue(mem)}`);
}

/** Throws EINVAL naming `what` unless `value` is a Uint8Array. */
function notBytes(what: string, value: unknown): never {
  throw new MicError('EINVAL', `${what} ${formatValue(value)} is not a Uint8Array`);
}

/** Throws EINVAL naming `what` unless `mem` looks like a {@link Memory} (an object with `read`). */
export function checkMemory(what: string, mem: unknown): asserts mem is Memory {
  checkObject(what, mem);
  if (
    typeof (mem as Partial<Memory>).read !== 'function' ||
    typeof (mem as Partial<Memory>).byteLength !== 'number'
  ) {
    throw new MicError('EINVAL', `${what} ${formatValue(mem)} is not a Memory`);
  }
}
