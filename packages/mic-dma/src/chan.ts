/**
 * One X100 DMA channel as a dmaengine-style channel (`struct mic_dma_chan` with its
 * `struct dma_chan`): the transaction life cycle of `mic_x100_dma.c`, prep → submit → issue →
 * status / cleanup → completion callbacks, and the channel's allocation and release. It stands on
 * two parts of its own, as the kernel splits them: the channel's registers and descriptor ring
 * with the driver's indices (`ring.ts`, `MicDmaRing`) and cookie tracking (`cookie.ts`,
 * dmaengine's `dma_cookie_*`).
 *
 * Addresses given to `prep*` are DMA addresses in the engine's address space, i.e. what the mbus
 * device's `dmaOps` return: card memory at its card physical address, host memory at its SMPT
 * address (`0x80_0000_0000` up). The engine cannot copy host memory to host memory.
 *
 * Life cycle: `free` → {@link MicDmaChan.request} → `ready` → (a channel error) `error` →
 * {@link MicDmaChan.release} (drains a ready channel: a FENCE, then up to 5 s) → `free`; a channel
 * in error is recovered by release and request.
 *
 * @see drivers/dma/mic_x100_dma.c
 * @see drivers/dma/dmaengine.h
 */
import type { DmaMemcpyChannel, IrqReturn } from '@mic/bus-core';
import { IRQ_RETURN } from '@mic/bus-core';
import type { Clock } from '@mic/clock';
import { MicError, formatValue, isMicError } from '@mic/errors';
import type { Logger } from '@mic/logger';
import type { DmaBuffer, MbusDevice, MicIrq } from '@mic/mic-bus';
import { checkChanContext } from './args.js';
import {
  DMA_PREP,
  DMA_STATUS,
  MIC_DMA_ADDR_LIMIT,
  MIC_DMA_ALIGN_BYTES,
  MIC_DMA_ALIGN_SHIFT,
  MIC_DMA_DESC_SIZE,
  MIC_DMA_OWNER,
  MIC_DMA_PENDING_LEVEL,
  MIC_DMA_POLL_NS,
} from './constants.js';
import type { DmaCookie, DmaStatus, DmaTxCallback, DmaTxResult, MicDmaOwner } from './constants.js';
import { DmaCookies } from './cookie.js';
import { MicDmaRing, describeCherr } from './ring.js';
import type { MicDmaChanRegisters } from './ring.js';

/** A prepared transaction (`struct dma_async_tx_descriptor`). */
export interface DmaTx {
  /** The channel it was prepared on. */
  readonly chan: MicDmaChan;
  /** Its cookie once submitted; 0 before. */
  readonly cookie: DmaCookie;
  /** Called once the transaction completed or failed, in submission order. */
  callback: DmaTxCallback | undefined;
  /**
   * Assigns the cookie and hands the descriptors to the channel (`tx_submit`); they reach the
   * engine at the next {@link MicDmaChan.issuePending}, or at once when more than 4 are pending.
   * @throws MicError EINVAL when already submitted, ENODEV when the channel was released since
   */
  submit(): DmaCookie;
}

/** Options of {@link MicDmaChan.syncWait}. */
export interface SyncWaitOptions {
  /** Give up after this long on the driver's clock (a finite number ≥ 0; default 5000 ms). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /**
   * Busy-poll the completion this long before sleeping (ns of real time, a finite number ≥ 0;
   * default {@link MIC_DMA_POLL_NS}; 0 sleeps at once). Never longer than `timeoutMs`.
   */
  readonly pollNs?: number;
}

/** Channel life cycle states. */
export const MIC_DMA_CHAN_STATE = {
  FREE: 'free',
  READY: 'ready',
  ERROR: 'error',
  RELEASING: 'releasing',
} as const;
/** One of {@link MIC_DMA_CHAN_STATE}. */
export type MicDmaChanState = (typeof MIC_DMA_CHAN_STATE)[keyof typeof MIC_DMA_CHAN_STATE];

/** What a channel needs from its device. */
export interface MicDmaChanContext {
  readonly mbdev: MbusDevice;
  readonly owner: MicDmaOwner;
  readonly maxXferSize: number;
  readonly ringSize: number;
  readonly drainTimeoutMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Every flag `prep*` understands. */
const KNOWN_FLAGS = DMA_PREP.INTERRUPT | DMA_PREP.FENCE | DMA_PREP.CTRL_ACK;

class Tx implements DmaTx {
  readonly chan: MicDmaChan;
  cookie: DmaCookie = 0;
  callback: DmaTxCallback | undefined = undefined;
  /** It ends with an interrupting STATUS descriptor (`DMA_PREP_INTERRUPT`). */
  readonly interrupt: boolean;
  readonly #submit: (tx: Tx) => DmaCookie;

