/**
 * The card CPU's windows on host memory, and how the host's IOMMU takes them back.
 *
 * A real IOMMU checks every access of the card: once the host unmaps a range, the next access
 * faults. In the model a card CPU access is a JavaScript access to a view of host RAM's
 * SharedArrayBuffer, which no other thread can revoke. So the model does both halves a
 * JavaScript program can do:
 *
 * - Every access through a window {@link X100CardWindow} (what `X100CardView.cardMap` returns
 *   with the IOMMU on) is checked again whenever the IOMMU table changed since the window's last
 *   check, or the card was reset: an access after the host unmapped the range is an IOMMU fault
 *   (`EFAULT`, recorded and logged), after a reset `ENODEV`. The check on the fast path is two
 *   loads of shared words.
 * - A raw byte view taken from a window (`bytes()`, a `CheckedView`, a vring) cannot be checked.
 *   So every window the card maps is published in a table of shared memory (this module's
 *   {@link X100CardWindowTable}, written by the card's thread only, slot by slot behind a
 *   sequence word). When the host unmaps a range that a window of the running card still
 *   reaches, the IOMMU cannot complete the invalidation alone: each such window is an IOMMU
 *   fault (recorded, logged), and the card has {@link X100_CARD_WINDOWS}.GRACE_MS to give it
 *   back (`X100CardView.cardUnmap`, the card's `iounmap`), as a card does right after the
 *   message that made the host free the memory (SCIF's `EXIT_ACK`, VOP's hot-unplug). A card
 *   that still holds it then is stopped (its thread is terminated, the card goes `halted`, its
 *   views die; a reset brings it back), as a host blocks a device that does not honour an
 *   invalidation. A card that writes through a raw view after the unmap can therefore write
 *   the unmapped range for at most the grace period (plus the time its thread takes to end).
 *
 * @see drivers/iommu/intel/dmar.c (`qi_check_fault`: an invalidation the device does not
 * complete is an error the host acts on)
 * @see drivers/misc/mic/card/mic_device.c (`mic_card_map` / `mic_card_unmap`)
 */
import { MicError, formatAddr, formatValue } from '@mic/errors';
import { BufferMemory } from '@mic/memory';
import type { X100IommuTable } from './iommu.js';

/** Sizes of the card window table. */
export const X100_CARD_WINDOWS = {
  /** Windows the card may hold at once (`cardMap` beyond it: `ENOSPC`). */
  MAX: 16384,
  /**
   * How long a running card may keep a window on host memory the host unmapped before it is
   * stopped (ms, on the platform's clock).
   */
  GRACE_MS: 1000,
} as const;

/** Int32 header words. */
const HWM = 0;
/** Int32 index of slot sequences (odd while the card rewrites the slot). */
const SEQS = 4;
/** Float64 index of the slots: generation, micAddr, hostAddr, length (length 0: free). */
const SLOTS = (SEQS + X100_CARD_WINDOWS.MAX) / 2;
const SLOT_F64 = 4;
/** Bytes of the table's buffer. */
export const X100_CARD_WINDOWS_BYTES = (SLOTS + SLOT_F64 * X100_CARD_WINDOWS.MAX) * 8;

/** How often the host re-reads a slot the card is rewriting before it takes the worst case. */
const READ_RETRIES = 64;

/** One window of the card on host memory, as the host reads it. */
export interface X100CardWindowInfo {
  /** The card address the card mapped. */
  readonly micAddr: number;
  /** The host address it reaches. */
  readonly hostAddr: number;
  readonly length: number;
}

/**
 * One thread's handle on the card window table (`X100Hardware.cardWindows`). The card's
 * thread writes slots (through `X100CardView.cardMap`); the host reads them ({@link reaching}) and
 * clears the table before a boot, when no card thread runs.
 */
export class X100CardWindowTable {
  readonly #words: Int32Array;
  readonly #f64: Float64Array;

