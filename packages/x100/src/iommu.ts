/**
 * The host's IOMMU: the translation unit of the PCIe root complex the card sits behind (Intel
 * VT-d, AMD-Vi). The X100's SMPT maps host memory in 16 GiB entries, so once the host maps one
 * page through an entry, the card could reach every host byte behind it. With the IOMMU on (the
 * default; `iommu: false` in the platform options gives the bare hardware), every card access to
 * host memory, after the SMPT translated it, must also lie inside a range the host DMA-mapped
 * (`dma_map_single`, which `mic_map_single` does before `mic_map`):
 *
 * - a card CPU access is checked when the card maps it (`X100CardView.cardMap`); outside
 *   the mapped ranges it fails with `EFAULT`;
 * - a DMA engine access (a MEMCPY source or destination, a STATUS destination, a host-memory
 *   ring) is checked per descriptor and again at every engine turn after the table changed;
 *   outside the mapped ranges the channel stops with `DCHERR` ADDR (RING for a ring);
 * - every refused access is a fault: counted and recorded in shared memory (the host reads them
 *   with {@link X100Iommu.faults}) and logged as a warning (the first 16 faults, then every
 *   power of two: a hostile card cannot flood the log).
 *
 * The table lives in a SharedArrayBuffer (`X100Buffers.iommu`) that only the host writes:
 * a sorted array of disjoint `[start, end)` host ranges behind a sequence word (a seqlock: odd
 * while the host rewrites the table, even when it is stable). Readers (the card's thread, the
 * engine's thread) never write it and take no lock: they read the sequence, binary-search the
 * ranges and read the sequence again, and retry when it moved.
 *
 * Unmap is an IOTLB invalidation: it completes before {@link X100Iommu.unmap} returns. The
 * engine latches the sequence at the start of each channel turn (one chunk, `dmaChunkBytes`, or
 * up to 1024 descriptors) into an engine word of the same buffer and clears it at the end; a
 * latched copy is checked again when a later turn sees another sequence. The host's unmap
 * publishes the new table, then waits until the engine word is idle or holds the new sequence
 * (spinning, then `Atomics.wait`; bounded by 2 s, after which it logs a warning and returns). So
 * no DMA write checked against the old table lands after unmap returns; a copy that was half
 * done stops at its next turn with `DCHERR` ADDR. The engine is hardware of the model, not card
 * code: the card cannot hold that word.
 *
 * @see drivers/misc/mic/host/mic_smpt.c (`mic_map_single`: `dma_map_single` then `mic_map`)
 * @see drivers/iommu/intel/iommu.c (`iommu_flush_iotlb_psi`: invalidation waits for completion)
 */
import { MicError, formatAddr, formatValue } from '@mic/errors';
import { nullLogger } from '@mic/logger';
import type { Logger } from '@mic/logger';
import type { X100CardWindowInfo, X100CardWindowTable } from './card-windows.js';

/** Sizes of the IOMMU table. */
export const X100_IOMMU = {
  /** Disjoint ranges the table holds at most (mappings that touch or overlap merge into one). */
  MAX_RANGES: 4096,
  /** Fault records kept (the last ones); the count is exact. */
  FAULT_RECORDS: 16,
  /** How long an unmap waits for the DMA engine to finish a turn begun before it (ms). */
  INVALIDATE_TIMEOUT_MS: 2000,
} as const;

/** Int32 word indices of the header. */
const SEQ = 0;
const COUNT = 1;
/** The engine's latched sequence, or `IDLE`. */
const ENGINE = 2;
/** Non-zero while the host waits for the engine word to move. */
const WAITING = 3;
const FAULTS = 4;
/** Per fault slot: the fault number + 1 once written (0 while written). */
const FAULT_SEQ = 16;
/** The engine is between turns (sequences are even). */
const IDLE = 1;
/** Float64 index of the fault records (4 numbers each), then of the ranges (2 each). */
const FAULT_REC = (FAULT_SEQ + X100_IOMMU.FAULT_RECORDS) / 2;
const RANGES = FAULT_REC + 4 * X100_IOMMU.FAULT_RECORDS;
/** Bytes of the table's buffer. */
export const X100_IOMMU_BYTES = (RANGES + 2 * X100_IOMMU.MAX_RANGES) * 8;

/** Retries of a read that raced a table rewrite before it counts as refused. */
const READ_RETRIES = 64;
/** How long a reader waits for the host to finish a rewrite (ms; the host never blocks in one). */
const STABLE_WAIT_MS = 1000;

