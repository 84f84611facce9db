/**
 * The X100 DMA engine as hardware: 8 channels, each working through a ring of 16-byte
 * descriptors in memory, on its own, concurrently with the host and card code.
 *
 * A channel works while it is enabled (`DCR`) and not stopped (`DCHERR` = 0): it takes the
 * descriptors from its tail (`DTPR`) up to the head software wrote (`DHPR`), in order, and
 * advances `DTPR` and the completion count (`DSTAT` 16:0) past each one it finished. Every
 * address is in the card's address space: card memory (GDDR) below its size, host RAM through
 * the SMPT window at `0x80_0000_0000` (only entries the host mapped). That holds for host-owned
 * channels too: the host driver hands the engine SMPT addresses (its `dma_map_ops` map through
 * the SMPT), and its rings are marked `SYS` in `DRAR_HI`.
 *
 * - MEMCPY copies `length` bytes (64-byte units) from source to destination; both addresses must
 *   be 64-byte aligned and the whole of both ranges must reach memory before a byte moves.
 *   Host memory to host memory is refused (the kernel notes the engine cannot do it).
 * - STATUS writes its 64-bit value to a 4-byte aligned destination (two 32-bit stores, low word
 *   first) and, with bit 59, raises the channel's interrupt once the completion count covers it.
 * - NOP (type 0) completes without doing anything; other types stop the channel.
 *
 * The engine latches a descriptor when it takes it, as the hardware does: its four words are
 * read once, checked (alignment, both whole ranges reachable, not host to host) and kept in the
 * engine; the copy then works from that snapshot only. Whatever is written into the ring slot
 * afterwards (by the card racing the engine, or by the copy itself when its destination covers
 * its own slot) has no effect on it: a copy moves exactly the range that was checked, and a slot
 * turned into a NOP or a STATUS half way does not end the copy or let the next one skip its
 * checks. The ring's location is resolved once per enable.
 *
 * A bad descriptor stops the channel before it touches anything: `DCHERR` gets an
 * {@link X100_DMA_CHERR} code, `DSTAT` gets QUIESCE, the completion count stays on the bad
 * descriptor, and the channel interrupt is raised (unless `DCHERRMSK` or `DCAR` masks it).
 * Nothing outside card memory and mapped host RAM is ever touched, and nothing throws: should
 * the model itself throw while it works on a channel, that channel stops with `DCHERR` FAULT and
 * the others keep working.
 *
 * With the host's IOMMU on (`iommu.ts`), every host address a channel uses (ring, MEMCPY source
 * or destination, STATUS destination) must also lie inside a range the host DMA-mapped: it is
 * checked when the descriptor is taken, and a latched copy and the ring again at the start of a
 * turn that sees another IOMMU table than the last one; a refusal stops the channel (`DCHERR`
 * ADDR, RING for the ring) and is an IOMMU fault. Each turn latches the table's sequence in the
 * IOMMU's engine word, which a host unmap waits on, so no write checked against an unmapped
 * range lands after the unmap returned.
 *
 * Each channel's turn has three phases ({@link X100DmaEngine.step}): claim (under the channel
 * lock: head, tail, ring), run (no lock: take and latch descriptors, copy chunks against the
 * latched ranges) and publish (under the lock: tail, completion count, error, interrupt; dropped
 * when a disable or reset came in between). A run also publishes the tail and completion count on
 * the way, before it takes a MEMCPY once 16 KiB were copied since the last publish, so a driver
 * polling the count sees each larger copy complete when it is done, not at the end of the step.
 *
 * Large copies are done in chunks (`chunkBytes`, default 1 MiB, the card's largest descriptor):
 * each {@link step} gives every channel one chunk's worth of work (or up to 1024 descriptors), so
 * channels interleave. A disable or a reset between two chunks ends the copy there. The chunk is
 * what one turn costs in claim, publish and the scan of the channels, and the size of the
 * `TypedArray.set` calls a copy is made of: with 64 KiB chunks every 64 KiB descriptor took a
 * turn of its own (~1–2 µs of locks, scans and cross-thread cache misses against a ~4–7 µs copy)
 * and a 512 KiB host descriptor eight `set` calls; with 1 MiB a turn takes up to 16 such
 * descriptors (each still published as it completes) and every host descriptor is one `set`.
 *
 * The engine is driven by a platform: on `inProcess` a register write queues a microtask that
 * steps until there is no work (deterministic; the virtual clock does not move while the engine
 * has work); on `worker` it runs in a thread of its own that polls briefly when idle, then sleeps
 * on the DMA event word until a register write wakes it.
 *
 * @see drivers/dma/mic_x100_dma.c
 * @see drivers/dma/mic_x100_dma.h
 */