  /** @internal the hardware builds it over `X100Buffers.cardWindows` */
  constructor(sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < X100_CARD_WINDOWS_BYTES) {
      throw new MicError(
        'EINVAL',
        `the card window table needs a SharedArrayBuffer of ${X100_CARD_WINDOWS_BYTES} bytes`,
      );
    }
    this.#words = new Int32Array(sab, 0, SEQS + X100_CARD_WINDOWS.MAX);
    this.#f64 = new Float64Array(sab, 0, X100_CARD_WINDOWS_BYTES / 8);
  }

  /** Empties the table (the host, before a boot: no card thread runs). @internal */
  clear(): void {
    const n = Math.min(Math.max(Atomics.load(this.#words, HWM), 0), X100_CARD_WINDOWS.MAX);
    for (let i = 0; i < n; i++) {
      this.#f64[SLOTS + SLOT_F64 * i + 3] = 0;
      Atomics.store(this.#words, SEQS + i, 0);
    }
    Atomics.store(this.#words, HWM, 0);
  }

  /** Writes slot `i` (the card's thread only). @internal */
  write(i: number, generation: number, micAddr: number, hostAddr: number, length: number): void {
    const words = this.#words;
    const s = Atomics.load(words, SEQS + i);
    Atomics.store(words, SEQS + i, (s + 1) | 1);
    const at = SLOTS + SLOT_F64 * i;
    this.#f64[at] = generation;
    this.#f64[at + 1] = micAddr;
    this.#f64[at + 2] = hostAddr;
    this.#f64[at + 3] = length;
    Atomics.store(words, SEQS + i, ((s + 1) | 1) + 1);
    if (i >= Atomics.load(words, HWM)) Atomics.store(words, HWM, i + 1);
  }

  /**
   * The windows of boot `generation` that reach into `[start, end)` and that `allowed` no longer
   * allows. Reads each slot under its sequence; a slot that stays mid-rewrite counts as a window
   * over the whole range (the worst case). Lock-free; bounded by the slots in use.
   */
  reaching(
    generation: number,
    start: number,
    end: number,
    allowed: (hostAddr: number, length: number) => boolean,
  ): X100CardWindowInfo[] {
    const words = this.#words;
    const f64 = this.#f64;
    const out: X100CardWindowInfo[] = [];
    const n = Math.min(Math.max(Atomics.load(words, HWM), 0), X100_CARD_WINDOWS.MAX);
    for (let i = 0; i < n; i++) {
      let info: X100CardWindowInfo | undefined;
      let stable = false;
      for (let tries = 0; tries < READ_RETRIES && !stable; tries++) {
        const s = Atomics.load(words, SEQS + i);
        if ((s & 1) !== 0) continue;
        const at = SLOTS + SLOT_F64 * i;
        const gen = f64[at]!;
        const micAddr = f64[at + 1]!;
        const hostAddr = f64[at + 2]!;
        const length = f64[at + 3]!;
        if (Atomics.load(words, SEQS + i) !== s) continue;
        stable = true;
        if (gen === generation && length > 0 && hostAddr < end && hostAddr + length > start) {
          info = { micAddr, hostAddr, length };
        }
      }
      if (!stable) info = { micAddr: -1, hostAddr: start, length: end - start };
      if (info !== undefined && !allowed(info.hostAddr, info.length)) out.push(info);
    }
    return out;
  }
}

/** What a window and its sub-windows share: its slot and the check state. @internal */
interface Registration {
  /** The table slot, or -1 for a window of no bytes (nothing to publish). */
  readonly slot: number;
  readonly micAddr: number;
  readonly hostAddr: number;
  readonly length: number;
  /** The IOMMU sequence the range was last found mapped under. */
  seq: number;
  released: boolean;
}

/**
 * The windows one boot of the card holds (the card's thread): slots of the shared table, handed
 * out and taken back. @internal `X100CardView` owns one
 */
export class X100CardWindows {
  readonly #table: X100CardWindowTable;
  readonly #iommu: X100IommuTable;
  readonly #generation: number;
  readonly #alive: () => boolean;
  readonly #free: number[] = [];
  #next = 0;

  constructor(table: X100CardWindowTable, iommu: X100IommuTable, generation: number, alive: () => boolean) {
    this.#table = table;
    this.#iommu = iommu;
    this.#generation = generation;
    this.#alive = alive;
  }

  /**
   * Publishes a window of `length` bytes at `hostAddr` (checked by the caller, under IOMMU
   * sequence `seq`) and returns it.
   * @throws MicError ENOSPC when the card holds {@link X100_CARD_WINDOWS}.MAX windows
   */
  open(micAddr: number, hostAddr: number, length: number, seq: number, ram: BufferMemory): X100CardWindow {
    let slot = -1;
    if (length > 0) {
      slot = this.#free.pop() ?? (this.#next < X100_CARD_WINDOWS.MAX ? this.#next++ : -1);
      if (slot < 0) {
        throw new MicError(
          'ENOSPC',
          `cardMap of ${formatAddr(micAddr)} +${length}: the card holds ${X100_CARD_WINDOWS.MAX} windows on host memory (cardUnmap some)`,
          { details: { micAddr, length } },
        );
      }
      this.#table.write(slot, this.#generation, micAddr, hostAddr, length);
    }
    const reg: Registration = { slot, micAddr, hostAddr, length, seq, released: false };
    return new X100CardWindow(ram.buffer, ram.byteOffset + hostAddr, length, reg, this);
  }

  /**
   * Takes a window back.
   * @throws MicError EINVAL when it is not a window `cardMap` handed out (a sub-window, a window
   * of another boot) or was taken back already
   */
  close(win: unknown): void {
    const root = typeof win === 'object' && win !== null ? ROOTS.get(win) : undefined;
    const reg = root?.owner === this ? root.reg : undefined;
    if (reg === undefined || reg.released) {
      throw new MicError(
        'EINVAL',
        `cardUnmap of ${reg?.released ? 'a window given back already' : formatValue(win)}: not a live window cardMap returned in this boot of the card`,
      );
    }
    reg.released = true;
    if (reg.slot >= 0) {
      this.#table.write(reg.slot, this.#generation, 0, 0, 0);
      this.#free.push(reg.slot);
    }
  }

  /** The slow path of a window's check: after a table change, a reset or an unmap. @internal */
  recheck(reg: Registration): void {
    if (!this.#alive()) {
      throw new MicError('ENODEV', 'the card was reset: its windows on host memory are gone');
    }
    if (reg.released) {
      throw new MicError(
        'EFAULT',
        `card window ${formatAddr(reg.micAddr)} +${reg.length} was unmapped (cardUnmap)`,
        { details: { micAddr: reg.micAddr, length: reg.length } },
      );
    }
    const seq = this.#iommu.seq;
    if (!this.#iommu.check(-1, reg.micAddr, reg.hostAddr, reg.length)) {
      throw new MicError(
        'EFAULT',
        `card window ${formatAddr(reg.micAddr)} +${reg.length} reaches host address ${formatAddr(reg.hostAddr)}, which the host unmapped (IOMMU fault)`,
        { details: { micAddr: reg.micAddr, length: reg.length, hostAddr: reg.hostAddr } },
      );
    }
    if ((seq & 1) === 0) reg.seq = seq;
  }

  /** True while the fast-path check holds. @internal */
  current(reg: Registration): boolean {
    return this.#iommu.seq === reg.seq && !reg.released && this.#alive();
  }
}

/** The windows `cardMap` returned (not their sub-windows), for {@link X100CardWindows.close}. */
const ROOTS = new WeakMap<object, { readonly reg: Registration; readonly owner: X100CardWindows }>();

/**
 * A window of the card's CPU on host memory with the host's IOMMU on (what `cardMap` returns):
 * a `BufferMemory` whose every access is checked again once the IOMMU table changed or the card
 * was reset (see the module comment). Its sub-windows share its check and its slot.
 */
export class X100CardWindow extends BufferMemory {
  readonly #reg: Registration;
  readonly #owner: X100CardWindows;

  /** @internal {@link X100CardWindows.open} builds it */
  constructor(
    buffer: SharedArrayBuffer | ArrayBuffer,
    byteOffset: number,
    byteLength: number,
    reg: Registration,
    owner: X100CardWindows,
    root = true,
  ) {
    super(buffer, byteOffset, byteLength);
    this.#reg = reg;
    this.#owner = owner;
    if (root) ROOTS.set(this, { reg, owner });
  }

  /** The card address this window starts at. */
  get micAddr(): number {
    // host RAM's view starts at byte 0 of its buffer: byteOffset is a host address
    return this.#reg.micAddr + (this.byteOffset - this.#reg.hostAddr);
  }

  #ok(): void {
    if (!this.#owner.current(this.#reg)) this.#owner.recheck(this.#reg);
  }

  override readU8(offset: number): number {
    this.#ok();
    return super.readU8(offset);
  }
  override readU16(offset: number): number {
    this.#ok();
    return super.readU16(offset);
  }
  override readU32(offset: number): number {
    this.#ok();
    return super.readU32(offset);
  }
  override readU64(offset: number): number {
    this.#ok();
    return super.readU64(offset);
  }
  override readBigU64(offset: number): bigint {
    this.#ok();
    return super.readBigU64(offset);
  }
  override writeU8(offset: number, value: number): void {
    this.#ok();
    super.writeU8(offset, value);
  }
  override writeU16(offset: number, value: number): void {
    this.#ok();
    super.writeU16(offset, value);
  }
  override writeU32(offset: number, value: number): void {
    this.#ok();
    super.writeU32(offset, value);
  }
  override writeU64(offset: number, value: number): void {
    this.#ok();
    super.writeU64(offset, value);
  }
  override writeBigU64(offset: number, value: bigint): void {
    this.#ok();
    super.writeBigU64(offset, value);
  }
  override loadU8(offset: number): number {
    this.#ok();
    return super.loadU8(offset);
  }
  override storeU8(offset: number, value: number): void {
    this.#ok();
    super.storeU8(offset, value);
  }
  override loadU16(offset: number): number {
    this.#ok();
    return super.loadU16(offset);
  }
  override storeU16(offset: number, value: number): void {
    this.#ok();
    super.storeU16(offset, value);
  }
  override loadU32(offset: number): number {
    this.#ok();
    return super.loadU32(offset);
  }
  override storeU32(offset: number, value: number): void {
    this.#ok();
    super.storeU32(offset, value);
  }
  override read(offset: number, dst: Uint8Array): void {
    this.#ok();
    super.read(offset, dst);
  }
  override write(offset: number, src: Uint8Array): void {
    this.#ok();
    super.write(offset, src);
  }
  override fill(offset: number, length: number, value: number): void {
    this.#ok();
    super.fill(offset, length, value);
  }
  /**
   * A raw view of the bytes (checked now; it cannot be checked later: unmapping what it reaches
   * while the card runs stops the card, see the module comment).
   */
  override bytes(offset: number, length: number): Uint8Array {
    this.#ok();
    return super.bytes(offset, length);
  }
  override window(offset: number, length: number): X100CardWindow {
    this.#ok();
    const sub = super.window(offset, length);
    return new X100CardWindow(sub.buffer, sub.byteOffset, sub.byteLength, this.#reg, this.#owner, false);
  }
}
