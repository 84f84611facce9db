/**
 * A small id allocator: the lowest free non-negative integer, like the kernel's IDA.
 *
 * @see drivers/misc/mic/bus/cosm_bus.c `cosm_index_ida`
 */
import { MicError, checkInt } from '@mic/errors';

/** Hands out the lowest free integer in `[min, max]` (`ida_simple_get`) and takes it back. */
export class IndexAllocator {
  readonly #used = new Set<number>();
  readonly #max: number;

  /** @param max - the largest id handed out, at most (and by default) 2^31 - 1, as the kernel's IDA */
  constructor(max = 0x7fffffff) {
    checkInt('max id', max, 0, 0x7fffffff);
    this.#max = max;
  }

  /** Ids in use. */
  get size(): number {
    return this.#used.size;
  }

  /** Takes the lowest free id `>= min`. Throws `ENOSPC` when none is left. */
  get(min = 0): number {
    checkInt('minimum id', min, 0, this.#max);
    for (let id = min; id <= this.#max; id++) {
      if (!this.#used.has(id)) {
        this.#used.add(id);
        return id;
      }
    }
    throw new MicError('ENOSPC', `no free id in [${min}, ${this.#max}]`, {
      details: { min, max: this.#max },
    });
  }

  /** True when `id` is in use. */
  has(id: number): boolean {
    return this.#used.has(id);
  }

  /** Gives `id` back (`ida_simple_remove`). Throws `EINVAL` when it is not in use. */
  remove(id: number): void {
    checkInt('id', id, 0, this.#max);
    if (!this.#used.delete(id)) {
      throw new MicError('EINVAL', `id ${id} is not allocated`, { details: { id } });
    }
  }
}
