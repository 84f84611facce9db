/**
 * The halves of the hardware drivers' hw ops that are the same on the host and on the card, as
 * `MockLinkEnd` is for the mocks:
 * - {@link DoorbellLinkOps}: the doorbell-link ops of the SCIF and VOP devices (`nextDb` by the
 *   side's policy, `requestIrq`/`freeIrq` on the side's interrupt table, `ackInterrupt`,
 *   `sendIntr` refusing "no doorbell", `remap`/`unmap` with their checks and book);
 * - {@link ThreadedIrqOps}: the DMA device's mbus ops (`requestThreadedIrq`, `freeIrq`,
 *   `ackInterrupt`).
 * A side says how it rings the other side, acknowledges an interrupt and reaches the other side's
 * memory; everything else is here.
 *
 * @see drivers/misc/mic/host/mic_boot.c, drivers/misc/mic/card/mic_device.c (`vop_hw_ops`,
 * `scif_hw_ops`, `mbus_hw_ops` of both sides)
 */
import { MicError, checkAddr, checkFunction, checkObject, checkSize, formatValue } from '@mic/errors';
import { checkDoorbell, checkInterruptNumber } from './doorbells.js';
import type { Memory } from '@mic/memory';
import { type IrqHandler, type MicIrq, NO_DOORBELL } from './hw.js';
import type { ThreadedIrqTable } from './irq-table.js';
import { checkOps } from './validate.js';

/**
 * The live windows `remap` handed out, with the checks of its arguments: `map` refuses a length
 * that is not a positive integer and an address that is not a non-negative integer (`EINVAL`)
 * before it asks for the window; `unmap` refuses a view it did not hand out or already took back.
 */
export class RemapBook {
  readonly #what: string;
  readonly #live = new Set<Memory>();

  /** @param what - what `unmap` errors name (`host device`, `mock vop remap`) */
  constructor(what: string) {
    this.#what = what;
  }

  /** Windows handed out and not unmapped yet. */
  get live(): number {
    return this.#live.size;
  }

  /**
   * Checks `pa`/`len`, gets the window from `window` and records it.
   * @throws MicError EINVAL for bad arguments, or what `window` throws (EFAULT)
   */
  map(pa: number, len: number, window: (pa: number, len: number) => Memory): Memory {
    checkSize('remap length', len);
    checkAddr('remap address', pa);
    checkFunction('remap window', window);
    const va = window(pa, len);
    this.#live.add(va);
    return va;
  }

  /** Takes a window back. @throws MicError EINVAL when it is not a live one of this book */
  unmap(va: Memory): void {
    if (!this.#live.delete(va)) {
      const what = typeof va === 'object' && va !== null ? 'memory' : formatValue(va);
      throw new MicError('EINVAL', `unmap of ${what} that is not a live remap of this ${this.#what}`);
    }
  }
}

/** Options of {@link DoorbellLinkOps}. */
export interface DoorbellLinkOpsOptions<T extends string> {
  /** Which side these ops play; errors of `sendIntr` name the other side's doorbells. */
  readonly side: 'host' | 'card';
  /** The side's interrupt requests. */
  readonly irqs: ThreadedIrqTable<T, unknown>;
  /** The kind of source doorbells are in {@link irqs}. */
  readonly doorbellKind: T;
  /** The side's doorbell policy (`HostDoorbellAllocator`, `CardDoorbellAllocator`). */
  readonly doorbells: { next(): number };
}

/**
 * The doorbell-link ops (`VopHwOps`/`ScifHwOps` less their bus's own ops) of one side of a real
 * link. Subclasses say how the side rings the other ({@link ring}), acknowledges an interrupt
 * ({@link ack}) and reaches the other side's memory ({@link window}).
 */
export abstract class DoorbellLinkOps<T extends string> {
  readonly #peer: string;
  readonly #irqs: ThreadedIrqTable<T, unknown>;
  readonly #doorbellKind: T;
  readonly #doorbells: { next(): number };
  readonly #remaps: RemapBook;

  protected constructor(options: DoorbellLinkOpsOptions<T>) {
    checkObject('doorbell link options', options);
    if (options.side !== 'host' && options.side !== 'card') {
      throw new MicError('EINVAL', `doorbell link side ${formatValue(options.side)} is not host or card`);
    }
    checkIrqTable(options.irqs);
    if (typeof options.doorbellKind !== 'string' || options.doorbellKind === '') {
      throw new MicError(
        'EINVAL',
        `doorbell link doorbell kind ${formatValue(options.doorbellKind)} is not a non-empty string`,
      );
    }
    checkOps('doorbell link doorbells', options.doorbells, ['next']);
    this.#peer = options.side === 'host' ? 'card' : 'host';
    this.#irqs = options.irqs;
    this.#doorbellKind = options.doorbellKind;
    this.#doorbells = options.doorbells;
    this.#remaps = new RemapBook(`${options.side} device`);
  }

