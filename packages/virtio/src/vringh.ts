/**
 * The device side of a split virtqueue, like Linux `vringh` (drivers/vhost/vringh.c).
 *
 * The driver that fills the ring is untrusted. Every address and length it writes is checked
 * against the ranges the device allows ({@link GetRange}) before a byte moves, every descriptor
 * is read once (no double fetch), every walk is bounded. Two outcomes are kept apart:
 *
 * - **bad chain**: this one request is malformed (a `next` out of range, a loop, a nested or
 *   malformed indirect table, readable after writable, more than 2^32 bytes, an address outside
 *   the allowed ranges). Recovery: the head is consumed and completed with length 0, and
 *   {@link Vringh.getDesc} reports it; the queue goes on with the next head.
 * - **broken ring**: the avail ring itself cannot be trusted (`avail.idx` moved by more than the
 *   queue size, or a head index out of range). Recovery: the error is latched, every later call
 *   reports it, and the device must be reset (report NEEDS_RESET, virtio 1.2 §2.1.2).
 *
 * Memory ordering (virtio 1.2 §2.7.13, §2.7.14; memory module comment): `avail.idx` is read with
 * an atomic load before the ring entry and descriptors it covers; used entries are written
 * before the atomic store of `used.idx`; `needNotify` reads `used_event`/`avail.flags` with
 * atomic loads after that store, which orders them as the full barrier `vringh_need_notify` uses.
 */
import { MicError, checkInt, isMicError } from '@mic/errors';
import { CheckedView, type BufferMemory } from '@mic/memory';
import { VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F, VRING_USED_F_NO_NOTIFY } from './constants.js';
import {
  AVAIL,
  DESC,
  USED,
  VRING_DESC_SIZE,
  VRING_USED_ELEM_SIZE,
  availEventOffset,
  usedEventOffset,
  vringNeedEvent,
} from './layout.js';
import { ringWindows, type RingWindows, type VringParts } from './ring.js';

/**
 * A region of guest addresses the device accepts, like `struct vringh_range`: guest addresses
 * `[start, end)` are bytes `[start + offset, end + offset)` of the data memory.
 */
export interface VringhRange {
  readonly start: number;
  /** Exclusive end. */
  readonly end: number;
  /** Added to a guest address to get the offset in the data memory. */
  readonly offset: number;
}

/**
 * Finds the range containing guest address `addr`, or null when the device does not accept it
 * (like the `getrange` callback of `vringh_getdesc_user`). The returned range is checked against
 * the data memory before use, and the last one is cached until {@link Vringh.reset}: the answer
 * for an address must not change while the queue runs.
 */
export type GetRange = (addr: number) => VringhRange | null;

/** Options of a {@link Vringh}. */
export interface VringhOptions extends VringParts {
  /** VIRTIO_RING_F_EVENT_IDX was negotiated. */
  readonly eventIdx?: boolean;
  /** VIRTIO_RING_F_INDIRECT_DESC was negotiated (without it an INDIRECT descriptor is a bad chain). */
  readonly indirect?: boolean;
  /**
   * Memory that data buffers and indirect tables are in (default: `mem`). A `BufferMemory`: it is
   * read and written through a view checked once, the segments having been checked against it
   * when their chain was fetched; {@link getRange} does any address translation.
   */
  readonly dataMem?: BufferMemory;
  /** Which guest addresses a chain may name (default: all of `dataMem`, identity-mapped). */
  readonly getRange?: GetRange;
  /**
   * Most descriptors in one chain, those of an indirect table included but not the INDIRECT
   * descriptor pointing to it (default and maximum: `num`).
   */
  readonly maxChainLength?: number;
  /** Called by {@link Vringh.notify} (the transport's interrupt). */
  readonly notify?: () => void;
}

/**
 * An I/O vector, like `struct vringh_kiov`: the segments of one direction of a chain, as offsets
 * and lengths in the data memory, with a cursor for {@link Vringh.pull} and {@link Vringh.push}.
 * Reused across chains: {@link Vringh.getDesc} resets it.
 */
