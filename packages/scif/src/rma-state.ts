/**
 * Per-endpoint RMA state (`struct scif_endpt_rma_info`): the registered address space (RAS) and
 * its offset allocator, self windows (`reg_list`) and the peer's windows (`remote_reg_list`), both
 * sorted by offset, the window query (`scif_query_window`), the endpoint's DMA channel and what
 * keeps a closed endpoint from being freed.
 *
 * @see drivers/misc/mic/scif/scif_rma.h, scif_rma_list.c, scif_rma.c
 */
import type { DmaBuffer, DmaChannel, DmaMemcpyChannel } from '@mic/bus-core';
import { MicError, errorMessage } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { OP, type OpState, PAGE_SIZE, SCIF_RAS_END } from './constants.js';
import type { Endpt } from './endpt.js';

/** A DMA channel SCIF can copy with, and what else it may offer (checked at run time). */
export interface ScifDmaChan extends DmaMemcpyChannel {
  /** `device_prep_dma_imm_data` (x100: a STATUS descriptor writes a 64-bit value). */
  prepImmData?(dst: number, value: bigint, flags?: number): { submit(): number };
  /** `device_tx_status`. */
  txStatus?(cookie: number): string;
}

/** The channel as one SCIF can copy with, or undefined. */
export function asScifDmaChan(ch: DmaChannel): ScifDmaChan | undefined {
  const c = ch as Partial<ScifDmaChan>;
  return typeof c.prepMemcpy === 'function' &&
    typeof c.issuePending === 'function' &&
    typeof c.syncWait === 'function' &&
    Number.isInteger(c.copyAlign)
    ? (ch as ScifDmaChan)
    : undefined;
}

/** Which window list a query walks, and how the range must fit (`enum scif_window_type`). */
export const SCIF_WINDOW = { PARTIAL: 0, SINGLE: 1, FULL: 2 } as const;
export type ScifWindowQuery = (typeof SCIF_WINDOW)[keyof typeof SCIF_WINDOW];

/** A physically contiguous piece of a window. */
export interface WindowChunk {
  /** Page index of the chunk's first page in its window. */
  readonly start: number;
  readonly pages: number;
  /** Address the DMA engine (and the peer) uses. */
  readonly dmaAddr: number;
  /** The CPU's view of the chunk (local memory, or the peer's mapped). */
  readonly mem: Memory;
}

/** What both kinds of window have. */
export abstract class Window {
  /** The endpoint whose list holds it. */
  readonly ep: Endpt;
  readonly offset: number;
  readonly nrPages: number;
  prot: number;
  readonly chunks: WindowChunk[];
  /** Our handle for this window (set once, when it is entered in the handle table). */
  handle: number;
  /** References in pages (`ref_count`). */
  refCount = 0;
  unregState: OpState = OP.IDLE;

  constructor(
    ep: Endpt,
    offset: number,
    nrPages: number,
    prot: number,
    chunks: WindowChunk[],
    handle: number,
  ) {
    this.ep = ep;
    this.offset = offset;
    this.nrPages = nrPages;
    this.prot = prot;
    this.chunks = chunks;
    this.handle = handle;
  }

  get len(): number {
    return this.nrPages * PAGE_SIZE;
  }

  get end(): number {
    return this.offset + this.len;
  }

  /** The chunk holding byte `off` of the window (`scif_off_to_dma_addr`), and where in it. */
  locate(off: number): { chunk: WindowChunk; at: number } {
    const page = Math.floor(off / PAGE_SIZE);
    const cs = this.chunks;
    let lo = 0;
    let hi = cs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (cs[mid]!.start <= page) lo = mid;
      else hi = mid - 1;
    }
    const chunk = cs[lo]!;
    return { chunk, at: off - chunk.start * PAGE_SIZE };
  }
}

/** A window of our own memory (`SCIF_WINDOW_SELF`). */
export class SelfWindow extends Window {
  /** The peer's handle of its copy (`alloc_handle.vaddr`, then `peer_window`). */
  peerWindow = 0;
  allocState: OpState = OP.IDLE;
  /** Where the peer's window descriptor is (`alloc_handle.phys_addr`). */
  allocPhys = 0;
  regState: OpState = OP.IDLE;
  /** A temporary window of `vreadfrom`/`vwriteto`, never told to the peer. */
  readonly temp: boolean;
  /** Unmaps the chunks (set while they are mapped). */
  unmapChunks: (() => void) | undefined;

  constructor(
    ep: Endpt,
    offset: number,
    nrPages: number,
    prot: number,
    chunks: WindowChunk[],
    handle: number,
    temp = false,
  ) {
    super(ep, offset, nrPages, prot, chunks, handle);
    this.temp = temp;
  }
}

