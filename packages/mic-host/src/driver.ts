/**
 * The host driver as a module (`mic_init` / `mic_exit` and the PCI driver's probe): it loads the
 * DMA driver once, when the driver is initialised (the seed moved `request_module("mic_x100_dma")`
 * from every card start to module init), hands out card ids like `g_mic_ida`, and probes and
 * removes cards.
 *
 * @see drivers/misc/mic/host/mic_main.c (`mic_init`, `mic_exit`, `mic_probe`, `mic_remove`)
 */
import { MicError, checkInt } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { MIC_MAX_NUM_DEVS } from './constants.js';
import { loadDmaDriver, type DmaDriverLoader } from '@mic/mic-bus';
import { MicHost, type MicHostOptions } from './host.js';

/** Options of {@link MicHostDriver.init}. */
export interface MicHostDriverOptions {
  /** Loads the DMA driver (`request_module("mic_x100_dma")`); called once, by `init`. */
  readonly loadDmaDriver?: DmaDriverLoader;
  /** Where the driver and its cards log (default: nowhere). */
  readonly logger?: Logger;
}

/**
 * The host driver. Initialise it once, then probe one {@link MicHost} per card.
 *
 * @example
 * const driver = await MicHostDriver.init({ loadDmaDriver: () => micDma.register(mbusBus) });
 * const mic = await driver.probe({ host: platform.host, clock: platform.clock, buses });
 * await mic.cosmOps.start(mic.cosmDevice!.index, { firmware: 'mic/uos.img', ramdisk: null, cmdline: null, bootmode: 'linux' });
 * await driver.exit(); // removes every card
 */
export class MicHostDriver {
  readonly #logger: Logger;
  readonly #ids = new Set<number>();
  readonly #hosts: MicHost[] = [];
  #exited = false;

  private constructor(logger: Logger) {
    this.#logger = logger;
  }

  /**
   * `mic_init`: loads the DMA driver (once, here, never per card) and returns the driver.
   * @throws MicError what the loader threw (as ENODEV when it was not a MicError)
   */
  static async init(options: MicHostDriverOptions = {}): Promise<MicHostDriver> {
    const logger = (options.logger ?? nullLogger).child('mic_host');
    await loadDmaDriver(options.loadDmaDriver, logger);
    return new MicHostDriver(logger);
  }

  /** The cards probed and not removed, in probe order. */
  get hosts(): readonly MicHost[] {
    return [...this.#hosts];
  }

  /**
   * `mic_probe` for one card: takes an id (the given one or the lowest free), builds its
   * {@link MicHost} and probes it. On failure everything is unwound and the id is free again.
   * @throws MicError ENODEV after {@link exit}, EINVAL for a bad id, EBUSY when the id is taken,
   * ENOSPC when all 128 ids are, or what the probe threw
   */
  async probe(options: MicHostOptions): Promise<MicHost> {
    if (this.#exited) throw new MicError('ENODEV', 'the MIC host driver has exited');
    if (typeof options !== 'object' || options === null)
      throw new MicError('EINVAL', 'host options are not an object');
    const id = this.#takeId(options.id);
    let host: MicHost;
    try {
      const logger = options.logger ?? this.#logger.child(`mic${id}`);
      host = new MicHost(id, options, logger, (h) => this.#forget(h));
    } catch (err) {
      this.#ids.delete(id);
      throw err;
    }
    this.#hosts.push(host);
    await host.probe();
    return host;
  }

  /** `mic_exit`: removes every card, the last probed first. Probing afterwards fails. */
  async exit(): Promise<void> {
    this.#exited = true;
    for (const host of [...this.#hosts].reverse()) await host.remove();
  }

  #takeId(want: number | undefined): number {
    if (want !== undefined) {
      checkInt('card id', want, 0, MIC_MAX_NUM_DEVS - 1);
      if (this.#ids.has(want))
        throw new MicError('EBUSY', `card id ${want} is in use`, { details: { id: want } });
      this.#ids.add(want);
      return want;
    }
    for (let id = 0; id < MIC_MAX_NUM_DEVS; id++) {
      if (!this.#ids.has(id)) {
        this.#ids.add(id);
        return id;
      }
    }
    throw new MicError('ENOSPC', `all ${MIC_MAX_NUM_DEVS} card ids are in use`);
  }

  #forget(host: MicHost): void {
    const at = this.#hosts.indexOf(host);
    if (at >= 0) this.#hosts.splice(at, 1);
    this.#ids.delete(host.id);
  }
}
