/**
 * One vring of a VOP device as the host holds it (`struct vop_vringh`): the vring block in host
 * RAM (descriptor table and avail ring the card writes, the host's copy of the used ring,
 * `_mic_vring_info`), the `Vringh` that reads the card's chains, the chain in progress
 * (`riov`/`wiov`/`head`), the bounce buffer for DMA, and the copy engine that moves bytes
 * between user buffers and card memory.
 *
 * The card is untrusted. Its rings are read through `Vringh` over bounds-checked views made once
 * (ring parts when the vring is set up or relocated, data through the aperture, whose length
 * bounds every card address); every descriptor is read once. Nothing here touches memory outside
 * the vring block, the bounce buffer, the relocated used ring and the card's aperture.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_virtio_add_device`, `_vop_virtio_copy`,
 *      `vop_virtio_copy_to_user`, `vop_virtio_copy_from_user`, `vop_virtio_init_post`
 */
import { AsyncMutex } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import type { Logger } from '@mic/logger';
import { asBufferMemory, type BufferMemory, type Memory } from '@mic/memory';
import { MIC_VRING_INFO_OFFSETS, type MicVringLayout, micVringLayout, micVringMagic } from '@mic/mic-common';
import { Vringh, VringhIov, usedRingSize } from '@mic/virtio';
import type { DmaBuffer, DmaMapOps, VopHwOps } from '@mic/vop-bus';
import { VOP_BOUNCE_SIZE, VOP_DMA_PIECE_MIN, VOP_DMA_PIPELINE_POLL_NS, VOP_NO_HEAD } from './constants.js';
import type { VopDmaPool, VopDmaRegion } from './dma-buffers.js';
import { type DmaMemcpyChannel, startDma, submitDma, waitDma } from './dma.js';

/** Counters of one device (`struct vop_vdev` stats), all in bytes except where said. */
export interface VopVdevStats {
  /** Bytes moved card → host (`in_bytes`). */
  inBytes: number;
  /** Bytes moved host → card (`out_bytes`). */
  outBytes: number;
  /** Of {@link inBytes}, moved by DMA (`in_bytes_dma`). */
  inBytesDma: number;
  /** Of {@link outBytes}, moved by DMA (`out_bytes_dma`). */
  outBytesDma: number;
  /** Host → card bytes that could not use DMA because the length did not fit (`tx_len_unaligned`). */
  txLenUnaligned: number;
  /** Host → card bytes that could not use DMA because the card address was unaligned (`tx_dst_unaligned`). */
  txDstUnaligned: number;
  /** DMA copies that failed and were redone by memcpy (count). */
  dmaErrors: number;
  /** Chains the card posted that were malformed and returned with length 0 (count). */
  badChains: number;
}

/** A fresh, zeroed {@link VopVdevStats}. */
export function emptyStats(): VopVdevStats {
  return {
    inBytes: 0,
    outBytes: 0,
    inBytesDma: 0,
    outBytesDma: 0,
    txLenUnaligned: 0,
    txDstUnaligned: 0,
    dmaErrors: 0,
    badChains: 0,
  };
}

