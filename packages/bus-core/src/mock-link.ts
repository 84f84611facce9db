/**
 * One end of a mock host ↔ card link: what the SCIF and VOP mock hw ops have in common (local
 * doorbells, `sendIntr` to the joined peer, `remap`/`unmap` over fixed regions, and the test
 * helpers that go with them). `MockScifHwOps` and `MockVopHwOps` extend it with their bus's own
 * ops (device pages, peer-to-peer interrupts).
 *
 * @see drivers/misc/mic/bus/scif_bus.h, drivers/misc/mic/bus/vop_bus.h (the hw ops both mirror)
 */
import { MicError, checkObject, formatValue } from '@mic/errors';
import { checkDoorbell } from './doorbells.js';
import { type Logger, nullLogger } from '@mic/logger';
import type { IrqHandler, MicIrq } from './hw.js';
import { DOORBELL_POLICY, type DoorbellPolicy, MockIrqLines } from './mock-irq.js';
import type { Memory } from '@mic/memory';
import { MockRemapper, type MockRemapRegion } from './mock-mem.js';
import { MOCK_CARD_ALLOC_DOORBELLS, MOCK_CARD_DOORBELLS, MOCK_HOST_DOORBELLS } from './mock-defaults.js';

/** Options of a {@link MockLinkEnd}. */
export interface MockLinkEndOptions {
  /** Which side these ops play. */
  readonly role: 'host' | 'card';
  /** Local doorbells (default: host {@link MOCK_HOST_DOORBELLS}, card {@link MOCK_CARD_DOORBELLS}). */
  readonly doorbells?: number;
  /** How `nextDb` picks (default: host round-robin, card least-used, as on x100). */
  readonly policy?: DoorbellPolicy;
  /**
   * A delivered doorbell stays masked until `ackInterrupt` (default: true on the host, as the x100
   * host runs MSI-X with auto-clear; false on the card).
   */
  readonly autoClear?: boolean;
  /** What `remap` reaches (default: nothing, every `remap` fails with `EFAULT`). */
  readonly remap?: readonly MockRemapRegion[];
  /** Where exceptions thrown by handlers are logged. */
  readonly logger?: Logger;
}

/**
 * One side of a mock link, for the bus named by `bus` (`scif`, `vop`): alone, `sendIntr` only
 * records; joined to the other side with {@link join} it also rings it.
 */
export class MockLinkEnd {
  /** Which side these ops play. */
  readonly role: 'host' | 'card';
  /** The local doorbells (handler table, usage counts, delivery). */
  readonly lines: MockIrqLines;
  readonly #bus: string;
  readonly #remapper: MockRemapper;
  readonly #sent: number[] = [];
  #peer: MockLinkEnd | undefined;

  /**
   * @param bus - the bus these ops belong to, for names and errors
   * @throws MicError EINVAL for a role other than `host` or `card`
   */
  constructor(bus: string, options: MockLinkEndOptions) {
    checkObject(`mock ${bus} options`, options);
    const host = options.role === 'host';
    if (!host && options.role !== 'card') {
      throw new MicError('EINVAL', `mock ${bus} role ${formatValue(options.role)} is not host or card`);
    }
    this.#bus = bus;
    this.role = options.role;
    this.lines = new MockIrqLines({
      count: options.doorbells ?? (host ? MOCK_HOST_DOORBELLS : MOCK_CARD_DOORBELLS),
      ...(options.doorbells === undefined && !host ? { allocatable: MOCK_CARD_ALLOC_DOORBELLS } : {}),
      policy: options.policy ?? (host ? DOORBELL_POLICY.ROUND_ROBIN : DOORBELL_POLICY.LEAST_USED),
      autoClear: options.autoClear ?? host,
      name: `${options.role} ${bus} doorbells`,
      logger: options.logger ?? nullLogger,
    });
    this.#remapper = new MockRemapper(options.remap ?? [], `${options.role} ${bus} remap`);
  }

  /**
   * Joins a host side and a card side: from now on each one's `sendIntr` rings the other.
   * @throws MicError EINVAL for two sides of the same role
   */
  protected static join(a: MockLinkEnd, b: MockLinkEnd): void {
    for (const end of [a, b]) {
      if (!(end instanceof MockLinkEnd)) {
        throw new MicError('EINVAL', `mock link side ${formatValue(end)} is not a MockLinkEnd`);
      }
    }
    if (a.role === b.role) throw new MicError('EINVAL', `cannot join two ${a.role} sides`);
    a.#peer = b;
    b.#peer = a;
  }

  nextDb(): number {
    return this.lines.nextDb();
  }

  requestIrq<D>(func: IrqHandler<D>, name: string, data: D, db: number): MicIrq {
    if (typeof func !== 'function') {
      throw new MicError('EINVAL', `${this.#bus} irq '${name}' has no handler: ${formatValue(func)}`);
    }
    return this.lines.request(func, null, name, data, db);
  }

  freeIrq<D>(cookie: MicIrq, data: D): void {
    this.lines.free(cookie, data);
  }

  ackInterrupt(num: number): void {
    this.lines.ack(num);
  }

  sendIntr(db: number): void {
    if (this.#peer) this.#peer.lines.raise(db);
    else checkDoorbell(`${this.#bus} send_intr: doorbell`, db);
    this.#sent.push(db);
  }

  remap(pa: number, len: number): Memory {
    return this.#remapper.remap(pa, len);
  }

  unmap(va: Memory): void {
    this.#remapper.unmap(va);
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
