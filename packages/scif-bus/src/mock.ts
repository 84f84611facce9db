/**
 * Mock SCIF hardware: {@link MockScifHwOps} (one side's ops) and {@link MockScifFabric} (a host and
 * one or more cards, each joined to the host by a {@link MockScifLink}, with card-to-card
 * doorbells). Deterministic, per-instance state; interrupts are delivered in a later task.
 */
import {
  type DmaChannel,
  MOCK_APER_PA,
  MOCK_MMIO_PA,
  MOCK_SMPT_BASE,
  MockDmaMapOps,
  MockLinkEnd,
  type MockLinkEndOptions,
  MOCK_CARD_DOORBELLS,
  MOCK_CARD_MMIO_PA,
  MOCK_HOST_DOORBELLS,
  MOCK_MMIO_LEN,
  type DmaBuffer,
  type MicMw,
} from '@mic/bus-core';
import { MicError, checkInt, formatAddr } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { BufferMemory, type Memory } from '@mic/memory';
import { MIC_DP_SIZE } from '@mic/mic-common';
import { MIC_SCIF_DEV, type ScifHwDevParams, type ScifHwOps } from './scif.js';

/** Options of {@link MockScifHwOps}. */
export interface MockScifHwOpsOptions extends MockLinkEndOptions {
  /** Which side these ops play; only the card has `sendP2pIntr`. */
  readonly role: 'host' | 'card';
  /**
   * Card only: finds the card whose MMIO window `mw` is, for `sendP2pIntr`. Without it,
   * `sendP2pIntr` only records the doorbell.
   */
  readonly resolveP2p?: (mw: MicMw) => MockScifHwOps | undefined;
}

/** A `sendP2pIntr` call as {@link MockScifHwOps.sentP2pInterrupts} records it. */
export interface MockP2pInterrupt {
  readonly db: number;
  /** `pa` of the window it went through. */
  readonly pa: number;
}

/**
 * {@link ScifHwOps} of one side, for tests of the layer above. Alone, `sendIntr` only records;
 * joined to the other end with {@link MockScifHwOps.connect} it also rings it.
 *
 * @example
 * const ops = new MockScifHwOps({ role: 'card' });
 * const db = ops.nextDb();
 * ops.requestIrq(scifIntrHandler, 'SCIF_INTR', scifdev, db);
 * ops.raiseInterrupt(db);
 */
export class MockScifHwOps extends MockLinkEnd implements ScifHwOps {
  /** Card only: ring a doorbell of another card through its MMIO window. */
  readonly sendP2pIntr?: (db: number, mw: MicMw) => void;
  readonly #sentP2p: MockP2pInterrupt[] = [];

  constructor(options: MockScifHwOpsOptions) {
    super('scif', options);
    if (this.role === 'card') {
      const resolve = options.resolveP2p;
      this.sendP2pIntr = (db: number, mw: MicMw): void => {
        if (typeof mw !== 'object' || mw === null)
          throw new MicError('EINVAL', 'scif p2p window is not a window');
        if (resolve) {
          const target = resolve(mw);
          if (!target || target === this) {
            throw new MicError('EINVAL', `scif p2p window at ${formatAddr(mw.pa)} is not a peer card's MMIO`);
          }
          target.lines.raise(db);
        } else {
          checkInt('scif p2p doorbell', db, 0, this.lines.count - 1);
        }
        this.#sentP2p.push({ db, pa: mw.pa });
      };
    }
  }

  /** Joins a host side and a card side: each one's `sendIntr` rings the other. */
  static connect(a: MockScifHwOps, b: MockScifHwOps): void {
    super.join(a, b);
  }

