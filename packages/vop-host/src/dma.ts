/**
 * The part of a dmaengine channel the host side of VOP uses for its copies (`vop_sync_dma`):
 * prepare a memcpy with a fence, submit, issue, wait. As in the kernel the copies ask for no
 * completion interrupt: `@mic/mic-dma`'s `syncWait` busy-polls the completion first (bounded, as
 * the event loop must run) and, when it has to sleep, asks for an interrupt itself, so a copy the
 * engine finishes within the poll costs neither an interrupt nor a wake-up of this thread.
 * `@mic/mic-dma` channels have it; a channel without it (or none at all) makes every copy a
 * memcpy, as the kernel does without `vi->dma_ch`.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_sync_dma`
 * @see include/linux/dmaengine.h
 */
import type { DmaChannel, DmaMemcpyChannel } from '@mic/bus-core';

export type { DmaMemcpyChannel };
import { MicError } from '@mic/errors';
import { VOP_DMA_TIMEOUT_MS } from './constants.js';

/** `DMA_PREP_INTERRUPT`: the engine interrupts when the transfer completed. */
export const DMA_PREP_INTERRUPT = 1 << 0;
/** `DMA_PREP_FENCE`: the transfer completes only after the ones before it. */
export const DMA_PREP_FENCE = 1 << 5;

/** The channel as a {@link DmaMemcpyChannel}, or null when it is none or cannot copy. */
export function memcpyChannel(ch: DmaChannel | null): DmaMemcpyChannel | null {
  if (ch === null) return null;
  const c = ch as Partial<DmaMemcpyChannel>;
  if (
    typeof c.prepMemcpy !== 'function' ||
    typeof c.issuePending !== 'function' ||
    typeof c.syncWait !== 'function' ||
    !Number.isInteger(c.copyAlign)
  ) {
    return null;
  }
  return ch as DmaMemcpyChannel;
}

/**
 * Queues one copy (`device_prep_dma_memcpy` with FENCE, `tx_submit`) and returns its cookie; it
 * reaches the engine at the next `issuePending` (or {@link waitDma}), or at once when the channel
 * issues by itself. Throws `ENOMEM` when the channel refuses it.
 */
export function submitDma(ch: DmaMemcpyChannel, dst: number, src: number, len: number): number {
  try {
    return ch.prepMemcpy(dst, src, len, DMA_PREP_FENCE).submit();
  } catch (err) {
    throw new MicError('ENOMEM', `DMA prep of ${len} bytes on ${ch.name} failed`, {
      cause: err,
      details: { dst, src, len },
    });
  }
}

/**
 * Hands one copy to the engine ({@link submitDma}, then `dma_async_issue_pending`) and returns its
 * cookie. Throws `ENOMEM` when the channel refuses it.
 */
export function startDma(ch: DmaMemcpyChannel, dst: number, src: number, len: number): number {
  const cookie = submitDma(ch, dst, src, len);
  ch.issuePending();
  return cookie;
}

/**
 * Waits for a copy from {@link startDma} or {@link submitDma} (`dma_sync_wait`, 5 s, which issues
 * what is pending first). `pollNs`, when given, bounds the busy-poll before the wait sleeps
 * (`@mic/mic-dma`'s `syncWait` option; a channel without it ignores it). Throws `EIO` unless it
 * completed.
 */
export async function waitDma(ch: DmaMemcpyChannel, cookie: number, pollNs?: number): Promise<void> {
  const options =
    pollNs === undefined ? { timeoutMs: VOP_DMA_TIMEOUT_MS } : { timeoutMs: VOP_DMA_TIMEOUT_MS, pollNs };
  const status = await ch.syncWait(cookie, options);
  if (status !== 'complete') {
    throw new MicError('EIO', `DMA ${cookie} on ${ch.name} ended ${status}`, {
      details: { cookie, status },
    });
  }
}

/** One synchronous DMA copy (`vop_sync_dma`): {@link startDma}, then {@link waitDma}. */
export async function syncDma(ch: DmaMemcpyChannel, dst: number, src: number, len: number): Promise<void> {
  await waitDma(ch, startDma(ch, dst, src, len));
}
