/**
 * Mocks of the two ring parties, for tests. Each writes real rings into real memory, so the code
 * under test is the production code (like rust-vmm's `MockSplitQueue`):
 *
 * - {@link MockDriverRing} plays the driver, to test device code ({@link Vringh}). It writes any
 *   descriptor, including malformed ones, and publishes heads.
 * - {@link MockDeviceRing} plays the device, to test driver code ({@link Virtqueue}). It walks
 *   posted chains trustingly and can publish any used entry, including wrong ones.
 */
import { MicError } from '@mic/errors';
import type { CheckedView, Memory } from '@mic/memory';
import { VRING_DESC_F } from './constants.js';
import {
  AVAIL,
  DESC,
  USED,
  VRING_DESC_SIZE,
  VRING_USED_ELEM_SIZE,
  availEventOffset,
  usedEventOffset,
} from './layout.js';
import { ringWindows, type RingWindows, type VringParts } from './ring.js';
import type { VirtqBuf } from './virtqueue.js';

/** A raw descriptor. */
export interface RawDesc {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

/** Options of {@link MockDriverRing}: the ring, and where its bump allocator hands out data buffers. */
export interface MockDriverRingOptions extends VringParts {
  /** Memory the data buffers are allocated in (default `mem`). */
  readonly dataMem?: Memory;
  /** First byte the allocator may hand out. */
  readonly dataBase: number;
  /** End of the allocator's region (default: end of `dataMem`). */
  readonly dataEnd?: number;
}

/** The driver side of a ring, written by hand for device tests. */
export class MockDriverRing {
  readonly num: number;
  readonly data: Memory;
  readonly #w: RingWindows;
  #availIdx = 0;
  #nextDesc = 0;
  #brk: number;
  readonly #end: number;

  constructor(options: MockDriverRingOptions) {
    this.#w = ringWindows(options);
    this.num = options.num;
    this.data = options.dataMem ?? options.mem;
    this.#brk = options.dataBase;
    this.#end = options.dataEnd ?? this.data.byteLength;
  }