import { MicError, checkObject, formatValue } from '@mic/errors';
import { nullLogger } from '@mic/logger';
import type { Logger } from '@mic/logger';
import {
  X100_DMA,
  X100_DMA_BIT,
  X100_DMA_CHERR,
  X100_DMA_DESC,
  X100_DMA_REG,
  dmaChanReg,
} from './constants.js';
import { decodeDmaRing } from './dma-desc.js';
import { dmaRingUsable, raiseDmaInterrupt } from './dma-regs.js';
import { DMA_LOCK_OWNER, DmaSharedState } from './dma-state.js';
import { checkHardware, type X100Hardware } from './hardware.js';
import type { X100IommuTable } from './iommu.js';

/** Options of an {@link X100DmaEngine}. */
export interface X100DmaEngineOptions {
  /** Bytes one channel moves per {@link X100DmaEngine.step} (a multiple of 64; default 1 MiB). */
  readonly chunkBytes?: number;
  /** Where channel stops are logged (debug); default nowhere. */
  readonly logger?: Logger;
}

/** What an engine has done so far (in this thread). */
export interface X100DmaEngineStats {
  /** Descriptors completed. */
  readonly descriptors: number;
  /** Bytes copied by MEMCPY descriptors. */
  readonly bytes: number;
  /** Channel stops on a bad descriptor or ring. */
  readonly errors: number;
}

/** Bytes a channel moves per step by default (see the module comment): 1 MiB. */
const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** Descriptors a channel takes per step at most (bounds a step of zero-length work). */
const MAX_DESCS_PER_STEP = 1024;
/**
 * Within a step, the tail and completion count are published before the engine takes a MEMCPY
 * once this many bytes were copied since the last publish: a driver that polls sees each copy of
 * 16 KiB or more complete as soon as it (and the STATUS after it) is done, not at the end of the
 * step, as the hardware advances its tail per descriptor. Smaller copies are published together.
 */
const PUBLISH_BYTES = 16 * 1024;
/** Copies up to this size go word by word (no view allocation). */
const SMALL_COPY = 256;
const TWO32 = 2 ** 32;
/** Bits 45:32 of a descriptor address, in the high word of its quadword. */
const HI_ADDR_MASK = 0x3fff;
const CARD = 0;
const HOST = 1;
const DESCRIPTORS = 0;
const BYTES = 1;
const ERRORS = 2;

/** What the engine keeps of one channel between its turns (this thread only). */
interface ChannelWork {
  epoch: number;
  /** Ring words (-1: the ring is not resolved). */
  ringBuf: number;
  ringBase: number;
  entries: number;
  /** The ring's card address. */
  ringAddr: number;
  /** The IOMMU sequence the ring and the latched copy were last checked at (-1: never). */
  iommuSeq: number;
  /** The current turn: head and tail as claimed, where the run got to, its stop code. */
  head: number;
  tail: number;
  idx: number;
  err: number;
  /** The latched MEMCPY (from {@link X100DmaEngine} taking it until its last chunk). */
  active: boolean;
  /** Ring index it was taken from. */
  index: number;
  length: number;
  progress: number;
  srcBuf: number;
  srcOff: number;
  dstBuf: number;
  dstOff: number;
  /** The latched copy's card addresses. */
  srcAddr: number;
  dstAddr: number;
}

