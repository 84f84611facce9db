/**
 * The doorbell allocation policies, in one place for the hardware drivers and the mocks: the host
 * hands its doorbells out round robin (`mic_next_db`), the card picks the least used one
 * (`mic_next_card_db`). `@mic/mic-host` and `@mic/mic-card` own one instance each and use it for
 * every `nextDb` hw op; `MockIrqLines` uses the same classes for its `nextDb`. A doorbell number is
 * stored as `__s8` in the device page, where `NO_DOORBELL` (-1) means "none".
 *
 * @see drivers/misc/mic/host/mic_intr.c (mic_next_db)
 * @see drivers/misc/mic/card/mic_device.c (mic_next_card_db)
 */
import { MicError, checkInt } from '@mic/errors';

/** Most doorbells an allocator hands out. */
const MAX_DOORBELLS = 64;

/**
 * Throws `EINVAL` naming `what` unless `db` is a doorbell number, an integer in [0, 63]. The
 * cheap test first: this runs on every ring.
 */
export function checkDoorbell(what: string, db: number): void {
  if (!(typeof db === 'number' && db >= 0 && db < MAX_DOORBELLS && (db | 0) === db)) {
    checkInt(what, db, 0, MAX_DOORBELLS - 1);
  }
}

/**
 * Throws `EINVAL` unless `num` (what `ack_interrupt` is told: a doorbell, a DMA channel) is an
 * integer in [0, 2^31 - 1]. The cheap test first: this runs on every interrupt.
 */
export function checkInterruptNumber(num: number): void {
  if (!(typeof num === 'number' && num >= 0 && (num | 0) === num)) {
    checkInt('acknowledged interrupt number', num, 0, 0x7fffffff);
  }
}

/**
 * Host doorbells, handed out round robin; several users may share one.
 * @see drivers/misc/mic/host/mic_intr.c (mic_next_db: `next_avail_src++ % num_doorbells`)
 */
export class HostDoorbellAllocator {
  #nextAvailSrc = 0;
  readonly #count: number;

  /** @param count - doorbells to rotate over (the x100 host has 4), 1–64 */
  constructor(count: number) {
    checkInt('host doorbell count', count, 1, MAX_DOORBELLS);
    this.#count = count;
  }

  /** The next doorbell: 0, 1, ..., count - 1, 0, ... */
  next(): number {
    const db = this.#nextAvailSrc % this.#count;
    this.#nextAvailSrc = (this.#nextAvailSrc + 1) % this.#count;
    return db;
  }
}

/**
 * Card doorbells: the one with the fewest users, lowest number first on a tie. The driver calls
 * {@link use} when it installs a handler on a doorbell and {@link release} when it frees it, as
 * `mic_request_card_irq` / `mic_free_card_irq` keep `irq_usage_count`.
 * @see drivers/misc/mic/card/mic_device.c (mic_next_card_db)
 */
export class CardDoorbellAllocator {
  readonly #usage: number[];

  /** @param count - doorbells to choose from (the x100 card driver: 8, `MIC_X100_MAX_DOORBELL_IDX`), 1–64 */
  constructor(count: number) {
    checkInt('card doorbell count', count, 1, MAX_DOORBELLS);
    this.#usage = new Array<number>(count).fill(0);
  }

  /** Doorbells it chooses from. */
  get count(): number {
    return this.#usage.length;
  }

  /** The least used doorbell (does not count as a use). */
  next(): number {
    const usage = this.#usage;
    let best = 0;
    for (let i = 1; i < usage.length; i++) if (usage[i]! < usage[best]!) best = i;
    return best;
  }

  /** Counts one more user of `db`. @throws MicError EINVAL for a doorbell it does not hand out */
  use(db: number): void {
    this.#check(db);
    this.#usage[db]!++;
  }

  /**
   * Counts one user of `db` less.
   * @throws MicError EINVAL when `db` has no users or is not a doorbell it hands out
   */
  release(db: number): void {
    this.#check(db);
    if (this.#usage[db] === 0) {
      throw new MicError('EINVAL', `card doorbell ${db} is released more often than it was used`, {
        details: { db },
      });
    }
    this.#usage[db]!--;
  }

  /** Users of `db`. */
  usage(db: number): number {
    this.#check(db);
    return this.#usage[db]!;
  }

  #check(db: number): void {
    checkInt('card doorbell', db, 0, this.#usage.length - 1);
  }
}
