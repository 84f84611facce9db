/**
 * Mock SCIF hardware: {@link MockScifHwOps} (one side's ops) and {@link MockScifFabric} (a host and
 * one or more cards, each joined to the host by a {@link MockScifLink}, with card-to-card
 * doorbells). Deterministic, per-instance state; interrupts are delivered in a later task.
 */
import {
  DOORBELL_POLICY,
  type DmaChannel,
  type DoorbellPolicy,
  type IrqHandler,
  MOCK_APER_PA,
  MOCK_MMIO_PA,
  MOCK_SMPT_BASE,
  type MicIrq,
  MockDmaMapOps,
  MockIrqLines,
  MockRemapper,
  type MockRemapRegion,
  X100_CARD_DOORBELLS,
  X100_CARD_ALLOC_DOORBELLS,
  X100_CARD_MMIO_PA,
  X100_HOST_DOORBELLS,
  X100_MMIO_LEN,
} from '@mic/bus-core';
import { MicError, checkInt } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { BufferMemory, type Memory } from '@mic/memory';
import { MIC_SCIF_DEV, type DmaBuffer, type MicMw, type ScifHwDevParams, type ScifHwOps } from './scif.js';

const DP_SIZE = 4096;

/** Options of {@link MockScifHwOps}. */
export interface MockScifHwOpsOptions {
  /** Which side these ops play; only the card has `sendP2pIntr`. */
  readonly role: 'host' | 'card';
  /** Local doorbells (default: host 4, card 16, as on x100). */
  readonly doorbells?: number;
  /** How `nextDb` picks (default: host round-robin, card least-used). */
  readonly policy?: DoorbellPolicy;
  /**
   * A delivered doorbell stays masked until `ackInterrupt` (default: true on the host, as the x100
   * host runs MSI-X with auto-clear; false on the card).
   */
  readonly autoClear?: boolean;
  /** What `remap` reaches (default: nothing). */
  readonly remap?: readonly MockRemapRegion<BufferMemory>[];
  /**
   * Card only: finds the card whose MMIO window `mw` is, for `sendP2pIntr`. Without it,
   * `sendP2pIntr` only records the doorbell.
   */
  readonly resolveP2p?: (mw: MicMw) => MockScifHwOps | undefined;
  readonly logger?: Logger;
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
export class MockScifHwOps implements ScifHwOps {
  readonly role: 'host' | 'card';
  /** The local doorbells. */
  readonly lines: MockIrqLines;
  /** Card only: ring a doorbell of another card through its MMIO window. */
  readonly sendP2pIntr?: (db: number, mw: MicMw) => void;
  readonly #remapper: MockRemapper<BufferMemory>;
  readonly #sent: number[] = [];
  readonly #sentP2p: MockP2pInterrupt[] = [];
  #peer: MockScifHwOps | undefined;

  constructor(options: MockScifHwOpsOptions) {
    const host = options.role === 'host';
    if (!host && options.role !== 'card') {
      throw new MicError('EINVAL', `mock scif role ${String(options.role)} is not host or card`);
    }
    this.role = options.role;
    this.lines = new MockIrqLines({
      count: options.doorbells ?? (host ? X100_HOST_DOORBELLS : X100_CARD_DOORBELLS),
      ...(options.doorbells === undefined && !host ? { allocatable: X100_CARD_ALLOC_DOORBELLS } : {}),
      policy: options.policy ?? (host ? DOORBELL_POLICY.ROUND_ROBIN : DOORBELL_POLICY.LEAST_USED),
      autoClear: options.autoClear ?? host,
      name: `${options.role} scif doorbells`,
      logger: options.logger ?? nullLogger,
    });
    this.#remapper = new MockRemapper(options.remap ?? [], `${options.role} scif remap`);
    if (!host) {
      const resolve = options.resolveP2p;
      this.sendP2pIntr = (db: number, mw: MicMw): void => {
        if (typeof mw !== 'object' || mw === null)
          throw new MicError('EINVAL', 'scif p2p window is not a window');
        if (resolve) {
          const target = resolve(mw);
          if (!target || target === this) {
            throw new MicError(
              'EINVAL',
              `scif p2p window at 0x${Number(mw.pa).toString(16)} is not a peer card's MMIO`,
            );
          }
          target.lines.raise(db);
        } else {
          checkInt('scif p2p doorbell', db, 0, X100_CARD_DOORBELLS - 1);
        }
        this.#sentP2p.push({ db, pa: mw.pa });
      };
    }
  }

  /** Joins a host side and a card side: each one's `sendIntr` rings the other. */
  static connect(a: MockScifHwOps, b: MockScifHwOps): void {
    if (a.role === b.role) throw new MicError('EINVAL', `cannot join two ${a.role} sides`);
    a.#peer = b;
    b.#peer = a;
  }

