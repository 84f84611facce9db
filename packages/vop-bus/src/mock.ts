/**
 * Mock VOP hardware: {@link MockVopHwOps} (one side's ops) and {@link MockVopLink} (a host and a
 * card joined by a mock PCIe link: host RAM, card RAM, the device page, doorbells both ways).
 * Deterministic, per-instance state; interrupts are delivered in a later task, like hardware.
 */
import {
  type DmaChannel,
  MOCK_APER_PA,
  MOCK_SMPT_BASE,
  MockDmaMapOps,
  MockLinkEnd,
  type MockLinkEndOptions,
  MOCK_CARD_DOORBELLS,
  MOCK_HOST_DOORBELLS,
  type DmaBuffer,
  type MicMw,
} from '@mic/bus-core';
import { type Logger, nullLogger } from '@mic/logger';
import { BufferMemory, type Memory } from '@mic/memory';
import { MIC_DP_SIZE } from '@mic/mic-common';
import { VOP_DEV_TRNSP, type VopDeviceParams, type VopHwOps } from './vop.js';

/** Options of {@link MockVopHwOps}. */
export interface MockVopHwOpsOptions extends MockLinkEndOptions {
  /** The host's own device page (default: a fresh zeroed page on the host, `null` on the card). */
  readonly dp?: Memory | null;
  /** The card's view of the host page (default: a fresh zeroed page on the card, `null` on the host). */
  readonly remoteDp?: Memory | null;
}

/**
 * {@link VopHwOps} of one side, for tests of the layer above. Alone, `sendIntr` only records the
 * doorbell; joined to the other side with {@link MockVopHwOps.connect} (as {@link MockVopLink}
 * does) it also rings the peer.
 *
 * @example
 * const ops = new MockVopHwOps({ role: 'host' });
 * const db = ops.nextDb();
 * ops.requestIrq((irq) => console.log('card rang', irq), 'vop', null, db);
 * ops.raiseInterrupt(db); // the handler runs in a later task
 * await ops.flush();
 */
export class MockVopHwOps extends MockLinkEnd implements VopHwOps {
  readonly #dp: Memory | null;
  readonly #remoteDp: Memory | null;

  constructor(options: MockVopHwOpsOptions) {
    super('vop', options);
    const host = this.role === 'host';
    this.#dp = options.dp !== undefined ? options.dp : host ? BufferMemory.allocate(MIC_DP_SIZE) : null;
    this.#remoteDp =
      options.remoteDp !== undefined ? options.remoteDp : host ? null : BufferMemory.allocate(MIC_DP_SIZE);
  }

  /** Joins two sides: from now on each one's `sendIntr` rings the other. */
  static connect(a: MockVopHwOps, b: MockVopHwOps): void {
    super.join(a, b);
  }

  getRemoteDp(): Memory | null {
    return this.#remoteDp;
  }

  getDp(): Memory | null {
    return this.#dp;
  }
}

/** Options of {@link MockVopLink}. */
export interface MockVopLinkOptions {
  /** Bytes of host RAM (default 1 MiB). */
  readonly hostRamSize?: number;
  /** Bytes of card RAM (default 1 MiB). */
  readonly cardRamSize?: number;
  /** Back the RAM with SharedArrayBuffers (default false). */
  readonly shared?: boolean;
  /** The host-side device's dnode, i.e. card index + 1 (default 1). */
  readonly dnode?: number;
  /** Host doorbells (default {@link MOCK_HOST_DOORBELLS}). */
  readonly hostDoorbells?: number;
  /** Card doorbells (default {@link MOCK_CARD_DOORBELLS}). */
  readonly cardDoorbells?: number;
  /** DMA address of host RAM offset 0, where the card reaches it (default {@link MOCK_SMPT_BASE}). */
  readonly hostDmaBase?: number;
  /** BAR0 address of the card's aperture (default {@link MOCK_APER_PA}). */
  readonly aperPa?: number;
  readonly logger?: Logger;
}