/** A card access the IOMMU refused. */
export interface X100IommuFault {
  /** The fault's number (1 for the first since power-on). */
  readonly index: number;
  /** The DMA channel (0–7), or -1 for an access of the card's CPU. */
  readonly channel: number;
  /** The card address of the access. */
  readonly micAddr: number;
  /** The host address the SMPT translated it to. */
  readonly hostAddr: number;
  /** Its length in bytes. */
  readonly length: number;
}

/** What {@link X100Iommu.faults} reports. */
export interface X100IommuFaults {
  /** Faults since power-on. */
  readonly count: number;
  /** The last ones (up to {@link X100_IOMMU}.FAULT_RECORDS), oldest first. */
  readonly recent: readonly X100IommuFault[];
}

/** One published range of the table. */
export interface X100IommuRange {
  /** Host DMA address of its first byte. */
  readonly dmaAddr: number;
  readonly size: number;
}

const nap = new Int32Array(new SharedArrayBuffer(4));

/**
 * One thread's handle on the IOMMU table (`X100Hardware.iommu`): the checks the card's
 * accesses go through, the engine's turn word, the fault records. It never writes the table;
 * {@link X100Iommu} (the host's) does.
 */
export class X100IommuTable {
  /** False with `iommu: false`: every access that the SMPT allows is allowed. */
  readonly enabled: boolean;
  readonly #words: Int32Array;
  readonly #f64: Float64Array;
  #logger: Logger = nullLogger;