  /** Hands out `len` bytes of data memory (8-byte aligned). */
  alloc(len: number): number {
    const at = Math.ceil(this.#brk / 8) * 8;
    if (at + len > this.#end) throw new MicError('ENOMEM', `mock driver: no room for ${len} bytes`);
    this.#brk = at + len;
    return at;
  }

  /** Writes descriptor `i` of the ring's table. */
  writeDesc(i: number, d: RawDesc): void {
    writeRaw(this.#w.desc, i * VRING_DESC_SIZE, d);
  }

  /** Writes descriptor `i` of an indirect table at `tableAddr` in the data memory. */
  writeIndirectDesc(tableAddr: number, i: number, d: RawDesc): void {
    writeRaw(this.data, tableAddr + i * VRING_DESC_SIZE, d);
  }

  /** Reads descriptor `i` of the ring's table. */
  readDesc(i: number): RawDesc {
    const m = this.#w.desc;
    const at = i * VRING_DESC_SIZE;
    return {
      addr: m.readU64(at + DESC.ADDR),
      len: m.readU32(at + DESC.LEN),
      flags: m.readU16(at + DESC.FLAGS),
      next: m.readU16(at + DESC.NEXT),
    };
  }

  /** Puts `head` in the next avail slot and publishes `avail.idx + 1`. */
  pushAvail(head: number): void {
    this.#w.avail.writeU16(AVAIL.RING + 2 * (this.#availIdx & (this.num - 1)), head);
    this.#availIdx = (this.#availIdx + 1) & 0xffff;
    this.#w.avail.storeU16(AVAIL.IDX, this.#availIdx);
  }

  /** Writes avail slot `slot` without publishing. */
  writeAvailSlot(slot: number, head: number): void {
    this.#w.avail.writeU16(AVAIL.RING + 2 * slot, head);
  }

  /** Publishes any `avail.idx` (hostile tests: jumps, rewinds). */
  setAvailIdx(idx: number): void {
    this.#availIdx = idx & 0xffff;
    this.#w.avail.storeU16(AVAIL.IDX, this.#availIdx);
  }

  get availIdx(): number {
    return this.#availIdx;
  }

  setAvailFlags(flags: number): void {
    this.#w.avail.storeU16(AVAIL.FLAGS, flags);
  }

  setUsedEvent(idx: number): void {
    this.#w.avail.storeU16(usedEventOffset(this.num), idx & 0xffff);
  }

  get usedIdx(): number {
    return this.#w.used.loadU16(USED.IDX);
  }

  get usedFlags(): number {
    return this.#w.used.loadU16(USED.FLAGS);
  }

  get availEvent(): number {
    return this.#w.used.loadU16(availEventOffset(this.num));
  }

  /** The used entry in slot `slot`. */
  readUsed(slot: number): { id: number; len: number } {
    const at = USED.RING + (slot & (this.num - 1)) * VRING_USED_ELEM_SIZE;
    return { id: this.#w.used.readU32(at), len: this.#w.used.readU32(at + 4) };
  }

  /**
   * Builds a well-formed chain from the next free descriptors (round robin over the table): one
   * readable descriptor per `readable` buffer (copied into fresh data memory), then one writable
   * descriptor per length in `writable`. Publishes the head unless `publish` is false.
   */
  addChain(
    readable: readonly Uint8Array[],
    writable: readonly number[],
    publish = true,
  ): { head: number; readable: VirtqBuf[]; writable: VirtqBuf[] } {
    const total = readable.length + writable.length;
    if (total === 0 || total > this.num) throw new MicError('EINVAL', `mock chain of ${total} descriptors`);
    const head = this.#nextDesc;
    const r: VirtqBuf[] = [];
    const w: VirtqBuf[] = [];
    let k = 0;
    const put = (b: VirtqBuf, flags: number): void => {
      const i = (head + k) % this.num;
      const last = ++k === total;
      this.writeDesc(i, {
        addr: b.addr,
        len: b.len,
        flags: flags | (last ? 0 : VRING_DESC_F.NEXT),
        next: last ? 0 : (i + 1) % this.num,
      });
    };
    for (const bytes of readable) {
      const addr = this.alloc(bytes.length);
      this.data.write(addr, bytes);
      const b = { addr, len: bytes.length };
      r.push(b);
      put(b, 0);
    }
    for (const len of writable) {
      const b = { addr: this.alloc(len), len };
      w.push(b);
      put(b, VRING_DESC_F.WRITE);
    }
    this.#nextDesc = (head + total) % this.num;
    if (publish) this.pushAvail(head);
    return { head, readable: r, writable: w };
  }
}

function writeRaw(mem: Memory | CheckedView, at: number, d: RawDesc): void {
  mem.writeU64(at + DESC.ADDR, d.addr);
  mem.writeU32(at + DESC.LEN, d.len);
  mem.writeU16(at + DESC.FLAGS, d.flags);
  mem.writeU16(at + DESC.NEXT, d.next);
}

/** A chain as the mock device found it. */
export interface MockChain {
  readonly head: number;
  readonly readable: VirtqBuf[];
  readonly writable: VirtqBuf[];
}

/** The device side of a ring, played trustingly for driver tests. */
export class MockDeviceRing {
  readonly num: number;
  readonly data: Memory;
  readonly #w: RingWindows;
  #lastAvail = 0;
  #usedIdx = 0;

  constructor(options: VringParts & { readonly dataMem?: Memory }) {
    this.#w = ringWindows(options);
    this.num = options.num;
    this.data = options.dataMem ?? options.mem;
  }

  /** Takes the next available chain (following one level of indirect table), or null. */
  nextAvail(): MockChain | null {
    const avail = this.#w.avail;
    if (avail.loadU16(AVAIL.IDX) === this.#lastAvail) return null;
    const head = avail.readU16(AVAIL.RING + 2 * (this.#lastAvail & (this.num - 1)));
    this.#lastAvail = (this.#lastAvail + 1) & 0xffff;
    const readable: VirtqBuf[] = [];
    const writable: VirtqBuf[] = [];
    // The ring's table, or a window of the data memory holding an indirect table.
    let table: CheckedView | Memory = this.#w.desc;
    let i = head;
    for (let n = 0; n <= this.num; n++) {
      const at = i * VRING_DESC_SIZE;
      const addr = table.readU64(at + DESC.ADDR);
      const len = table.readU32(at + DESC.LEN);
      const flags = table.readU16(at + DESC.FLAGS);
      if (flags & VRING_DESC_F.INDIRECT) {
        table = this.data.window(addr, len);
        i = 0;
        continue;
      }
      (flags & VRING_DESC_F.WRITE ? writable : readable).push({ addr, len });
      if (!(flags & VRING_DESC_F.NEXT)) return { head, readable, writable };
      i = table.readU16(at + DESC.NEXT);
    }
    throw new MicError('ELOOP', `mock device: chain ${head} loops`);
  }

  /** Publishes a used entry `{ id, len }` and moves `used.idx`. */
  pushUsed(id: number, len: number): void {
    this.writeUsedSlot(this.#usedIdx & (this.num - 1), id, len);
    this.#usedIdx = (this.#usedIdx + 1) & 0xffff;
    this.#w.used.storeU16(USED.IDX, this.#usedIdx);
  }

  /** Writes a used slot without publishing. */
  writeUsedSlot(slot: number, id: number, len: number): void {
    const at = USED.RING + slot * VRING_USED_ELEM_SIZE;
    this.#w.used.writeU32(at, id >>> 0);
    this.#w.used.writeU32(at + 4, len >>> 0);
  }

  /** Publishes any `used.idx` (hostile tests). */
  setUsedIdx(idx: number): void {
    this.#usedIdx = idx & 0xffff;
    this.#w.used.storeU16(USED.IDX, this.#usedIdx);
  }

  setUsedFlags(flags: number): void {
    this.#w.used.storeU16(USED.FLAGS, flags);
  }

  setAvailEvent(idx: number): void {
    this.#w.used.storeU16(availEventOffset(this.num), idx & 0xffff);
  }

  get availFlags(): number {
    return this.#w.avail.loadU16(AVAIL.FLAGS);
  }

  get usedEvent(): number {
    return this.#w.avail.loadU16(usedEventOffset(this.num));
  }

  get availIdx(): number {
    return this.#w.avail.loadU16(AVAIL.IDX);
  }
}
