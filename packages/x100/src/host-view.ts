/**
 * The host's view of an X100: what a PCIe card and its host bridge give the host driver.
 * - host RAM (a DMA address is a host-physical offset in it; allocating it is the host OS's
 *   business, `@mic/mic-host` does it);
 * - the aperture (BAR0): card memory, bounds-checked;
 * - the MMIO registers (BAR4): scratchpads, SMPT (through {@link SmptTable}), doorbells,
 *   interrupt status/enable, reset;
 * - the host's IOMMU ({@link X100Iommu}), which limits the card to the host ranges the host
 *   DMA-mapped; {@link X100HostView.mapSingle} maps a range through both (`mic_map_single`);
 * - the host's interrupt line: `requestIrq` / `freeIrq` / `ackInterrupt`.
 *
 * @see drivers/misc/mic/host/mic_x100.c
 * @see drivers/misc/mic/host/mic_intr.c
 * @see drivers/misc/mic/host/mic_smpt.c
 */
import { MicError, checkInt, checkObject } from '@mic/errors';
import { nullLogger } from '@mic/logger';
import type { Logger } from '@mic/logger';
import type { Memory } from '@mic/memory';
import {
  X100_APICICR_SEND,
  X100_BSP_INTERRUPT_VECTOR,
  X100_CARD_NUM_DOORBELLS,
  X100_HOST_NUM_DOORBELLS,
  X100_INTR,
  X100_PCI_VENDOR_INTEL,
  X100_REG,
  X100_RGCR_RESET,
  X100_SPAD,
  apicIcrReg,
  decodeSpad2,
  rdmasrReg,
  spadReg,
} from './constants.js';
import type { Spad2 } from './constants.js';
import { X100_CARD_STATE, X100_HOST_SOURCES, checkHardware } from './hardware.js';
import type { X100CardState, X100Hardware } from './hardware.js';
import { X100Iommu } from './iommu.js';
import { IrqController } from './irq.js';
import type { IrqCookie, IrqDelivery, InterruptSourceHandler } from './irq.js';
import { u32Value, type MmioRegisters } from './mmio.js';
import { SmptTable } from './smpt.js';
import type { X100CardWindowInfo } from './card-windows.js';
import { viewOffset } from './views.js';

/** PCI identity of the card. */
export interface X100PciId {
  readonly vendor: number;
  readonly device: number;
  /** The stepping (`MIC_A0_STEP` ...). */
  readonly revision: number;
}

/** Options of {@link X100HostView}. */
export interface X100HostViewOptions {
  /** How the host's interrupts are delivered (`microtask` in one thread, `wait` across threads). */
  readonly delivery: IrqDelivery;
  /** For `wait`: poll this long before sleeping (ns). */
  readonly spinNs?: number;
  /** Where handler failures go (default: nowhere). */
  readonly logger?: Logger;
  /**
   * Called when an IOMMU unmap finds windows of the running card (boot `generation`) that still
   * reach the unmapped range `[start, end)` (the platform's: it stops a card that does not give
   * them back; see `card-windows.ts`). Resolves once the card can no longer reach the range.
   * Without it the faults are only recorded.
   */
  readonly windowsKept?: (
    generation: number,
    start: number,
    end: number,
    windows: readonly X100CardWindowInfo[],
  ) => Promise<void>;
}

/** Sources `enableInterrupts` turns on: doorbells 3:0 and DMA 15:8 (`SICE0`). */
const SICE0_ALL = 0xff0f;

/** The host's side of the card. See the module comment. */
export class X100HostView {
  /** PCI vendor, device and revision. */
  readonly pci: X100PciId;
  /** All of host RAM, as the host CPU sees it. */
  readonly ram: Memory;
  /** The aperture (BAR0): all of card memory. */
  readonly aperture: Memory;
  /** The MMIO registers (BAR4). */
  readonly mmio: MmioRegisters;
  /** SMPT programming: host DMA ranges → card-visible addresses. */
  readonly smpt: SmptTable;
  /** The host's IOMMU: which host ranges the card may reach (see {@link mapSingle}). */
  readonly iommu: X100Iommu;
  readonly #hw: X100Hardware;
  readonly #irq: IrqController;

