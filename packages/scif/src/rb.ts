/**
 * The SCIF ring buffer (`struct scif_rb`): a power-of-two byte ring with Linux `CIRC_CNT` /
 * `CIRC_SPACE` arithmetic, so at most `size - 1` bytes are outstanding. The writer keeps a cached
 * write offset and publishes it with {@link ScifRb.commit}; the reader keeps a cached read offset
 * and publishes it with {@link ScifRb.updateReadPtr}. The pointers are placed so that each side only
 * ever writes the other's memory (see `ScifQp`): the pointer a side reads is local, written
 * remotely by the peer.
 *
 * Every pointer value read from shared memory comes from the peer and is untrusted: it is read once
 * and masked into the ring, so no access leaves the ring whatever the peer wrote.
 *
 * @see drivers/misc/mic/scif/scif_rb.c, scif_rb.h
 */
import { MicError } from '@mic/errors';
import { asBufferMemory, type Memory } from '@mic/memory';

/** A 32-bit word of a queue pair: where a ring pointer lives. */
export interface RbPointer {
  readonly mem: Memory;
  readonly off: number;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 2 && (n & (n - 1)) === 0 && n <= 0x8000_0000;
}

/**
 * One direction of a queue pair. The data is in `base` (local for the inbound ring, the peer's
 * memory for the outbound one).
 */
export class ScifRb {
  readonly size: number;
  readonly #mask: number;
  readonly #base: Memory;
  readonly #bytes: Uint8Array;
  #readPtr: RbPointer;
  readonly #writePtr: RbPointer;
  /** Where the reader is (reader side) or the last read offset seen (writer side). */
  currentReadOffset: number;
  /** Where the writer is (writer side) or the last write offset seen (reader side). */
  currentWriteOffset: number;
  /** Write each pointer twice (the X100 card silicon workaround; a no-op here). */
  readonly doubleWrite: boolean;

  /**
   * `scif_rb_init`: the cached offsets start from the pointers' current values.
   * @throws MicError EINVAL when `size` is not a power of two or does not match `base`
   */
  constructor(base: Memory, size: number, readPtr: RbPointer, writePtr: RbPointer, doubleWrite = false) {
    if (!isPowerOfTwo(size) || base.byteLength < size) {
      throw new MicError('EINVAL', `scif ring size ${String(size)} is not a power of two within its buffer`, {
        details: { size, buffer: base.byteLength },
      });
    }
    this.size = size;
    this.#mask = size - 1;
    this.#base = base;
    this.#bytes = asBufferMemory(base, 'scif ring buffer').bytes(0, size);
    this.#readPtr = readPtr;
    this.#writePtr = writePtr;
    this.doubleWrite = doubleWrite;
    this.currentReadOffset = readPtr.mem.loadU32(readPtr.off) & this.#mask;
    this.currentWriteOffset = writePtr.mem.loadU32(writePtr.off) & this.#mask;
  }

  /** The ring's bytes (for tests). */
  get base(): Memory {
    return this.#base;
  }

  /** Moves the read pointer (the inbound ring's, once the peer's queue pair is known). */
  setReadPtr(ptr: RbPointer): void {
    this.#readPtr = ptr;
  }

  /** `scif_rb_space`: free bytes, after refreshing the read offset from the peer. */
  space(): number {
    this.currentReadOffset = this.#readPtr.mem.loadU32(this.#readPtr.off) & this.#mask;
    return (this.currentReadOffset - this.currentWriteOffset - 1) & this.#mask;
  }

  /**
   * `scif_rb_write`: copies `src` at the cached write offset (split at the wrap), all or nothing.
   * Not visible to the reader before {@link commit}.
   * @throws MicError ENOMEM when it does not fit
   */
  write(src: Uint8Array): void {
    const n = src.length;
    if (n > this.space()) {
      throw new MicError('ENOMEM', `scif ring has no room for ${n} bytes`, { details: { n } });
    }
    const w = this.currentWriteOffset;
    const first = Math.min(n, this.size - w);
    if (n <= 64) {
      const b = this.#bytes;
      for (let i = 0; i < first; i++) b[w + i] = src[i]!;
      for (let i = first; i < n; i++) b[i - first] = src[i]!;
    } else {
      this.#bytes.set(first === n ? src : src.subarray(0, first), w);
      if (first < n) this.#bytes.set(src.subarray(first), 0);
    }
    this.currentWriteOffset = (w + n) & this.#mask;
  }

  /** `scif_rb_commit`: publishes the write offset (a release store, `wmb` in the kernel). */
  commit(): void {
    const p = this.#writePtr;
    p.mem.storeU32(p.off, this.currentWriteOffset);
    if (this.doubleWrite) p.mem.storeU32(p.off, this.currentWriteOffset);
  }

  /**
   * `scif_rb_count`: bytes readable. The write offset is refreshed from the peer only when fewer
   * than `wanted` bytes are known to be there.
   */
  count(wanted: number): number {
    let n = (this.currentWriteOffset - this.currentReadOffset) & this.#mask;
    if (n < wanted) {
      this.currentWriteOffset = this.#writePtr.mem.loadU32(this.#writePtr.off) & this.#mask;
      n = (this.currentWriteOffset - this.currentReadOffset) & this.#mask;
    }
    return n;
  }

  /**
   * `scif_rb_get_next`: copies `dst.length` bytes out when that many are readable and returns
   * that count, else copies nothing and returns 0 (no partial reads). Advances the cached read
   * offset only; {@link updateReadPtr} tells the writer.
   */
  getNext(dst: Uint8Array): number {
    const n = dst.length;
    if (n === 0 || this.count(n) < n) return 0;
    const r = this.currentReadOffset;
    const first = Math.min(n, this.size - r);
    const b = this.#bytes;
    if (n <= 64) {
      for (let i = 0; i < first; i++) dst[i] = b[r + i]!;
      for (let i = first; i < n; i++) dst[i] = b[i - first]!;
    } else {
      dst.set(b.subarray(r, r + first));
      if (first < n) dst.set(b.subarray(0, n - first), first);
    }
    this.currentReadOffset = (r + n) & this.#mask;
    return n;
  }

  /** `scif_rb_update_read_ptr`: publishes the read offset to the writer (`mb` then a store). */
  updateReadPtr(): void {
    const p = this.#readPtr;
    p.mem.storeU32(p.off, this.currentReadOffset);
    if (this.doubleWrite) p.mem.storeU32(p.off, this.currentReadOffset);
  }
}
