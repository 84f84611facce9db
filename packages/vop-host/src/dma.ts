/**
 * The part of a dmaengine channel the host side of VOP uses for its copies (`vop_sync_dma`):
 * prepare a memcpy with a fence, submit, issue, wait. `@mic/mic-dma` channels have it; a
 * channel without it (or none at all) makes every copy a memcpy, as the kernel does without
 * `vi->dma_ch`.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_sync_dma`
 * @see include/linux/dmaengine.h
 */
import type { DmaChannel, DmaMemcpyChannel } from '@mic/bus-core';

export type { DmaMemcpyChannel };
import { MicError } from '@mic/errors';
import { VOP_DMA_TIMEOUT_MS } from './constants.js';

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
 * One synchronous DMA copy (`vop_sync_dma`): prep with FENCE, submit, issue, wait. Throws `EIO`
 * when the engine reports an error or the copy does not complete within 5 s.
 */
export async function syncDma(ch: DmaMemcpyChannel, dst: number, src: number, len: number): Promise<void> {
  let cookie: number;
  try {
    cookie = ch.prepMemcpy(dst, src, len, DMA_PREP_FENCE).submit();
  } catch (err) {
    throw new MicError('ENOMEM', `DMA prep of ${len} bytes on ${ch.name} failed`, {
      cause: err,
      details: { dst, src, len },
    });
  }
  ch.issuePending();
  const status = await ch.syncWait(cookie, { timeoutMs: VOP_DMA_TIMEOUT_MS });
  if (status !== 'complete') {
    throw new MicError('EIO', `DMA of ${len} bytes on ${ch.name} ended ${status}`, {
      details: { dst, src, len, status },
    });
  }
}
