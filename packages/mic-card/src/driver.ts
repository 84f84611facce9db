/**
 * The card driver as a module (`mic_init` on the card and its platform driver's probe): it loads
 * the DMA driver once, when the driver is initialised (the seed's `request_module("mic_x100_dma")`
 * at module init, not at every probe), then probes the card.
 *
 * @see drivers/misc/mic/card/mic_x100.c (`mic_init`, `mic_probe`, `mic_remove`)
 */
import { MicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { MicCard, type MicCardOptions } from './card.js';
import { loadDmaDriver, type DmaDriverLoader } from '@mic/mic-bus';

/** Options of {@link MicCardDriver.init}. */
export interface MicCardDriverOptions {
  /** Loads the DMA driver (`request_module("mic_x100_dma")`); called once, by `init`. */
  readonly loadDmaDriver?: DmaDriverLoader;
  /** Where the driver logs (default: nowhere; card code usually passes `card.logger`). */
  readonly logger?: Logger;
}

/**
 * The card driver. The card runs one card OS, so there is at most one probed {@link MicCard}.
 *
 * @example
 * export async function cardMain(card) {
 *   const driver = await MicCardDriver.init({ logger: card.logger });
 *   const mic = await driver.probe({ card, buses: { mbus, scif, vop } });
 *   return { nodeId: () => mic.nodeId };
 * }
 */
export class MicCardDriver {
  readonly #logger: Logger;
  #card: MicCard | undefined;
  #exited = false;

  private constructor(logger: Logger) {
    this.#logger = logger;
  }

  /**
   * `mic_init`: loads the DMA driver (once, here) and returns the driver.
   * @throws MicError what the loader threw (as ENODEV when it was not a MicError)
   */
  static async init(options: MicCardDriverOptions = {}): Promise<MicCardDriver> {
    const logger = (options.logger ?? nullLogger).child('mic_card');
    await loadDmaDriver(options.loadDmaDriver, logger);
    return new MicCardDriver(logger);
  }

  /** The probed card, if any. */
  get card(): MicCard | undefined {
    return this.#card;
  }

  /**
   * Probes the card (`mic_driver_init`). On failure everything is unwound.
   * @throws MicError EBUSY when a card is probed already, ENODEV after {@link exit}, or what the
   * probe threw
   */
  async probe(options: MicCardOptions): Promise<MicCard> {
    if (this.#exited) throw new MicError('ENODEV', 'the MIC card driver has exited');
    if (typeof options !== 'object' || options === null)
      throw new MicError('EINVAL', 'card options are not an object');
    if (this.#card) throw new MicError('EBUSY', 'the card is already probed');
    const card = new MicCard(options, options.logger ?? this.#logger, (c) => {
      if (this.#card === c) this.#card = undefined;
    });
    this.#card = card;
    await card.probe();
    return card;
  }

  /** Removes the card, if probed. Probing afterwards fails. */
  async exit(): Promise<void> {
    this.#exited = true;
    await this.#card?.remove();
  }
}