  /** Every `sendP2pIntr` call, in order. */
  get sentP2pInterrupts(): readonly MockP2pInterrupt[] {
    return [...this.#sentP2p];
  }
}

/**
 * One card and the host's side of its link, laid out like x100 (see {@link MockScifFabric}).
 * Built by the fabric.
 */
export class MockScifLink {
  /** The card's SCIF node id (card index + 1). */
  readonly node: number;
  readonly cardRam: BufferMemory;
  /** The card's SBOX MMIO registers. */
  readonly cardMmio: BufferMemory;
  readonly cardDmaOps: MockDmaMapOps;
  /** The host's device page for this card, in host RAM. */
  readonly dp: DmaBuffer;
  /** The card's aperture as the host sees it (`pa` = BAR0 address). */
  readonly aper: MicMw;
  /** The card's MMIO as the host (and other cards, for P2P) see it (`pa` = BAR4 address). */
  readonly hostMmio: MicMw;
  /** The card's MMIO as the card sees it (`pa` = `0x08_007C_0000`). */
  readonly cardMmioMw: MicMw;
  readonly host: MockScifHwOps;
  readonly card: MockScifHwOps;
  readonly #fabric: MockScifFabric;

  /** @internal Use {@link MockScifFabric}. */
  constructor(fabric: MockScifFabric, index: number, options: MockScifFabricOptions) {
    const shared = options.shared ?? false;
    const logger = options.logger ?? nullLogger;
    this.#fabric = fabric;
    this.node = index + 1;
    this.cardRam = BufferMemory.allocate(options.cardRamSize ?? 1 << 20, { shared });
    this.cardMmio = BufferMemory.allocate(MOCK_MMIO_LEN, { shared });
    this.cardDmaOps = new MockDmaMapOps({ pool: this.cardRam, base: 0, name: `card ${this.node} scif dma` });
    this.dp = fabric.hostDmaOps.alloc(MIC_DP_SIZE);
    this.aper = Object.freeze({
      pa: (options.aperPa ?? MOCK_APER_PA) + index * 0x4_0000_0000,
      va: this.cardRam,
      len: this.cardRam.byteLength,
    });
    this.hostMmio = Object.freeze({
      pa: (options.mmioPa ?? MOCK_MMIO_PA) + index * 0x10_0000,
      va: this.cardMmio,
      len: MOCK_MMIO_LEN,
    });
    this.cardMmioMw = Object.freeze({
      pa: options.cardMmioPa ?? MOCK_CARD_MMIO_PA,
      va: this.cardMmio,
      len: MOCK_MMIO_LEN,
    });
    this.host = new MockScifHwOps({
      role: 'host',
      doorbells: options.hostDoorbells ?? MOCK_HOST_DOORBELLS,
      remap: [{ base: 0, pool: this.cardRam }],
      logger,
    });
    this.card = new MockScifHwOps({
      role: 'card',
      doorbells: options.cardDoorbells ?? MOCK_CARD_DOORBELLS,
      remap: [{ base: fabric.hostDmaBase, pool: fabric.hostRam }],
      resolveP2p: (mw) => fabric.cardByMmio(mw)?.card,
      logger,
    });
    MockScifHwOps.connect(this.host, this.card);
  }

  /** The card's view of the host device page (what the card passes as `rdp`). */
  get rdp(): Memory {
    return this.#fabric.hostRam.window(this.dp.dmaAddr - this.#fabric.hostDmaBase, MIC_DP_SIZE);
  }

  /** Registration parameters of the host-side device, as the host's `_mic_start` passes them. */
  hostParams(dmaCh: readonly DmaChannel[] = []): ScifHwDevParams {
    return {
      id: MIC_SCIF_DEV,
      dmaOps: this.#fabric.hostDmaOps,
      hwOps: this.host,
      dnode: this.node,
      snode: 0,
      mmio: this.hostMmio,
      aper: this.aper,
      dp: this.dp.va,
      rdp: null,
      dmaCh,
      cardRelDa: true,
    };
  }