export class VringhIov {
  /** Segment offsets in the data memory. */
  readonly offsets: number[] = [];
  /** Segment lengths. */
  readonly lengths: number[] = [];
  /** Segments in use. */
  count = 0;
  /** Index of the segment the cursor is in. */
  i = 0;
  /** Bytes of segment `i` already consumed. */
  consumed = 0;
  /** Total bytes of all segments. */
  total = 0;
  /** Bytes consumed through the cursor. */
  done = 0;

  /** Empties the vector (keeps its arrays for reuse). */
  reset(): void {
    this.count = 0;
    this.i = 0;
    this.consumed = 0;
    this.total = 0;
    this.done = 0;
  }

  /** Bytes not consumed yet. */
  get remaining(): number {
    return this.total - this.done;
  }

  /** @internal */
  add(offset: number, length: number): void {
    const n = this.count++;
    this.offsets[n] = offset;
    this.lengths[n] = length;
    this.total += length;
  }
}

/** Result of {@link Vringh.getDesc}. */
export type GetDescResult =
  | { readonly status: 'empty' }
  | { readonly status: 'chain'; readonly head: number }
  | { readonly status: 'bad-chain'; readonly head: number; readonly error: MicError }
  | { readonly status: 'broken'; readonly error: MicError };

/**
 * What a {@link Vringh} keeps between calls, read with {@link Vringh.state} and set with
 * {@link Vringh.restore}, like rust-vmm's `QueueState` (`virtio-queue`): the geometry stays with
 * the object, the progress is this. A transport uses it to zero a queue on reset, and to keep its
 * progress when it builds a new `Vringh` over moved ring parts (VOP relocates the used ring to
 * card memory, `vop_virtio_init_post` in drivers/misc/mic/vop/vop_vringh.c).
 */
export interface VringhState {
  /** The next avail index to read (`last_avail_idx`), a u16. */
  readonly lastAvailIdx: number;
  /** `used.idx` as of the last {@link Vringh.needNotify} (`last_used_idx`), a u16. */
  readonly lastUsedIdx: number;
  /** Entries completed (and published in `used.idx`) since the last `needNotify` (`completed`). */
  readonly completed: number;
  /** VIRTIO_RING_F_EVENT_IDX is in use (`event_indices`). */
  readonly eventIdx: boolean;
  /** Chains that were bad and completed with length 0 (a counter). */
  readonly badChains: number;
  /** The latched ring error, or null while the ring is sound. */
  readonly broken: MicError | null;
}

const EMPTY: GetDescResult = Object.freeze({ status: 'empty' });

/** Most iov segments one chain may produce when ranges split buffers. */
const maxSegmentsFor = (num: number): number => Math.max(64, 4 * num);

/**
 * The device side of one split virtqueue. See the module comment for the hostile-driver rules.
 *
 * @example
 * const vrh = new Vringh({ num: 128, mem, ...vringLayout(128, 4096, ringBase) });
 * const r = vrh.getDesc(riov, wiov);
 * if (r.status === 'chain') {
 *   const n = vrh.pull(riov, request);
 *   vrh.push(wiov, response);
 *   vrh.complete(r.head, wiov.done);
 *   if (vrh.needNotify()) vrh.notify();
 * }
 */
export class Vringh {
  readonly num: number;
  readonly indirect: boolean;
  // The state (see VringhState); written only by this class.
  #lastAvailIdx = 0;
  #lastUsedIdx = 0;
  #completed = 0;
  #eventIdx: boolean;
  #badChains = 0;
  #broken: MicError | null = null;
  /**
   * `avail.idx` as last loaded, when it was at most `num` ahead of `last_avail_idx` (vhost's
   * `avail_idx` shadow, drivers/vhost/vhost.c): heads up to it are fetched without loading the
   * index again. A cache of shared memory, not state: {@link restore} and {@link abandon} drop it.
   */
  #availIdx = 0;
  /** The result of a good chain from each head, made once: fetching allocates nothing. */
  readonly #chainResults: (GetDescResult | undefined)[] = [];