/** Our copy of a window the peer registered (`SCIF_WINDOW_PEER`). */
export class RemoteWindow extends Window {
  /** The registrant's handle of its window. */
  readonly peerWindow: number;
  /** Unmaps the views of the peer's memory. */
  readonly release: () => void;

  constructor(
    ep: Endpt,
    offset: number,
    nrPages: number,
    prot: number,
    chunks: WindowChunk[],
    handle: number,
    peerWindow: number,
    release: () => void,
  ) {
    super(ep, offset, nrPages, prot, chunks, handle);
    this.peerWindow = peerWindow;
    this.release = release;
  }
}

/**
 * The peer's window descriptor while a registration is in flight (`scif_create_remote_window`
 * before `SCIF_REGISTER`): its memory and lookup tables, and who asked for it.
 */
export class PendingRemote {
  readonly nrPages: number;
  readonly desc: DmaBuffer;
  readonly lookup: DmaBuffer;
  readonly tables: DmaBuffer;
  handle = 0;

  constructor(nrPages: number, desc: DmaBuffer, lookup: DmaBuffer, tables: DmaBuffer) {
    this.nrPages = nrPages;
    this.desc = desc;
    this.lookup = lookup;
    this.tables = tables;
  }
}

/**
 * The RAS offset allocator (the kernel's IOVA domain): page-granular ranges; `reserve` takes
 * exactly a range (`EADDRINUSE` on any overlap, also with a window still being torn down);
 * `alloc` takes the highest free range below {@link SCIF_RAS_END}.
 */
export class RasAllocator {
  /** Taken ranges `[start, end)`, sorted by start. */
  readonly #ranges: [number, number][] = [];

  get count(): number {
    return this.#ranges.length;
  }

  reserve(offset: number, len: number): void {
    const end = offset + len;
    for (const [s, e] of this.#ranges) {
      if (s < end && offset < e) {
        throw new MicError(
          'EADDRINUSE',
          `scif offsets [0x${offset.toString(16)}, +0x${len.toString(16)}) overlap a window`,
          {
            details: { offset, len },
          },
        );
      }
    }
    this.#insert(offset, end);
  }

  alloc(len: number): number {
    let top = SCIF_RAS_END;
    for (let i = this.#ranges.length - 1; i >= -1; i--) {
      const below = i >= 0 ? this.#ranges[i]![1] : PAGE_SIZE;
      if (top - below >= len) {
        const at = top - len;
        this.#insert(at, top);
        return at;
      }
      if (i >= 0) top = Math.min(top, this.#ranges[i]![0]);
    }
    throw new MicError('ENOMEM', `no ${len}-byte range is free in the scif registered address space`);
  }

  free(offset: number): void {
    const i = this.#ranges.findIndex(([s]) => s === offset);
    if (i >= 0) this.#ranges.splice(i, 1);
  }

  #insert(s: number, e: number): void {
    let i = 0;
    while (i < this.#ranges.length && this.#ranges[i]![0] < s) i++;
    this.#ranges.splice(i, 0, [s, e]);
  }
}

/** Inserts `w` into a list sorted by offset (`scif_insert_window`). */
export function insertWindow<W extends Window>(list: W[], w: W): void {
  let i = 0;
  while (i < list.length && list[i]!.offset < w.offset) i++;
  list.splice(i, 0, w);
}

/**
 * `scif_query_window`: the windows of `list` covering `[offset, offset + len)`.
 * - PARTIAL: the range may span several windows if they are contiguous in offset;
 * - SINGLE: one window must hold it all;
 * - FULL: contiguous windows, starting and ending exactly at window boundaries.
 * @throws MicError ENXIO when a byte is not covered (or the FULL/SINGLE shape does not fit), EPERM
 * when a window lacks `prot`
 */
export function queryWindows<W extends Window>(
  list: readonly W[],
  offset: number,
  len: number,
  prot: number,
  type: ScifWindowQuery,
): W[] {
  const end = offset + len;
  const out: W[] = [];
  let at = offset;
  for (const w of list) {
    if (w.end <= at) continue;
    if (w.offset > at) break;
    if (out.length === 0 && type === SCIF_WINDOW.FULL && w.offset !== offset) break;
    if ((w.prot & prot) !== prot) {
      throw new MicError('EPERM', `scif window at 0x${w.offset.toString(16)} lacks protection ${prot}`, {
        details: { offset: w.offset, prot: w.prot, want: prot },
      });
    }
    out.push(w);
    at = w.end;
    if (at >= end) break;
    if (type === SCIF_WINDOW.SINGLE) break;
  }
  if (out.length === 0 || at < end || (type === SCIF_WINDOW.FULL && at !== end)) {
    throw new MicError(
      'ENXIO',
      `scif offsets [0x${offset.toString(16)}, +0x${len.toString(16)}) are not registered`,
      {
        details: { offset, len, type },
      },
    );
  }
  return out;
}

/** The RMA state of one endpoint. */
export class EpRma {
  readonly ep: Endpt;
  readonly regList: SelfWindow[] = [];
  readonly remoteList: RemoteWindow[] = [];
  readonly ras = new RasAllocator();
  dmaChan: ScifDmaChan | undefined;
  /** The last DMA cookie this endpoint submitted (0: none). */
  lastCookie = 0;
  /** Marks of an endpoint without a channel (all its RMAs are CPU copies, done when they return). */
  swMark = 0;
  /** Fence marks or remote fence waits in flight (`fence_refcount`). */
  fenceRefcount = 0;
  /** Windows being destroyed (`tw_refcount`). */
  twRefcount = 0;
  /** Temporary mappings kept by `SCIF_RMA_USECACHE`, and their pages in all. */
  readonly tempCache = new Map<Memory, { dmaAddr: number; pages: number }>();
  tcPages = 0;
  /** Memory {@link allocs} handed out with `alloc`. */
  readonly allocs = new Set<DmaBuffer>();
  /** Live `mmap` views of the peer's windows. */
  readonly views = new Set<{ invalidate(): void; readonly windows: readonly RemoteWindow[] }>();
  /** Copies still completing in the background (ordered CPU tails, DMA completions). */
  readonly inflight = new Set<Promise<void>>();

