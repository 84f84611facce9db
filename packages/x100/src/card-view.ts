/**
 * The card's view of an X100, what the card OS and its drivers get:
 * - its local memory (GDDR; allocating pages of it is the card OS's business, `@mic/mic-card`
 *   does it);
 * - host memory only through the SMPT: {@link X100CardView.cardMap} turns a card address in the
 *   system window (`≥ 0x80_0000_0000`) into a bounds-checked window of host RAM, and refuses
 *   (`EFAULT`) addresses no mapped SMPT entry covers and, with the host's IOMMU on, ranges the
 *   host did not DMA-map;
 * - its own MMIO registers: scratchpads (`SPAD14/15` hold the device page address), host
 *   doorbells (`SDBIC`);
 * - its interrupt line: `requestIrq` / `freeIrq` / `ackInterrupt` on doorbells 0–15 and DMA
 *   sources 16–23.
 *
 * A view belongs to one boot of the card. After a reset it is dead: doorbells, interrupts,
 * scratchpads and {@link X100CardView.cardMap} throw `ENODEV` and {@link X100CardView.signal}
 * is aborted, and so do accesses through its windows on host memory ({@link
 * X100CardView.cardMap} with the IOMMU on). Raw byte views taken before stay usable (nothing
 * revokes a view in JavaScript; on `worker` the card's thread is terminated), so card code
 * should stop when the signal aborts.
 *
 * @see drivers/misc/mic/card/mic_x100.c
 * @see drivers/misc/mic/card/mic_device.c
 */
import type { Clock } from '@mic/clock';
import { MicError, checkInt, checkObject } from '@mic/errors';
import { nullLogger } from '@mic/logger';
import type { Logger } from '@mic/logger';
import { BufferMemory, type Memory } from '@mic/memory';
import { X100CardWindows } from './card-windows.js';
import { X100_SDBIC_DBREQ, sdbicReg, spadReg } from './constants.js';
import { X100_CARD_SOURCES, checkHardware } from './hardware.js';
import type { X100Hardware } from './hardware.js';
import { IrqController } from './irq.js';
import type { IrqCookie, IrqDelivery, InterruptSourceHandler } from './irq.js';
import { u32Value, type MmioRegisters } from './mmio.js';
import { viewOffset } from './views.js';

/** Options of {@link X100CardView}. */
export interface X100CardViewOptions {
  /** How the card's interrupts are delivered. */
  readonly delivery: IrqDelivery;
  /** For `wait`: poll this long before sleeping (ns). */
  readonly spinNs?: number;
  /** The card's logger (default: nowhere). */
  readonly logger?: Logger;
  /** The card's clock. */
  readonly clock: Clock;
  /** The hardware generation this boot belongs to. */
  readonly generation: number;
}

/** The card's side of the hardware. See the module comment. */
export class X100CardView {
  /** Card GDDR. */
  readonly memory: Memory;
  /** The card's MMIO registers (no liveness check on raw accesses). */
  readonly mmio: MmioRegisters;
  /** The card's clock (virtual on `inProcess`, real on `worker`). */
  readonly clock: Clock;
  /** The card's logger (on `worker`, records go to the host platform's logger). */
  readonly logger: Logger;
  /** Aborted when this boot of the card ends (reset or platform close). */
  readonly signal: AbortSignal;
  /** The boot this view belongs to. */
  readonly generation: number;
  readonly #hw: X100Hardware;
  readonly #irq: IrqController;
  readonly #controller = new AbortController();
  /** The windows on host memory this boot holds (with the IOMMU on). */
  readonly #windows: X100CardWindows;
  /** Set by {@link kill}; a plain field, as it is read on every doorbell ring. */
  #killed = false;

