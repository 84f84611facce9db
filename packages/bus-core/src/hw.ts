/**
 * Types that cross from a bus to the hardware driver below it, shared by every MIC bus (each bus
 * package re-exports the ones its devices carry). Memory is always reached through the
 * `@mic/memory` seam.
 *
 * @see include/linux/mic_bus.h
 * @see drivers/misc/mic/bus/vop_bus.h
 * @see drivers/misc/mic/bus/scif_bus.h
 */
import type { Memory } from '@mic/memory';

/** Doorbell number meaning "none / do not ring" (doorbells are `__s8` in the device page). */
export const NO_DOORBELL = -1;

/**
 * What an interrupt handler returns (`irqreturn_t`). `WAKE_THREAD` asks for the thread function
 * given to a threaded request to run after the handler.
 *
 * @see include/linux/irqreturn.h
 */
export const IRQ_RETURN = {
  NONE: 0,
  HANDLED: 1,
  WAKE_THREAD: 2,
} as const;

/** One of {@link IRQ_RETURN}. */
export type IrqReturn = (typeof IRQ_RETURN)[keyof typeof IRQ_RETURN];

/**
 * An interrupt handler (`irq_handler_t`). `irq` is the doorbell or interrupt source that fired (the
 * number given to `requestIrq`, in place of a Linux IRQ number) and `data` the value given to
 * `requestIrq`. Returning nothing counts as {@link IRQ_RETURN}.HANDLED.
 *
 * Handlers run asynchronously, after the interrupt was raised (a later task, or a message from
 * another thread), never inside the call that rang the doorbell. A handler does not run again
 * until it returned; several rings of one doorbell before delivery may be coalesced into one call.
 *
 * A handler calls the ops' `ackInterrupt` (in the handler or its thread function) as every kernel
 * handler on these buses does: on the x100 host a delivered source stays masked until then
 * (auto-clear, `mic_x100_intr_workarounds`), so a handler that never acks gets one interrupt.
 */
export type IrqHandler<D = unknown> = (irq: number, data: D) => IrqReturn | void;

/**
 * The cookie `requestIrq` returns and `freeIrq` takes back (kernel: an opaque `struct mic_irq *`).
 * Only the implementation that created it may interpret it; `intrSrc` and `name` are for logs.
 *
 * @see include/linux/mic_bus.h `struct mic_irq`
 */
export interface MicIrq {
  /** The doorbell or interrupt source the handler was installed on. */
  readonly intrSrc: number;
  /** The name given to the request. */
  readonly name: string;
}

/**
 * A memory window (`struct mic_mw`): the bus address `pa` of a region, the CPU view `va` of it,
 * and its length. `va.byteLength === len`.
 *
 * @see include/linux/mic_bus.h `struct mic_mw`
 */
export interface MicMw {
  readonly pa: number;
  readonly va: Memory;
  readonly len: number;
}

/**
 * A buffer from {@link DmaMapOps.alloc}: the CPU view `va` and the DMA address `dmaAddr` at which
 * the other side of the link (and the DMA engine) reaches the same bytes.
 */
export interface DmaBuffer {
  readonly va: Memory;
  readonly dmaAddr: number;
  readonly size: number;
}

/**
 * The DMA mapping operations of a bus device (`struct dma_map_ops` on the device). They turn local
 * memory into addresses the other side of the PCIe link can use: on the host the x100 driver maps
 * host memory through the SMPT, so every DMA address is a card-visible address; on the card memory
 * is mapped directly (DMA address = card physical address), which the host reaches through its
 * aperture.
 *
 * Unlike the kernel, the card's devices also carry ops (direct mapping) instead of `NULL`, because
 * a TypeScript program has no global page allocator: `alloc` is where a driver gets memory the peer
 * can reach.
 *
 * Contract (checked by `@mic/hwops-compliance`):
 * - `alloc(size)` returns zeroed memory of `size` bytes, 64-byte aligned (the x100 DMA alignment),
 *   page-aligned (4096) when `size >= 4096`; `EINVAL` for a size that is not a positive integer,
 *   `ENOMEM` when memory or mapping space runs out.
 * - `free(buf)` releases a live buffer; `EINVAL` for one that is not live.
 * - `mapSingle(va)` returns the DMA address of a view of memory the device can reach (for example
 *   a window of an allocated buffer); `EINVAL` for memory it cannot reach.
 * - `unmapSingle(dmaAddr, size)` undoes one `mapSingle`; `EINVAL` when no such mapping is live.
 *
 * @see drivers/misc/mic/host/mic_boot.c `_mic_dma_ops`, `__mic_dma_ops`
 */
export interface DmaMapOps {
  /** Allocates and maps zeroed memory (kernel: `__get_free_pages` + `dma_map_single`). */
  alloc(size: number): DmaBuffer;
  /** Unmaps and frees a buffer from {@link alloc}. */
  free(buf: DmaBuffer): void;
  /** Maps existing memory and returns its DMA address (`dma_map_single`). */
  mapSingle(va: Memory): number;
  /** Undoes a {@link mapSingle} (`dma_unmap_single`). */
  unmapSingle(dmaAddr: number, size: number): void;
}

/**
 * A DMA channel handle as the buses pass it along (kernel `struct dma_chan *`). It is opaque here:
 * the dmaengine-style API belongs to `@mic/mic-dma`, whose channels implement this interface.
 */
export interface DmaChannel {
  /** The channel number on its engine (x100: host 0..3, card 4..7). */
  readonly chanId: number;
  /** A name for logs, e.g. `dma0chan0`. */
  readonly name: string;
}

/**
 * A DMA channel that can copy memory: the part of the dmaengine API (`device_prep_dma_memcpy`,
 * `tx_submit`, `dma_async_issue_pending`, `dma_sync_wait`) that drivers above a bus use for their
 * copies (VOP's `vop_sync_dma`, SCIF's RMA). `@mic/mic-dma` channels implement it; a bus device's
 * `dmaCh` may be a plain {@link DmaChannel} that cannot copy, so users check for these members.
 *
 * Addresses are DMA addresses as the bus device's DMA ops return them (x100: card memory at its
 * physical address, host memory at its SMPT address).
 *
 * @see include/linux/dmaengine.h
 */
export interface DmaMemcpyChannel extends DmaChannel {
  /** log2 of the alignment of copy addresses and lengths (`copy_align`; 6 on x100: 64 bytes). */
  readonly copyAlign: number;
  /** Prepares a copy of `len` bytes (`device_prep_dma_memcpy`); `submit()` returns its cookie. */
  prepMemcpy(dst: number, src: number, len: number, flags?: number): { submit(): number };
  /** Hands prepared transfers to the engine (`dma_async_issue_pending`). */
  issuePending(): void;
  /**
   * Waits for a transfer (`dma_sync_wait`): `'complete'`, `'error'` or `'in-progress'` (timed out).
   * `pollNs` bounds a busy poll before the wait sleeps (a hint: a channel may ignore it).
   */
  syncWait(
    cookie: number,
    options?: { readonly timeoutMs?: number; readonly pollNs?: number },
  ): Promise<string>;
}
