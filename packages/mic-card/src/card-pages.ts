/**
 * Card memory allocation, the card OS's business (`__get_free_pages` on the card). The x100 model
 * gives the card its memory and no allocator; this is the one every user of a card view allocates
 * from. A piece's `offset` is its card physical address, which the host reaches through its
 * aperture at the same offset. The first page is never handed out (0 means "no address" in the
 * device page), and nothing is handed out once the card was reset.
 *
 * @see drivers/misc/mic/card/mic_device.c (the card's devices use direct mapping of its pages)
 */
import { MemoryPool, type PoolBuffer } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import type { X100CardView } from '@mic/x100';

/** Card pages of one boot: a {@link MemoryPool} over card memory that refuses a dead card view. */
class CardPages extends MemoryPool {
  readonly #card: X100CardView;

  constructor(card: X100CardView) {
    super(card.memory, { name: 'card memory' });
    this.#card = card;
  }

  /** @throws MicError also ENODEV once the card was reset */
  override alloc(size: number, align = 1): PoolBuffer {
    if (!this.#card.alive) {
      throw new MicError('ENODEV', 'the card was reset: its pages are no longer allocatable', {
        details: { generation: this.#card.generation },
      });
    }
    return super.alloc(size, align);
  }
}

const pools = new WeakMap<X100CardView, MemoryPool>();

/**
 * The page allocator of `card`'s memory: one per card view (one boot), made on first use.
 *
 * @example
 * const ring = cardPages(card).alloc(8192, 4096); // ring.offset is what the host reaches
 */
export function cardPages(card: X100CardView): MemoryPool {
  let pool = pools.get(card);
  if (!pool) {
    pool = new CardPages(card);
    pools.set(card, pool);
  }
  return pool;
}
