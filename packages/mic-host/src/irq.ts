/**
 * The host's interrupt requests on the x100 host interrupt line, as `mic_request_threaded_irq` /
 * `mic_free_irq` hand them out to the buses: doorbells 0–3 (`MIC_INTR_DB`, for SCIF and VOP) and
 * the DMA channels (`MIC_INTR_DMA`, source 8 + channel, for the mbus DMA device).
 *
 * A handler runs when its source is delivered; when it returns `IRQ_RETURN.WAKE_THREAD` (or when
 * the request has no handler) the thread function runs in a later task. A request freed before
 * delivery, or before its thread function ran, is not called. The cookie is a `MicIrq` that only
 * this table interprets; freeing it with other data than it was requested with is refused, as the
 * kernel's `free_irq` refuses another `dev_id`.
 *
 * @see drivers/misc/mic/host/mic_intr.c
 */
import { IRQ_RETURN, type IrqHandler, type MicIrq } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import type { Logger } from '@mic/logger';
import { X100_DMA, X100_HOST_NUM_DOORBELLS, hostDmaSrc, type IrqCookie, type X100HostView } from '@mic/x100';

/** Which kind of source a request is for (`enum mic_intr_type`). */
export const MIC_INTR = {
  /** A doorbell the card rings (0–3). */
  DB: 'doorbell',
  /** A DMA channel's completion interrupt (channel 0–7, host source 8 + channel). */
  DMA: 'dma',
} as const;

/** One of {@link MIC_INTR}. */
export type MicIntrType = (typeof MIC_INTR)[keyof typeof MIC_INTR];

class HostIrqCookie implements MicIrq {
  readonly intrSrc: number;
  readonly name: string;
  constructor(intrSrc: number, name: string) {
    this.intrSrc = intrSrc;
    this.name = name;
  }
}

interface Request {
  readonly x100: IrqCookie;
  readonly data: unknown;
  live: boolean;
}

/** The interrupt requests of one host (`struct mic_irq_info`). */
export class HostIrqTable {
  readonly #host: X100HostView;
  readonly #logger: Logger;
  readonly #requests = new Map<MicIrq, Request>();

  constructor(host: X100HostView, logger: Logger) {
    this.#host = host;
    this.#logger = logger;
  }

  /** Requests not freed yet. */
  get live(): number {
    return this.#requests.size;
  }

  /**
   * Installs `handler` and/or `threadFn` on doorbell or DMA channel `num`
   * (`mic_request_threaded_irq`). Both are called with `num` (not the hardware source) and `data`.
   * @throws MicError EINVAL when `num` is not a source of that kind or both functions are absent
   */
  request<D>(
    type: MicIntrType,
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    num: number,
  ): MicIrq {
    const max = type === MIC_INTR.DB ? X100_HOST_NUM_DOORBELLS - 1 : X100_DMA.MAX_NUM_CHAN - 1;
    if (!Number.isInteger(num) || num < 0 || num > max) {
      throw new MicError('EINVAL', `host ${type} ${String(num)} is not an integer in [0, ${max}]`, {
        details: { type, num },
      });
    }
    if (typeof handler !== 'function' && typeof threadFn !== 'function') {
      throw new MicError(
        'EINVAL',
        `interrupt request '${name}' on host ${type} ${num} has neither handler nor thread fn`,
      );
    }
    const src = type === MIC_INTR.DB ? num : hostDmaSrc(num);
    const cookie = new HostIrqCookie(num, String(name));
    const primary = typeof handler === 'function' ? handler : null;
    const thread = typeof threadFn === 'function' ? threadFn : null;
    const req: Request = {
      x100: this.#host.requestIrq(
        src,
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
                  error: err instanceof Error ? err.message : String(err),
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
   * Removes a request (`mic_free_irq`); neither of its functions runs afterwards.
   * @throws MicError EINVAL for a cookie that is not live here, or other data than requested with
   */
  free(cookie: MicIrq, data: unknown): void {
    const req = this.#requests.get(cookie);
    if (!req) {
      throw new MicError('EINVAL', `host interrupt cookie ${describe(cookie)} is not live`);
    }
    if (req.data !== data) {
      throw new MicError(
        'EINVAL',
        `free of host interrupt ${describe(cookie)} with other data than requested`,
      );
    }
    req.live = false;
    this.#requests.delete(cookie);
    this.#host.freeIrq(req.x100);
  }
}

function describe(cookie: unknown): string {
  if (cookie instanceof HostIrqCookie) return `'${cookie.name}' (${cookie.intrSrc})`;
  return String(cookie);
}
