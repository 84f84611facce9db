/**
 * The host's interrupt requests on the x100 host interrupt line, as `mic_request_threaded_irq` /
 * `mic_free_irq` hand them out to the buses: doorbells 0–3 (`MIC_INTR_DB`, for SCIF and VOP) and
 * the DMA channels (`MIC_INTR_DMA`, source 8 + channel, for the mbus DMA device).
 *
 * How requests are checked, called and freed is `ThreadedIrqTable` (`@mic/bus-core`), which the
 * card driver shares.
 *
 * @see drivers/misc/mic/host/mic_intr.c
 */
import { ThreadedIrqTable } from '@mic/bus-core';
import type { Logger } from '@mic/logger';
import { X100_DMA, X100_HOST_NUM_DOORBELLS, hostDmaSrc, type IrqCookie, type X100HostView } from '@mic/x100';

/** Which kind of source a request is for (`enum mic_intr_type`). */
export const MIC_INTR = {
  /** A doorbell the card rings (0–3). */
  DB: 'doorbell',
  /** A DMA channel's completion interrupt (channel 0–7, host source 8 + channel). */
  DMA: 'dma',
} as const;

/** One of {@link MIC_INTR}. */
export type MicIntrType = (typeof MIC_INTR)[keyof typeof MIC_INTR];

/**
 * The interrupt requests of one host (`struct mic_irq_info`), on the host view's interrupt line:
 * `request` is `mic_request_threaded_irq`, `free` is `mic_free_irq`.
 */
export class HostIrqTable extends ThreadedIrqTable<MicIntrType, IrqCookie> {
  constructor(host: X100HostView, logger: Logger) {
    super({
      side: 'host',
      hw: host,
      kinds: {
        [MIC_INTR.DB]: { count: X100_HOST_NUM_DOORBELLS, src: (num) => num },
        [MIC_INTR.DMA]: { count: X100_DMA.MAX_NUM_CHAN, src: hostDmaSrc },
      },
      logger,
    });
  }
}
