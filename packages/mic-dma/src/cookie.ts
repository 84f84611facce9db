/**
 * Cookie tracking of one channel, as dmaengine's `dma_cookie_*` helpers do it
 * (`drivers/dma/dmaengine.h`): cookies count up from 1 per channel and wrap at 2^31 − 1; a cookie
 * is complete once the completed cookie has passed it (`dma_async_is_complete`). On top of the
 * kernel's helpers it remembers the ranges of cookies that failed when the channel stopped, so
 * their status stays `error`.
 *
 * @see include/linux/dmaengine.h (dma_async_is_complete)
 * @see drivers/dma/dmaengine.h (dma_cookie_assign, dma_cookie_complete, dma_cookie_status)
 */
import { MicError, formatValue } from '@mic/errors';
import { DMA_STATUS } from './constants.js';
import type { DmaCookie, DmaStatus } from './constants.js';

/** The largest cookie (`DMA_MAX_COOKIE`); the next one is 1. */
export const DMA_MAX_COOKIE = 0x7fffffff;

/** One channel's cookies. */
export class DmaCookies {
  #last = 0;
  #completed = 0;
  #wrapped = false;
  readonly #errorRanges: [number, number][] = [];

  /** The last cookie handed out (`chan->cookie`), 0 before the first. */
  get last(): DmaCookie {
    return this.#last;
  }

  /** True when every cookie handed out is complete or failed. */
  get settled(): boolean {
    return this.#last === this.#completed;
  }

  /** Hands out the next cookie (`dma_cookie_assign`). */
  assign(): DmaCookie {
    let cookie = this.#last + 1;
    if (cookie > DMA_MAX_COOKIE) {
      cookie = 1;
      this.#wrapped = true;
    }
    this.#last = cookie;
    return cookie;
  }

  /** Marks `cookie`, and every cookie before it, complete (`dma_cookie_complete`). */
  complete(cookie: DmaCookie): void {
    this.#completed = cookie;
  }

  /** Marks every cookie handed out and not complete as failed. */
  failOutstanding(): void {
    if (this.#last === this.#completed) return;
    const first = this.#completed + 1 > DMA_MAX_COOKIE ? 1 : this.#completed + 1;
    this.#errorRanges.push([first, this.#last]);
    this.#completed = this.#last;
  }

  /** `dma_cookie_status`, with the failed ranges reported as `error`. */
  status(cookie: DmaCookie): DmaStatus {
    for (const [lo, hi] of this.#errorRanges) {
      if (lo <= hi ? cookie >= lo && cookie <= hi : cookie >= lo || cookie <= hi) return DMA_STATUS.ERROR;
    }
    // dma_async_is_complete
    const done = this.#completed;
    const used = this.#last;
    if (done <= used) {
      if (cookie <= done || cookie > used) return DMA_STATUS.COMPLETE;
    } else if (cookie <= done && cookie > used) {
      return DMA_STATUS.COMPLETE;
    }
    return DMA_STATUS.IN_PROGRESS;
  }

  /** How long ago `cookie` was handed out (for ordering across a wrap). */
  age(cookie: DmaCookie): number {
    return (this.#last - cookie + DMA_MAX_COOKIE) % DMA_MAX_COOKIE;
  }

  /**
   * Checks that `cookie` was handed out by this channel (`chan`, for the message).
   * @throws MicError EINVAL otherwise
   */
  check(cookie: DmaCookie, chan: string): void {
    if (
      !Number.isInteger(cookie) ||
      cookie < 1 ||
      cookie > DMA_MAX_COOKIE ||
      (!this.#wrapped && cookie > this.#last)
    ) {
      throw new MicError(
        'EINVAL',
        `DMA cookie ${formatValue(cookie)} was not handed out by channel ${chan}`,
        {
          details: { chan, cookie: formatValue(cookie), lastCookie: this.#last },
        },
      );
    }
  }
}