  /** @internal the platform builds it over `X100Buffers.iommu` */
  constructor(sab: SharedArrayBuffer, enabled: boolean) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < X100_IOMMU_BYTES) {
      throw new MicError('EINVAL', `the IOMMU table needs a SharedArrayBuffer of ${X100_IOMMU_BYTES} bytes`);
    }
    this.enabled = enabled;
    this.#words = new Int32Array(sab, 0, FAULT_SEQ + X100_IOMMU.FAULT_RECORDS);
    this.#f64 = new Float64Array(sab, 0, X100_IOMMU_BYTES / 8);
  }

  /** Where this thread logs faults (the platforms set it; default nowhere). */
  setLogger(logger: Logger): void {
    this.#logger = logger;
  }

  /** This thread's fault logger. */
  get logger(): Logger {
    return this.#logger;
  }

  /** The table's sequence now (even when stable). */
  get seq(): number {
    return Atomics.load(this.#words, SEQ);
  }

  /** An even sequence, waiting (bounded) for a rewrite to end; odd when it did not. */
  #stable(): number {
    const words = this.#words;
    let s = Atomics.load(words, SEQ);
    if ((s & 1) === 0) return s;
    const end = performance.now() + STABLE_WAIT_MS;
    for (let i = 0; (s & 1) !== 0 && performance.now() < end; i++) {
      if (i >= 1024) Atomics.wait(nap, 0, 0, 0.05);
      s = Atomics.load(words, SEQ);
    }
    return s;
  }

  /**
   * True when `[hostAddr, hostAddr + length)` lies inside one mapped range (an empty range:
   * when `hostAddr` does), or the IOMMU is off. Lock-free; cost: two atomic loads and a binary
   * search. The caller checked that the range is a pair of non-negative safe integers.
   */
  allows(hostAddr: number, length: number): boolean {
    if (!this.enabled) return true;
    const words = this.#words;
    const f64 = this.#f64;
    for (let tries = 0; tries < READ_RETRIES; tries++) {
      const s = this.#stable();
      if ((s & 1) !== 0) return false;
      let lo = 0;
      let hi = Math.min(words[COUNT]!, X100_IOMMU.MAX_RANGES) - 1;
      // the last range starting at or below hostAddr
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (f64[RANGES + 2 * mid]! <= hostAddr) {
          found = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      const end = found < 0 ? 0 : f64[RANGES + 2 * found + 1]!;
      const ok = found >= 0 && hostAddr < end && hostAddr + length <= end;
      if (Atomics.load(words, SEQ) === s) return ok;
    }
    return false;
  }

  /**
   * {@link allows}, and a fault (recorded, logged) when it does not: what every access of the
   * card to host memory goes through.
   * @param channel - the DMA channel, or -1 for the card's CPU
   */
  check(channel: number, micAddr: number, hostAddr: number, length: number): boolean {
    if (this.allows(hostAddr, length)) return true;
    this.#fault(channel, micAddr, hostAddr, length);
    return false;
  }

  #fault(channel: number, micAddr: number, hostAddr: number, length: number): void {
    const words = this.#words;
    const n = Atomics.add(words, FAULTS, 1) + 1;
    const slot = (n - 1) % X100_IOMMU.FAULT_RECORDS;
    Atomics.store(words, FAULT_SEQ + slot, 0);
    const at = FAULT_REC + 4 * slot;
    this.#f64[at] = channel;
    this.#f64[at + 1] = micAddr;
    this.#f64[at + 2] = hostAddr;
    this.#f64[at + 3] = length;
    Atomics.store(words, FAULT_SEQ + slot, n);
    if (n <= X100_IOMMU.FAULT_RECORDS || (n & (n - 1)) === 0) {
      this.#logger.warn(
        channel < 0
          ? 'IOMMU fault: the card CPU accessed host memory the host did not DMA-map'
          : 'IOMMU fault: DMA to host memory the host did not DMA-map',
        { fault: n, channel, micAddr: formatAddr(micAddr), hostAddr: formatAddr(hostAddr), length },
      );
    }
  }

  /** The fault count and the last records. */
  faults(): X100IommuFaults {
    const words = this.#words;
    const count = Atomics.load(words, FAULTS);
    const recent: X100IommuFault[] = [];
    for (let n = Math.max(1, count - X100_IOMMU.FAULT_RECORDS + 1); n <= count; n++) {
      const slot = (n - 1) % X100_IOMMU.FAULT_RECORDS;
      if (Atomics.load(words, FAULT_SEQ + slot) !== n) continue; // being written, or newer
      const at = FAULT_REC + 4 * slot;
      const fault: X100IommuFault = {
        index: n,
        channel: this.#f64[at]!,
        micAddr: this.#f64[at + 1]!,
        hostAddr: this.#f64[at + 2]!,
        length: this.#f64[at + 3]!,
      };
      if (Atomics.load(words, FAULT_SEQ + slot) === n) recent.push(fault);
    }
    return { count, recent };
  }

  /**
   * The engine starts a turn: latches the table's sequence in the engine word (what an unmap
   * waits on) and returns it. Pair with {@link leaveTurn}.
   * @internal the DMA engine's
   */
  enterTurn(): number {
    const words = this.#words;
    for (;;) {
      const s = this.#stable();
      Atomics.store(words, ENGINE, s);
      if (Atomics.load(words, SEQ) === s) return s;
    }
  }

  /** The engine ended a turn (or stops): wakes a host waiting in an unmap. @internal */
  leaveTurn(): void {
    const words = this.#words;
    Atomics.store(words, ENGINE, IDLE);
    if (Atomics.load(words, WAITING) !== 0) Atomics.notify(words, ENGINE);
  }

  /**
   * Publishes a new table (the host's {@link X100Iommu}; nobody else writes it).
   * @returns its sequence
   * @internal
   */
  publish(ranges: readonly (readonly [number, number])[]): number {
    const words = this.#words;
    const s = Atomics.load(words, SEQ);
    Atomics.store(words, SEQ, (s + 1) | 0);
    for (let i = 0; i < ranges.length; i++) {
      this.#f64[RANGES + 2 * i] = ranges[i]![0];
      this.#f64[RANGES + 2 * i + 1] = ranges[i]![1];
    }
    words[COUNT] = ranges.length;
    const next = (s + 2) | 0;
    Atomics.store(words, SEQ, next);
    return next;
  }

  /**
   * Waits until the engine is between turns or in a turn that latched `seq`, at most
   * `timeoutMs` (the host's {@link X100Iommu} after a publish).
   * @returns false when it timed out
   * @internal
   */
  invalidate(seq: number, timeoutMs: number): boolean {
    const words = this.#words;
    const done = (e: number): boolean => e === IDLE || e === seq;
    if (done(Atomics.load(words, ENGINE))) return true;
    Atomics.store(words, WAITING, 1);
    try {
      const end = performance.now() + timeoutMs;
      for (let i = 0; ; i++) {
        const e = Atomics.load(words, ENGINE);
        if (done(e)) return true;
        if (performance.now() >= end) return false;
        if (i >= 256) Atomics.wait(words, ENGINE, e, 1);
      }
    } finally {
      Atomics.store(words, WAITING, 0);
    }
  }

  /** The engine's thread is gone: nothing is in a turn any more. @internal the platform's */
  engineGone(): void {
    this.leaveTurn();
  }
}