  constructor(chan: MicDmaChan, submit: (tx: Tx) => DmaCookie, interrupt: boolean) {
    this.chan = chan;
    this.#submit = submit;
    this.interrupt = interrupt;
  }

  submit(): DmaCookie {
    return this.#submit(this);
  }
}

/**
 * One channel of an X100 DMA engine (host 0–3 or card 4–7). Built by {@link MicDmaDevice}; get
 * one with `MicDmaDriver.requestChannel` or {@link request} it directly. See the module comment.
 */
export class MicDmaChan implements DmaMemcpyChannel {
  /** The hardware channel number (host 0–3, card 4–7). */
  readonly chanId: number;
  /** `dma<device>chan<index>`. */
  readonly name: string;
  readonly #ctx: MicDmaChanContext;
  readonly #log: Logger;
  readonly #hw: MicDmaRing;
  readonly #cookies = new DmaCookies();
  #state: MicDmaChanState = MIC_DMA_CHAN_STATE.FREE;
  #ring: DmaBuffer | undefined;
  #statusDest: DmaBuffer | undefined;
  /** The transaction on each ring slot (on its last descriptor, `tx_array`). */
  #txs: (Tx | undefined)[] = [];
  /** Transactions without descriptors, completed right after the slot's transaction. */
  #after = new Map<number, Tx[]>();
  /** Transactions without descriptors submitted while nothing was outstanding. */
  #ready: Tx[] = [];
  #prepared: Tx | undefined;
  #error: MicError | undefined;
  /** Set once the channel stopped; cleanup learns nothing more until the next request. */
  #failed = false;
  #cleaning = false;
  #irq: MicIrq | undefined;
  /** Resolved by the next cleanup that makes progress; shared by every sleeping waiter. */
  #progress: Promise<void> | undefined;
  #progressed: (() => void) | undefined;
  /** The cookie of the last interrupting transaction submitted (0: none yet). */
  #irqCookie: DmaCookie = 0;
  /** The running poll timer of sleeping waiters ({@link #pollTimer}). */
  #tick: Promise<void> | undefined;

  /** @throws MicError EINVAL for a context the channel could not use or a channel id outside 0–7 */
  constructor(ctx: MicDmaChanContext, chanId: number, name: string) {
    checkChanContext(ctx, chanId);
    this.#ctx = ctx;
    this.chanId = chanId;
    this.name = name;
    this.#hw = new MicDmaRing(ctx.mbdev.mmioVa, chanId, name, ctx.owner);
    this.#log = ctx.logger.child(name);
  }

  /** Where the channel is in its life cycle. */
  get state(): MicDmaChanState {
    return this.#state;
  }

  /** Who owns the channel. */
  get owner(): MicDmaOwner {
    return this.#ctx.owner;
  }

  /** Largest bytes per MEMCPY descriptor on this side (a longer copy is split). */
  get maxXferSize(): number {
    return this.#ctx.maxXferSize;
  }

  /** log2 of the alignment copies need (`copy_align`: 64 bytes on x100). */
  get copyAlign(): number {
    return MIC_DMA_ALIGN_SHIFT;
  }

  /** Descriptors in the ring (one is always left free). */
  get ringSize(): number {
    return this.#ctx.ringSize;
  }

  /** Why the channel stopped, while it is in `error`. */
  get error(): MicError | undefined {
    return this.#error;
  }

  /** Free descriptors in the ring as the driver last saw it. */
  get freeDescriptors(): number {
    return this.#state === MIC_DMA_CHAN_STATE.FREE ? 0 : this.#hw.free();
  }

  /** The DMA address of the channel's status line, the target of FENCE and INTERRUPT writes. */
  get statusDestAddr(): number | undefined {
    return this.#statusDest?.dmaAddr;
  }

  // Interrupts (set up by the device at probe, for the device's lifetime)

  /** Requests the channel's interrupt (`mic_dma_setup_irq`). */
  setupIrq(): void {
    this.#irq = this.#ctx.mbdev.hwOps.requestThreadedIrq(
      (irq: number, chan: MicDmaChan) => chan.#intrHandler(irq),
      (_irq: number, chan: MicDmaChan) => chan.#threadFn(),
      'mic dma_channel',
      this,
      this.chanId,
    );
  }