/** What the copy engine of a vring needs from its device and card. */
export interface VopCopyContext {
  readonly hw: VopHwOps;
  readonly dmaOps: DmaMapOps;
  /** The card's memory through the aperture: card physical address = offset. */
  readonly aper: BufferMemory;
  /** The DMA channel, or null: every copy is a memcpy. */
  dma(): DmaMemcpyChannel | null;
  /** Called when a DMA copy failed: the caller stops using DMA. */
  dmaFailed(err: unknown): void;
  /** Copies shorter than this go by memcpy. */
  readonly dmaMinBytes: number;
  /**
   * The handle's DMA buffers ({@link VopDmaPool}): a user buffer in one of them is moved by the
   * engine straight, without the bounce buffer. Null: none.
   */
  readonly pool: VopDmaPool | null;
  readonly stats: VopVdevStats;
  readonly log: Logger;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

const NO_BATCHES: readonly ZeroCopyBatch[] = Object.freeze([]);

/**
 * Zero-copy DMA copies queued on the engine by one `readInto`/`writeFrom` call and not yet waited
 * for: the aligned middles of segments whose user buffer lies in a DMA buffer of the handle.
 */
export interface ZeroCopyBatch {
  readonly dma: DmaMemcpyChannel;
  /** Card → host (true) or host → card. */
  readonly toHost: boolean;
  readonly cookies: number[];
  /** Card address and user view of each copy (for the memcpy fallback). */
  readonly addrs: number[];
  readonly views: Uint8Array[];
  readonly regions: VopDmaRegion[];
}

/** Bytes of a vring's bounce buffer: two of the largest DMA piece. */
const BOUNCE_BYTES = 2 * VOP_BOUNCE_SIZE;

/**
 * The piece a DMA copy of `len` bytes moves per descriptor: a quarter of the copy, rounded up to
 * 4 KiB, between `VOP_DMA_PIECE_MIN` and `VOP_BOUNCE_SIZE` (a copy of up to 16 KiB is
 * one piece). The two copies of the bounce path (engine ↔ bounce, CPU ↔ bounce) overlap piece by
 * piece, so a 64 KiB copy costs about one engine copy and a quarter of a CPU copy instead of both.
 */
function dmaPiece(len: number): number {
  return Math.min(VOP_BOUNCE_SIZE, Math.max(VOP_DMA_PIECE_MIN, alignUp(Math.ceil(len / 4), 4096)));
}

/**
 * One vring of a host-side VOP device. Built by the device on add; every method runs under
 * {@link lock} (the kernel's `vr_mutex`), taken by the callers.
 */
export class VopVring {
  readonly index: number;
  readonly num: number;
  /** `MIC_MAGIC + type + index`. */
  readonly magic: number;
  readonly layout: MicVringLayout;
  /** The vring block in host RAM; `vqconfig.address` is its DMA address. */
  readonly block: DmaBuffer;
  /**
   * The bounce buffer for DMA (`vvr->buf`, `buf_da`): 128 KiB (the kernel has one 64 KiB buffer),
   * used as slots of one DMA piece each (`dmaPiece`: eight of 16 KiB for a 64 KiB copy, two of
   * 64 KiB from 256 KiB), so the engine fills or drains some while the CPU copies another. Null
   * when the control had no DMA channel when the device was added: every copy is a memcpy then.
   */
  readonly bounce: DmaBuffer | null;
  /** `vr_mutex`. */
  readonly lock = new AsyncMutex();
  /** Device-readable part of the chain in progress (`riov`). */
  readonly riov = new VringhIov();
  /** Device-writable part of the chain in progress (`wiov`). */
  readonly wiov = new VringhIov();
  /** Head of the chain in progress, {@link VOP_NO_HEAD} when none. */
  head = VOP_NO_HEAD;
  /** The card-resident used ring after relocation, or null while the host copy is used. */
  usedRemap: Memory | null = null;
  /** The card address of the relocated used ring (0 before relocation). */
  usedAddress = 0;
  /** Counts resets: a chain taken before the last one is dead. */
  generation = 0;
  /**
   * The card's kicks for this vring are off (`VRING_USED_F_NO_NOTIFY` set, or with EVENT_IDX
   * `avail_event` left behind) because the host is draining it; the device turns them back on
   * when the ring is empty or before it waits (see `VopVdev`).
   */
  kicksOff = false;
  #vrh: Vringh;
  #readView: Uint8Array | null = null;
  #readOf: Uint8Array | null = null;
  #readStart = 0;
  #writeView: Uint8Array | null = null;
  #writeOf: Uint8Array | null = null;
  #writeStart = 0;
  #notify: () => void = () => {};
  readonly #ctx: VopCopyContext;
  #eventIdx = false;
  #indirect = false;
  /** Between {@link beginDefer} and {@link endDefer}: zero-copy batches are kept in {@link #deferred}. */
  #deferring = false;
  #deferred: ZeroCopyBatch[] = [];
  /** Detached chains waiting for their DMA and their publish ({@link enqueue}). */
  readonly #queue: {
    readonly batches: readonly ZeroCopyBatch[];
    readonly publish: () => void;
    readonly resolve: () => void;
    readonly reject: (err: unknown) => void;
  }[] = [];
  #idle: (() => void)[] = [];

