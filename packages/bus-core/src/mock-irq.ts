/**
 * Interrupt lines for mock hardware: doorbell allocation, handler tables and asynchronous
 * delivery. The bus packages build their mock `*HwOps` on it.
 *
 * @see drivers/misc/mic/host/mic_intr.c `mic_next_db`, `mic_request_threaded_irq`
 * @see drivers/misc/mic/card/mic_device.c `mic_next_card_db`, `mic_request_card_irq`
 */
import { MicError, checkInt, checkObject, formatValue } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { CardDoorbellAllocator, HostDoorbellAllocator, checkInterruptNumber } from './doorbells.js';
import { checkHandlers } from './irq-table.js';
import { IRQ_RETURN, type IrqHandler, type MicIrq } from './hw.js';

/**
 * How `nextDb` picks a doorbell: the x100 host hands them out round-robin
 * (`next_avail_src++ % n`, {@link HostDoorbellAllocator}); the card picks the one with the fewest
 * handlers, the lowest index on a tie ({@link CardDoorbellAllocator}). The mocks use the drivers'
 * allocators, so both pick the same doorbells.
 */
export const DOORBELL_POLICY = {
  ROUND_ROBIN: 'round-robin',
  LEAST_USED: 'least-used',
} as const;

/** One of {@link DOORBELL_POLICY}. */
export type DoorbellPolicy = (typeof DOORBELL_POLICY)[keyof typeof DOORBELL_POLICY];

/** Options of {@link MockIrqLines}. */
export interface MockIrqLinesOptions {
  /** Number of doorbells / interrupt sources, numbered `0..count-1`. */
  readonly count: number;
  /** How {@link MockIrqLines.nextDb} picks (default round-robin). */
  readonly policy?: DoorbellPolicy;
  /** How many of the first lines {@link MockIrqLines.nextDb} picks from (default `count`). */
  readonly allocatable?: number;
  /** Name for errors and logs, e.g. `host doorbells`. */
  readonly name?: string;
  /**
   * Auto-clear, as the x100 host runs its interrupts (MSI-X style): a delivered line is masked
   * until the next {@link MockIrqLines.ack}, which unmasks every line auto-clear masked (the
   * host's `intr_workarounds`). Rings while masked stay latched and are delivered after the ack.
   * Default false (the card: ack does nothing).
   */
  readonly autoClear?: boolean;
  /** Where exceptions thrown by handlers are logged (default: nowhere). */
  readonly logger?: Logger;
}

class Cookie implements MicIrq {
  readonly intrSrc: number;
  readonly name: string;
  constructor(intrSrc: number, name: string) {
    this.intrSrc = intrSrc;
    this.name = name;
  }
}

interface Request {
  readonly cookie: Cookie;
  readonly handler: IrqHandler<never> | null;
  readonly threadFn: IrqHandler<never> | null;
  readonly data: unknown;
}

/**
 * Mock interrupt lines with per-instance state. Raising a line latches it; delivery happens in a
 * later task (`setImmediate`), like a hardware interrupt: every handler on the line runs in
 * request order, then the thread functions that were woken. Raising a latched line again before
 * delivery is coalesced, like a status bit. A line raised with no handler is counted as lost.
 * A handler freed before delivery is not called. With `autoClear`, a delivered line stays masked
 * until the next {@link ack}.
 */
export class MockIrqLines {
  /** Number of lines. */
  readonly count: number;
  /** Lines {@link nextDb} chooses from: the first `allocatable` (default all). */
  readonly allocatable: number;
  /** The allocation policy of {@link nextDb}. */
  readonly policy: DoorbellPolicy;
  /** Whether delivery masks a line until the next ack. */
  readonly autoClear: boolean;
  readonly #masked = new Set<number>();
  readonly #name: string;
  readonly #log: Logger;
  readonly #lines: Request[][];
  readonly #latched: number[] = [];
  /** The policy's allocator; the least-used one counts the requests on its lines. */
  readonly #doorbells: HostDoorbellAllocator | CardDoorbellAllocator;
  #outstanding = 0;
  #scheduled = false;
  #delivered = 0;
  #lost = 0;
  readonly #acks: number[] = [];

  constructor(options: MockIrqLinesOptions) {
    checkObject('interrupt line options', options);
    const { count } = options;
    checkInt('interrupt line count', count, 1, 64);
    const policy = options.policy ?? DOORBELL_POLICY.ROUND_ROBIN;
    if (policy !== DOORBELL_POLICY.ROUND_ROBIN && policy !== DOORBELL_POLICY.LEAST_USED) {
      throw new MicError('EINVAL', `doorbell policy ${formatValue(policy)} is not round-robin or least-used`);
    }
    this.count = count;
    const allocatable = options.allocatable ?? count;
    checkInt('allocatable doorbell count', allocatable, 1, count);
    this.allocatable = allocatable;
    this.policy = policy;
    this.#doorbells =
      policy === DOORBELL_POLICY.ROUND_ROBIN
        ? new HostDoorbellAllocator(allocatable)
        : new CardDoorbellAllocator(allocatable);
    this.autoClear = options.autoClear ?? false;
    this.#name = options.name ?? 'interrupt lines';
    this.#log = options.logger ?? nullLogger;
    this.#lines = Array.from({ length: count }, () => []);
  }

  /** Picks a doorbell to listen on, by {@link policy}. */
  nextDb(): number {
    return this.#doorbells.next();
  }

  /** Handlers installed on line `src` (the card's `irq_usage_count`). */
  usage(src: number): number {
    return this.#line(src, 'usage of').length;
  }

