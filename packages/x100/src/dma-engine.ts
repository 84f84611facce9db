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
 * A bad descriptor stops the channel before it touches anything: `DCHERR` gets an
 * {@link X100_DMA_CHERR} code, `DSTAT` gets QUIESCE, the completion count stays on the bad
 * descriptor, and the channel interrupt is raised (unless `DCHERRMSK` or `DCAR` masks it).
 * Nothing outside card memory and mapped host RAM is ever touched, and nothing throws.
 *
 * Large copies are done in chunks (`chunkBytes`, default 64 KiB): each {@link step} gives every
 * channel one chunk's worth of work (or up to 1024 descriptors), so channels interleave and a
 * long copy's progress shows. A disable or a reset between two chunks ends the copy there.
 *
 * The engine is driven by a platform: on `inProcess` a register write queues a microtask that
 * steps until there is no work (deterministic; the virtual clock does not move while the engine
 * has work); on `worker` it runs in a thread of its own that polls briefly when idle, then sleeps
 * on the DMA event word until a register write wakes it.
 *
 * @see drivers/dma/mic_x100_dma.c
 * @see drivers/dma/mic_x100_dma.h
 */
import { MicError } from '@mic/errors';
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
import { DmaSharedState } from './dma-state.js';
import type { X100Hardware } from './hardware.js';

/** Options of an {@link X100DmaEngine}. */
export interface X100DmaEngineOptions {
  /** Bytes one channel moves per {@link X100DmaEngine.step} (a multiple of 64; default 64 KiB). */
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

/** Descriptors a channel takes per step at most (bounds a step of zero-length work). */
const MAX_DESCS_PER_STEP = 1024;
/** Copies up to this size go word by word (no view allocation). */
const SMALL_COPY = 256;
const TWO32 = 2 ** 32;
const CARD = 0;
const HOST = 1;
const DESCRIPTORS = 0;
const BYTES = 1;
const ERRORS = 2;

interface ChannelWork {
  epoch: number;
  /** Ring words (-1: the ring is not resolved). */
  ringBuf: number;
  ringBase: number;
  entries: number;
  /** Bytes of the current MEMCPY done (0: not started). */
  progress: number;
  /** The current MEMCPY, resolved when it starts. */
  srcBuf: number;
  srcOff: number;
  dstBuf: number;
  dstOff: number;
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

  constructor(hw: X100Hardware, options: X100DmaEngineOptions = {}) {
    const chunk = options.chunkBytes ?? 64 * 1024;
    if (!Number.isSafeInteger(chunk) || chunk < X100_DMA_DESC.ALIGN || chunk % X100_DMA_DESC.ALIGN !== 0) {
      throw new MicError(
        'EINVAL',
        `DMA engine chunk of ${String(chunk)} bytes is not a positive multiple of 64`,
        {
          details: { chunkBytes: chunk },
        },
      );
    }
    this.#hw = hw;
    this.#state = new DmaSharedState(hw.buffers.wires);
    this.#regs = new Uint32Array(hw.buffers.mmio);
    this.#u8 = [new Uint8Array(hw.buffers.cardMemory), new Uint8Array(hw.buffers.hostRam)];
    this.#u32 = [new Uint32Array(hw.buffers.cardMemory), new Uint32Array(hw.buffers.hostRam)];
    this.#cardSize = hw.config.cardMemorySize;
    this.#chanBase = Array.from({ length: X100_DMA.MAX_NUM_CHAN }, (_, ch) => dmaChanReg(ch, 0) >>> 2);
    this.#chunk = chunk;
    this.#logger = options.logger ?? nullLogger;
    this.#work = Array.from({ length: X100_DMA.MAX_NUM_CHAN }, () => ({
      epoch: -1,
      ringBuf: -1,
      ringBase: 0,
      entries: 0,
      progress: 0,
      srcBuf: 0,
      srcOff: 0,
      dstBuf: 0,
      dstOff: 0,
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
    const regs = this.#regs;
    for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) {
      if (!this.#state.isOn(ch)) continue;
      const base = this.#chanBase[ch]!;
      if (Atomics.load(regs, base + (X100_DMA_REG.DCHERR >>> 2)) !== 0) continue;
      if (
        Atomics.load(regs, base + (X100_DMA_REG.DHPR >>> 2)) !==
        Atomics.load(regs, base + (X100_DMA_REG.DTPR >>> 2))
      ) {
        return true;
      }
    }
    return false;
  }