  constructor(hw: X100Hardware, options: X100CardViewOptions) {
    checkHardware('card view', hw);
    checkObject('card view options', options);
    checkInt('card view generation', options.generation, 0, 0xffff_ffff);
    this.#hw = hw;
    this.memory = hw.cardMemory;
    this.mmio = hw.mmio;
    this.clock = options.clock;
    this.logger = options.logger ?? nullLogger;
    this.generation = options.generation;
    this.signal = this.#controller.signal;
    this.#windows = new X100CardWindows(hw.cardWindows, hw.iommu, this.generation, () => this.alive);
    this.#irq = new IrqController(hw.cardLine, {
      delivery: options.delivery,
      validSources: X100_CARD_SOURCES,
      logger: this.logger,
      alive: () => this.alive,
      ...(options.spinNs === undefined ? {} : { spinNs: options.spinNs }),
    });
  }

  /** False once the card was reset or the platform closed. */
  get alive(): boolean {
    return !this.#killed && this.#hw.isCurrentGeneration(this.generation);
  }

  #live(): void {
    if (!this.alive) {
      throw new MicError(
        'ENODEV',
        'the card was reset: this card view is no longer attached to the hardware',
        {
          details: { generation: this.generation, current: this.#hw.generation },
        },
      );
    }
  }

  /**
   * The card physical address of a view of card memory (what the card's `virt_to_phys` and
   * `dma_map_single` return: there is no translation on the card).
   * @throws MicError EINVAL for memory that is not a view of card memory
   */
  physAddrOf(mem: Memory): number {
    return viewOffset(mem, this.#hw.buffers.cardMemory, 'card memory');
  }

  /**
   * Maps `length` bytes of host memory at card address `micAddr` (`mic_card_map`): the address
   * must lie in the SMPT system window, every SMPT entry it touches must be mapped by the host
   * and, with the host's IOMMU on (the default), the whole range must lie inside one range the
   * host DMA-mapped (else an IOMMU fault is recorded and logged).
   *
   * With the IOMMU on the window is an `X100CardWindow`: each access through it is checked
   * again after the host changed its IOMMU mappings (an access to a range the host unmapped
   * meanwhile is an IOMMU fault, `EFAULT`) or after a reset (`ENODEV`), and the window is
   * published to the host until {@link cardUnmap}: a running card that still holds a window on
   * a range the host unmapped is stopped unless it gives the window back within
   * `X100_CARD_WINDOWS.GRACE_MS`, since raw views taken from it (`bytes()`) cannot be revoked
   * (see `card-windows.ts`). With the IOMMU off it is a plain view of host RAM,
   * resolved now; later SMPT changes do not move it.
   * @throws MicError EFAULT when no mapped SMPT entry covers the range, it leaves host RAM, or
   * the IOMMU refuses it; ENOSPC when the card holds `X100_CARD_WINDOWS.MAX` windows
   */
  cardMap(micAddr: number, length: number): Memory {
    this.#live();
    const hw = this.#hw;
    const seq = hw.iommu.seq;
    const hostAddr = hw.hostTranslate(micAddr, length);
    if (!hw.iommu.enabled) return hw.hostRam.window(hostAddr, length);
    // A sequence that moved or was odd makes the first access check again.
    return this.#windows.open(micAddr, hostAddr, length, (seq & 1) === 0 ? seq : -1, hw.hostRam);
  }

  /**
   * Takes back a window {@link cardMap} returned (`mic_card_unmap`, the card's `iounmap`):
   * accesses through it fail with `EFAULT` from now on, and the host may unmap what it reached.
   * With the IOMMU off there is nothing to take back and the call only checks its argument.
   * @throws MicError EINVAL for memory that is not a live window of this boot (a sub-window, a
   * window taken back already)
   */
  cardUnmap(window: Memory): void {
    if (
      !this.#hw.iommu.enabled &&
      window instanceof BufferMemory &&
      window.buffer === this.#hw.buffers.hostRam
    ) {
      return;
    }
    this.#windows.close(window);
  }

  /**
   * The host-physical address behind card address `micAddr` (same checks as {@link cardMap}).
   * @throws MicError EFAULT when unmapped
   */
  smptTranslate(micAddr: number, length = 1): number {
    this.#live();
    return this.#hw.hostTranslate(micAddr, length);
  }

  /** Reads scratchpad `idx` (`mic_read_spad`). */
  readSpad(idx: number): number {
    this.#live();
    return this.mmio.read32(spadReg(idx));
  }

  /** Writes scratchpad `idx`. */
  writeSpad(idx: number, value: number): void {
    this.#live();
    u32Value('scratchpad value', value);
    this.mmio.write32(spadReg(idx), value);
  }

  /**
   * Rings host doorbell `db` (0–3): writes DBREQ to its `SDBIC` register (`mic_send_intr`).
   * The host's handler runs later, never inside this call. ("No doorbell", -1 in the device page,
   * is the drivers' business: the hardware has doorbells 0–3 only.)
   * @throws MicError EINVAL for a value outside 0–3, ENODEV after a reset
   */
  sendIntr(db: number): void {
    this.#live();
    this.mmio.write32(sdbicReg(db), X100_SDBIC_DBREQ); // sdbicReg checks db (EINVAL)
  }

  /**
   * Installs `handler` on card interrupt source `src` (doorbells 0–15, DMA channel ch at 16 + ch). Several handlers
   * may share a source; they run asynchronously after the source is raised.
   * @throws MicError EINVAL for another source, ENODEV after a reset
   */
  requestIrq(src: number, handler: InterruptSourceHandler, name = ''): IrqCookie {
    this.#live();
    return this.#irq.requestIrq(src, handler, name);
  }

  /** Removes a handler. @throws MicError EINVAL when it is not installed */
  freeIrq(cookie: IrqCookie): void {
    this.#irq.freeIrq(cookie);
  }

  /** Acknowledges an interrupt. The card needs none (`mic_ack_interrupt` returns 0); kept for the hw ops. */
  ackInterrupt(): void {
    this.#hw.cardLine.ack();
  }

  /** Pending card interrupt sources not yet delivered. */
  readInterruptStatus(): number {
    return this.#hw.cardLine.pending();
  }

  /**
   * Ends this boot (platform use, on reset and close): aborts {@link signal}, stops interrupt
   * delivery, drops the handlers.
   */
  async kill(): Promise<void> {
    this.#killed = true;
    if (!this.#controller.signal.aborted) {
      this.#controller.abort(new MicError('ENODEV', 'the card was reset'));
    }
    await this.#irq.close();
  }
}
