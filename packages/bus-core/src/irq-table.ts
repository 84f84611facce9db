/**
 * Threaded interrupt requests over a hardware interrupt controller: what
 * `mic_request_threaded_irq` / `mic_free_irq` (host) and `mic_request_card_irq` /
 * `mic_free_card_irq` (card) do on top of the interrupt line, shared by both hardware drivers.
 *
 * A request names a kind of source (a doorbell, a DMA channel) and its number; the table checks the
 * number, installs one hardware handler on the source it maps to, and calls the request's handler
 * with the number (not the hardware source) and `data`. When the handler returns
 * {@link IRQ_RETURN}.WAKE_THREAD (or the request has no handler) the thread function runs in a
 * later task. A request freed before delivery, or before its thread function ran, is not called.
 * The cookie is a {@link MicIrq} only this table interprets; freeing it with other data than it was
 * requested with is refused, as the kernel's `free_irq` refuses another `dev_id`.
 *
 * @see drivers/misc/mic/host/mic_intr.c
 * @see drivers/misc/mic/card/mic_device.c
 */
import { MicError, checkFunction, checkInt, checkObject, errorMessage, formatValue } from '@mic/errors';
import type { Logger } from '@mic/logger';
import { IRQ_RETURN, type IrqHandler, type MicIrq } from './hw.js';
import { checkOps } from './validate.js';

/** Where a {@link ThreadedIrqTable} installs its handlers: the hardware's interrupt controller. */
export interface IrqSourceOps<C> {
  /** Installs `handler` on hardware source `src`; returns what {@link freeIrq} takes. */
  requestIrq(src: number, handler: () => void, name: string): C;
  /** Removes a handler {@link requestIrq} installed. */
  freeIrq(cookie: C): void;
}

/** One kind of source of a {@link ThreadedIrqTable}. */
export interface IrqSourceKind {
  /** Numbers `0..count-1` may be requested. */
  readonly count: number;
  /** The hardware source of number `num`. */
  readonly src: (num: number) => number;
}

/** Options of a {@link ThreadedIrqTable}. */
export interface ThreadedIrqTableOptions<T extends string, C> {
  /** `host` or `card`: starts every error message. */
  readonly side: string;
  /** The hardware's interrupt controller. */
  readonly hw: IrqSourceOps<C>;
  /** The kinds of sources, by name (e.g. `doorbell`, `dma`). */
  readonly kinds: Readonly<Record<T, IrqSourceKind>>;
  /** Where thread functions that throw are reported. */
  readonly logger: Logger;
}

class TableCookie implements MicIrq {
  readonly intrSrc: number;
  readonly name: string;
  constructor(intrSrc: number, name: string) {
    this.intrSrc = intrSrc;
    this.name = name;
  }
}

interface Request<T, C> {
  readonly type: T;
  readonly hw: C;
  readonly data: unknown;
  live: boolean;
}

/** The interrupt requests of one side (`struct mic_irq_info`). */
export class ThreadedIrqTable<T extends string, C = unknown> {
  readonly #side: string;
  readonly #hw: IrqSourceOps<C>;
  readonly #kinds: Readonly<Record<T, IrqSourceKind>>;
  readonly #logger: Logger;
  readonly #requests = new Map<MicIrq, Request<T, C>>();

  /** @throws MicError EINVAL for options that are not as {@link ThreadedIrqTableOptions} says */
  constructor(options: ThreadedIrqTableOptions<T, C>) {
    checkObject('interrupt table options', options);
    checkOps('interrupt table interrupt controller', options.hw, ['requestIrq', 'freeIrq']);
    checkObject('interrupt table kinds', options.kinds);
    if (Object.keys(options.kinds).length === 0) {
      throw new MicError('EINVAL', 'interrupt table kinds {} name no kind of source');
    }
    for (const [name, kind] of Object.entries<IrqSourceKind>(options.kinds)) {
      checkObject(`interrupt source kind ${name}`, kind);
      checkInt(`interrupt source ${name} count`, kind.count, 1, 0xffff);
      checkFunction(`interrupt source ${name} src`, kind.src);
    }
    checkOps('interrupt table logger', options.logger, ['error']);
    this.#side = options.side;
    this.#hw = options.hw;
    this.#kinds = options.kinds;
    this.#logger = options.logger;
  }