  constructor(hw: X100Hardware, options: X100HostViewOptions) {
    checkHardware('host view', hw);
    checkObject('host view options', options);
    this.#hw = hw;
    this.pci = { vendor: X100_PCI_VENDOR_INTEL, device: hw.config.deviceId, revision: hw.config.revision };
    this.ram = hw.hostRam;
    this.aperture = hw.cardMemory;
    this.mmio = hw.mmio;
    this.smpt = new SmptTable(hw);
    const windowsKept = options.windowsKept;
    this.iommu = new X100Iommu(hw.iommu, hw.config.hostRamSize, {
      table: hw.cardWindows,
      generation: () =>
        hw.cardState === X100_CARD_STATE.RUNNING || hw.cardState === X100_CARD_STATE.BOOTING
          ? hw.generation
          : undefined,
      windowsKept: (generation, start, end, windows) =>
        windowsKept?.(generation, start, end, windows) ?? Promise.resolve(),
    });
    this.#irq = new IrqController(hw.hostLine, {
      delivery: options.delivery,
      validSources: X100_HOST_SOURCES,
      logger: options.logger ?? nullLogger,
      ...(options.spinNs === undefined ? {} : { spinNs: options.spinNs }),
    });
  }

  /**
   * The host CPU's view of `length` bytes at DMA address `dmaAddr` (`phys_to_virt`).
   * @throws MicError EFAULT outside host RAM
   */
  dmaWindow(dmaAddr: number, length: number): Memory {
    return this.#hw.hostRam.window(dmaAddr, length);
  }

  /**
   * The DMA address of a view of host RAM (its host-physical offset: what `virt_to_phys` and
   * `dma_map_single` return for it here, where DMA addresses are host-physical).
   * @throws MicError EINVAL for memory that is not a view of this host's RAM
   */
  dmaAddrOf(mem: Memory): number {
    return viewOffset(mem, this.#hw.buffers.hostRam, 'host RAM');
  }

  /**
   * Maps `[dmaAddr, dmaAddr + size)` of host RAM for the card (`mic_map_single`): in the IOMMU
   * (`dma_map_single`), then through the SMPT (`mic_map`). Every host buffer the card touches
   * (by its CPU or its DMA engine) must be mapped so when the IOMMU is on.
   * @returns the card-visible address
   * @throws MicError EINVAL for a bad range, ENOSPC when no SMPT entry or IOMMU range is free
   * (nothing stays mapped then)
   */
  mapSingle(dmaAddr: number, size: number): number {
    this.iommu.map(dmaAddr, size);
    try {
      return this.smpt.map(dmaAddr, size);
    } catch (err) {
      this.iommu.unmap(dmaAddr, size);
      throw err;
    }
  }

  /**
   * Undoes a {@link mapSingle} (`mic_unmap_single`): `micAddr` and `size` as it returned and was
   * given. The SMPT references go, then the IOMMU range; it returns once no DMA checked against
   * the old mapping can still write (the IOTLB invalidation completed).
   * @throws MicError EINVAL for a range that is not mapped as such
   */
  unmapSingle(micAddr: number, size: number): void {
    const dmaAddr = this.smpt.toDmaAddr(micAddr);
    this.smpt.unmap(micAddr, size);
    this.iommu.unmap(dmaAddr, size);
  }

  /**
   * Card memory at card address `cardAddr` through the aperture (the host's `remap` op:
   * `aper.va + pa`).
   * @throws MicError EFAULT outside card memory
   */
  apertureWindow(cardAddr: number, length: number): Memory {
    return this.#hw.cardMemory.window(cardAddr, length);
  }

  /** Reads scratchpad `idx` (`mic_x100_read_spad`). */
  readSpad(idx: number): number {
    return this.mmio.read32(spadReg(idx));
  }

  /** Writes scratchpad `idx` (`mic_x100_write_spad`). */
  writeSpad(idx: number, value: number): void {
    u32Value('scratchpad value', value);
    this.mmio.write32(spadReg(idx), value);
  }

  /** `SPAD2` decoded: firmware ready, APIC id, boot address. */
  downloadInfo(): Spad2 {
    return decodeSpad2(this.readSpad(X100_SPAD.DOWNLOAD_INFO));
  }

  /**
   * Rings card doorbell `db` (0–15), as `mic_x100_send_intr` does: doorbells 0–7 set the send
   * bit of their `APICICR` register, 8–15 write 0 to `RDMASR[db - 8 + 17]`. The card's handler
   * runs later, never inside this call. ("No doorbell", -1 in the device page, is the drivers'
   * business: the hardware has doorbells 0–15 only.)
   * @throws MicError EINVAL for a value outside 0–15
   */
  sendIntr(db: number): void {
    checkInt('card doorbell', db, 0, X100_CARD_NUM_DOORBELLS - 1);
    if (db < X100_INTR.CARD_NUM_SBOX_DB) {
      const reg = apicIcrReg(db);
      this.mmio.write32(reg, this.mmio.read32(reg) | X100_APICICR_SEND);
    } else {
      this.mmio.write32(rdmasrReg(db - X100_INTR.CARD_NUM_SBOX_DB + X100_INTR.RDMASR_IRQ_BASE), 0);
    }
  }

  /**
   * Sends the bootstrap interrupt (`mic_x100_send_firmware_intr`): the APIC id from `SPAD2` to
   * `APICICR7 + 4`, then vector 229 with the send bit to `APICICR7`. When the firmware is ready
   * this boots the card; otherwise it only rings card doorbell 7.
   */
  sendFirmwareIntr(): void {
    this.mmio.write32(X100_REG.APICICR7 + 4, this.downloadInfo().apicId);
    this.mmio.write32(X100_REG.APICICR7, X100_BSP_INTERRUPT_VECTOR | X100_APICICR_SEND);
  }

  /**
   * Installs `handler` on host interrupt source `src` (doorbells 0–3, DMA 8–15, error 30).
   * Several handlers may share a source. Handlers run asynchronously after the source is raised,
   * once per delivery, and only while the source is enabled (see {@link enableInterrupts}).
   * @throws MicError EINVAL for another source
   */
  requestIrq(src: number, handler: InterruptSourceHandler, name = ''): IrqCookie {
    return this.#irq.requestIrq(src, handler, name);
  }

  /** Removes a handler. @throws MicError EINVAL when it is not installed */
  freeIrq(cookie: IrqCookie): void {
    this.#irq.freeIrq(cookie);
  }

  /**
   * Enables every doorbell and DMA source in `SICE0` (`mic_x100_enable_interrupts`); with
   * `autoClear` (the default, as with MSI-X) also in `SIAC0`, so a delivered source stays off
   * until {@link ackInterrupt}. Interrupts are off after power-on and after every reset.
   */
  enableInterrupts(options: { readonly autoClear?: boolean } = {}): void {
    checkObject('enableInterrupts options', options);
    this.mmio.write32(X100_REG.SICE0, this.mmio.read32(X100_REG.SICE0) | SICE0_ALL);
    const siac0 = this.mmio.read32(X100_REG.SIAC0);
    this.mmio.write32(X100_REG.SIAC0, options.autoClear === false ? siac0 & ~SICE0_ALL : siac0 | SICE0_ALL);
  }

  /**
   * Disables every doorbell and DMA source (`mic_x100_disable_interrupts`), including those
   * auto-clear turned off: a later {@link ackInterrupt} does not turn them on again.
   */
  disableInterrupts(): void {
    this.mmio.write32(X100_REG.SICC0, SICE0_ALL);
    this.mmio.write32(X100_REG.SIAC0, this.mmio.read32(X100_REG.SIAC0) & ~SICE0_ALL);
  }

  /**
   * Acknowledges delivered interrupts: re-enables the sources auto-clear turned off
   * (`mic_x100_intr_workarounds` on B0 and later). Call it in every handler, as the kernel's
   * `ack_interrupt` hw ops do.
   */
  ackInterrupt(): void {
    this.#hw.hostLine.ack();
  }

  /** Pending host interrupt sources not yet delivered (`SICR0`). */
  readInterruptStatus(): number {
    return this.mmio.read32(X100_REG.SICR0);
  }

  /**
   * Enabled host interrupt sources: `SICE0`, less the sources auto-clear took for a handler that
   * is running now (those reach `SICE0` only if it returns without acknowledging; see
   * {@link InterruptLine.take}).
   */
  interruptEnableMask(): number {
    return this.#hw.hostLine.enabled();
  }

  /**
   * Resets the card (`mic_x100_hw_reset` without its 1 s sleep): sets `RGCR` bit 0. The card code
   * stops at once, every register is cleared, and after the platform's reset delay the firmware
   * is ready again (`SPAD2` bit 0). Clearing `SPAD2` first (`reset_fw_ready`) is the caller's
   * business, as in the kernel.
   */
  reset(): void {
    this.mmio.write32(X100_REG.RGCR, this.mmio.read32(X100_REG.RGCR) | X100_RGCR_RESET);
  }

  /** The card's state. */
  get cardState(): X100CardState {
    return this.#hw.cardState;
  }

  /** Number of host doorbells (4). */
  get numDoorbells(): number {
    return X100_HOST_NUM_DOORBELLS;
  }

  /** Stops interrupt delivery and drops the handlers (platform use, on close). */
  async close(): Promise<void> {
    await this.#irq.close();
  }

  /** Handlers installed on `src` (for tests and debug dumps). */
  handlerCount(src: number): number {
    if (!Number.isInteger(src))
      throw new MicError('EINVAL', `interrupt source ${String(src)} is not an integer`);
    return this.#irq.handlerCount(src);
  }
}
