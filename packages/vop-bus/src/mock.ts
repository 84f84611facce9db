/**
 * Mock VOP hardware: {@link MockVopHwOps} (one side's ops) and {@link MockVopLink} (a host and a
 * card joined by a mock PCIe link: host RAM, card RAM, the device page, doorbells both ways).
 * Deterministic, per-instance state; interrupts are delivered in a later task, like hardware.
 */
import {
  DOORBELL_POLICY,
  type DmaChannel,
  type DoorbellPolicy,
  type IrqHandler,
  MOCK_APER_PA,
  MOCK_SMPT_BASE,
  type MicIrq,
  MockDmaMapOps,
  MockIrqLines,
  MockRemapper,
  type MockRemapRegion,
  X100_CARD_DOORBELLS,
  X100_CARD_ALLOC_DOORBELLS,
  X100_HOST_DOORBELLS,
} from '@mic/bus-core';
import { MicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { BufferMemory, type Memory } from '@mic/memory';
import { VOP_DEV_TRNSP, type DmaBuffer, type MicMw, type VopDeviceParams, type VopHwOps } from './vop.js';

/** Size of a device page (`MIC_DP_SIZE`). */
const DP_SIZE = 4096;

/** Options of {@link MockVopHwOps}. */
export interface MockVopHwOpsOptions {
  /** Which side these ops play. */
  readonly role: 'host' | 'card';
  /** Local doorbells (default: host 4, card 16, as on x100). */
  readonly doorbells?: number;
  /** How `nextDb` picks (default: host round-robin, card least-used, as on x100). */
  readonly policy?: DoorbellPolicy;
  /**
   * A delivered doorbell stays masked until `ackInterrupt` (default: true on the host, as the x100
   * host runs MSI-X with auto-clear; false on the card).
   */
  readonly autoClear?: boolean;
  /** The host's own device page (default: a fresh zeroed page on the host, `null` on the card). */
  readonly dp?: Memory | null;
  /** The card's view of the host page (default: a fresh zeroed page on the card, `null` on the host). */
  readonly remoteDp?: Memory | null;
  /** What `remap` reaches (default: nothing, every `remap` fails with `EFAULT`). */
  readonly remap?: readonly MockRemapRegion<BufferMemory>[];
  /** Where exceptions thrown by handlers are logged. */
  readonly logger?: Logger;
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
export class MockVopHwOps implements VopHwOps {
  /** Which side these ops play. */
  readonly role: 'host' | 'card';
  /** The local doorbells (handler table, usage counts, delivery). */
  readonly lines: MockIrqLines;
  readonly #dp: Memory | null;
  readonly #remoteDp: Memory | null;
  readonly #remapper: MockRemapper<BufferMemory>;
  readonly #sent: number[] = [];
  #peer: MockVopHwOps | undefined;

  constructor(options: MockVopHwOpsOptions) {
    const host = options.role === 'host';
    if (!host && options.role !== 'card') {
      throw new MicError('EINVAL', `mock vop role ${String(options.role)} is not host or card`);
    }
    this.role = options.role;
    this.lines = new MockIrqLines({
      count: options.doorbells ?? (host ? X100_HOST_DOORBELLS : X100_CARD_DOORBELLS),
      ...(options.doorbells === undefined && !host ? { allocatable: X100_CARD_ALLOC_DOORBELLS } : {}),
      policy: options.policy ?? (host ? DOORBELL_POLICY.ROUND_ROBIN : DOORBELL_POLICY.LEAST_USED),
      autoClear: options.autoClear ?? host,
      name: `${options.role} vop doorbells`,
      logger: options.logger ?? nullLogger,
    });
    this.#dp = options.dp !== undefined ? options.dp : host ? BufferMemory.allocate(DP_SIZE) : null;
    this.#remoteDp =
      options.remoteDp !== undefined ? options.remoteDp : host ? null : BufferMemory.allocate(DP_SIZE);
    this.#remapper = new MockRemapper(options.remap ?? [], `${options.role} vop remap`);
  }

  /** Joins two sides: from now on each one's `sendIntr` rings the other. */
  static connect(a: MockVopHwOps, b: MockVopHwOps): void {
    if (a.role === b.role) throw new MicError('EINVAL', `cannot join two ${a.role} sides`);
    a.#peer = b;
    b.#peer = a;
  }

  nextDb(): number {
    return this.lines.nextDb();
  }

  requestIrq<D>(func: IrqHandler<D>, name: string, data: D, intrSrc: number): MicIrq {
    if (typeof func !== 'function') throw new MicError('EINVAL', `vop irq '${name}' has no handler`);
    return this.lines.request(func, null, name, data, intrSrc);
  }

  freeIrq<D>(cookie: MicIrq, data: D): void {
    this.lines.free(cookie, data);
  }

  ackInterrupt(num: number): void {
    this.lines.ack(num);
  }

  getRemoteDp(): Memory | null {
    return this.#remoteDp;
  }

  getDp(): Memory | null {
    return this.#dp;
  }

  sendIntr(db: number): void {
    if (this.#peer) {
      this.#peer.lines.raise(db);
    } else if (!Number.isInteger(db) || db < 0) {
      throw new MicError('EINVAL', `vop send_intr: doorbell ${String(db)} is not a doorbell number`);
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

  /** Raises local doorbell `db`, as the other side's `sendIntr(db)` would. */
  raiseInterrupt(db: number): void {
    this.lines.raise(db);
  }

  /** Every doorbell this side rang with `sendIntr`, in order. */
  get sentInterrupts(): readonly number[] {
    return [...this.#sent];
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
  /** Host doorbells (default 4). */
  readonly hostDoorbells?: number;
  /** Card doorbells (default 16). */
  readonly cardDoorbells?: number;
  readonly logger?: Logger;
}

/**
 * A host and a card joined by a mock PCIe link, laid out like x100:
 * - host RAM; the host's DMA ops hand out host RAM at DMA address `MOCK_SMPT_BASE + offset`, which
 *   is what the card's `remap` reaches;
 * - card RAM; the card's DMA ops hand out card RAM at DMA address = offset (direct mapping), which
 *   is what the host's `remap` reaches through the aperture ({@link aper}, `pa = MOCK_APER_PA`);
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
  readonly hostDmaOps: MockDmaMapOps<BufferMemory>;
  readonly cardDmaOps: MockDmaMapOps<BufferMemory>;
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
    this.hostDmaOps = new MockDmaMapOps({ pool: this.hostRam, base: MOCK_SMPT_BASE, name: 'host vop dma' });
    this.cardDmaOps = new MockDmaMapOps({ pool: this.cardRam, base: 0, name: 'card vop dma' });
    this.dp = this.hostDmaOps.alloc(DP_SIZE);
    const dpOffset = this.dp.dmaAddr - MOCK_SMPT_BASE;
    this.aper = Object.freeze({ pa: MOCK_APER_PA, va: this.cardRam, len: this.cardRam.byteLength });
    const logger = options.logger ?? nullLogger;
    this.host = new MockVopHwOps({
      role: 'host',
      doorbells: options.hostDoorbells ?? X100_HOST_DOORBELLS,
      dp: this.dp.va,
      remoteDp: null,
      remap: [{ base: 0, pool: this.cardRam }],
      logger,
    });
    this.card = new MockVopHwOps({
      role: 'card',
      doorbells: options.cardDoorbells ?? X100_CARD_DOORBELLS,
      dp: null,
      remoteDp: this.hostRam.window(dpOffset, DP_SIZE),
      remap: [{ base: MOCK_SMPT_BASE, pool: this.hostRam }],
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
