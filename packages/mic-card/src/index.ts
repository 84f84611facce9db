/**
 * `@mic/mic-card`: the card-side MIC hardware driver on the x100 model. It implements the VOP,
 * SCIF and mbus `*HwOps` on an `X100CardView` and registers the devices on the card's buses, in
 * the kernel's order, unwinding in reverse on failure. It never imports a host-side package.
 *
 * @see drivers/misc/mic/card/mic_device.c
 * @see drivers/misc/mic/card/mic_x100.c
 */
export { MIC_CARD_PROBE_STEPS } from './card.js';
export { MIC_X100_MAX_DOORBELL_IDX } from './constants.js';
export type { MicCard, MicCardBuses, MicCardOptions, MicCardStep } from './card.js';
export type { DmaChannelProvider, DmaDriverLoader } from '@mic/mic-bus';
export { cardPages } from './card-pages.js';
export { CardDmaMapOps } from './dma-ops.js';
export { cardDpInit, readDpAddress } from './device-page.js';
export { MicCardDriver } from './driver.js';
export type { MicCardDriverOptions } from './driver.js';
export { CardMbusHwOps, CardScifHwOps, CardVopHwOps } from './hw-ops.js';
export type { CardOpsContext } from './hw-ops.js';
export { CARD_INTR, CardIrqTable } from './irq.js';
export type { CardIntrType } from './irq.js';