/**
 * The engine's work loop over one thread's {@link X100Hardware}. See the module comment. Only
 * one engine may run per hardware (platforms create it); {@link step} is what drives it.
 */
export class X100DmaEngine {
  readonly #hw: X100Hardware;
  readonly #state: DmaSharedState;
  readonly #regs: Uint32Array;
  readonly #u8: readonly [Uint8Array, Uint8Array];
  readonly #u32: readonly [Uint32Array, Uint32Array];
  readonly #cardSize: number;
  /** Word index of each channel's register block. */
  readonly #chanBase: readonly number[];
  readonly #chunk: number;
  readonly #logger: Logger;
  readonly #work: ChannelWork[];
  /**
   * Descriptors, bytes, errors. A typed array: counters that pass 2^31 in object fields would
   * change the engine's field representation and deoptimize its hot loop.
   */
  readonly #counts = new Float64Array(3);
  /** Result of the last {@link #resolve}: which buffer. */
  #resolvedBuf = CARD;
  /** The host IOMMU's table, when it is on. */
  readonly #iommu: X100IommuTable | undefined;
  /** The channel being worked on (for IOMMU fault records). */
  #ch = 0;

  constructor(hw: X100Hardware, options: X100DmaEngineOptions = {}) {
    checkHardware('DMA engine', hw);
    checkObject('DMA engine options', options);
    const chunk = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunk) || chunk < X100_DMA_DESC.ALIGN || chunk % X100_DMA_DESC.ALIGN !== 0) {
      throw new MicError(
        'EINVAL',
        `DMA engine chunk of ${formatValue(chunk)} bytes is not a positive multiple of 64`,
        {
          details: { chunkBytes: chunk },
        },
      );
    }
    this.#hw = hw;
    this.#state = new DmaSharedState(hw.buffers.wires, DMA_LOCK_OWNER.ENGINE, () => hw.generation);
    this.#regs = new Uint32Array(hw.buffers.mmio);
    this.#u8 = [new Uint8Array(hw.buffers.cardMemory), new Uint8Array(hw.buffers.hostRam)];
    this.#u32 = [new Uint32Array(hw.buffers.cardMemory), new Uint32Array(hw.buffers.hostRam)];
    this.#cardSize = hw.config.cardMemorySize;
    this.#chanBase = Array.from({ length: X100_DMA.MAX_NUM_CHAN }, (_, ch) => dmaChanReg(ch, 0) >>> 2);
    this.#chunk = chunk;
    this.#logger = options.logger ?? nullLogger;
    this.#iommu = hw.iommu.enabled ? hw.iommu : undefined;
    this.#work = Array.from({ length: X100_DMA.MAX_NUM_CHAN }, () => ({
      epoch: -1,
      ringBuf: -1,
      ringBase: 0,
      entries: 0,
      ringAddr: 0,
      iommuSeq: -1,
      head: 0,
      tail: 0,
      idx: 0,
      err: 0,
      active: false,
      index: 0,
      length: 0,
      progress: 0,
      srcBuf: 0,
      srcOff: 0,
      dstBuf: 0,
      dstOff: 0,
      srcAddr: 0,
      dstAddr: 0,
    }));
  }

  /** The shared control block (its event word wakes an engine thread). */
  get state(): DmaSharedState {
    return this.#state;
  }

  /** What this engine has done. */
  get stats(): X100DmaEngineStats {
    const c = this.#counts;
    return { descriptors: c[DESCRIPTORS]!, bytes: c[BYTES]!, errors: c[ERRORS]! };
  }

  /** True when some enabled, running channel has descriptors between its tail and head. */
  hasWork(): boolean {
    for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) {
      if (this.#busy(ch)) return true;
    }
    return false;
  }

  /** Plain loads, no lock: channel `ch` is on, not stopped, and its head is not its tail. */
  #busy(ch: number): boolean {
    const regs = this.#regs;
    const base = this.#chanBase[ch]!;
    return (
      this.#state.isOn(ch) &&
      Atomics.load(regs, base + (X100_DMA_REG.DCHERR >>> 2)) === 0 &&
      Atomics.load(regs, base + (X100_DMA_REG.DHPR >>> 2)) !==
        Atomics.load(regs, base + (X100_DMA_REG.DTPR >>> 2))
    );
  }

  /**
   * Gives every channel one turn: up to one chunk of bytes or 1024 descriptors each. Never
   * throws: a fault of the model on one channel stops that channel (`DCHERR` FAULT).
   * @returns true when some channel did something (call again), false when all are idle
   */
  step(): boolean {
    let worked = false;
    for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) {
      // Idle channels are skipped on plain loads; the lock is only taken when there is work.
      if (!this.#busy(ch)) continue;
      const w = this.#work[ch]!;
      this.#ch = ch;
      try {
        if (!this.#claim(ch, w)) continue;
        const raise = w.err === 0 ? this.#turn(ch, w) : false;
        this.#publish(ch, w, raise);
      } catch (err) {
        this.#fault(ch, w, err);
      }
      worked = true;
    }
    return worked;
  }

  #resetWork(w: ChannelWork, epoch: number): void {
    w.epoch = epoch;
    w.ringBuf = -1;
    w.active = false;
    w.iommuSeq = -1;
  }

  /**
   * {@link #run} inside an IOMMU turn: the table's sequence latched in the engine word (what a
   * host unmap waits on) and, when the table changed since the ring and the latched copy were
   * checked, both checked again (a refusal stops the channel before it touches anything).
   */
  #turn(ch: number, w: ChannelWork): boolean {
    const iommu = this.#iommu;
    if (iommu === undefined) return this.#run(ch, w);
    const seq = iommu.enterTurn();
    try {
      if (seq !== w.iommuSeq) {
        w.err = this.#recheck(w);
        if (w.err !== 0) return false;
        w.iommuSeq = seq;
      }
      return this.#run(ch, w);
    } finally {
      iommu.leaveTurn();
    }
  }

  /** The ring and the rest of the latched copy against the IOMMU now; 0 or a stop code. */
  #recheck(w: ChannelWork): number {
    const iommu = this.#iommu!;
    const ch = this.#ch;
    if (w.ringBuf === HOST && !iommu.check(ch, w.ringAddr, w.ringBase * 4, w.entries * X100_DMA_DESC.SIZE)) {
      return X100_DMA_CHERR.RING;
    }
    // a latched copy belongs to the slot it was taken from (see #run)
    if (!w.active || w.index !== w.tail) return 0;
    const rest = w.length - w.progress;
    if (w.srcBuf === HOST && !iommu.check(ch, w.srcAddr + w.progress, w.srcOff + w.progress, rest)) {
      return X100_DMA_CHERR.ADDR;
    }
    if (w.dstBuf === HOST && !iommu.check(ch, w.dstAddr + w.progress, w.dstOff + w.progress, rest)) {
      return X100_DMA_CHERR.ADDR;
    }
    return 0;
  }

  /**
   * The offset of `[addr, addr + length)` in card memory or host RAM (sets `#resolvedBuf`), or
   * -1 when the range reaches neither (host RAM: through the SMPT and, when on, the IOMMU).
   */
  #resolve(addr: number, length: number): number {
    if (addr + length <= this.#cardSize) {
      this.#resolvedBuf = CARD;
      return addr;
    }
    this.#resolvedBuf = HOST;
    const host = this.#hw.smptResolve(addr, length);
    if (host < 0 || this.#iommu === undefined || this.#iommu.check(this.#ch, addr, host, length)) return host;
    return -1;
  }

  /**
   * Claim, under the channel lock: the epoch (a new one drops the latched work), head and tail,
   * the ring (resolved once per epoch). Sets `w.head`, `w.tail` and `w.err` (a ring or head the
   * engine cannot use).
   * @returns false when the channel has nothing to do after all
   */
  #claim(ch: number, w: ChannelWork): boolean {
    const regs = this.#regs;
    const state = this.#state;
    const base = this.#chanBase[ch]!;
    state.lock(ch);
    try {
      if (!state.isOn(ch) || Atomics.load(regs, base + (X100_DMA_REG.DCHERR >>> 2)) !== 0) return false;
      const epoch = state.epoch(ch);
      if (w.epoch !== epoch) this.#resetWork(w, epoch);
      const head = Atomics.load(regs, base + (X100_DMA_REG.DHPR >>> 2));
      const tail = Atomics.load(regs, base + (X100_DMA_REG.DTPR >>> 2));
      if (head === tail) return false;
      w.head = head;
      w.tail = tail;
      w.idx = tail;
      w.err = 0;
      if (w.ringBuf < 0) {
        const ring = decodeDmaRing(
          Atomics.load(regs, base + (X100_DMA_REG.DRAR_LO >>> 2)),
          Atomics.load(regs, base + (X100_DMA_REG.DRAR_HI >>> 2)),
        );
        const off = dmaRingUsable(this.#hw, ring.addr, ring.entries, ch)
          ? this.#resolve(ring.addr, ring.entries * X100_DMA_DESC.SIZE)
          : -1;
        if (off < 0) {
          w.err = X100_DMA_CHERR.RING;
          return true;
        }
        w.ringBuf = this.#resolvedBuf;
        w.ringBase = off / 4;
        w.entries = ring.entries;
        w.ringAddr = ring.addr;
        // checked again inside the turn, against the table the turn latches
        w.iommuSeq = -1;
      }
      if (head >= w.entries || tail >= w.entries) w.err = X100_DMA_CHERR.HEAD;
      return true;
    } finally {
      state.unlock(ch);
    }
  }

  /**
   * Run, without the lock: from the tail towards the head, take each descriptor (read once,
   * checked, latched) and do it; a MEMCPY goes in chunks against its latched ranges. Stops at a
   * bad descriptor (`w.err`), after a chunk's worth of bytes, 1024 descriptors or an
   * interrupting STATUS. Sets `w.idx` to the first descriptor not finished. Progress is published
   * on the way every {@link PUBLISH_BYTES} ({@link #advance}).
   * @returns true when a STATUS asked for the interrupt
   */
  #run(ch: number, w: ChannelWork): boolean {
    const ring = this.#u32[w.ringBuf === HOST ? HOST : CARD];
    const head = w.head;
    let idx = w.tail;
    let budget = this.#chunk;
    let descs = 0;
    let raise = false;
    let unpublished = 0;
    // A latched copy belongs to the slot it was taken from.
    if (w.active && w.index !== idx) w.active = false;
    while (idx !== head) {
      if (!w.active) {
        const at = w.ringBase + idx * 4;
        const lo0 = ring[at]!;
        const hi0 = ring[at + 1]!;
        const lo1 = ring[at + 2]!;
        const hi1 = ring[at + 3]!;
        const type = hi1 >>> 28;
        const dst = lo1 + (hi1 & HI_ADDR_MASK) * TWO32;
        if (type === X100_DMA_DESC.MEMCPY) {
          if (unpublished >= PUBLISH_BYTES) {
            if (!this.#advance(ch, w, idx)) {
              // A disable or reset came in between: nothing more of this turn is reported.
              w.idx = w.tail;
              return false;
            }
            unpublished = 0;
          }
          const err = this.#latchCopy(
            w,
            lo0 + (hi0 & HI_ADDR_MASK) * TWO32,
            dst,
            (hi0 >>> (X100_DMA_DESC.MEMCPY_LEN_SHIFT - 32)) * X100_DMA_DESC.ALIGN,
          );
          if (err !== 0) {
            w.err = err;
            break;
          }
          w.index = idx;
        } else if (type === X100_DMA_DESC.STATUS) {
          const err = this.#status(dst, lo0, hi0);
          if (err !== 0) {
            w.err = err;
            break;
          }
          if (((hi1 >>> (X100_DMA_DESC.STAT_INTR_SHIFT - 32)) & 1) === 1) raise = true;
        } else if (type !== X100_DMA_DESC.NOP) {
          w.err = X100_DMA_CHERR.DESC_TYPE;
          break;
        }
      }
      if (w.active) {
        const n = Math.min(w.length - w.progress, budget);
        if (n > 0) {
          this.#copy(w.dstBuf, w.dstOff + w.progress, w.srcBuf, w.srcOff + w.progress, n);
          w.progress += n;
          budget -= n;
          unpublished += n;
          this.#counts[BYTES]! += n;
        }
        if (w.progress < w.length) break;
        w.active = false;
      }
      idx = idx + 1 === w.entries ? 0 : idx + 1;
      this.#counts[DESCRIPTORS]!++;
      if (raise || budget <= 0 || ++descs >= MAX_DESCS_PER_STEP) break;
    }
    w.idx = idx;
    return raise;
  }

  /**
   * Publishes progress in the middle of a run, under the lock: the tail and completion count up to
   * `idx` (which becomes `w.tail`).
   * @returns false, publishing nothing, when a disable or reset came in between
   */
  #advance(ch: number, w: ChannelWork, idx: number): boolean {
    const state = this.#state;
    state.lock(ch);
    try {
      if (state.epoch(ch) !== w.epoch || !state.isOn(ch)) {
        this.#resetWork(w, state.epoch(ch));
        return false;
      }
      this.#storeTail(this.#chanBase[ch]!, idx);
      w.tail = idx;
      return true;
    } finally {
      state.unlock(ch);
    }
  }

  /** `DTPR` and the completion count of `DSTAT` := `idx` (hold the channel lock). */
  #storeTail(base: number, idx: number): void {
    const regs = this.#regs;
    const iDstat = base + (X100_DMA_REG.DSTAT >>> 2);
    Atomics.store(regs, base + (X100_DMA_REG.DTPR >>> 2), idx);
    const dstat = Atomics.load(regs, iDstat);
    Atomics.store(regs, iDstat, ((dstat & ~X100_DMA_BIT.DSTAT_CMP_CNT_MASK) | idx) >>> 0);
  }

  /**
   * Publish, under the lock: the new tail and completion count, a stop code, then (without the
   * lock) the interrupt. Nothing is published when a disable or reset came in between: what was
   * done stays in memory, nothing is reported.
   */
  #publish(ch: number, w: ChannelWork, raise: boolean): void {
    const state = this.#state;
    const base = this.#chanBase[ch]!;
    const err = w.err;
    state.lock(ch);
    try {
      if (state.epoch(ch) !== w.epoch || !state.isOn(ch)) {
        this.#resetWork(w, state.epoch(ch));
        return;
      }
      if (w.idx !== w.tail) this.#storeTail(base, w.idx);
      if (err !== 0) this.#stop(ch, w, err);
    } finally {
      state.unlock(ch);
    }
    if (err !== 0) {
      this.#counts[ERRORS]!++;
      this.#logger.debug('DMA channel stopped', { channel: ch, dcherr: err, descriptor: w.idx });
      raiseDmaInterrupt(this.#hw, ch, true);
    } else if (raise) {
      raiseDmaInterrupt(this.#hw, ch, false);
    }
  }

  /** Stops channel `ch` with `code` (hold its lock); a code set meanwhile stays the reported one. */
  #stop(ch: number, w: ChannelWork, code: number): void {
    const base = this.#chanBase[ch]!;
    Atomics.compareExchange(this.#regs, base + (X100_DMA_REG.DCHERR >>> 2), 0, code);
    Atomics.or(this.#regs, base + (X100_DMA_REG.DSTAT >>> 2), X100_DMA_BIT.DSTAT_QUIESCE);
    w.active = false;
  }

  /**
   * The model threw while working on channel `ch` (a bug, never the card's input): that
   * channel stops with `DCHERR` FAULT in place of the engine, and what it had latched is dropped.
   */
  #fault(ch: number, w: ChannelWork, cause: unknown): void {
    w.active = false;
    w.ringBuf = -1;
    this.#counts[ERRORS]!++;
    try {
      this.#logger.warn('DMA engine fault: channel stopped', {
        channel: ch,
        error: cause instanceof Error ? cause.message : String(cause),
      });
      this.#state.lock(ch);
      try {
        if (this.#state.epoch(ch) === w.epoch && this.#state.isOn(ch))
          this.#stop(ch, w, X100_DMA_CHERR.FAULT);
      } finally {
        this.#state.unlock(ch);
      }
      raiseDmaInterrupt(this.#hw, ch, true);
    } catch {
      // Reporting failed as well; the channel stays as it is and the engine goes on.
    }
  }

  /** Checks a MEMCPY taken from the ring and latches it into `w`; 0 or a stop code. */
  #latchCopy(w: ChannelWork, src: number, dst: number, length: number): number {
    if (src % X100_DMA_DESC.ALIGN !== 0 || dst % X100_DMA_DESC.ALIGN !== 0) return X100_DMA_CHERR.ALIGN;
    const srcOff = this.#resolve(src, length);
    if (srcOff < 0) return X100_DMA_CHERR.ADDR;
    const srcBuf = this.#resolvedBuf;
    const dstOff = this.#resolve(dst, length);
    if (dstOff < 0) return X100_DMA_CHERR.ADDR;
    if (srcBuf === HOST && this.#resolvedBuf === HOST) return X100_DMA_CHERR.SYS_TO_SYS;
    w.active = true;
    w.length = length;
    w.progress = 0;
    w.srcBuf = srcBuf;
    w.srcOff = srcOff;
    w.dstBuf = this.#resolvedBuf;
    w.dstOff = dstOff;
    w.srcAddr = src;
    w.dstAddr = dst;
    return 0;
  }

  /** Does a STATUS taken from the ring: `hi:lo` to `dst`, low word first; 0 or a stop code. */
  #status(dst: number, lo: number, hi: number): number {
    if (dst % X100_DMA_DESC.STATUS_ALIGN !== 0) return X100_DMA_CHERR.ALIGN;
    const off = this.#resolve(dst, 8);
    if (off < 0) return X100_DMA_CHERR.ADDR;
    const words = this.#u32[this.#resolvedBuf]!;
    Atomics.store(words, off / 4, lo);
    Atomics.store(words, off / 4 + 1, hi);
    return 0;
  }

  #copy(dstBuf: number, dst: number, srcBuf: number, src: number, n: number): void {
    if (n <= SMALL_COPY) {
      // 64-byte aligned addresses and lengths: whole words, no views allocated.
      const d = this.#u32[dstBuf]!;
      const s = this.#u32[srcBuf]!;
      const di = dst / 4;
      const si = src / 4;
      const words = n / 4;
      if (dstBuf === srcBuf && di > si && di < si + words) {
        for (let i = words - 1; i >= 0; i--) d[di + i] = s[si + i]!;
      } else {
        for (let i = 0; i < words; i++) d[di + i] = s[si + i]!;
      }
      return;
    }
    if (dstBuf === srcBuf) this.#u8[dstBuf]!.copyWithin(dst, src, src + n);
    else this.#u8[dstBuf]!.set(this.#u8[srcBuf]!.subarray(src, src + n), dst);
  }
}