/** Creates the shared buffer of a new IOMMU table: empty, the engine between turns. @internal */
export function createIommuBuffer(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(X100_IOMMU_BYTES);
  new Int32Array(sab)[ENGINE] = IDLE;
  return sab;
}

/**
 * What the host's IOMMU needs of the platform to take back the card CPU's windows on an unmap.
 * @internal
 */
export interface X100IommuCardWindows {
  readonly table: X100CardWindowTable;
  /** The generation of the card code running now, or undefined when none runs. */
  readonly generation: () => number | undefined;
  /** Boot `generation` of the card still holds `windows` into `[start, end)`, which the host unmapped. */
  readonly windowsKept: (
    generation: number,
    start: number,
    end: number,
    windows: readonly X100CardWindowInfo[],
  ) => Promise<void>;
}

const isAddr = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * The host's IOMMU mappings (`X100HostView.iommu`): `map`/`unmap` of host DMA ranges for
 * the card (the `dma_map_single`/`dma_unmap_single` half of `mic_map_single`; the host view's
 * `X100HostView.mapSingle` does both halves). Mappings are counted per range: a range
 * mapped twice needs two unmaps. The published table is their union. See the module comment.
 */
export class X100Iommu {
  readonly #table: X100IommuTable;
  readonly #hostRamSize: number;
  readonly #cardWindows: X100IommuCardWindows | undefined;
  /** Unmapped ranges a window of the card still reached, until it can no longer. */
  readonly #held: { readonly start: number; readonly end: number; readonly done: Promise<void> }[] = [];
  /** The mappings, sorted by start then end; equal ranges share an entry with a count. */
  readonly #list: { readonly start: number; readonly end: number; count: number }[] = [];

  /** @internal the host view builds it */
  constructor(table: X100IommuTable, hostRamSize: number, cardWindows?: X100IommuCardWindows) {
    this.#table = table;
    this.#hostRamSize = hostRamSize;
    this.#cardWindows = cardWindows;
  }

  /** False with `iommu: false` (the bookkeeping runs, nothing is checked). */
  get enabled(): boolean {
    return this.#table.enabled;
  }