  /**
   * Allocates the vring block and, when the control has a DMA channel, the bounce buffer; writes
   * the magic. Throws `ENOMEM` when host memory runs out (nothing is left allocated then).
   */
  constructor(ctx: VopCopyContext, type: number, index: number, num: number) {
    this.#ctx = ctx;
    this.index = index;
    this.num = num;
    this.layout = micVringLayout(num);
    this.magic = micVringMagic(type, index);
    this.block = ctx.dmaOps.alloc(this.layout.size);
    try {
      this.bounce = ctx.dma() === null ? null : ctx.dmaOps.alloc(BOUNCE_BYTES);
    } catch (err) {
      ctx.dmaOps.free(this.block);
      throw err;
    }
    this.block.va.writeU32(this.layout.infoOffset + MIC_VRING_INFO_OFFSETS.magic, this.magic);
    this.#vrh = this.#makeVringh(null);
  }

  /** The device side of the ring. */
  get vringh(): Vringh {
    return this.#vrh;
  }

  #makeVringh(usedMem: Memory | null): Vringh {
    return new Vringh({
      num: this.num,
      mem: asBufferMemory(this.block.va, `vring ${this.index}`),
      desc: this.layout.descOffset,
      avail: this.layout.availOffset,
      used: usedMem === null ? this.layout.usedOffset : 0,
      ...(usedMem === null
        ? {}
        : { usedMem: asBufferMemory(usedMem, `vring ${this.index}: the card's used ring`) }),
      eventIdx: this.#eventIdx,
      indirect: this.#indirect,
      // Data buffers are card memory: a card physical address is an offset in the aperture,
      // which bounds it (identity range over all of it).
      dataMem: this.#ctx.aper,
      notify: () => this.#notify(),
    });
  }

  /** Sets what `Vringh.notify` does (ring the card's `h2c_vdev_db`). */
  setNotify(fn: () => void): void {
    this.#notify = fn;
  }

  /**
   * Switches to the used ring the card allocated in its memory (`vop_virtio_init_post`), keeping
   * the ring indices, with the negotiated ring features (EVENT_IDX, INDIRECT_DESC). `usedAddress`
   * is a card physical address read once by the caller; the size mapped is this vring's own
   * (QUIRK fixed: the kernel maps the size of vring 0 for every vring).
   * @throws MicError EFAULT when the used ring does not lie in card memory, EINVAL when it is
   *   not 4-byte aligned; the vring keeps its previous used ring then
   */
  relocate(usedAddress: number, features: { eventIdx: boolean; indirect: boolean }): void {
    if (!Number.isSafeInteger(usedAddress) || usedAddress <= 0) {
      throw new MicError(
        'EFAULT',
        `vring ${this.index}: used_address 0x${usedAddress.toString(16)} is not a card address`,
        {
          details: { usedAddress },
        },
      );
    }
    const size = alignUp(usedRingSize(this.num), 4096);
    const remapped = this.#ctx.hw.remap(usedAddress, size);
    // The progress is kept (rust-vmm's QueueState); the ring features are the new ones.
    const state = { ...this.#vrh.state(), eventIdx: features.eventIdx };
    const prev = { eventIdx: this.#eventIdx, indirect: this.#indirect };
    this.#eventIdx = features.eventIdx;
    this.#indirect = features.indirect;
    let vrh: Vringh;
    try {
      vrh = this.#makeVringh(remapped);
    } catch (err) {
      this.#eventIdx = prev.eventIdx;
      this.#indirect = prev.indirect;
      this.#ctx.hw.unmap(remapped);
      throw err;
    }
    if (this.usedRemap !== null) this.#ctx.hw.unmap(this.usedRemap);
    this.usedRemap = remapped;
    this.usedAddress = usedAddress;
    vrh.restore(state);
    this.#vrh = vrh;
    // The new used ring is as the card set it up (flags 0, avail_event 0): kicks are on.
    this.kicksOff = false;
  }

  /**
   * Forgets all ring state after a reset (`vop_virtio_device_reset`): indices 0,
   * `info.avail_idx` 0, and (QUIRK fixed) the chain in progress dropped, so a half-done chain is
   * not continued against the new ring.
   */
  resetState(): void {
    this.generation++;
    this.#vrh.reset();
    this.kicksOff = false;
    this.riov.reset();
    this.wiov.reset();
    this.#dropPieces();
    this.head = VOP_NO_HEAD;
    this.block.va.writeU16(this.layout.infoOffset + MIC_VRING_INFO_OFFSETS.availIdx, 0);
  }

  /** Publishes `last_avail_idx` to `_mic_vring_info.avail_idx` for user space. */
  publishAvailIdx(): void {
    this.block.va.writeU16(this.layout.infoOffset + MIC_VRING_INFO_OFFSETS.availIdx, this.#vrh.lastAvailIdx);
  }

  /** Frees the vring block, the bounce buffer and the used-ring mapping. */
  free(): void {
    this.generation++;
    if (this.usedRemap !== null) {
      this.#ctx.hw.unmap(this.usedRemap);
      this.usedRemap = null;
    }
    this.riov.reset();
    this.wiov.reset();
    this.head = VOP_NO_HEAD;
    this.#dropPieces();
    if (this.bounce !== null) this.#ctx.dmaOps.free(this.bounce);
    this.#ctx.dmaOps.free(this.block);
  }

  /**
   * Copies card → host: bytes at the cursor of `riov` into `dst[pos..]` (the read phase of
   * `_vop_virtio_copy`). Synchronous while every piece is a memcpy; a promise from the first piece
   * that goes to the DMA engine. @returns bytes copied
   */
  readInto(dst: Uint8Array, pos: number, iov: VringhIov = this.riov): number | Promise<number> {
    const ctx = this.#ctx;
    let copied = 0;
    let batch: ZeroCopyBatch | null = null;
    while (pos + copied < dst.length && iov.i < iov.count) {
      const addr = iov.offsets[iov.i]! + iov.consumed;
      const n = Math.min(iov.lengths[iov.i]! - iov.consumed, dst.length - pos - copied);
      const out = this.#readPiece(dst, pos + copied, n);
      const dma = n >= ctx.dmaMinBytes ? ctx.dma() : null;
      if (dma !== null) {
        if (ctx.pool !== null) {
          const b = this.#zeroCopy(dma, batch, true, addr, out);
          if (b !== null) {
            batch = b;
            ctx.stats.inBytes += n;
            this.#vrh.skip(iov, n);
            copied += n;
            continue;
          }
        }
        if (this.bounce !== null && this.#dmaReadable(dma, addr, n)) {
          const r = this.#readAsync(dma, iov, dst, pos, copied, addr, out);
          return batch === null ? r : this.#settle(batch, r);
        }
      }
      ctx.aper.read(addr, out);
      ctx.stats.inBytes += n;
      this.#vrh.skip(iov, n);
      copied += n;
    }
    return batch === null ? copied : this.#settle(batch, copied);
  }

  async #readAsync(
    dma: DmaMemcpyChannel,
    iov: VringhIov,
    dst: Uint8Array,
    pos: number,
    copied: number,
    addr: number,
    out: Uint8Array,
  ): Promise<number> {
    await this.#dmaFromCard(dma, addr, out);
    this.#ctx.stats.inBytes += out.length;
    this.#vrh.skip(iov, out.length);
    const rest = this.readInto(dst, pos + copied + out.length, iov);
    return copied + out.length + (typeof rest === 'number' ? rest : await rest);
  }

  /**
   * `dst.subarray(start, start + n)` for {@link readInto}: `dst` itself when it is that, else the
   * view made by the previous call when it was of the same place in the same array (a backend
   * that reads each chain into the start of one buffer makes no view, and the aperture's small
   * copy keeps its word view of it). A view never changes its place, and one whose buffer shrank
   * or went away has a different length: a stale one is never returned.
   */
  #readPiece(dst: Uint8Array, start: number, n: number): Uint8Array {
    if (start === 0 && n === dst.length) return dst;
    const v = this.#readView;
    if (v !== null && this.#readOf === dst && this.#readStart === start && v.length === n) return v;
    const w = dst.subarray(start, start + n);
    this.#readView = w;
    this.#readOf = dst;
    this.#readStart = start;
    return w;
  }

  /** As {@link #readPiece}, for {@link writeFrom}. */
  #writePiece(src: Uint8Array, start: number, n: number): Uint8Array {
    if (start === 0 && n === src.length) return src;
    const v = this.#writeView;
    if (v !== null && this.#writeOf === src && this.#writeStart === start && v.length === n) return v;
    const w = src.subarray(start, start + n);
    this.#writeView = w;
    this.#writeOf = src;
    this.#writeStart = start;
    return w;
  }

  /** Drops the views {@link #readPiece} and {@link #writePiece} keep (they hold a user buffer). */
  #dropPieces(): void {
    this.#readView = this.#readOf = this.#writeView = this.#writeOf = null;
  }

  /**
   * Copies host → card: `src[pos..]` to the cursor of `wiov` (the write phase of
   * `_vop_virtio_copy`). Synchronous while every piece is a memcpy. @returns bytes copied
   */
  writeFrom(src: Uint8Array, pos: number, iov: VringhIov = this.wiov): number | Promise<number> {
    const ctx = this.#ctx;
    let copied = 0;
    let batch: ZeroCopyBatch | null = null;
    while (pos + copied < src.length && iov.i < iov.count) {
      const addr = iov.offsets[iov.i]! + iov.consumed;
      const segLeft = iov.lengths[iov.i]! - iov.consumed;
      const n = Math.min(segLeft, src.length - pos - copied);
      const data = this.#writePiece(src, pos + copied, n);
      const dma = n >= ctx.dmaMinBytes ? ctx.dma() : null;
      if (dma !== null) {
        if (ctx.pool !== null) {
          const b = this.#zeroCopy(dma, batch, false, addr, data);
          if (b !== null) {
            batch = b;
            ctx.stats.outBytes += n;
            this.#vrh.skip(iov, n);
            copied += n;
            continue;
          }
        }
        if (this.bounce !== null) {
          const align = 2 ** dma.copyAlign;
          if (addr % align !== 0) ctx.stats.txDstUnaligned += n;
          else if (alignUp(n, align) > segLeft) ctx.stats.txLenUnaligned += n;
          else {
            const w = this.#writeAsync(dma, iov, src, pos, copied, addr, data);
            return batch === null ? w : this.#settle(batch, w);
          }
        }
      }
      ctx.aper.write(addr, data);
      ctx.stats.outBytes += n;
      this.#vrh.skip(iov, n);
      copied += n;
    }
    return batch === null ? copied : this.#settle(batch, copied);
  }

  /**
   * Zero-copy DMA of one segment piece: `view` (user bytes) ↔ card address `addr`, when `view`
   * lies in a DMA buffer of the handle and both sides have the same offset from the engine's
   * alignment. The aligned middle goes to the engine (queued, not waited for: see
   * {@link #finishBatch}); the unaligned head and tail, if any, are copied by memcpy at once, as
   * they would overrun the view or the card's segment (the engine moves whole 64-byte units).
   * @returns the batch (created when `batch` is null), or null when this piece cannot go so
   *   (the caller takes the bounce or memcpy path)
   */
  #zeroCopy(
    dma: DmaMemcpyChannel,
    batch: ZeroCopyBatch | null,
    toHost: boolean,
    addr: number,
    view: Uint8Array,
  ): ZeroCopyBatch | null {
    const ctx = this.#ctx;
    const region = ctx.pool!.find(view);
    if (region === null) return null;
    const align = 2 ** dma.copyAlign;
    const hostAddr = region.buf.dmaAddr + (view.byteOffset - region.start);
    if ((addr - hostAddr) % align !== 0) return null;
    const n = view.length;
    const head = Math.min(n, (align - (addr % align)) % align);
    const mid = Math.floor((n - head) / align) * align;
    if (mid === 0 || mid < ctx.dmaMinBytes) return null;
    const b: ZeroCopyBatch = batch ?? { dma, toHost, cookies: [], addrs: [], views: [], regions: [] };
    const middle = view.subarray(head, head + mid);
    let cookie: number;
    try {
      cookie = toHost
        ? submitDma(dma, hostAddr + head, addr + head, mid)
        : submitDma(dma, addr + head, hostAddr + head, mid);
    } catch (err) {
      // The channel refused it: this piece by memcpy, and no more DMA.
      ctx.stats.dmaErrors++;
      ctx.dmaFailed(err);
      if (toHost) ctx.aper.read(addr, view);
      else ctx.aper.write(addr, view);
      return b;
    }
    ctx.pool!.pin(region);
    b.cookies.push(cookie);
    b.addrs.push(addr + head);
    b.views.push(middle);
    b.regions.push(region);
    // Issued at once when the copy waits for it (the engine starts while the CPU copies the head
    // and tail); while deferring, by the wait in #pump, one head write for every chain queued in
    // this turn (a sleeping engine is woken once, not per chain).
    if (!this.#deferring) dma.issuePending();
    if (toHost) {
      if (head > 0) ctx.aper.read(addr, view.subarray(0, head));
      if (head + mid < n) ctx.aper.read(addr + head + mid, view.subarray(head + mid));
    } else {
      if (head > 0) ctx.aper.write(addr, view.subarray(0, head));
      if (head + mid < n) ctx.aper.write(addr + head + mid, view.subarray(head + mid));
    }
    return b;
  }

  /**
   * The result of a copy that queued a zero-copy batch: while deferring ({@link beginDefer}) the
   * batch is kept for the caller and the result returned as it is, else it is waited for first.
   */
  #settle(batch: ZeroCopyBatch, result: number | Promise<number>): number | Promise<number> {
    if (this.#deferring) {
      this.#deferred.push(batch);
      return result;
    }
    return this.#finishBatch(batch).then(() => result);
  }

  /**
   * From now until {@link endDefer}, zero-copy DMA copies are not waited for by `readInto` and
   * `writeFrom`: they return once the copies are queued on the engine (the caller holds the
   * vring lock over the whole span).
   */
  beginDefer(): void {
    this.#deferring = true;
  }

  /** Ends {@link beginDefer}: the zero-copy batches queued since, for {@link enqueue}. */
  endDefer(): readonly ZeroCopyBatch[] {
    this.#deferring = false;
    const d = this.#deferred;
    if (d.length === 0) return NO_BATCHES;
    this.#deferred = [];
    return d;
  }

  /** Chains detached from the vring lock, in fetch order, whose used entries are not published yet. */
  get pendingCompletions(): number {
    return this.#queue.length;
  }

  /**
   * Queues the end of a chain whose copy went on without the vring lock: once every batch
   * completed (or was redone by memcpy) and every chain queued before it was published,
   * `publish` runs (outside the lock; it checks for itself that the vring was not reset). So the
   * engine moves the next chain while this one's DMA runs, and used entries keep the fetch order.
   * @returns settles after `publish`, rejecting with what it threw
   */
  enqueue(batches: readonly ZeroCopyBatch[], publish: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ batches, publish, resolve, reject });
      if (this.#queue.length === 1) void this.#pump();
    });
  }

  /** Resolves once no chain is queued ({@link enqueue}): every DMA ended and every publish ran. */
  settled(): Promise<void> {
    if (this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Works the queue in order. It starts after the event loop turned once, so the backend can
   * queue its next chains (their DMA goes on the engine behind this one) before this thread polls
   * for a completion; from then on a backend that queues a chain when one completes keeps the
   * queue filled while the pump waits for the oldest. Every wait is bounded (`waitDma`, 5 s, then
   * memcpy).
   */
  async #pump(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
    while (this.#queue.length > 0) {
      const e = this.#queue[0]!;
      // A failed DMA was redone by memcpy; only when that failed too (the card's memory is gone)
      // does the chain end in an error, unpublished, and the queue goes on.
      let failed: { err: unknown } | null = null;
      for (const b of e.batches) {
        try {
          await this.#finishBatch(b, VOP_DMA_PIPELINE_POLL_NS);
        } catch (err) {
          failed ??= { err };
        }
      }
      this.#queue.shift();
      if (failed !== null) {
        e.reject(failed.err);
        continue;
      }
      try {
        e.publish();
        e.resolve();
      } catch (err) {
        e.reject(err);
      }
    }
    const idle = this.#idle;
    this.#idle = [];
    for (const f of idle) f();
  }

  /**
   * Waits for every copy of a zero-copy batch (in order: the engine completes them in order, so
   * after the last the others return at once). A copy that fails is redone, with every other of
   * the batch, by memcpy (moving the same bytes twice is harmless), and the caller stops using DMA.
   */
  async #finishBatch(b: ZeroCopyBatch, pollNs?: number): Promise<void> {
    const ctx = this.#ctx;
    if (b.cookies.length === 0) return;
    try {
      await waitDma(b.dma, b.cookies[b.cookies.length - 1]!, pollNs);
      for (let k = 0; k < b.cookies.length - 1; k++) await waitDma(b.dma, b.cookies[k]!, pollNs);
      let bytes = 0;
      for (const v of b.views) bytes += v.length;
      if (b.toHost) ctx.stats.inBytesDma += bytes;
      else ctx.stats.outBytesDma += bytes;
    } catch (err) {
      ctx.stats.dmaErrors++;
      ctx.dmaFailed(err);
      for (let k = 0; k < b.views.length; k++) {
        if (b.toHost) ctx.aper.read(b.addrs[k]!, b.views[k]!);
        else ctx.aper.write(b.addrs[k]!, b.views[k]!);
      }
    } finally {
      for (const r of b.regions) ctx.pool!.unpin(r);
    }
  }

  async #writeAsync(
    dma: DmaMemcpyChannel,
    iov: VringhIov,
    src: Uint8Array,
    pos: number,
    copied: number,
    addr: number,
    data: Uint8Array,
  ): Promise<number> {
    await this.#dmaToCard(dma, addr, data);
    this.#ctx.stats.outBytes += data.length;
    this.#vrh.skip(iov, data.length);
    const rest = this.writeFrom(src, pos + copied + data.length, iov);
    return copied + data.length + (typeof rest === 'number' ? rest : await rest);
  }

  /**
   * Views of the next `n` bytes at the cursor of `iov` (fewer at its end) in card memory, straight
   * through the aperture (no bounce buffer, no DMA), one per run of segments adjacent in card
   * memory, appended to `out`; the cursor moves past them.
   * The segments were checked against the aperture when the chain was fetched (`Vringh.getDesc`
   * reads each descriptor once) and `BufferMemory.bytes` checks each view again, so a view never
   * reaches past the card's memory. Counted in `inBytes` (`card` = true: card → host) or
   * `outBytes`, not in the DMA counters. @returns bytes mapped
   */
  map(iov: VringhIov, n: number, out: Uint8Array[], cardToHost: boolean): number {
    const ctx = this.#ctx;
    let mapped = 0;
    // A run of segments adjacent in card memory becomes one view (a driver's buffer split into
    // descriptors of its segment size): fewer views, fewer buffers per file call.
    let runAt = -1;
    let runLen = 0;
    while (mapped < n && iov.i < iov.count) {
      const addr = iov.offsets[iov.i]! + iov.consumed;
      const k = Math.min(iov.lengths[iov.i]! - iov.consumed, n - mapped);
      if (runLen > 0 && addr === runAt + runLen) {
        runLen += k;
      } else {
        if (runLen > 0) out.push(ctx.aper.bytes(runAt, runLen));
        runAt = addr;
        runLen = k;
      }
      this.#vrh.skip(iov, k);
      mapped += k;
    }
    if (runLen > 0) out.push(ctx.aper.bytes(runAt, runLen));
    if (cardToHost) ctx.stats.inBytes += mapped;
    else ctx.stats.outBytes += mapped;
    return mapped;
  }

  /** True when the aligned range a DMA read of `[addr, +n)` covers stays inside card memory. */
  #dmaReadable(dma: DmaMemcpyChannel, addr: number, n: number): boolean {
    const align = 2 ** dma.copyAlign;
    const head = addr % align;
    return addr - head + alignUp(head + n, align) <= this.#ctx.aper.byteLength;
  }

  /**
   * DMA card → bounce → `out` in pieces ({@link dmaPiece}), each read aligned down to the DMA
   * alignment at its start and up at its end (extra card bytes are read, never written). Up to a
   * bounce buffer's worth of pieces is on the engine while the CPU copies the oldest finished one
   * out. QUIRK fixed: the kernel advances the user pointer by the aligned chunk, corrupting
   * unaligned reads over 64 KiB. The caller checked that the aligned range stays in card memory
   * ({@link #dmaReadable}); a DMA that fails is finished by memcpy.
   */
  async #dmaFromCard(dma: DmaMemcpyChannel, addr: number, out: Uint8Array): Promise<void> {
    const ctx = this.#ctx;
    const bounce = this.bounce!;
    const align = 2 ** dma.copyAlign;
    const piece = dmaPiece(out.length);
    const slots = Math.floor(BOUNCE_BYTES / piece);
    // Pieces on the engine, oldest first: where each starts in `out`, its alignment offset and
    // length, its bounce slot and cookie.
    const inFlight: { at: number; off: number; take: number; slot: number; cookie: number }[] = [];
    let done = 0;
    let queued = 0;
    let slot = 0;
    try {
      while (done < out.length) {
        while (inFlight.length < slots && queued < out.length) {
          const off = (addr + queued) % align;
          const take = Math.min(out.length - queued, piece - off);
          const cookie = submitDma(
            dma,
            bounce.dmaAddr + slot * piece,
            addr + queued - off,
            alignUp(off + take, align),
          );
          inFlight.push({ at: queued, off, take, slot, cookie });
          queued += take;
          slot = slot + 1 === slots ? 0 : slot + 1;
        }
        // One head write for every piece queued above: an engine asleep is woken once.
        dma.issuePending();
        const p = inFlight.shift()!;
        await waitDma(dma, p.cookie);
        bounce.va.read(p.slot * piece + p.off, out.subarray(p.at, p.at + p.take));
        ctx.stats.inBytesDma += p.take;
        done += p.take;
      }
    } catch (err) {
      ctx.stats.dmaErrors++;
      ctx.dmaFailed(err);
      // Finish the range by memcpy from the first piece not copied out.
      ctx.aper.read(addr + done, out.subarray(done));
    }
  }

  /**
   * Bounce → DMA → card in pieces ({@link dmaPiece}): the CPU copies the next pieces into free
   * bounce slots while the engine writes the earlier ones; `addr` is aligned and the aligned
   * length fits the descriptor (checked by the caller). A DMA that fails is finished by memcpy.
   */
  async #dmaToCard(dma: DmaMemcpyChannel, addr: number, data: Uint8Array): Promise<void> {
    const ctx = this.#ctx;
    const bounce = this.bounce!;
    const align = 2 ** dma.copyAlign;
    const piece = dmaPiece(data.length);
    const slots = Math.floor(BOUNCE_BYTES / piece);
    const inFlight: { take: number; cookie: number }[] = [];
    let done = 0; // bytes the engine has written
    let queued = 0; // bytes handed to the engine
    let slot = 0;
    try {
      while (done < data.length) {
        while (inFlight.length < slots && queued < data.length) {
          const take = Math.min(data.length - queued, piece);
          bounce.va.write(slot * piece, data.subarray(queued, queued + take));
          const cookie = startDma(dma, addr + queued, bounce.dmaAddr + slot * piece, alignUp(take, align));
          inFlight.push({ take, cookie });
          queued += take;
          slot = slot + 1 === slots ? 0 : slot + 1;
        }
        const p = inFlight.shift()!;
        await waitDma(dma, p.cookie);
        ctx.stats.outBytesDma += p.take;
        done += p.take;
      }
    } catch (err) {
      ctx.stats.dmaErrors++;
      ctx.dmaFailed(err);
      ctx.aper.write(addr + done, data.subarray(done));
    }
  }
}