  /** The next doorbell to listen on, by the side's policy (`mic_next_db`, `mic_next_card_db`). */
  nextDb(): number {
    return this.#doorbells.next();
  }

  /**
   * Installs `func` on this side's doorbell `db` (`mic_request_threaded_irq(..., MIC_INTR_DB)`,
   * `mic_request_card_irq`).
   * @throws MicError EINVAL for a doorbell the side does not have or a missing handler
   */
  requestIrq<D>(func: IrqHandler<D>, name: string, data: D, db: number): MicIrq {
    if (typeof func !== 'function') {
      throw new MicError('EINVAL', `interrupt request '${name}' has no handler: ${formatValue(func)}`);
    }
    return this.#irqs.request(this.#doorbellKind, func, null, name, data, db);
  }

  /** `mic_free_irq`. @throws MicError EINVAL for a cookie that is not live */
  freeIrq<D>(cookie: MicIrq, data: D): void {
    this.#irqs.free(cookie, data);
  }

  /**
   * Acknowledges an interrupt (`ack_interrupt`).
   * @throws MicError EINVAL for a number that is not a non-negative integer
   */
  ackInterrupt(num: number): void {
    checkInterruptNumber(num);
    this.ack();
  }

  /**
   * Rings the other side's doorbell `db`.
   * @throws MicError EINVAL for -1 ("no doorbell") or a doorbell the other side does not have
   */
  sendIntr(db: number): void {
    if (db === NO_DOORBELL) {
      throw new MicError('EINVAL', `${this.#peer} doorbell ${db} is "no doorbell": nothing to ring`, {
        details: { db },
      });
    }
    checkDoorbell(`${this.#peer} doorbell`, db);
    this.ring(db);
  }

  /**
   * The other side's memory at bus address `pa`.
   * @throws MicError EINVAL for a bad length or address, EFAULT where the other side's memory is
   * not reachable
   */
  remap(pa: number, len: number): Memory {
    return this.#remaps.map(pa, len, (p, l) => this.window(p, l));
  }

  /** Undoes a {@link remap}. @throws MicError EINVAL for memory that is not a live remap */
  unmap(va: Memory): void {
    this.#remaps.unmap(va);
    this.unwindow(va);
  }

  /** Mappings from {@link remap} not unmapped yet. */
  get liveMappings(): number {
    return this.#remaps.live;
  }

  /** Rings the other side's doorbell `db` (a doorbell number, not -1). */
  protected abstract ring(db: number): void;

  /** Acknowledges an interrupt on this side. */
  protected abstract ack(): void;

  /** The other side's memory at `[pa, pa + len)` (arguments checked). */
  protected abstract window(pa: number, len: number): Memory;

  /**
   * Gives back a window {@link window} returned, once it is unmapped (`iounmap`). Default:
   * nothing to give back; a side whose windows are published (the X100 card's, for the host's
   * IOMMU) takes them back here.
   */
  protected unwindow(_va: Memory): void {}
}

/**
 * The mbus DMA device's interrupt ops of one side: channel interrupts on the side's interrupt
 * table. Subclasses say how the side acknowledges an interrupt ({@link ack}).
 */
export abstract class ThreadedIrqOps<T extends string> {
  readonly #irqs: ThreadedIrqTable<T, unknown>;
  readonly #kind: T;

  /**
   * @param irqs - the side's interrupt requests
   * @param kind - the kind of source the requests are for (the DMA channels)
   */
  protected constructor(irqs: ThreadedIrqTable<T, unknown>, kind: T) {
    checkIrqTable(irqs);
    this.#irqs = irqs;
    this.#kind = kind;
  }

  /**
   * `request_threaded_irq` on source `intrSrc` of the kind (the DMA channel).
   * @throws MicError EINVAL for a source the side does not have, or when both functions are null
   */
  requestThreadedIrq<D>(
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    intrSrc: number,
  ): MicIrq {
    return this.#irqs.request(this.#kind, handler, threadFn, name, data, intrSrc);
  }

  /** `free_irq`. @throws MicError EINVAL for a cookie that is not live */
  freeIrq<D>(cookie: MicIrq, data: D): void {
    this.#irqs.free(cookie, data);
  }

  /**
   * Acknowledges an interrupt (`ack_interrupt`).
   * @throws MicError EINVAL for a number that is not a non-negative integer
   */
  ackInterrupt(num: number): void {
    checkInterruptNumber(num);
    this.ack();
  }

  /** Acknowledges an interrupt on this side. */
  protected abstract ack(): void;
}

/** Throws `EINVAL` unless `irqs` has the methods of a {@link ThreadedIrqTable}. */
function checkIrqTable(irqs: unknown): void {
  checkOps('interrupt table', irqs, ['request', 'free']);
}