  /**
   * Gives every channel one turn: up to one chunk of bytes or 1024 descriptors each.
   * @returns true when some channel did something (call again), false when all are idle
   */
  step(): boolean {
    let worked = false;
    for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) {
      if (this.#stepChannel(ch)) worked = true;
    }
    return worked;
  }

  #resetWork(w: ChannelWork, epoch: number): void {
    w.epoch = epoch;
    w.ringBuf = -1;
    w.progress = 0;
  }

  /**
   * The offset of `[addr, addr + length)` in card memory or host RAM (sets `#resolvedBuf`), or
   * -1 when the range reaches neither.
   */
  #resolve(addr: number, length: number): number {
    if (addr + length <= this.#cardSize) {
      this.#resolvedBuf = CARD;
      return addr;
    }
    this.#resolvedBuf = HOST;
    return this.#hw.smptResolve(addr, length);
  }

  #stepChannel(ch: number): boolean {
    const regs = this.#regs;
    const state = this.#state;
    const w = this.#work[ch]!;
    const base = this.#chanBase[ch]!;
    const iDhpr = base + (X100_DMA_REG.DHPR >>> 2);
    const iDtpr = base + (X100_DMA_REG.DTPR >>> 2);
    const iDstat = base + (X100_DMA_REG.DSTAT >>> 2);
    const iCherr = base + (X100_DMA_REG.DCHERR >>> 2);
    let head: number;
    let tail: number;
    let err = 0;
    // Idle channels are skipped on plain loads; the lock is only taken when there is work.
    if (
      !state.isOn(ch) ||
      Atomics.load(regs, iCherr) !== 0 ||
      Atomics.load(regs, iDhpr) === Atomics.load(regs, iDtpr)
    ) {
      return false;
    }
    state.lock(ch);
    try {
      if (!state.isOn(ch) || Atomics.load(regs, iCherr) !== 0) return false;
      const epoch = state.epoch(ch);
      if (w.epoch !== epoch) this.#resetWork(w, epoch);
      head = Atomics.load(regs, iDhpr);
      tail = Atomics.load(regs, iDtpr);
      if (head === tail) return false;
      if (w.ringBuf < 0) {
        const ring = decodeDmaRing(
          Atomics.load(regs, base + (X100_DMA_REG.DRAR_LO >>> 2)),
          Atomics.load(regs, base + (X100_DMA_REG.DRAR_HI >>> 2)),
        );
        const off = dmaRingUsable(this.#hw, ring.addr, ring.entries)
          ? this.#resolve(ring.addr, ring.entries * X100_DMA_DESC.SIZE)
          : -1;
        if (off < 0) err = X100_DMA_CHERR.RING;
        else {
          w.ringBuf = this.#resolvedBuf;
          w.ringBase = off / 4;
          w.entries = ring.entries;
        }
      }
      if (err === 0 && (head >= w.entries || tail >= w.entries)) err = X100_DMA_CHERR.HEAD;
    } finally {
      state.unlock(ch);
    }

    let idx = tail;
    let raise = false;
    if (err === 0) {
      const ring = this.#u32[w.ringBuf === HOST ? HOST : CARD];
      let budget = this.#chunk;
      let descs = 0;
      while (idx !== head) {
        const at = w.ringBase + idx * 4;
        const hi1 = ring[at + 3]!;
        const type = hi1 >>> 28;
        if (type === X100_DMA_DESC.MEMCPY) {
          const lo0 = ring[at]!;
          const hi0 = ring[at + 1]!;
          const length = (hi0 >>> 14) * X100_DMA_DESC.ALIGN;
          if (w.progress === 0) {
            err = this.#startCopy(
              w,
              lo0 + (hi0 & 0x3fff) * TWO32,
              ring[at + 2]! + (hi1 & 0x3fff) * TWO32,
              length,
            );
            if (err !== 0) break;
          }
          const n = Math.min(length - w.progress, budget);
          if (n > 0) {
            this.#copy(w.dstBuf, w.dstOff + w.progress, w.srcBuf, w.srcOff + w.progress, n);
            w.progress += n;
            budget -= n;
            this.#counts[BYTES]! += n;
          }
          if (w.progress < length) break;
          w.progress = 0;
        } else if (type === X100_DMA_DESC.STATUS) {
          const dst = ring[at + 2]! + (hi1 & 0x3fff) * TWO32;
          if (dst % X100_DMA_DESC.STATUS_ALIGN !== 0) {
            err = X100_DMA_CHERR.ALIGN;
            break;
          }
          const off = this.#resolve(dst, 8);
          if (off < 0) {
            err = X100_DMA_CHERR.ADDR;
            break;
          }
          const words = this.#u32[this.#resolvedBuf]!;
          Atomics.store(words, off / 4, ring[at]!);
          Atomics.store(words, off / 4 + 1, ring[at + 1]!);
          if (((hi1 >>> 27) & 1) === 1) raise = true;
        } else if (type !== X100_DMA_DESC.NOP) {
          err = X100_DMA_CHERR.DESC_TYPE;
          break;
        }
        idx = idx + 1 === w.entries ? 0 : idx + 1;
        this.#counts[DESCRIPTORS]!++;
        if (raise || budget <= 0 || ++descs >= MAX_DESCS_PER_STEP) break;
      }
    }

    let published = false;
    state.lock(ch);
    try {
      if (state.epoch(ch) !== w.epoch || !state.isOn(ch)) {
        // Disabled or reset meanwhile: what was done stays in memory, nothing is reported.
        this.#resetWork(w, state.epoch(ch));
        return true;
      }
      if (idx !== tail) {
        Atomics.store(regs, iDtpr, idx);
        const dstat = Atomics.load(regs, iDstat);
        Atomics.store(regs, iDstat, ((dstat & ~X100_DMA_BIT.DSTAT_CMP_CNT_MASK) | idx) >>> 0);
      }
      if (err !== 0) {
        // A head error a register write raised meanwhile stays the reported one.
        Atomics.compareExchange(regs, iCherr, 0, err);
        Atomics.or(regs, iDstat, X100_DMA_BIT.DSTAT_QUIESCE);
        w.progress = 0;
      }
      published = true;
    } finally {
      state.unlock(ch);
    }
    if (published && err !== 0) {
      this.#counts[ERRORS]!++;
      this.#logger.debug('DMA channel stopped', { channel: ch, dcherr: err, descriptor: idx });
      raiseDmaInterrupt(this.#hw, ch, true);
    } else if (raise) {
      raiseDmaInterrupt(this.#hw, ch, false);
    }
    return true;
  }

  /** Checks and resolves a MEMCPY; on success fills `w`'s source and destination. */
  #startCopy(w: ChannelWork, src: number, dst: number, length: number): number {
    if (src % X100_DMA_DESC.ALIGN !== 0 || dst % X100_DMA_DESC.ALIGN !== 0) return X100_DMA_CHERR.ALIGN;
    const srcOff = this.#resolve(src, length);
    if (srcOff < 0) return X100_DMA_CHERR.ADDR;
    const srcBuf = this.#resolvedBuf;
    const dstOff = this.#resolve(dst, length);
    if (dstOff < 0) return X100_DMA_CHERR.ADDR;
    if (srcBuf === HOST && this.#resolvedBuf === HOST) return X100_DMA_CHERR.SYS_TO_SYS;
    w.srcBuf = srcBuf;
    w.srcOff = srcOff;
    w.dstBuf = this.#resolvedBuf;
    w.dstOff = dstOff;
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