  constructor(ep: Endpt) {
    this.ep = ep;
  }

  /**
   * `scif_reserve_dma_chan`: one channel per endpoint, round robin over the link's channels (the
   * card uses the host link's, the host the card's). Loopback endpoints and links without a copy
   * channel get none (their RMAs are CPU copies).
   */
  reserveDmaChan(): void {
    const ep = this.ep;
    const core = ep.core;
    const dev = ep.remoteDev;
    if (!dev || core.isSelf(dev)) return;
    const link = core.isMgmt ? dev : core.devs[0];
    const chans = (link?.sdev?.dmaCh ?? [])
      .map(asScifDmaChan)
      .filter((c): c is ScifDmaChan => c !== undefined);
    if (!link || chans.length === 0) return;
    this.dmaChan = chans[link.dmaChIdx++ % chans.length];
  }

  /** Waits for every DMA transfer this endpoint issued and every background copy. */
  async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
    const ch = this.dmaChan;
    const cookie = this.lastCookie;
    if (!ch || cookie === 0) return;
    try {
      await ch.syncWait(cookie, { timeoutMs: this.ep.core.t.nodeAliveTimeoutMs });
    } catch (err) {
      this.ep.core.log.warn('scif DMA drain failed', { chan: ch.name, error: errorMessage(err) });
    }
  }

  /** Tracks a background completion. */
  track(p: Promise<void>): void {
    const q = p.catch((err: unknown) =>
      this.ep.core.log.warn('scif background copy failed', { error: errorMessage(err) }),
    );
    this.inflight.add(q);
    void q.finally(() => {
      this.inflight.delete(q);
      this.ep.core.scheduleReap();
    });
  }

  /** `scif_rma_ep_can_uninit`: nothing of the endpoint's RMA is left. */
  canUninit(): boolean {
    return (
      this.regList.length === 0 &&
      this.remoteList.length === 0 &&
      this.fenceRefcount === 0 &&
      this.twRefcount === 0 &&
      this.inflight.size === 0
    );
  }

  /** The endpoint is freed: cached temporary mappings and allocations go. */
  uninit(): void {
    const ops = this.ep.remoteDev?.ops;
    for (const [mem, m] of this.tempCache) {
      try {
        ops?.unmapSingle(m.dmaAddr, mem.byteLength);
      } catch {
        // the link is gone; its mappings went with it
      }
    }
    this.tempCache.clear();
    this.tcPages = 0;
    for (const b of this.allocs) ops?.free(b);
    this.allocs.clear();
  }

  /** Set by `rma.ts`: unregisters every self window (`scif_unregister_all_windows`). */
  unregisterAll: () => Promise<void> = async () => undefined;

  /**
   * The node is lost or the connection is over: the peer's windows are dropped and every `mmap`
   * view of them invalidated (`scif_zap_mmaps`, `scif_cleanup_rma_for_zombies`).
   */
  dropRemoteWindows(): void {
    for (const v of [...this.views]) v.invalidate();
    this.views.clear();
    for (const w of this.remoteList.splice(0)) {
      this.ep.core.handles.remove(w.handle);
      w.release();
    }
  }
}
