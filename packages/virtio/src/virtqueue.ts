/**
 * The driver side of a split virtqueue, like Linux `drivers/virtio/virtio_ring.c` (split ring).
 *
 * The driver keeps a shadow of everything it posted (descriptor links, chain lengths, writable
 * capacity, tokens; like `desc_extra` and `desc_state`), never reads its own descriptors back
 * from shared memory, and checks every used entry against the shadow: the id must be in range
 * and really in flight (which also catches duplicates), `used.idx` may not move past what is in
 * flight, and the length is clamped to the writable bytes of that chain. A device that breaks
 * these rules latches the queue broken (`vq->broken` / `BAD_RING`): adds fail with EIO, nothing
 * more is collected, and the owner resets the device and calls {@link Virtqueue.reset}.
 *
 * Memory ordering: descriptors and the avail ring entry are written before the atomic store of
 * `avail.idx` (`virtio_wmb` in `virtqueue_add_split`); `kickPrepare` reads `used.flags` /
 * `avail_event` with atomic loads after that store (the `virtio_mb` before the check);
 * `getBuf` reads `used.idx` with an atomic load before the entries it covers (`virtio_rmb`).
 */
import { MicError } from '@mic/errors';
import type { CheckedView, Memory } from '@mic/memory';
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

/** A buffer to post: an address in the device-visible space and a length (1 to 2^32 − 1). */
export interface VirtqBuf {
  readonly addr: number;
  readonly len: number;
}

/**
 * Where indirect descriptor tables go: one table of `maxEntries` descriptors per head. The table
 * of head `h` is written at offset `base + h × maxEntries × 16` of `mem`, and the ring names it by
 * its device-visible (DMA) address `dmaAddr + h × maxEntries × 16`: the device reads tables
 * through the addresses it is given, like every buffer, and where the pool's memory sits in the
 * device's address space is the driver's business (on the MIC card a buffer from `dmaOps.alloc()`
 * has its own DMA address, not its offset in the window).
 */
export interface IndirectPool {
  /** Memory the tables are written in (default: the ring's `mem`); any {@link Memory}. */
  readonly mem?: Memory;
  /** Offset of the first table in `mem` (16-byte aligned). */
  readonly base: number;
  /** Device-visible address of `mem` offset `base`, the first table (16-byte aligned). */
  readonly dmaAddr: number;
  /** Most descriptors in one indirect table: 2 to the queue size (virtio 1.2 §2.7.5.3.1). */
  readonly maxEntries: number;
}

/** A checked {@link IndirectPool}. */
interface Pool {
  readonly mem: Memory;
  readonly base: number;
  readonly dmaAddr: number;
  /** Bytes of one table. */
  readonly stride: number;
  readonly maxEntries: number;
}

/** Options of a {@link Virtqueue}. */
export interface VirtqueueOptions extends VringParts {
  /** VIRTIO_RING_F_EVENT_IDX was negotiated. */
  readonly eventIdx?: boolean;
  /** Use indirect tables for chains of more than one buffer (VIRTIO_RING_F_INDIRECT_DESC). */
  readonly indirect?: IndirectPool;
}

/** One chain for {@link Virtqueue.addMany}. */
export interface VirtqChain<T> {
  readonly out: readonly VirtqBuf[];
  readonly in: readonly VirtqBuf[];
  readonly token: T;
}

/** A completed buffer: its token and the bytes the device wrote (clamped). */
export interface UsedBuf<T> {
  readonly token: T;
  readonly len: number;
}

const NONE = 0xffff;

/**
 * The driver side of one split virtqueue.
 *
 * @example
 * const vq = new Virtqueue<number>({ num: 128, mem, ...vringLayout(128, 4096) });
 * vq.add([{ addr: req, len: 64 }], [{ addr: resp, len: 64 }], 1);
 * if (vq.kickPrepare()) kick();
 * for (let u = vq.getBuf(); u; u = vq.getBuf()) handle(u.token, u.len);
 */