/**
 * A host and a card joined by a mock PCIe link, laid out like x100:
 * - host RAM; the host's DMA ops hand out host RAM at DMA address `hostDmaBase + offset`, which
 *   is what the card's `remap` reaches;
 * - card RAM; the card's DMA ops hand out card RAM at DMA address = offset (direct mapping), which
 *   is what the host's `remap` reaches through the aperture ({@link aper}, `pa = aperPa`);
 * - the device page: a page of host RAM, the host's `getDp()` and the card's `getRemoteDp()`;
 * - doorbells: each side's `sendIntr` raises the other's.
 *
 * @example
 * const link = new MockVopLink();
 * const host = await vopBus.registerDevice(link.hostParams());
 * const card = await cardVopBus.registerDevice(link.cardParams());
 */
export class MockVopLink {
  readonly hostRam: BufferMemory;
  readonly cardRam: BufferMemory;
  readonly hostDmaOps: MockDmaMapOps;
  readonly cardDmaOps: MockDmaMapOps;
  /** The host device page, in host RAM. */
  readonly dp: DmaBuffer;
  /** The card's memory as the host sees it through BAR0. */
  readonly aper: MicMw;
  readonly host: MockVopHwOps;
  readonly card: MockVopHwOps;
  /** dnode of the host-side device. */
  readonly dnode: number;

  constructor(options: MockVopLinkOptions = {}) {
    const shared = options.shared ?? false;
    this.dnode = options.dnode ?? 1;
    this.hostRam = BufferMemory.allocate(options.hostRamSize ?? 1 << 20, { shared });
    this.cardRam = BufferMemory.allocate(options.cardRamSize ?? 1 << 20, { shared });
    const hostDmaBase = options.hostDmaBase ?? MOCK_SMPT_BASE;
    this.hostDmaOps = new MockDmaMapOps({ pool: this.hostRam, base: hostDmaBase, name: 'host vop dma' });
    this.cardDmaOps = new MockDmaMapOps({ pool: this.cardRam, base: 0, name: 'card vop dma' });
    this.dp = this.hostDmaOps.alloc(MIC_DP_SIZE);
    const dpOffset = this.dp.dmaAddr - hostDmaBase;
    this.aper = Object.freeze({
      pa: options.aperPa ?? MOCK_APER_PA,
      va: this.cardRam,
      len: this.cardRam.byteLength,
    });
    const logger = options.logger ?? nullLogger;
    this.host = new MockVopHwOps({
      role: 'host',
      doorbells: options.hostDoorbells ?? MOCK_HOST_DOORBELLS,
      dp: this.dp.va,
      remoteDp: null,
      remap: [{ base: 0, pool: this.cardRam }],
      logger,
    });
    this.card = new MockVopHwOps({
      role: 'card',
      doorbells: options.cardDoorbells ?? MOCK_CARD_DOORBELLS,
      dp: null,
      remoteDp: this.hostRam.window(dpOffset, MIC_DP_SIZE),
      remap: [{ base: hostDmaBase, pool: this.hostRam }],
      logger,
    });
    MockVopHwOps.connect(this.host, this.card);
  }

  /** Registration parameters of the host-side device (as the host's `_mic_start` passes them). */
  hostParams(dmaCh: DmaChannel | null = null): VopDeviceParams {
    return {
      id: VOP_DEV_TRNSP,
      dmaOps: this.hostDmaOps,
      hwOps: this.host,
      dnode: this.dnode,
      aper: this.aper,
      dmaCh,
    };
  }

  /** Registration parameters of the card-side device (as the card's `mic_driver_init` passes them). */
  cardParams(dmaCh: DmaChannel | null = null): VopDeviceParams {
    return { id: VOP_DEV_TRNSP, dmaOps: this.cardDmaOps, hwOps: this.card, dnode: 0, aper: null, dmaCh };
  }

  /** Resolves once no interrupt is pending on either side. */
  async flush(): Promise<void> {
    while (this.host.pending > 0 || this.card.pending > 0) {
      await Promise.all([this.host.flush(), this.card.flush()]);
    }
  }
}