  /** Frees the channel's interrupt (`mic_dma_free_irq`). */
  freeIrq(): void {
    if (!this.#irq) return;
    const irq = this.#irq;
    this.#irq = undefined;
    this.#ctx.mbdev.hwOps.freeIrq(irq, this);
  }

  /** Hard IRQ (`mic_dma_intr_handler`): the MIC errata mask/unmask, the ack, then the thread. */
  #intrHandler(_irq: number): IrqReturn {
    if (this.#ctx.owner === MIC_DMA_OWNER.MIC) {
      this.#hw.maskIntr();
      this.#hw.unmaskIntr();
    }
    this.#ctx.mbdev.hwOps.ackInterrupt(this.chanId);
    return IRQ_RETURN.WAKE_THREAD;
  }

  /** Threaded IRQ (`mic_dma_thread_fn`): cleanup. */
  #threadFn(): IrqReturn {
    if (this.#state !== MIC_DMA_CHAN_STATE.FREE) this.#cleanup();
    return IRQ_RETURN.HANDLED;
  }

  // Allocation and release

  /**
   * Allocates the channel's ring, status line and transaction slots and sets the channel up
   * (`mic_dma_alloc_chan_resources` → `mic_dma_chan_init` → `mic_dma_chan_setup`): owner (card),
   * disable, mask, `DCHERRMSK` = 0, ring address, indices from `DTPR`, unmask, enable, check.
   * @throws MicError EBUSY when the channel is in use, or when the engine reports an error or a
   * quiesced channel after enabling it (the channel is disabled and masked again); ENOMEM when the
   * ring cannot be allocated
   */
  request(): void {
    if (this.#state !== MIC_DMA_CHAN_STATE.FREE) {
      throw new MicError('EBUSY', `DMA channel ${this.name} is already in use (state ${this.#state})`, {
        details: { chan: this.name, state: this.#state },
      });
    }
    const { ringSize, mbdev } = this.#ctx;
    const ringBytes = Math.ceil((ringSize * MIC_DMA_DESC_SIZE) / MIC_DMA_ALIGN_BYTES) * MIC_DMA_ALIGN_BYTES;
    let ring: DmaBuffer;
    try {
      ring = mbdev.dmaOps.alloc(ringBytes);
    } catch (err) {
      throw new MicError('ENOMEM', `cannot allocate the ${ringBytes}-byte descriptor ring of ${this.name}`, {
        cause: err,
      });
    }
    let status: DmaBuffer;
    try {
      status = mbdev.dmaOps.alloc(MIC_DMA_ALIGN_BYTES);
    } catch (err) {
      mbdev.dmaOps.free(ring);
      throw new MicError('ENOMEM', `cannot allocate the status line of ${this.name}`, { cause: err });
    }
    try {
      this.#hw.setup(ring.va, ring.dmaAddr, ringSize);
    } catch (err) {
      mbdev.dmaOps.free(status);
      mbdev.dmaOps.free(ring);
      throw err;
    }
    this.#ring = ring;
    this.#statusDest = status;
    this.#txs = new Array<Tx | undefined>(ringSize);
    this.#prepared = undefined;
    this.#error = undefined;
    this.#failed = false;
    this.#state = MIC_DMA_CHAN_STATE.READY;
    this.#log.debug('channel set up', { ring: ring.dmaAddr, entries: ringSize, head: this.#hw.head });
  }

  /**
   * Releases the channel (`mic_dma_free_chan_resources`): drops a prepared but unsubmitted
   * transaction, drains a ready channel (a FENCE descriptor, waited for up to 5 s), then disables
   * and masks it, runs a last cleanup, fails what never completed (callbacks get `error`) and frees
   * the ring. A channel in error is not drained. The channel is free afterwards in every case.
   * @throws MicError EIO when the drain did not complete in time, ENODEV when the channel is not
   * allocated, EBUSY when a release is already running
   */
  async release(): Promise<void> {
    if (this.#state === MIC_DMA_CHAN_STATE.FREE) {
      throw new MicError('ENODEV', `DMA channel ${this.name} is not allocated`, {
        details: { chan: this.name },
      });
    }
    if (this.#state === MIC_DMA_CHAN_STATE.RELEASING) {
      throw new MicError('EBUSY', `DMA channel ${this.name} is already being released`, {
        details: { chan: this.name },
      });
    }
    if (this.#prepared) {
      this.#hw.head = this.#hw.submitted;
      this.#prepared = undefined;
    }
    const drain = this.#state === MIC_DMA_CHAN_STATE.READY;
    this.#state = MIC_DMA_CHAN_STATE.RELEASING;
    let failure: MicError | undefined;
    if (drain) failure = await this.#drain();
    // mic_dma_chan_uninit
    this.#hw.disable();
    this.#hw.maskIntr();
    this.#cleanup();
    this.#failOutstanding(
      new MicError('EIO', `DMA channel ${this.name} was released before the transfer completed`, {
        details: { chan: this.name },
      }),
    );
    const { dmaOps } = this.#ctx.mbdev;
    dmaOps.free(this.#statusDest!);
    dmaOps.free(this.#ring!);
    this.#hw.detach();
    this.#ring = undefined;
    this.#statusDest = undefined;
    this.#txs = [];
    this.#state = MIC_DMA_CHAN_STATE.FREE;
    this.#wake();
    this.#log.debug('channel released', failure ? { error: failure.message } : {});
    if (failure) throw failure;
  }

  /** `mic_dma_drain_chan`: a FENCE, then `dma_sync_wait`. */
  async #drain(): Promise<MicError | undefined> {
    const timeoutMs = this.#ctx.drainTimeoutMs;
    try {
      const tx = this.#prepare(0, 0, 0, DMA_PREP.FENCE);
      const cookie = this.#submit(tx);
      this.issuePending();
      const status = await this.#wait(cookie, timeoutMs, MIC_DMA_POLL_NS, undefined);
      if (status === DMA_STATUS.COMPLETE) return undefined;
      return new MicError(
        'EIO',
        `DMA channel ${this.name} failed while draining: ${this.#error?.message ?? 'error'}`,
        {
          details: { chan: this.name },
          cause: this.#error,
        },
      );
    } catch (err) {
      const why = isMicError(err, 'ETIMEDOUT')
        ? `did not drain within ${timeoutMs} ms`
        : 'could not be drained';
      this.#log.error('drain failed', { error: err instanceof Error ? err.message : String(err) });
      return new MicError('EIO', `DMA channel ${this.name} ${why}`, {
        cause: err,
        details: { chan: this.name, timeoutMs },
      });
    }
  }

  // Preparation

  #checkUsable(what: string): void {
    if (this.#state === MIC_DMA_CHAN_STATE.READY) return;
    if (this.#state === MIC_DMA_CHAN_STATE.ERROR) {
      throw new MicError(
        'EIO',
        `${what} on DMA channel ${this.name}, which stopped: ${this.#error?.message ?? ''}; release and request it again`,
        {
          details: { chan: this.name },
          cause: this.#error,
        },
      );
    }
    throw new MicError(
      'ENODEV',
      `${what} on DMA channel ${this.name}, which is ${this.#state === MIC_DMA_CHAN_STATE.FREE ? 'not allocated (request it first)' : 'being released'}`,
      { details: { chan: this.name, state: this.#state } },
    );
  }

  #checkFlags(flags: number): void {
    // Compared as numbers, not with 32-bit operators: 2^32 + 1 is not INTERRUPT.
    if (!Number.isInteger(flags) || flags < 0 || flags > KNOWN_FLAGS || (flags & ~KNOWN_FLAGS) !== 0) {
      throw new MicError(
        'EINVAL',
        `DMA prep flags ${Number.isInteger(flags) && flags >= 0 ? `0x${flags.toString(16)}` : formatValue(flags)} are not a combination of INTERRUPT, FENCE and CTRL_ACK`,
        { details: { flags: formatValue(flags) } },
      );
    }
  }

  #checkAddr(what: string, addr: number, len: number, align: number): void {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr + len > MIC_DMA_ADDR_LIMIT) {
      throw new MicError(
        'EINVAL',
        `DMA ${what} ${formatValue(addr)} +${len} is outside the engine's 46-bit address space`,
        { details: { [what]: formatValue(addr), len } },
      );
    }
    if (addr % align !== 0) {
      throw new MicError(
        'EINVAL',
        `DMA ${what} 0x${addr.toString(16)} is not ${align}-byte aligned (the engine needs copy_align ${align})`,
        { details: { [what]: addr, align } },
      );
    }
  }