  /** Requests not freed yet. */
  get live(): number {
    return this.#requests.size;
  }

  /**
   * Installs `handler` and/or `threadFn` on source `num` of kind `type`. Both are called with
   * `num` and `data`.
   * @throws MicError EINVAL when `num` is not a source of that kind or both functions are absent;
   *   whatever the hardware's `requestIrq` throws (nothing is installed then)
   */
  request<D>(
    type: T,
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    num: number,
  ): MicIrq {
    const kind = Object.hasOwn(this.#kinds, type) ? this.#kinds[type] : undefined;
    if (!kind) {
      throw new MicError(
        'EINVAL',
        `${this.#side} interrupt source kind ${formatValue(type)} is not one of ${Object.keys(this.#kinds).join(', ')}`,
      );
    }
    const max = kind.count - 1;
    if (!Number.isInteger(num) || num < 0 || num > max) {
      throw new MicError(
        'EINVAL',
        `${this.#side} ${type} ${formatValue(num)} is not an integer in [0, ${max}]`,
        {
          details: { type, num },
        },
      );
    }
    checkHandlers(handler, threadFn);
    if (typeof handler !== 'function' && typeof threadFn !== 'function') {
      throw new MicError(
        'EINVAL',
        `interrupt request '${name}' on ${this.#side} ${type} ${num} has neither handler nor thread fn`,
      );
    }
    const cookie = new TableCookie(num, String(name));
    const primary = typeof handler === 'function' ? handler : null;
    const thread = typeof threadFn === 'function' ? threadFn : null;
    const req: Request<T, C> = {
      type,
      hw: this.#hw.requestIrq(
        kind.src(num),
        () => {
          if (!req.live) return;
          const ret = primary ? primary(num, data) : IRQ_RETURN.WAKE_THREAD;
          if (ret === IRQ_RETURN.WAKE_THREAD && thread) {
            setImmediate(() => {
              if (!req.live) return;
              try {
                thread(num, data);
              } catch (err) {
                this.#logger.error('interrupt thread fn threw', {
                  type,
                  num,
                  name: cookie.name,
                  error: errorMessage(err),
                });
              }
            });
          }
        },
        cookie.name,
      ),
      data,
      live: true,
    };
    this.#requests.set(cookie, req);
    return cookie;
  }

  /**
   * Removes a request; neither of its functions runs afterwards.
   * @returns the kind and number it was requested on
   * @throws MicError EINVAL for a cookie that is not live here, or other data than requested with
   */
  free(cookie: MicIrq, data: unknown): { readonly type: T; readonly num: number } {
    const req = this.#requests.get(cookie);
    if (!req) {
      throw new MicError('EINVAL', `${this.#side} interrupt cookie ${describe(cookie)} is not live`);
    }
    if (req.data !== data) {
      throw new MicError(
        'EINVAL',
        `free of ${this.#side} interrupt ${describe(cookie)} with other data than requested`,
      );
    }
    req.live = false;
    this.#requests.delete(cookie);
    this.#hw.freeIrq(req.hw);
    return { type: req.type, num: cookie.intrSrc };
  }
}

function describe(cookie: unknown): string {
  if (cookie instanceof TableCookie) return `'${cookie.name}' (${cookie.intrSrc})`;
  return formatValue(cookie);
}

/**
 * Throws `EINVAL` unless the handler and the thread function of a request are each a function or
 * absent (`null`, `undefined`): a number or an object is not taken for "none".
 */
export function checkHandlers(handler: unknown, threadFn: unknown): void {
  if (handler != null) checkFunction('interrupt handler', handler);
  if (threadFn != null) checkFunction('interrupt thread fn', threadFn);
}