export class Virtqueue<T> {
  readonly num: number;
  readonly eventIdx: boolean;
  /** Used lengths that were larger than the chain's writable bytes and were clamped. */
  clampedLengths = 0;

  readonly #w: RingWindows;
  readonly #pool: Pool | null;
  // Shadow state, never read back from shared memory.
  readonly #next: Uint16Array;
  readonly #chainLen: Uint16Array;
  readonly #inLen: Float64Array;
  readonly #tokens: (T | undefined)[];
  #freeHead = 0;
  #numFree: number;
  #availIdx = 0;
  #published = 0;
  #numAdded = 0;
  #lastUsed = 0;
  /**
   * `used.idx` as last loaded, when it was at most the chains in flight ahead of `#lastUsed`:
   * entries up to it are collected without loading the index again (a cache of shared memory).
   */
  #usedIdx = 0;
  #inFlight = 0;
  #cbEnabled = true;
  #broken: MicError | null = null;

  constructor(options: VirtqueueOptions) {
    this.#w = ringWindows(options);
    this.num = options.num;
    this.eventIdx = options.eventIdx ?? false;
    this.#next = new Uint16Array(this.num);
    this.#chainLen = new Uint16Array(this.num);
    this.#inLen = new Float64Array(this.num);
    this.#tokens = new Array<T | undefined>(this.num).fill(undefined);
    this.#numFree = this.num;
    this.#pool = options.indirect ? checkPool(options.indirect, options.mem, this.num) : null;
    this.#initFreeList();
  }