  readonly #w: RingWindows;
  readonly #data: BufferMemory;
  readonly #dataView: CheckedView;
  readonly #getRange: GetRange;
  readonly #maxChain: number;
  readonly #maxSegments: number;
  readonly #notify: (() => void) | undefined;
  #range: VringhRange | null = null;

  constructor(options: VringhOptions) {
    this.#w = ringWindows(options);
    this.num = options.num;
    this.#eventIdx = options.eventIdx ?? false;
    this.indirect = options.indirect ?? false;
    this.#data = options.dataMem ?? options.mem;
    this.#dataView = new CheckedView(this.#data);
    const all: VringhRange = { start: 0, end: this.#data.byteLength, offset: 0 };
    this.#getRange = options.getRange ?? ((addr) => (addr < all.end ? all : null));
    const maxChain = options.maxChainLength ?? this.num;
    if (!Number.isInteger(maxChain) || maxChain < 1 || maxChain > this.num) {
      throw new MicError('EINVAL', `max chain length ${String(maxChain)} is not in [1, ${this.num}]`);
    }
    this.#maxChain = maxChain;
    this.#maxSegments = maxSegmentsFor(this.num);
    this.#notify = options.notify;
  }

  /** The next avail index to read (`last_avail_idx`), read-only; {@link restore} sets it. */
  get lastAvailIdx(): number {
    return this.#lastAvailIdx;
  }

  /** VIRTIO_RING_F_EVENT_IDX is in use (part of the {@link Vringh.state}). */
  get eventIdx(): boolean {
    return this.#eventIdx;
  }

  /** The latched ring error, or null while the ring is sound. */
  get broken(): MicError | null {
    return this.#broken;
  }

  /** Chains that were bad and completed with length 0. */
  get badChains(): number {
    return this.#badChains;
  }

  /** The memory data segments point into. */
  get dataMem(): BufferMemory {
    return this.#data;
  }

  /** The progress of this queue (a copy). See {@link VringhState}. */
  state(): VringhState {
    return {
      lastAvailIdx: this.#lastAvailIdx,
      lastUsedIdx: this.#lastUsedIdx,
      completed: this.#completed,
      eventIdx: this.#eventIdx,
      badChains: this.#badChains,
      broken: this.#broken,
    };
  }

  /**
   * Sets the progress of this queue, as {@link Vringh.state} returned it (from this or another `Vringh`
   * of the same size). Checks every field first and changes nothing when one is wrong: indices
   * are u16, counters non-negative integers, `eventIdx` a boolean, `broken` null or a MicError
   * (EINVAL naming the field otherwise). Forgets the cached range of {@link GetRange}.
   */
  restore(state: VringhState): void {
    if (typeof state !== 'object' || state === null) {
      throw new MicError('EINVAL', `vringh state ${String(state)} is not an object`);
    }
    const { lastAvailIdx, lastUsedIdx, completed, eventIdx, badChains, broken } = state;
    checkInt('last_avail_idx', lastAvailIdx, 0, 0xffff);
    checkInt('last_used_idx', lastUsedIdx, 0, 0xffff);
    checkInt('completed', completed, 0, Number.MAX_SAFE_INTEGER);
    checkInt('bad chain count', badChains, 0, Number.MAX_SAFE_INTEGER);
    if (typeof eventIdx !== 'boolean') {
      throw new MicError('EINVAL', `vringh state eventIdx ${String(eventIdx)} is not a boolean`);
    }
    if (broken !== null && !isMicError(broken)) {
      throw new MicError('EINVAL', `vringh state broken ${String(broken)} is neither null nor a MicError`);
    }
    this.#lastAvailIdx = lastAvailIdx;
    this.#lastUsedIdx = lastUsedIdx;
    this.#completed = completed;
    this.#eventIdx = eventIdx;
    this.#badChains = badChains;
    this.#broken = broken;
    this.#availIdx = lastAvailIdx;
    this.#range = null;
  }

  /** Heads the driver made available that {@link getDesc} has not fetched yet (0 when broken). */
  pending(): number {
    if (this.#broken) return 0;
    return (this.#w.avail.loadU16(AVAIL.IDX) - this.#lastAvailIdx) & 0xffff;
  }

  /**
   * Fetches the next chain into `riov` (device-readable segments) and `wiov` (device-writable),
   * like `vringh_getdesc_kern`. Both vectors are reset first.
   */
  getDesc(riov: VringhIov, wiov: VringhIov): GetDescResult {
    riov.reset();
    wiov.reset();
    if (this.#broken) return { status: 'broken', error: this.#broken };
    const num = this.num;
    const avail = this.#w.avail;
    const last = this.#lastAvailIdx;
    if (this.#availIdx === last) {
      // Everything seen is fetched: load the index (once) and check how far it moved.
      const availIdx = avail.loadU16(AVAIL.IDX);
      const pending = (availIdx - last) & 0xffff;
      if (pending === 0) return EMPTY;
      if (pending > num) {
        return this.#breakRing(
          `avail.idx moved from ${last} to ${availIdx}: ${pending} entries, more than the queue size ${num}`,
          { availIdx, lastAvailIdx: last, num },
        );
      }
      this.#availIdx = availIdx;
    }
    const head = avail.readU16(AVAIL.RING + 2 * (last & (num - 1)));
    if (head >= num) {
      return this.#breakRing(`avail ring entry ${last} names head ${head}, outside the queue of ${num}`, {
        head,
        num,
      });
    }
    this.#lastAvailIdx = (last + 1) & 0xffff;
    const error = this.#walk(head, riov, wiov);
    if (error === null) {
      return (this.#chainResults[head] ??= Object.freeze({ status: 'chain', head }) as GetDescResult);
    }
    riov.reset();
    wiov.reset();
    this.#badChains++;
    this.complete(head, 0);
    return { status: 'bad-chain', head, error };
  }

  #breakRing(message: string, details: Record<string, unknown>): GetDescResult {
    this.#broken = new MicError('EIO', `virtqueue broken: ${message}`, { details });
    return { status: 'broken', error: this.#broken };
  }

  /** Walks the chain from `head`; returns null or the reason it is bad. */
  #walk(head: number, riov: VringhIov, wiov: VringhIov): MicError | null {
    let table: CheckedView = this.#w.desc;
    let tableBase = 0;
    let tableSize = this.num;
    let inIndirect = false;
    let i = head;
    let count = 0;
    let total = 0;
    let sawWritable = false;
    for (;;) {
      const base = tableBase + i * VRING_DESC_SIZE;
      // Read every field once: the driver may change the descriptor while we look at it.
      const addr = table.readU64(base + DESC.ADDR);
      const len = table.readU32(base + DESC.LEN);
      const flagsNext = table.readU32(base + DESC.FLAGS); // le16 flags, le16 next: one read
      const flags = flagsNext & 0xffff;
      const next = flagsNext >>> 16;

      if (flags & VRING_DESC_F.INDIRECT) {
        if (!this.indirect) {
          return bad('EINVAL', `descriptor ${i} is INDIRECT but indirect descriptors were not negotiated`, {
            head,
            desc: i,
          });
        }
        if (inIndirect) {
          return bad('EINVAL', `descriptor ${i} of an indirect table is INDIRECT again (nested)`, { head });
        }
        if (flags & VRING_DESC_F.NEXT) {
          // virtio 1.2 §2.7.5.3.1: the driver MUST NOT set both INDIRECT and NEXT.
          return bad('EINVAL', `descriptor ${i} sets both INDIRECT and NEXT`, { head, desc: i });
        }
        if (len === 0 || len % VRING_DESC_SIZE !== 0) {
          return bad('EINVAL', `indirect table length ${len} is not a non-zero multiple of 16`, {
            head,
            len,
          });
        }
        const at = this.#translateWhole(addr, len);
        if (at < 0) {
          return bad(
            'EFAULT',
            `indirect table at 0x${addr.toString(16)} (+${len}) is outside the allowed memory`,
            {
              head,
              addr,
              len,
            },
          );
        }
        // Inside the data memory: #translateWhole checked [at, at + len) against it.
        table = this.#dataView;
        tableBase = at;
        tableSize = len / VRING_DESC_SIZE;
        inIndirect = true;
        i = 0;
        continue;
      }

      // Counted after the INDIRECT branch, as vringh counts: the descriptor that points to a table
      // is not a buffer, so a table of `num` entries fits. It occurs once per walk (a second one is
      // nested), so the walk stays bounded.
      if (++count > this.#maxChain) {
        return bad('ELOOP', `chain from head ${head} is longer than ${this.#maxChain} descriptors`, { head });
      }
      total += len;
      if (total > 0xffffffff) {
        return bad('EOVERFLOW', `chain from head ${head} is longer than 2^32 - 1 bytes`, { head });
      }
      let iov = riov;
      if (flags & VRING_DESC_F.WRITE) {
        sawWritable = true;
        iov = wiov;
      } else if (sawWritable) {
        return bad('EINVAL', `readable descriptor ${i} follows a writable one in chain ${head}`, { head });
      }
      if (len > 0) {
        // The common case first: the whole buffer inside the range that answered last (checked
        // against the data memory when it was cached), room for a segment. Else look it up and
        // split it at range boundaries.
        const r = this.#range;
        if (
          r !== null &&
          addr >= r.start &&
          addr <= Number.MAX_SAFE_INTEGER &&
          len <= r.end - addr &&
          iov.count < this.#maxSegments
        ) {
          iov.add(addr + r.offset, len);
        } else if (!this.#addSegments(iov, addr, len)) {
          return this.#rangeError(head, addr, len);
        }
      }
      if (!(flags & VRING_DESC_F.NEXT)) return null;
      if (next >= tableSize) {
        return bad('EINVAL', `descriptor ${i} points to next ${next}, outside a table of ${tableSize}`, {
          head,
          next,
        });
      }
      i = next;
    }
  }

  #rangeError(head: number, addr: number, len: number): MicError {
    return bad(
      'EFAULT',
      `buffer 0x${addr.toString(16)} (+${len}) of chain ${head} is outside the allowed memory or too fragmented`,
      { head, addr, len },
    );
  }

