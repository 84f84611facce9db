/**
 * Where a split ring lives, and the bounds-checked windows both sides make of it once, when the
 * queue is set up. After that every ring access is an offset inside a window that cannot reach
 * outside its part of the ring.
 */
import { MicError } from '@mic/errors';
import { LITTLE_ENDIAN_HOST, type Memory } from '@mic/memory';
import { availRingSize, checkQueueSize, descTableSize, usedRingSize } from './layout.js';

const TWO32 = 4294967296;
const swap16 = (v: number): number => ((v & 0xff) << 8) | ((v >>> 8) & 0xff);

/**
 * A lean view of one ring part whose bounds were checked when the queue was set up. Offsets
 * inside it come from indices already reduced modulo the queue size, so accesses skip the
 * per-call checks of {@link Memory}; the DataView's own bounds remain as a backstop. Built from
 * the live bytes of a {@link Memory} window (`Memory.bytes`). Atomic accessors use `Atomics` on
 * shared memory (see the module comment of `@mic/memory` for the ordering they give).
 */
export class RingView {
  readonly byteLength: number;
  readonly #dv: DataView;
  readonly #u16: Uint16Array | null;
  readonly #base16: number;

  constructor(mem: Memory) {
    const bytes = mem.bytes(0, mem.byteLength);
    this.byteLength = bytes.byteLength;
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const shared = typeof SharedArrayBuffer !== 'undefined' && bytes.buffer instanceof SharedArrayBuffer;
    this.#u16 =
      shared && bytes.byteOffset % 2 === 0
        ? new Uint16Array(bytes.buffer, 0, bytes.buffer.byteLength >>> 1)
        : null;
    this.#base16 = bytes.byteOffset >>> 1;
  }

  readU16(off: number): number {
    return this.#dv.getUint16(off, true);
  }
  readU32(off: number): number {
    return this.#dv.getUint32(off, true);
  }
  /** A u64 as a number (exact below 2^53, like `Memory.readU64`). */
  readU64(off: number): number {
    return this.#dv.getUint32(off, true) + this.#dv.getUint32(off + 4, true) * TWO32;
  }
  writeU16(off: number, v: number): void {
    this.#dv.setUint16(off, v, true);
  }
  writeU32(off: number, v: number): void {
    this.#dv.setUint32(off, v, true);
  }
  writeU64(off: number, v: number): void {
    this.#dv.setUint32(off, v % TWO32, true);
    this.#dv.setUint32(off + 4, Math.floor(v / TWO32), true);
  }
  /** Atomic u16 load on shared memory (`off` even). */
  loadU16(off: number): number {
    const a = this.#u16;
    if (a === null) return this.#dv.getUint16(off, true);
    const v = Atomics.load(a, this.#base16 + (off >>> 1));
    return LITTLE_ENDIAN_HOST ? v : swap16(v);
  }
  /** Atomic u16 store on shared memory (`off` even). */
  storeU16(off: number, v: number): void {
    const a = this.#u16;
    if (a === null) return this.#dv.setUint16(off, v, true);
    Atomics.store(a, this.#base16 + (off >>> 1), LITTLE_ENDIAN_HOST ? v : swap16(v & 0xffff));
  }
  /** Zeroes the whole part. */
  clear(): void {
    new Uint8Array(this.#dv.buffer, this.#dv.byteOffset, this.#dv.byteLength).fill(0);
  }
}

/**
 * The geometry of one split virtqueue: its size and the addresses of its three parts. The parts
 * may sit in different memories (VOP keeps desc and avail in host memory and the used ring in
 * card memory, `drivers/misc/mic/vop/vop_main.c`), so `availMem` and `usedMem` default to `mem`.
 */
export interface VringParts {
  /** Queue size: a power of two from 1 to 32768. */
  readonly num: number;
  /** Memory of the descriptor table (and, by default, of the other parts). */
  readonly mem: Memory;
  /** Offset of the descriptor table in `mem` (16-byte aligned, virtio 1.2 §2.7). */
  readonly desc: number;
  /** Offset of the avail ring in `availMem` (2-byte aligned). */
  readonly avail: number;
  /** Offset of the used ring in `usedMem` (4-byte aligned). */
  readonly used: number;
  readonly availMem?: Memory;
  readonly usedMem?: Memory;
}

/** The three parts of a ring, checked once. */
export interface RingWindows {
  readonly num: number;
  readonly desc: RingView;
  readonly avail: RingView;
  readonly used: RingView;
}

function part(what: string, mem: Memory, offset: number, size: number, align: number): RingView {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % align !== 0) {
    throw new MicError('EINVAL', `${what} at ${String(offset)} is not ${align}-byte aligned`, {
      details: { offset, align },
    });
  }
  if (offset > mem.byteLength - size) {
    throw new MicError(
      'EFAULT',
      `${what} [${offset}, +${size}) does not fit in ${mem.byteLength} bytes of memory`,
      { details: { offset, size, memory: mem.byteLength } },
    );
  }
  return new RingView(mem.window(offset, size));
}

/**
 * Checks the geometry (queue size, alignment, every part inside its memory) and returns the
 * windows. Throws EINVAL or EFAULT naming the bad part.
 */
export function ringWindows(parts: VringParts): RingWindows {
  const { num } = parts;
  checkQueueSize(num);
  return {
    num,
    desc: part('descriptor table', parts.mem, parts.desc, descTableSize(num), 16),
    avail: part('avail ring', parts.availMem ?? parts.mem, parts.avail, availRingSize(num), 2),
    used: part('used ring', parts.usedMem ?? parts.mem, parts.used, usedRingSize(num), 4),
  };
}
