/**
 * The card code of the `dma` suite's platform. `@mic/mic-host` boots the card when it starts it;
 * the suite drives the DMA engine from the host, so the card code does nothing.
 */
export function cardMain(): void {}