  /** Registration parameters of the card-side device, as the card's `mic_driver_init` passes them. */
  cardParams(dmaCh: readonly DmaChannel[] = []): ScifHwDevParams {
    return {
      id: MIC_SCIF_DEV,
      dmaOps: this.cardDmaOps,
      hwOps: this.card,
      dnode: 0,
      snode: this.node,
      mmio: this.cardMmioMw,
      aper: null,
      dp: null,
      rdp: this.rdp,
      dmaCh,
      cardRelDa: true,
    };
  }
}

/** Options of {@link MockScifFabric}. */
export interface MockScifFabricOptions {
  /** Number of cards (default 1). */
  readonly cards?: number;
  /** Bytes of host RAM (default 4 MiB). */
  readonly hostRamSize?: number;
  /** Bytes of RAM per card (default 1 MiB). */
  readonly cardRamSize?: number;
  /** Back the memories with SharedArrayBuffers (default false). */
  readonly shared?: boolean;
  /** Host doorbells per link (default {@link MOCK_HOST_DOORBELLS}). */
  readonly hostDoorbells?: number;
  /** Doorbells per card (default {@link MOCK_CARD_DOORBELLS}). */
  readonly cardDoorbells?: number;
  /** DMA address of host RAM offset 0, where the cards reach it (default {@link MOCK_SMPT_BASE}). */
  readonly hostDmaBase?: number;
  /** BAR0 address of card 0's aperture; card `n` is 16 GiB above (default {@link MOCK_APER_PA}). */
  readonly aperPa?: number;
  /** BAR4 address of card 0's MMIO; card `n` is 1 MiB above (default {@link MOCK_MMIO_PA}). */
  readonly mmioPa?: number;
  /** Where each card sees its own MMIO (default {@link MOCK_CARD_MMIO_PA}). */
  readonly cardMmioPa?: number;
  readonly logger?: Logger;
}

/**
 * A host and `cards` cards, laid out like x100:
 * - host RAM; the host DMA ops hand it out at `hostDmaBase + offset`, which every card's
 *   `remap` reaches;
 * - per card: RAM (DMA address = offset, reached by the host's `remap` through the aperture), SBOX
 *   MMIO, a device page in host RAM (host `dp`, card `rdp`), and doorbells both ways;
 * - card to card: `sendP2pIntr(db, mw)` with `mw.pa` = another card's {@link MockScifLink.hostMmio}
 *   `pa` rings that card's doorbell `db`.
 *
 * @example
 * const fabric = new MockScifFabric({ cards: 2 });
 * const [a, b] = fabric.links;
 * await hostScifBus.registerDevice(a.hostParams());
 */
export class MockScifFabric {
  readonly hostRam: BufferMemory;
  /** DMA address of host RAM offset 0. */
  readonly hostDmaBase: number;
  readonly hostDmaOps: MockDmaMapOps;
  readonly links: readonly MockScifLink[];

  constructor(options: MockScifFabricOptions = {}) {
    const cards = options.cards ?? 1;
    checkInt('mock scif card count', cards, 1, 8);
    this.hostRam = BufferMemory.allocate(options.hostRamSize ?? 4 << 20, { shared: options.shared ?? false });
    this.hostDmaBase = options.hostDmaBase ?? MOCK_SMPT_BASE;
    this.hostDmaOps = new MockDmaMapOps({
      pool: this.hostRam,
      base: this.hostDmaBase,
      name: 'host scif dma',
    });
    const links: MockScifLink[] = [];
    for (let i = 0; i < cards; i++) links.push(new MockScifLink(this, i, options));
    this.links = Object.freeze(links);
  }

  /** The link whose card owns the MMIO window `mw` (by `pa`, as a peer card maps it). */
  cardByMmio(mw: MicMw): MockScifLink | undefined {
    return this.links.find((l) => l.hostMmio.pa === mw.pa);
  }

  /** Resolves once no interrupt is pending anywhere. */
  async flush(): Promise<void> {
    const ops = this.links.flatMap((l) => [l.host, l.card]);
    while (ops.some((o) => o.pending > 0)) await Promise.all(ops.map((o) => o.flush()));
  }
}