  /** Checks there is room for `required` descriptors, cleaning up once (`mic_dma_avail_desc_ring_space`). */
  #reserve(required: number): void {
    if (this.#hw.free() >= required) return;
    this.#cleanup();
    const count = this.#hw.free();
    if (count < required) {
      throw new MicError(
        'ENOMEM',
        `DMA channel ${this.name} has ${count} free descriptors, ${required} needed: issue and wait for earlier transfers`,
        { details: { chan: this.name, free: count, required } },
      );
    }
  }

  /** `mic_dma_do_dma` plus `allocate_tx`; the channel stays "locked" until submit. */
  #prepare(dst: number, src: number, len: number, flags: number): Tx {
    const hw = this.#hw;
    const max = this.#ctx.maxXferSize;
    const start = hw.head;
    try {
      if (len > 0) {
        this.#reserve(Math.floor(len / max) + 3 + (len % max !== 0 ? 1 : 0));
        let s = src;
        let d = dst;
        let left = len;
        while (left > 0) {
          const n = Math.min(left, max);
          hw.putMemcpy(s, d, n);
          left -= n;
          s += n;
          d += n;
        }
      } else {
        this.#reserve(3);
      }
      const status = this.#statusDest!.dmaAddr;
      if (flags & DMA_PREP.FENCE) hw.putStatus(0n, status, false);
      if (flags & DMA_PREP.INTERRUPT) {
        // The hardware needs two STATUS descriptors for one interrupting one.
        hw.putStatus(0n, status, false);
        hw.putStatus(0n, status, true);
      }
    } catch (err) {
      hw.head = start;
      throw err;
    }
    return this.#allocateTx((flags & DMA_PREP.INTERRUPT) !== 0);
  }

  readonly #submitTx = (t: Tx): DmaCookie => this.#submit(t);

  #allocateTx(interrupt: boolean): Tx {
    const tx = new Tx(this, this.#submitTx, interrupt);
    this.#prepared = tx;
    return tx;
  }

  #checkNotPrepared(what: string): void {
    if (this.#prepared) {
      throw new MicError(
        'EBUSY',
        `${what} on DMA channel ${this.name} while an earlier prepared transfer is not submitted`,
        { details: { chan: this.name } },
      );
    }
  }

  /**
   * Prepares a copy of `len` bytes from DMA address `src` to `dst`
   * (`device_prep_dma_memcpy`), split into descriptors of at most {@link maxXferSize} bytes, plus
   * the STATUS descriptors `flags` ask for ({@link DMA_PREP}). `len` may be 0 when `flags` are not.
   * Submit it before preparing anything else.
   * @throws MicError EINVAL for addresses or lengths that are not 64-byte aligned, outside 46 bits,
   * zero length without flags or unknown flags; ENOMEM when the ring has no room; EBUSY while an
   * earlier prepared transfer is not submitted; ENODEV when the channel is not allocated; EIO
   * when it stopped on an error
   */
  prepMemcpy(dst: number, src: number, len: number, flags = 0): DmaTx {
    this.#checkUsable('memcpy');
    this.#checkFlags(flags);
    if (!Number.isSafeInteger(len) || len < 0 || len % MIC_DMA_ALIGN_BYTES !== 0) {
      throw new MicError(
        'EINVAL',
        `DMA memcpy length ${formatValue(len)} is not a multiple of ${MIC_DMA_ALIGN_BYTES} bytes`,
        {
          details: { len: formatValue(len) },
        },
      );
    }
    if (len === 0 && flags === 0) {
      throw new MicError('EINVAL', 'DMA memcpy of 0 bytes without flags does nothing', {
        details: { len, flags },
      });
    }
    if (len > 0) {
      this.#checkAddr('destination', dst, len, MIC_DMA_ALIGN_BYTES);
      this.#checkAddr('source', src, len, MIC_DMA_ALIGN_BYTES);
    }
    this.#checkNotPrepared('memcpy');
    return this.#prepare(dst, src, len, flags);
  }

  /**
   * Prepares a STATUS descriptor that writes the 64-bit `value` to DMA address `dst` (4-byte
   * aligned) once everything before it is done (`device_prep_dma_imm_data`; SCIF's fence signal),
   * plus the STATUS descriptors `flags` ask for.
   * @throws MicError as {@link prepMemcpy} (EINVAL for a `dst` that is not 4-byte aligned, or a
   * value that is not a 64-bit unsigned integer)
   */
  prepImmData(dst: number, value: bigint | number, flags = 0): DmaTx {
    this.#checkUsable('immediate data');
    this.#checkFlags(flags);
    this.#checkAddr('immediate data destination', dst, 8, 4);
    const v =
      typeof value === 'bigint' ? value : Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : -1n;
    if (v < 0n || v > 0xffff_ffff_ffff_ffffn) {
      throw new MicError(
        'EINVAL',
        `DMA immediate value ${formatValue(value)} is not an unsigned 64-bit integer`,
        {
          details: { value: formatValue(value) },
        },
      );
    }
    this.#checkNotPrepared('immediate data');
    const start = this.#hw.head;
    this.#reserve(4);
    this.#hw.putStatus(v, dst, false);
    try {
      return this.#prepare(0, 0, 0, flags);
    } catch (err) {
      this.#hw.head = start;
      throw err;
    }
  }

  /**
   * Prepares only the STATUS descriptors `flags` ask for (`device_prep_dma_interrupt`; SCIF's fence
   * mark uses `INTERRUPT`). With no flags it prepares nothing but still takes a cookie.
   * @throws MicError as {@link prepMemcpy}
   */
  prepInterrupt(flags = 0): DmaTx {
    this.#checkUsable('interrupt');
    this.#checkFlags(flags);
    this.#checkNotPrepared('interrupt');
    return this.#prepare(0, 0, 0, flags);
  }

  // Submission and issue

  /** `mic_dma_tx_submit_unlock`. */
  #submit(tx: Tx): DmaCookie {
    if (tx.cookie !== 0) {
      throw new MicError('EINVAL', `DMA transaction ${tx.cookie} on ${this.name} was already submitted`, {
        details: { cookie: tx.cookie },
      });
    }
    if (this.#prepared !== tx) {
      throw new MicError(
        'ENODEV',
        `DMA transaction on ${this.name} was dropped when the channel was released`,
        {
          details: { chan: this.name },
        },
      );
    }
    const hw = this.#hw;
    const cookie = this.#cookies.assign();
    tx.cookie = cookie;
    if (tx.interrupt) this.#irqCookie = cookie;
    const last = hw.dec(hw.head);
    if (hw.head !== hw.submitted) {
      // The transaction sits on its last descriptor (allocate_tx: tx_array[head - 1]).
      this.#txs[last] = tx;
    } else if (hw.lastTail === hw.head) {
      // No descriptors and nothing outstanding before it: complete at the next cleanup.
      this.#ready.push(tx);
    } else {
      // No descriptors: complete right after the transaction before it.
      const list = this.#after.get(last);
      if (list) list.push(tx);
      else this.#after.set(last, [tx]);
    }
    hw.submitted = hw.head;
    this.#prepared = undefined;
    // mic_dma_update_pending
    if (hw.distance(hw.issued, hw.submitted) > MIC_DMA_PENDING_LEVEL) this.issuePending();
    return cookie;
  }

  /**
   * Hands every submitted descriptor to the engine (`device_issue_pending`): writes the head
   * register, never with the value it already holds.
   */
  issuePending(): void {
    if (this.#state !== MIC_DMA_CHAN_STATE.READY && this.#state !== MIC_DMA_CHAN_STATE.RELEASING) return;
    this.#hw.issue();
  }

  // Completion

  /**
   * The status of transaction `cookie` (`device_tx_status`): complete, in progress, or error
   * (the channel stopped before it, or it was released first). Runs a cleanup when not complete,
   * which may call completion callbacks.
   * @throws MicError EINVAL for a cookie this channel never handed out
   */
  txStatus(cookie: DmaCookie): DmaStatus {
    this.#cookies.check(cookie, this.name);
    return this.#status(cookie);
  }

  /**
   * Issues pending descriptors and waits until `cookie` is no longer in progress
   * (`dma_sync_wait`). Like Linux it first busy-polls the completion count, but only for `pollNs`
   * (the event loop does not run meanwhile), without allocating anything per poll; then it sleeps
   * until a cleanup makes progress (the channel interrupt runs one) or the channel's poll timer
   * fires (after 1 ms, 10 times, then every 10 ms; one timer shared by all sleeping waiters). Before it sleeps it makes sure an interrupt will come: when
   * no interrupting transaction was submitted at or after `cookie`, it submits one of its own
   * (`prepInterrupt(INTERRUPT)`, which takes a cookie and two descriptors), so a caller that polls
   * need not ask every transfer for an interrupt (Linux's `vop_sync_dma` does not) and a waiter that
   * sleeps is still woken at once. When that cannot be done (a prepared transaction not yet
   * submitted, no room in the ring) the timer polls alone.
   * @returns `complete` or `error`
   * @throws MicError ETIMEDOUT after `timeoutMs`, ECANCELED when `signal` aborts, EINVAL for an
   * unknown cookie or options that are not an object with a finite `timeoutMs` ≥ 0, a finite
   * `pollNs` ≥ 0 and an `AbortSignal`
   */
  async syncWait(cookie: DmaCookie, options: SyncWaitOptions = {}): Promise<DmaStatus> {
    this.#cookies.check(cookie, this.name);
    if (options === null || typeof options !== 'object') {
      throw new MicError('EINVAL', `syncWait options ${formatValue(options)} are not an object`, {
        details: { options: formatValue(options) },
      });
    }
    const { timeoutMs = this.#ctx.drainTimeoutMs, signal, pollNs = MIC_DMA_POLL_NS } = options;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
      throw new MicError(
        'EINVAL',
        `syncWait timeoutMs ${formatValue(timeoutMs)} is not a finite number ≥ 0`,
        {
          details: { timeoutMs: formatValue(timeoutMs) },
        },
      );
    }
    if (typeof pollNs !== 'number' || !Number.isFinite(pollNs) || pollNs < 0) {
      throw new MicError('EINVAL', `syncWait pollNs ${String(pollNs)} is not a finite number ≥ 0`, {
        details: { pollNs: String(pollNs) },
      });
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new MicError('EINVAL', `syncWait signal ${formatValue(signal)} is not an AbortSignal`, {
        details: { signal: formatValue(signal) },
      });
    }
    this.issuePending();
    return this.#wait(cookie, timeoutMs, pollNs, signal);
  }

  /** `cookie`'s status after a cleanup when it is not settled yet (txStatus without the check). */
  #status(cookie: DmaCookie): DmaStatus {
    const s = this.#cookies.status(cookie);
    if (s !== DMA_STATUS.IN_PROGRESS || this.#state === MIC_DMA_CHAN_STATE.FREE) return s;
    this.#cleanup();
    return this.#cookies.status(cookie);
  }

  /**
   * Busy-polls `cookie` for up to `pollNs` of real time (`dma_sync_wait`'s loop, bounded). The
   * clock is read every 16 polls, from the 16th on: a completion that comes early costs no clock
   * read, and nothing is allocated.
   */
  #poll(cookie: DmaCookie, pollNs: number): DmaStatus {
    let s = this.#status(cookie);
    if (s !== DMA_STATUS.IN_PROGRESS || pollNs <= 0) return s;
    let end = -1;
    for (let n = 1; ; n++) {
      s = this.#status(cookie);
      if (s !== DMA_STATUS.IN_PROGRESS) return s;
      if ((n & 15) === 0) {
        const t = performance.now();
        if (end < 0) end = t + pollNs / 1e6;
        else if (t >= end) return s;
      }
    }
  }

  async #wait(
    cookie: DmaCookie,
    timeoutMs: number,
    pollNs: number,
    signal: AbortSignal | undefined,
  ): Promise<DmaStatus> {
    const clock = this.#ctx.clock;
    const deadline = clock.now() + timeoutMs;
    if (signal?.aborted) throw this.#cancelled(cookie, signal);
    const s = this.#poll(cookie, Math.min(pollNs, timeoutMs * 1e6));
    if (s !== DMA_STATUS.IN_PROGRESS) return s;
    // Sleeping: woken by progress (the interrupt), the channel's poll timer or the signal.
    let aborted: Promise<void> | undefined;
    let onAbort: (() => void) | undefined;
    if (signal) {
      aborted = new Promise<void>((resolve) => {
        onAbort = (): void => resolve();
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    try {
      for (let polls = 0; ; polls++) {
        if (signal?.aborted) throw this.#cancelled(cookie, signal);
        const st = this.#status(cookie);
        if (st !== DMA_STATUS.IN_PROGRESS) return st;
        const left = deadline - clock.now();
        if (left <= 0) {
          throw new MicError(
            'ETIMEDOUT',
            `DMA cookie ${cookie} on ${this.name} did not complete within ${timeoutMs} ms`,
            {
              details: { chan: this.name, cookie, timeoutMs },
            },
          );
        }
        this.#armInterrupt(cookie);
        const tick = this.#pollTimer(Math.min(left, polls < 10 ? 1 : 10));
        this.#progress ??= new Promise<void>((resolve) => {
          this.#progressed = resolve;
        });
        await (aborted
          ? Promise.race([this.#progress, tick, aborted])
          : Promise.race([this.#progress, tick]));
      }
    } finally {
      if (onAbort) signal!.removeEventListener('abort', onAbort);
    }
  }

  /**
   * The channel's poll timer for sleeping waiters: one at a time, shared by all of them, never
   * cancelled (it ends by itself, within 10 ms; cancelling one costs an AbortController and two
   * errors with stack traces). A new one of `ms` is started when none runs.
   */
  #pollTimer(ms: number): Promise<void> {
    this.#tick ??= this.#ctx.clock.sleep(ms).then(this.#tickFired, this.#tickFired);
    return this.#tick;
  }

  readonly #tickFired = (): void => {
    this.#tick = undefined;
  };

  #cancelled(cookie: DmaCookie, signal: AbortSignal): MicError {
    return new MicError('ECANCELED', `wait for DMA cookie ${cookie} on ${this.name} was cancelled`, {
      cause: signal.reason,
    });
  }

  /**
   * Makes sure the channel interrupt comes once `cookie` completes, for a waiter about to sleep:
   * unless an interrupting transaction was submitted at or after it and is still outstanding,
   * submits an interrupt-only one (two STATUS descriptors) and issues it. Does nothing without
   * an interrupt, outside `ready`, while a prepared transaction waits for its submit (its
   * descriptors are in the ring already) or when the ring is full: the waiter's timer polls then.
   */
  #armInterrupt(cookie: DmaCookie): void {
    if (this.#irq === undefined || this.#state !== MIC_DMA_CHAN_STATE.READY || this.#prepared) return;
    const irq = this.#irqCookie;
    const cookies = this.#cookies;
    if (
      irq !== 0 &&
      cookies.status(irq) === DMA_STATUS.IN_PROGRESS &&
      cookies.age(irq) <= cookies.age(cookie)
    )
      return;
    try {
      this.#submit(this.#prepare(0, 0, 0, DMA_PREP.INTERRUPT));
    } catch {
      return;
    }
    this.issuePending();
  }

  #complete(tx: Tx): void {
    this.#cookies.complete(tx.cookie);
    this.#callback(tx, { cookie: tx.cookie, status: DMA_STATUS.COMPLETE });
  }

  #callback(tx: Tx, result: DmaTxResult): void {
    const cb = tx.callback;
    tx.callback = undefined;
    if (!cb) return;
    try {
      cb(result);
    } catch (err) {
      this.#log.error('DMA completion callback threw', {
        cookie: tx.cookie,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** Completes slot `i`'s transaction and the empty ones submitted right after it. */
  #completeSlot(i: number): void {
    const tx = this.#txs[i];
    if (tx) {
      this.#txs[i] = undefined;
      this.#complete(tx);
    }
    const after = this.#after.get(i);
    if (after) {
      this.#after.delete(i);
      for (const t of after) this.#complete(t);
    }
  }

  /**
   * `mic_dma_cleanup`: takes the completion count from `DSTAT`, completes every transaction up to
   * it in order (callbacks included), and turns a channel error (`DCHERR`) into failed
   * transactions. A count outside what was issued is treated as an engine fault.
   */
  #cleanup(): void {
    const hw = this.#hw;
    if (this.#cleaning || !hw.attached || this.#failed) return;
    this.#cleaning = true;
    let progressed = false;
    try {
      // DCHERR first: once it is set, the count no longer moves.
      const cherr = hw.error();
      const tail = hw.completionCount();
      if (tail >= hw.entries || hw.distance(hw.lastTail, tail) > hw.distance(hw.lastTail, hw.issued)) {
        this.#fail(
          new MicError(
            'EIO',
            `DMA channel ${this.name} reported completion count ${tail}, outside the issued descriptors ${hw.lastTail}..${hw.issued}`,
            { details: { chan: this.name, tail, lastTail: hw.lastTail, issued: hw.issued } },
          ),
        );
        progressed = true;
        return;
      }
      if (this.#ready.length > 0) {
        const ready = this.#ready;
        this.#ready = [];
        for (const tx of ready) this.#complete(tx);
        progressed = true;
      }
      let i = hw.lastTail;
      while (i !== tail) {
        this.#completeSlot(i);
        i = hw.inc(i);
        hw.lastTail = i;
        progressed = true;
      }
      if (cherr !== 0) {
        this.#fail(
          new MicError(
            'EIO',
            `DMA channel ${this.name} stopped at descriptor ${tail}: DCHERR 0x${cherr.toString(16)} (${describeCherr(cherr)})`,
            { details: { chan: this.name, dcherr: cherr, descriptor: tail } },
          ),
        );
        progressed = true;
      }
    } finally {
      this.#cleaning = false;
      if (progressed) this.#wake();
    }
  }

  /** The channel stopped: every transaction not completed fails, in order. */
  #fail(error: MicError): void {
    this.#log.warn('DMA channel error', { error: error.message });
    this.#failed = true;
    if (this.#state !== MIC_DMA_CHAN_STATE.RELEASING) this.#state = MIC_DMA_CHAN_STATE.ERROR;
    this.#error = error;
    this.#failOutstanding(error);
  }

  #failOutstanding(error: MicError): void {
    const hw = this.#hw;
    const failed: Tx[] = [...this.#ready];
    this.#ready = [];
    if (hw.entries > 0) {
      for (let i = hw.lastTail; i !== hw.submitted; i = hw.inc(i)) {
        const tx = this.#txs[i];
        if (tx) {
          this.#txs[i] = undefined;
          failed.push(tx);
        }
        const after = this.#after.get(i);
        if (after) failed.push(...after);
      }
    }
    this.#after.clear();
    const cookies = this.#cookies;
    failed.sort((a, b) => cookies.age(b.cookie) - cookies.age(a.cookie));
    cookies.failOutstanding();
    hw.lastTail = hw.submitted;
    for (const tx of failed) this.#callback(tx, { cookie: tx.cookie, status: DMA_STATUS.ERROR, error });
  }

  #wake(): void {
    const progressed = this.#progressed;
    if (progressed === undefined) return;
    this.#progress = undefined;
    this.#progressed = undefined;
    progressed();
  }

  /** The channel's registers (the kernel's debugfs `mic_dma_reg` line). */
  registers(): MicDmaChanRegisters {
    return this.#hw.registers();
  }
}