  nextDb(): number {
    return this.lines.nextDb();
  }

  requestIrq<D>(func: IrqHandler<D>, name: string, data: D, db: number): MicIrq {
    if (typeof func !== 'function') throw new MicError('EINVAL', `scif irq '${name}' has no handler`);
    return this.lines.request(func, null, name, data, db);
  }

  freeIrq<D>(cookie: MicIrq, data: D): void {
    this.lines.free(cookie, data);
  }

  ackInterrupt(num: number): void {
    this.lines.ack(num);
  }

  sendIntr(db: number): void {
    if (this.#peer) {
      this.#peer.lines.raise(db);
    } else if (!Number.isInteger(db) || db < 0) {
      throw new MicError('EINVAL', `scif send_intr: doorbell ${String(db)} is not a doorbell number`);
    }
    this.#sent.push(db);
  }

  remap(pa: number, len: number): Memory {
    return this.#remapper.remap(pa, len);
  }

  unmap(va: Memory): void {
    this.#remapper.unmap(va as BufferMemory);
  }

  // Test helpers.

  /** Raises local doorbell `db`, as the other end's `sendIntr(db)` would. */
  raiseInterrupt(db: number): void {
    this.lines.raise(db);
  }

  /** Every doorbell rung with `sendIntr`, in order. */
  get sentInterrupts(): readonly number[] {
    return [...this.#sent];
  }

  /** Every `sendP2pIntr` call, in order. */
  get sentP2pInterrupts(): readonly MockP2pInterrupt[] {
    return [...this.#sentP2p];
  }

  /** Every `ackInterrupt` argument, in order. */
  get acks(): readonly number[] {
    return this.lines.acks;
  }

  /** Handlers installed on local doorbell `db`. */
  usage(db: number): number {
    return this.lines.usage(db);
  }

  /** Mappings from `remap` not unmapped yet. */
  get liveMappings(): number {
    return this.#remapper.live;
  }

  /** Interrupts raised on this side and not delivered yet. */
  get pending(): number {
    return this.lines.pending;
  }

  /** Resolves once every interrupt raised on this side has been delivered. */
  flush(): Promise<void> {
    return this.lines.flush();
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
  readonly cardDmaOps: MockDmaMapOps<BufferMemory>;
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
    this.cardMmio = BufferMemory.allocate(X100_MMIO_LEN, { shared });
    this.cardDmaOps = new MockDmaMapOps({ pool: this.cardRam, base: 0, name: `card ${this.node} scif dma` });
    this.dp = fabric.hostDmaOps.alloc(DP_SIZE);
    this.aper = Object.freeze({
      pa: MOCK_APER_PA + index * 0x4_0000_0000,
      va: this.cardRam,
      len: this.cardRam.byteLength,
    });
    this.hostMmio = Object.freeze({
      pa: MOCK_MMIO_PA + index * 0x10_0000,
      va: this.cardMmio,
      len: X100_MMIO_LEN,
    });
    this.cardMmioMw = Object.freeze({ pa: X100_CARD_MMIO_PA, va: this.cardMmio, len: X100_MMIO_LEN });
    this.host = new MockScifHwOps({
      role: 'host',
      doorbells: options.hostDoorbells ?? X100_HOST_DOORBELLS,
      remap: [{ base: 0, pool: this.cardRam }],
      logger,
    });
    this.card = new MockScifHwOps({
      role: 'card',
      doorbells: options.cardDoorbells ?? X100_CARD_DOORBELLS,
      remap: [{ base: MOCK_SMPT_BASE, pool: fabric.hostRam }],
      resolveP2p: (mw) => fabric.cardByMmio(mw)?.card,
      logger,
    });
    MockScifHwOps.connect(this.host, this.card);
  }

  /** The card's view of the host device page (what the card passes as `rdp`). */
  get rdp(): Memory {
    return this.#fabric.hostRam.window(this.dp.dmaAddr - MOCK_SMPT_BASE, DP_SIZE);
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
  readonly hostDoorbells?: number;
  readonly cardDoorbells?: number;
  readonly logger?: Logger;
}

/**
 * A host and `cards` cards, laid out like x100:
 * - host RAM; the host DMA ops hand it out at `MOCK_SMPT_BASE + offset`, which every card's
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
  readonly hostDmaOps: MockDmaMapOps<BufferMemory>;
  readonly links: readonly MockScifLink[];

  constructor(options: MockScifFabricOptions = {}) {
    const cards = options.cards ?? 1;
    checkInt('mock scif card count', cards, 1, 8);
    this.hostRam = BufferMemory.allocate(options.hostRamSize ?? 4 << 20, { shared: options.shared ?? false });
    this.hostDmaOps = new MockDmaMapOps({ pool: this.hostRam, base: MOCK_SMPT_BASE, name: 'host scif dma' });
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