  #initFreeList(): void {
    for (let i = 0; i < this.num; i++) this.#next[i] = i + 1 < this.num ? i + 1 : NONE;
    this.#freeHead = 0;
    this.#numFree = this.num;
  }

  /** Free descriptors. */
  get numFree(): number {
    return this.#numFree;
  }

  /** Chains posted and not yet collected. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The latched error, or null while the device behaves. */
  get broken(): MicError | null {
    return this.#broken;
  }

  /**
   * Posts a chain: `out` buffers the device reads, then `in` buffers it writes
   * (`virtqueue_add_sgs`). Uses an indirect table when a pool was given and the chain has more
   * than one buffer. Throws EIO when broken, ENOSPC when there is no room, EINVAL on a bad
   * buffer or an undefined token.
   */
  add(out: readonly VirtqBuf[], inBufs: readonly VirtqBuf[], token: T): void {
    this.#post(out, inBufs, token);
    this.#publish();
  }

  /**
   * Posts several chains and publishes `avail.idx` once for all of them (virtio 1.2 §2.7.13:
   * steps 1 and 2 repeated, then one index update), so a device polling the index sees one
   * change per batch. Stops at the first chain that cannot be posted and throws its error; the
   * chains before it are posted and published.
   */
  addMany(chains: readonly VirtqChain<T>[]): void {
    try {
      for (let k = 0; k < chains.length; k++) {
        const c = chains[k]!;
        this.#post(c.out, c.in, c.token);
      }
    } finally {
      this.#publish();
    }
  }

  #post(out: readonly VirtqBuf[], inBufs: readonly VirtqBuf[], token: T): void {
    if (this.#broken) throw new MicError('EIO', 'virtqueue is broken', { cause: this.#broken });
    if (token === undefined) throw new MicError('EINVAL', 'a buffer token may not be undefined');
    const total = out.length + inBufs.length;
    if (total === 0) throw new MicError('EINVAL', 'a chain needs at least one buffer');
    let inLen = 0;
    for (let k = 0; k < out.length; k++) checkBuf(out[k]!);
    for (let k = 0; k < inBufs.length; k++) inLen += checkBuf(inBufs[k]!);
    const pool = this.#pool;
    const indirect = pool !== null && total > 1 && total <= pool.maxEntries;
    const needed = indirect ? 1 : total;
    if (this.#numFree < needed) {
      throw new MicError('ENOSPC', `chain of ${needed} descriptors does not fit: ${this.#numFree} free`, {
        details: { needed, free: this.#numFree },
      });
    }
    const desc = this.#w.desc;
    const head = this.#freeHead;
    if (indirect) {
      this.#writeIndirect(pool, pool.base + head * pool.stride, out, inBufs);
      writeDesc(
        desc,
        head * VRING_DESC_SIZE,
        { addr: pool.dmaAddr + head * pool.stride, len: total * VRING_DESC_SIZE },
        VRING_DESC_F.INDIRECT,
        0,
      );
      this.#freeHead = this.#next[head]!;
      this.#chainLen[head] = 1;
    } else {
      // Out buffers then in buffers, each descriptor linked to the next free one (the shadow
      // free list); the last one ends the chain.
      const links = this.#next;
      const nOut = out.length;
      let i = head;
      for (let k = 0; k < total; k++) {
        const b = k < nOut ? out[k]! : inBufs[k - nOut]!;
        const next = links[i]!;
        const flags = k < nOut ? 0 : VRING_DESC_F.WRITE;
        const at = i * VRING_DESC_SIZE;
        desc.writeU64(at + DESC.ADDR, b.addr);
        desc.writeU32(at + DESC.LEN, b.len);
        // le16 flags, le16 next: one write
        desc.writeU32(
          at + DESC.FLAGS,
          k + 1 === total ? flags : (flags | VRING_DESC_F.NEXT | (next << 16)) >>> 0,
        );
        i = next;
      }
      this.#freeHead = i;
      this.#chainLen[head] = total;
    }
    this.#numFree -= needed;
    this.#tokens[head] = token;
    this.#inLen[head] = inLen;
    this.#inFlight++;
    this.#w.avail.writeU16(AVAIL.RING + 2 * (this.#availIdx & (this.num - 1)), head);
    this.#availIdx = (this.#availIdx + 1) & 0xffff;
    this.#numAdded++;
  }

  /** Ring entries first, then the index (virtio 1.2 §2.7.13.2, the `virtio_wmb` in Linux). */
  #publish(): void {
    if (this.#published !== this.#availIdx) {
      this.#published = this.#availIdx;
      this.#w.avail.storeU16(AVAIL.IDX, this.#availIdx);
    }
  }

  /** Writes the chain into the table at offset `table` of the pool's memory. */
  #writeIndirect(pool: Pool, table: number, out: readonly VirtqBuf[], inBufs: readonly VirtqBuf[]): void {
    const total = out.length + inBufs.length;
    for (let k = 0; k < total; k++) {
      const b = k < out.length ? out[k]! : inBufs[k - out.length]!;
      const last = k + 1 === total;
      const flags = (k < out.length ? 0 : VRING_DESC_F.WRITE) | (last ? 0 : VRING_DESC_F.NEXT);
      writeDesc(pool.mem, table + k * VRING_DESC_SIZE, b, flags, last ? 0 : k + 1);
    }
  }

  /**
   * Whether the device must be notified of the chains added since the last call
   * (`virtqueue_kick_prepare`): with EVENT_IDX when the new avail index passes `avail_event`,
   * otherwise unless the device set NO_NOTIFY.
   */
  kickPrepare(): boolean {
    const newIdx = this.#availIdx;
    const oldIdx = (newIdx - this.#numAdded) & 0xffff;
    const added = this.#numAdded;
    this.#numAdded = 0;
    if (added === 0) return false;
    const used = this.#w.used;
    if (this.eventIdx) {
      // After more than 0xffff adds the u16 window [old, new) no longer covers them all, so
      // avail_event may have been passed unseen: kick (Linux kicks by itself at num_added 0xffff).
      return added > 0xffff || vringNeedEvent(used.loadU16(availEventOffset(this.num)), newIdx, oldIdx);
    }
    return (used.loadU16(USED.FLAGS) & VRING_USED_F_NO_NOTIFY) === 0;
  }

  /** True when the device has returned buffers not collected yet (`more_used_split`). */
  moreUsed(): boolean {
    return !this.#broken && this.#w.used.loadU16(USED.IDX) !== this.#lastUsed;
  }

  /**
   * Collects the next used buffer (`virtqueue_get_buf`), or null when there is none or the
   * queue is broken. A used entry that breaks the rules latches the queue broken.
   */
  getBuf(): UsedBuf<T> | null {
    if (this.#broken) return null;
    const used = this.#w.used;
    const lastUsed = this.#lastUsed;
    if (this.#usedIdx === lastUsed) {
      // Everything seen is collected: load the index (once) and check how far it moved.
      const usedIdx = used.loadU16(USED.IDX);
      if (usedIdx === lastUsed) return null;
      const ahead = (usedIdx - lastUsed) & 0xffff;
      if (ahead > this.#inFlight) {
        this.#break(
          `used.idx moved from ${lastUsed} to ${usedIdx}: ${ahead} entries, but only ${this.#inFlight} in flight`,
          { usedIdx, lastUsed },
        );
        return null;
      }
      this.#usedIdx = usedIdx;
    }
    const at = USED.RING + (lastUsed & (this.num - 1)) * VRING_USED_ELEM_SIZE;
    const id = used.readU32(at);
    let len = used.readU32(at + 4);
    if (id >= this.num) {
      this.#break(`used id ${id} is out of range (queue size ${this.num})`, { id });
      return null;
    }
    const token = this.#tokens[id];
    if (token === undefined) {
      this.#break(`used id ${id} is not a head in flight (a duplicate or never posted)`, { id });
      return null;
    }
    const cap = this.#inLen[id]!;
    if (len > cap) {
      len = cap;
      this.clampedLengths++;
    }
    this.#detach(id);
    this.#lastUsed = (lastUsed + 1) & 0xffff;
    if (this.eventIdx && this.#cbEnabled) {
      this.#w.avail.storeU16(usedEventOffset(this.num), this.#lastUsed);
    }
    return { token, len };
  }

  /** Returns the descriptors of chain `head` to the free list (`detach_buf_split`). */
  #detach(head: number): void {
    const n = this.#chainLen[head]!;
    let last = head;
    for (let k = 1; k < n; k++) last = this.#next[last]!;
    this.#next[last] = this.#freeHead;
    this.#freeHead = head;
    this.#numFree += n;
    this.#tokens[head] = undefined;
    this.#inFlight--;
  }

  #break(message: string, details: Record<string, unknown>): void {
    this.#broken = new MicError('EIO', `virtqueue broken: ${message}`, { details });
  }

  /**
   * Asks the device not to interrupt (`virtqueue_disable_cb`). With EVENT_IDX, `used_event` is
   * moved half the index space behind, so no completion soon matches it.
   */
  disableCb(): void {
    this.#cbEnabled = false;
    if (this.eventIdx) {
      this.#w.avail.storeU16(usedEventOffset(this.num), (this.#lastUsed - 0x8000) & 0xffff);
    } else {
      this.#w.avail.storeU16(AVAIL.FLAGS, VRING_AVAIL_F_NO_INTERRUPT);
    }
  }

  /**
   * Asks the device to interrupt on the next completion (`virtqueue_enable_cb`). Returns false
   * when buffers were returned meanwhile: collect them instead of waiting.
   */
  enableCb(): boolean {
    this.#cbEnabled = true;
    if (this.eventIdx) {
      this.#w.avail.storeU16(usedEventOffset(this.num), this.#lastUsed);
    } else {
      this.#w.avail.storeU16(AVAIL.FLAGS, 0);
    }
    return !this.moreUsed();
  }

  /**
   * Like {@link enableCb} but asks for an interrupt only after about three quarters of the
   * chains in flight completed (`virtqueue_enable_cb_delayed`). Without EVENT_IDX it is
   * {@link enableCb}. Returns false when that many were already returned.
   */
  enableCbDelayed(): boolean {
    if (!this.eventIdx) return this.enableCb();
    this.#cbEnabled = true;
    const bufs = Math.floor((((this.#availIdx - this.#lastUsed) & 0xffff) * 3) / 4);
    this.#w.avail.storeU16(usedEventOffset(this.num), (this.#lastUsed + bufs) & 0xffff);
    return ((this.#w.used.loadU16(USED.IDX) - this.#lastUsed) & 0xffff) <= bufs;
  }

  /**
   * Takes back every chain still in flight (`virtqueue_detach_unused_buf`, after the device was
   * reset) and returns their tokens in head order.
   */
  detachUnused(): T[] {
    const tokens: T[] = [];
    for (let head = 0; head < this.num; head++) {
      const t = this.#tokens[head];
      if (t !== undefined) {
        tokens.push(t);
        this.#detach(head);
      }
    }
    return tokens;
  }

  /**
   * Sets the ring up again after a device reset: detaches every chain (returning the tokens),
   * zeroes the three ring parts, resets the indices and clears the broken latch.
   */
  reset(): T[] {
    const tokens = this.detachUnused();
    for (const part of [this.#w.desc, this.#w.avail, this.#w.used]) part.fill(0, part.byteLength, 0);
    this.#initFreeList();
    this.#availIdx = 0;
    this.#published = 0;
    this.#numAdded = 0;
    this.#lastUsed = 0;
    this.#usedIdx = 0;
    this.#inFlight = 0;
    this.#cbEnabled = true;
    this.#broken = null;
    return tokens;
  }
}

function checkBuf(b: VirtqBuf): number {
  if (!Number.isSafeInteger(b.addr) || b.addr < 0) {
    throw new MicError('EINVAL', `buffer address ${String(b.addr)} is not a non-negative integer`);
  }
  if (!Number.isInteger(b.len) || b.len < 1 || b.len > 0xffffffff) {
    throw new MicError('EINVAL', `buffer length ${String(b.len)} is not in [1, 2^32 - 1]`);
  }
  return b.len;
}

function writeDesc(mem: Memory | CheckedView, at: number, b: VirtqBuf, flags: number, next: number): void {
  mem.writeU64(at + DESC.ADDR, b.addr);
  mem.writeU32(at + DESC.LEN, b.len);
  mem.writeU32(at + DESC.FLAGS, (flags | (next << 16)) >>> 0); // le16 flags, le16 next: one write
}

function checkPool(pool: IndirectPool, mem: Memory, num: number): Pool {
  const m = pool.mem ?? mem;
  if (!Number.isInteger(pool.maxEntries) || pool.maxEntries < 2 || pool.maxEntries > num) {
    throw new MicError('EINVAL', `indirect table size ${String(pool.maxEntries)} is not in [2, ${num}]`);
  }
  const stride = pool.maxEntries * VRING_DESC_SIZE;
  const size = num * stride;
  if (
    !Number.isSafeInteger(pool.base) ||
    pool.base < 0 ||
    pool.base % 16 !== 0 ||
    pool.base > m.byteLength - size
  ) {
    throw new MicError(
      'EFAULT',
      `indirect pool [${String(pool.base)}, +${size}) is not 16-byte aligned inside ${m.byteLength} bytes`,
    );
  }
  if (
    !Number.isSafeInteger(pool.dmaAddr) ||
    pool.dmaAddr < 0 ||
    pool.dmaAddr % 16 !== 0 ||
    !Number.isSafeInteger(pool.dmaAddr + size)
  ) {
    throw new MicError(
      'EINVAL',
      `indirect pool DMA address ${String(pool.dmaAddr)} is not a 16-byte aligned address with room for ${size} bytes`,
      { details: { dmaAddr: pool.dmaAddr, size } },
    );
  }
  return { mem: m, base: pool.base, dmaAddr: pool.dmaAddr, stride, maxEntries: pool.maxEntries };
}