  /**
   * Installs `handler` and/or `threadFn` on line `src`. With a handler, the thread function runs
   * when the handler returns {@link IRQ_RETURN}.WAKE_THREAD; without one it runs on every interrupt
   * (the kernel's default primary handler). Throws `EINVAL` when both are null or `src` is not a
   * line.
   */
  request<D>(
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    src: number,
  ): MicIrq {
    const line = this.#line(src, 'request of');
    checkHandlers(handler, threadFn);
    if (typeof handler !== 'function' && typeof threadFn !== 'function') {
      throw new MicError(
        'EINVAL',
        `${this.#name}: request '${name}' on line ${src} has neither handler nor thread fn`,
      );
    }
    const cookie = new Cookie(src, String(name));
    line.push({
      cookie,
      handler: (handler ?? null) as IrqHandler<never> | null,
      threadFn: (threadFn ?? null) as IrqHandler<never> | null,
      data,
    });
    this.#counted(src)?.use(src);
    return cookie;
  }

  /**
   * Removes the request that returned `cookie`. Throws `EINVAL` when the cookie is not live here
   * or `data` is not the value it was requested with (the kernel's `free_irq` dev_id check).
   */
  free(cookie: MicIrq, data: unknown): void {
    const src = cookie instanceof Cookie ? cookie.intrSrc : -1;
    const line = src >= 0 && src < this.count ? this.#lines[src]! : undefined;
    const at = line ? line.findIndex((r) => r.cookie === cookie) : -1;
    if (!line || at < 0) {
      throw new MicError('EINVAL', `${this.#name}: interrupt cookie ${describe(cookie)} is not live`);
    }
    if (line[at]!.data !== data) {
      throw new MicError(
        'EINVAL',
        `${this.#name}: free of ${describe(cookie)} with data other than requested`,
      );
    }
    line.splice(at, 1);
    this.#counted(src)?.release(src);
  }

  /** The least-used allocator when it counts the users of line `src`. */
  #counted(src: number): CardDoorbellAllocator | undefined {
    const doorbells = this.#doorbells;
    return doorbells instanceof CardDoorbellAllocator && src < doorbells.count ? doorbells : undefined;
  }

  /** Raises line `src`: its handlers run in a later task. Throws `EINVAL` for a bad line. */
  raise(src: number): void {
    this.#line(src, 'raise of');
    if (!this.#latched.includes(src)) this.#latched.push(src);
    if (!this.#masked.has(src)) this.#schedule();
  }

  /**
   * Records an acknowledgement (`ack_interrupt(num)`); with auto-clear it unmasks every masked
   * line, whatever `num` is, and latched rings on them are delivered.
   */
  ack(num: number): void {
    checkInterruptNumber(num);
    this.#acks.push(num);
    if (this.#masked.size === 0) return;
    this.#masked.clear();
    if (this.#latched.length > 0) this.#schedule();
  }

  /** True when auto-clear masked line `src` and no ack came since. */
  isMasked(src: number): boolean {
    return this.#masked.has(src);
  }

  /** Every acknowledged number, in order. */
  get acks(): readonly number[] {
    return [...this.#acks];
  }

  /** Handler and thread function calls made so far. */
  get delivered(): number {
    return this.#delivered;
  }

  /** Interrupts raised on a line without a handler. */
  get lost(): number {
    return this.#lost;
  }

  /** Latched interrupts that can be delivered (not masked) and thread functions not run yet. */
  get pending(): number {
    return this.#latched.filter((src) => !this.#masked.has(src)).length + this.#outstanding;
  }

  /**
   * Resolves once every raised interrupt that can be delivered has been, including woken thread
   * functions (rings on a line masked by auto-clear wait for an ack).
   */
  async flush(): Promise<void> {
    while (this.pending > 0 || this.#scheduled) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  #line(src: number, what: string): Request[] {
    const line = Number.isInteger(src) ? this.#lines[src] : undefined;
    if (!line) {
      throw new MicError(
        'EINVAL',
        `${this.#name}: ${what} line ${formatValue(src)}, which is not an integer in [0, ${this.count - 1}]`,
        { details: { src, count: this.count } },
      );
    }
    return line;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#deliver();
    });
  }

  #deliver(): void {
    const woken: { req: Request; src: number }[] = [];
    // Lines raised by the handlers themselves are delivered in the next task.
    const batch = this.#latched.filter((src) => !this.#masked.has(src));
    for (const src of batch) this.#latched.splice(this.#latched.indexOf(src), 1);
    for (const src of batch) {
      const line = this.#lines[src]!;
      if (line.length === 0) {
        this.#lost++;
        continue;
      }
      if (this.autoClear) this.#masked.add(src);
      for (const req of [...line]) {
        if (!line.includes(req)) continue;
        if (!req.handler) {
          woken.push({ req, src });
          continue;
        }
        this.#delivered++;
        const ret = this.#call(req.handler, src, req);
        if (ret === IRQ_RETURN.WAKE_THREAD && req.threadFn) woken.push({ req, src });
      }
    }
    for (const { req, src } of woken) {
      this.#outstanding++;
      setImmediate(() => {
        this.#outstanding--;
        if (this.#lines[src]!.includes(req)) {
          this.#delivered++;
          this.#call(req.threadFn!, src, req);
        }
      });
    }
  }

  #call(fn: IrqHandler<never>, src: number, req: Request): unknown {
    try {
      return (fn as IrqHandler<unknown>)(src, req.data);
    } catch (err) {
      this.#log.error('interrupt handler threw', { line: src, name: req.cookie.name, error: String(err) });
      return IRQ_RETURN.HANDLED;
    }
  }
}

function describe(cookie: unknown): string {
  if (cookie instanceof Cookie) return `'${cookie.name}' (line ${cookie.intrSrc})`;
  return formatValue(cookie);
}