  /** Mappings not unmapped yet. */
  get liveMappings(): number {
    let n = 0;
    for (const m of this.#list) n += m.count;
    return n;
  }

  /**
   * Maps `[dmaAddr, dmaAddr + size)` of host RAM for the card.
   * @throws MicError EINVAL for a range that is not inside host RAM, ENOSPC when the table
   * would need more than {@link X100_IOMMU}.MAX_RANGES disjoint ranges
   */
  map(dmaAddr: number, size: number): void {
    if (!isAddr(dmaAddr) || !isAddr(size) || size < 1 || dmaAddr + size > this.#hostRamSize) {
      throw new MicError(
        'EINVAL',
        `IOMMU map of ${formatAddr(dmaAddr)} +${String(size)}: not a non-empty range inside ${this.#hostRamSize} bytes of host RAM`,
        { details: { dmaAddr: String(dmaAddr), size: String(size) } },
      );
    }
    const end = dmaAddr + size;
    const i = this.#find(dmaAddr, end);
    const m = this.#list[i];
    if (m !== undefined && m.start === dmaAddr && m.end === end) {
      m.count++;
      return; // the union is the same
    }
    this.#list.splice(i, 0, { start: dmaAddr, end, count: 1 });
    const ranges = this.#union();
    if (ranges.length > X100_IOMMU.MAX_RANGES) {
      this.#list.splice(i, 1);
      throw new MicError(
        'ENOSPC',
        `IOMMU map of ${formatAddr(dmaAddr)} +${size}: the table holds ${X100_IOMMU.MAX_RANGES} disjoint ranges`,
        { details: { dmaAddr, size } },
      );
    }
    this.#table.publish(ranges);
  }

  /**
   * Undoes one {@link map} of the same range (`dmaAddr` and `size` as mapped) and returns once
   * no DMA checked against the old table can still write (see the module comment). A size of 0
   * does nothing.
   * @throws MicError EINVAL for a range that is not mapped as such
   */
  unmap(dmaAddr: number, size: number): void {
    if (size === 0 && isAddr(dmaAddr)) return;
    const i = isAddr(dmaAddr) && isAddr(size) ? this.#find(dmaAddr, dmaAddr + size) : -1;
    const m = this.#list[i];
    if (m === undefined || m.start !== dmaAddr || m.end !== dmaAddr + size) {
      throw new MicError(
        'EINVAL',
        `IOMMU unmap of ${formatAddr(dmaAddr)} +${String(size)}: not mapped (unmap what map() mapped, with its size)`,
        { details: { dmaAddr: String(dmaAddr), size: String(size) } },
      );
    }
    if (--m.count > 0) return;
    this.#list.splice(i, 1);
    const seq = this.#table.publish(this.#union());
    if (!this.#table.invalidate(seq, X100_IOMMU.INVALIDATE_TIMEOUT_MS)) {
      this.#table.logger.warn('IOMMU invalidation timed out: the DMA engine did not finish its turn', {
        dmaAddr: formatAddr(dmaAddr),
        size,
        timeoutMs: X100_IOMMU.INVALIDATE_TIMEOUT_MS,
      });
    }
    this.#revokeCardWindows(dmaAddr, dmaAddr + size);
  }

  /**
   * The card CPU's half of the invalidation (see `card-windows.ts`): windows of the running card
   * that still reach into `[start, end)` are IOMMU faults, and the platform gives the card a
   * grace period to give them back.
   */
  #revokeCardWindows(start: number, end: number): void {
    const cw = this.#cardWindows;
    if (cw === undefined || !this.#table.enabled) return;
    const generation = cw.generation();
    if (generation === undefined) return;
    const kept = this.keptCardWindows(generation, start, end);
    if (kept.length === 0) return;
    for (const w of kept) this.#table.check(-1, w.micAddr, w.hostAddr, w.length); // records the fault
    const entry = { start, end, done: cw.windowsKept(generation, start, end, kept) };
    this.#held.push(entry);
    void entry.done.finally(() => this.#held.splice(this.#held.indexOf(entry), 1));
  }

  /**
   * Whether the card may still reach host RAM in `[dmaAddr, dmaAddr + size)` after the host
   * unmapped it: a window of the running card kept it (see `card-windows.ts`). A host allocator
   * must not hand such RAM out again before the promise resolves (the card gave the window
   * back, or it was stopped at the end of its grace period, or the platform closed).
   * @returns undefined when nothing of the card reaches the range
   * @throws MicError EINVAL for an address or size that is not a non-negative safe integer
   */
  cardHolds(dmaAddr: number, size: number): Promise<void> | undefined {
    if (!isAddr(dmaAddr) || !isAddr(size)) {
      throw new MicError(
        'EINVAL',
        `IOMMU cardHolds of ${formatValue(dmaAddr)} +${formatValue(size)}: not a range`,
        {
          details: { dmaAddr: String(dmaAddr), size: String(size) },
        },
      );
    }
    const held = this.#held.filter((h) => h.start < dmaAddr + size && dmaAddr < h.end);
    if (held.length === 0) return undefined;
    return Promise.all(held.map((h) => h.done)).then(() => {});
  }

  /**
   * Windows of boot `generation` of the card that reach into `[start, end)` although the IOMMU
   * no longer allows what they reach. @internal the platform's
   */
  keptCardWindows(generation: number, start: number, end: number): X100CardWindowInfo[] {
    const cw = this.#cardWindows;
    if (cw === undefined || !this.#table.enabled) return [];
    const table = this.#table;
    return cw.table.reaching(generation, start, end, (h, l) => table.allows(h, l));
  }

  /** The published table: disjoint ranges, ascending. */
  ranges(): X100IommuRange[] {
    return this.#union().map(([start, end]) => ({ dmaAddr: start, size: end - start }));
  }

  /** True when the card may reach `[dmaAddr, dmaAddr + length)` (always with the IOMMU off). */
  allows(dmaAddr: number, length: number): boolean {
    if (!isAddr(dmaAddr) || !isAddr(length)) return false;
    return this.#table.allows(dmaAddr, length);
  }

  /** Faults since power-on (card CPU and DMA), with the last records. */
  faults(): X100IommuFaults {
    return this.#table.faults();
  }

  /** Where `[start, end)` is or would go in the sorted list. */
  #find(start: number, end: number): number {
    const list = this.#list;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = list[mid]!;
      if (m.start < start || (m.start === start && m.end < end)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The union of the mappings as sorted disjoint `[start, end)` (touching ranges merge). */
  #union(): [number, number][] {
    const out: [number, number][] = [];
    for (const m of this.#list) {
      const last = out[out.length - 1];
      if (last !== undefined && m.start <= last[1]) last[1] = Math.max(last[1], m.end);
      else out.push([m.start, m.end]);
    }
    return out;
  }
}