  /** The range for `addr`, checked against the data memory; null when none. */
  #lookup(addr: number): VringhRange | null {
    if (addr > Number.MAX_SAFE_INTEGER) return null;
    const cached = this.#range;
    if (cached && addr >= cached.start && addr < cached.end) return cached;
    const r = this.#getRange(addr);
    if (
      !r ||
      !(addr >= r.start && addr < r.end) ||
      !Number.isSafeInteger(r.start + r.offset) ||
      r.start + r.offset < 0 ||
      r.end + r.offset > this.#data.byteLength
    ) {
      return null;
    }
    this.#range = r;
    return r;
  }

  /** Adds `[addr, addr+len)` to `iov`, split at range boundaries; false when not allowed. */
  #addSegments(iov: VringhIov, addr: number, len: number): boolean {
    while (len > 0) {
      const r = this.#lookup(addr);
      if (!r || iov.count >= this.#maxSegments) return false;
      const n = Math.min(len, r.end - addr);
      iov.add(addr + r.offset, n);
      addr += n;
      len -= n;
    }
    return true;
  }

  /** The data-memory offset of `[addr, addr+len)` when it lies inside one range, else -1. */
  #translateWhole(addr: number, len: number): number {
    const r = this.#lookup(addr);
    if (!r || len > r.end - addr) return -1;
    return addr + r.offset;
  }

  /**
   * Copies device-readable bytes from the cursor of `riov` into `dst` (like
   * `vringh_iov_pull_kern`). @returns bytes copied (less than `dst.length` at the end of the chain)
   */
  pull(riov: VringhIov, dst: Uint8Array): number {
    const i = riov.i;
    if (i < riov.count && riov.lengths[i]! - riov.consumed >= dst.length) {
      // All of it from the segment at the cursor (a request in one buffer, the common case).
      const n = dst.length;
      this.#dataView.read(riov.offsets[i]! + riov.consumed, dst);
      this.#advance(riov, n, riov.lengths[i]!);
      return n;
    }
    let copied = 0;
    while (copied < dst.length && riov.i < riov.count) {
      const segLen = riov.lengths[riov.i]!;
      const n = Math.min(segLen - riov.consumed, dst.length - copied);
      const at = riov.offsets[riov.i]! + riov.consumed;
      this.#dataView.read(at, n === dst.length ? dst : dst.subarray(copied, copied + n));
      copied += n;
      this.#advance(riov, n, segLen);
    }
    return copied;
  }

  /**
   * Copies `src` into device-writable bytes at the cursor of `wiov` (like
   * `vringh_iov_push_kern`). @returns bytes copied (less than `src.length` when the chain is full)
   */
  push(wiov: VringhIov, src: Uint8Array): number {
    const i = wiov.i;
    if (i < wiov.count && wiov.lengths[i]! - wiov.consumed >= src.length) {
      // All of it into the segment at the cursor (a response in one buffer, the common case).
      const n = src.length;
      this.#dataView.write(wiov.offsets[i]! + wiov.consumed, src);
      this.#advance(wiov, n, wiov.lengths[i]!);
      return n;
    }
    let copied = 0;
    while (copied < src.length && wiov.i < wiov.count) {
      const segLen = wiov.lengths[wiov.i]!;
      const n = Math.min(segLen - wiov.consumed, src.length - copied);
      const at = wiov.offsets[wiov.i]! + wiov.consumed;
      this.#dataView.write(at, n === src.length ? src : src.subarray(copied, copied + n));
      copied += n;
      this.#advance(wiov, n, segLen);
    }
    return copied;
  }

  /** Moves the cursor of `iov` by up to `n` bytes without copying. @returns bytes skipped */
  skip(iov: VringhIov, n: number): number {
    let skipped = 0;
    while (skipped < n && iov.i < iov.count) {
      const segLen = iov.lengths[iov.i]!;
      const k = Math.min(segLen - iov.consumed, n - skipped);
      skipped += k;
      this.#advance(iov, k, segLen);
    }
    return skipped;
  }

  #advance(iov: VringhIov, n: number, segLen: number): void {
    iov.consumed += n;
    iov.done += n;
    if (iov.consumed === segLen) {
      iov.i++;
      iov.consumed = 0;
    }
  }

  /**
   * Gives back the last `n` fetched heads so the next {@link getDesc} returns them again
   * (`vringh_abandon_kern`). Only for heads fetched and not completed.
   */
  abandon(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.num) {
      throw new MicError('EINVAL', `cannot abandon ${String(n)} heads of a queue of ${this.num}`);
    }
    this.#lastAvailIdx = (this.#lastAvailIdx - n) & 0xffff;
    this.#availIdx = this.#lastAvailIdx; // load and check the index again
  }

  /**
   * Publishes one used entry `{ head, len }` and moves `used.idx` (`vringh_complete_kern`).
   * Call {@link needNotify} after a batch of completions.
   */
  complete(head: number, len: number): void {
    this.#writeUsed(head, len, this.#completed);
    this.#completed++;
    this.#w.used.storeU16(USED.IDX, (this.#lastUsedIdx + this.#completed) & 0xffff);
  }

  /** Publishes several used entries with one `used.idx` store (`vringh_complete_multi_kern`). */
  completeMany(heads: ArrayLike<number>, lens: ArrayLike<number>): void {
    if (heads.length !== lens.length) {
      throw new MicError('EINVAL', `${heads.length} heads but ${lens.length} lengths`);
    }
    for (let k = 0; k < heads.length; k++) this.#writeUsed(heads[k]!, lens[k]!, this.#completed + k);
    this.#completed += heads.length;
    this.#w.used.storeU16(USED.IDX, (this.#lastUsedIdx + this.#completed) & 0xffff);
  }

  #writeUsed(head: number, len: number, k: number): void {
    if (!Number.isInteger(head) || head < 0 || head >= this.num) {
      throw new MicError('EINVAL', `used head ${String(head)} is outside the queue of ${this.num}`);
    }
    if (!Number.isInteger(len) || len < 0 || len > 0xffffffff) {
      throw new MicError('EINVAL', `used length ${String(len)} is not a u32`);
    }
    const slot = (this.#lastUsedIdx + k) & (this.num - 1);
    const at = USED.RING + slot * VRING_USED_ELEM_SIZE;
    this.#w.used.writeU32(at, head);
    this.#w.used.writeU32(at + 4, len);
  }

  /**
   * Whether the driver wants an interrupt for the entries completed since the last call
   * (`vringh_need_notify_kern`); also folds them into `lastUsedIdx`. Always call it after
   * completing. Returns false when nothing was completed.
   */
  needNotify(): boolean {
    const completed = this.#completed;
    if (completed === 0) return false;
    const oldIdx = this.#lastUsedIdx;
    const newIdx = (oldIdx + completed) & 0xffff;
    let notify: boolean;
    if (this.#eventIdx) {
      const usedEvent = this.#w.avail.loadU16(usedEventOffset(this.num));
      notify = completed > 0xffff || vringNeedEvent(usedEvent, newIdx, oldIdx);
    } else {
      notify = (this.#w.avail.loadU16(AVAIL.FLAGS) & VRING_AVAIL_F_NO_INTERRUPT) === 0;
    }
    this.#lastUsedIdx = newIdx;
    this.#completed = 0;
    return notify;
  }

  /** Calls the `notify` callback given at construction, if any (`vringh_notify`). */
  notify(): void {
    this.#notify?.();
  }

  /**
   * Asks the driver to kick again (`vringh_notify_enable_kern`): clears NO_NOTIFY, or with
   * EVENT_IDX sets `avail_event` to the next index. Returns false when heads arrived meanwhile:
   * the caller must fetch them instead of sleeping.
   */
  notifyEnable(): boolean {
    if (this.#eventIdx) {
      this.#w.used.storeU16(availEventOffset(this.num), this.#lastAvailIdx);
    } else {
      this.#w.used.storeU16(USED.FLAGS, 0);
    }
    return this.pending() === 0;
  }

  /** Tells the driver not to kick (`vringh_notify_disable_kern`); a hint, see virtio 1.2 §2.7.10. */
  notifyDisable(): void {
    if (!this.#eventIdx) this.#w.used.storeU16(USED.FLAGS, VRING_USED_F_NO_NOTIFY);
  }

  /**
   * Forgets the progress after a device reset (`vop_virtio_device_reset`): indices and the
   * completed count to 0, the broken latch cleared (the driver sets the ring up again before it
   * makes buffers available). Keeps `eventIdx` and the bad-chain count. The same as
   * {@link restore} with those values.
   */
  reset(): void {
    this.restore({ ...this.state(), lastAvailIdx: 0, lastUsedIdx: 0, completed: 0, broken: null });
  }
}

function bad(code: 'EINVAL' | 'ELOOP' | 'EFAULT' | 'EOVERFLOW', message: string, details: object): MicError {
  return new MicError(code, `bad chain: ${message}`, { details: details as Record<string, unknown> });
}
