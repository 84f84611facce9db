/**
 * Where a split ring lives, and the checked-once views (`CheckedView` of `@mic/memory`) both sides
 * make of it when the queue is set up. After that every ring access is an offset, derived from an
 * index already reduced modulo the queue size, inside a view that cannot reach outside its part
 * of the ring.
 */
import { MicError } from '@mic/errors';
import { CheckedView, type BufferMemory } from '@mic/memory';
import { availRingSize, checkQueueSize, descTableSize, usedRingSize } from './layout.js';

/**
 * The geometry of one split virtqueue: its size and the addresses of its three parts. The parts
 * may sit in different memories (VOP keeps desc and avail in host memory and the used ring in
 * card memory, `drivers/misc/mic/vop/vop_main.c`), so `availMem` and `usedMem` default to `mem`.
 * Ring memory is a `BufferMemory`: the ring is read through checked-once views of its bytes, which
 * an MMIO or translating memory could not give without being bypassed.
 */
export interface VringParts {
  /** Queue size: a power of two from 1 to 32768. */
  readonly num: number;
  /** Memory of the descriptor table (and, by default, of the other parts). */
  readonly mem: BufferMemory;
  /** Offset of the descriptor table in `mem` (16-byte aligned, virtio 1.2 §2.7). */
  readonly desc: number;
  /** Offset of the avail ring in `availMem` (2-byte aligned). */
  readonly avail: number;
  /** Offset of the used ring in `usedMem` (4-byte aligned). */
  readonly used: number;
  readonly availMem?: BufferMemory;
  readonly usedMem?: BufferMemory;
}

/** The three parts of a ring, checked once. */
export interface RingWindows {
  readonly num: number;
  readonly desc: CheckedView;
  readonly avail: CheckedView;
  readonly used: CheckedView;
}

function part(what: string, mem: BufferMemory, offset: number, size: number, align: number): CheckedView {
  // Aligned in the underlying buffer too: the index atomics need it.
  if (!Number.isSafeInteger(offset) || offset < 0 || (mem.byteOffset + offset) % align !== 0) {
    throw new MicError('EINVAL', `${what} at ${String(offset)} is not ${align}-byte aligned`, {
      details: { offset, align, bufferOffset: mem.byteOffset },
    });
  }
  if (offset > mem.byteLength - size) {
    throw new MicError(
      'EFAULT',
      `${what} [${offset}, +${size}) does not fit in ${mem.byteLength} bytes of memory`,
      { details: { offset, size, memory: mem.byteLength } },
    );
  }
  return new CheckedView(mem, offset, size);
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
