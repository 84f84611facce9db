/**
 * The card code of the `dma` suite's platform. The suite drives the DMA engine from the host
 * and never boots the card; the worker platform still needs a card module to name.
 */
export function cardMain(): void {}
