/**
 * Doorbell allocation policies. In Linux they live in the hardware drivers, not in the
 * hardware: the host picks its doorbells round robin (`mic_next_db`), the card the least used
 * one (`mic_next_card_db`). They are here as helpers for `mic-host` and `mic-card`, which own one
 * instance each and use it for every `nextDb` hw op. A doorbell number is stored as `__s8` in
 * the device page, where {@link NO_DOORBELL} (-1) means "none".
 *
 * @see drivers/misc/mic/host/mic_intr.c
 * @see drivers/misc/mic/card/mic_device.c
 */
import { MicError, checkInt } from '@mic/errors';
import { X100_CARD_ALLOC_DOORBELLS, X100_HOST_NUM_DOORBELLS } from './constants.js';

/** The doorbell value meaning "none, do not ring". */
export const NO_DOORBELL = -1;

/**
 * Host doorbells, handed out round robin over the 4 host doorbells; several users may share one.
 * @see drivers/misc/mic/host/mic_intr.c (mic_next_db)
 */
export class HostDoorbellAllocator {
  #nextAvailSrc = 0;
  readonly #count: number;

  /** @param count - doorbells to rotate over (default {@link X100_HOST_NUM_DOORBELLS}) */
  constructor(count: number = X100_HOST_NUM_DOORBELLS) {
    checkInt('host doorbell count', count, 1, 32);
    this.#count = count;
  }

  /** The next doorbell: 0, 1, 2, 3, 0, ... */
  next(): number {
    const db = this.#nextAvailSrc % this.#count;
    this.#nextAvailSrc = (this.#nextAvailSrc + 1) % this.#count;
    return db;
  }
}

/**
 * Card doorbells: the one with the fewest users of the 16, lowest number first on a tie. The driver calls
 * {@link use} when it installs a handler on a doorbell and {@link release} when it frees it, as
 * `mic_request_card_irq` / `mic_free_card_irq` keep `irq_usage_count`.
 * @see drivers/misc/mic/card/mic_device.c (mic_next_card_db)
 */
export class CardDoorbellAllocator {
  readonly #usage: number[];

  /** @param count - doorbells to choose from (default {@link X100_CARD_ALLOC_DOORBELLS}, 8) */
  constructor(count: number = X100_CARD_ALLOC_DOORBELLS) {
    checkInt('card doorbell count', count, 1, 32);
    this.#usage = new Array<number>(count).fill(0);
  }

  /** The least used doorbell (does not count as a use). */
  next(): number {
    const usage = this.#usage;
    let best = 0;
    for (let i = 1; i < usage.length; i++) if (usage[i]! < usage[best]!) best = i;
    return best;
  }

  /** Counts one more user of `db`. */
  use(db: number): void {
    this.#check(db);
    this.#usage[db]!++;
  }

  /**
   * Counts one user of `db` less.
   * @throws MicError EINVAL when `db` has no users
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
