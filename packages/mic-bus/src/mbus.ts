/**
 * The MIC virtual bus types: the DMA engine is not a PCIe function, so the host and card drivers
 * register a virtual `mbus_device` for it, and the x100 DMA driver binds to it.
 *
 * @see include/linux/mic_bus.h
 */
import {
  ANY_ID,
  type BusDriver,
  type DmaMapOps,
  type IdTable,
  type IrqHandler,
  type MicIrq,
} from '@mic/bus-core';
import type { Memory } from '@mic/memory';

/** The host's DMA device id (`MBUS_DEV_DMA_HOST`). */
export const MBUS_DEV_DMA_HOST = 2;

/** The card's DMA device id (`MBUS_DEV_DMA_MIC`). */
export const MBUS_DEV_DMA_MIC = 3;

/** The id table wildcard (`MBUS_DEV_ANY_ID`). */
export const MBUS_DEV_ANY_ID = ANY_ID;

/**
 * The hardware ops of an mbus device (`struct mbus_hw_ops`). One instance serves one device, so
 * the kernel's `mbdev` argument is gone. Implemented by `mic-host`, `mic-card` and
 * {@link MockMbusHwOps}; checked by `mbusHwOpsCompliance` in `@mic/hwops-compliance`.
 *
 * @see include/linux/mic_bus.h `struct mbus_hw_ops`
 */
export interface MbusHwOps {
  /**
   * Requests the interrupt of source `intrSrc` (for DMA: the channel number; host: source 8+ch,
   * card: the IRQ number). When the source fires, `handler(intrSrc, data)` runs; if it returns
   * `IRQ_RETURN.WAKE_THREAD`, or when `handler` is null, `threadFn(intrSrc, data)` runs after it.
   * Both run asynchronously, never inside the call that raised the interrupt. Returns the cookie
   * for {@link freeIrq}. Throws `EINVAL` when both functions are null or `intrSrc` is not a source
   * of this device, `ENOSPC` when no vector is left.
   */
  requestThreadedIrq<D>(
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    intrSrc: number,
  ): MicIrq;
  /** Releases the interrupt of `cookie`; no function of it runs afterwards. `EINVAL` if not live. */
  freeIrq<D>(cookie: MicIrq, data: D): void;
  /**
   * Acknowledges interrupt `num` in the handler (host: the x100 workarounds, which re-enable the
   * sources auto-clear masked, so no further interrupt arrives without it; card: nothing).
   */
  ackInterrupt(num: number): void;
}

/**
 * An mbus device (`struct mbus_device`). Frozen.
 *
 * @see include/linux/mic_bus.h `struct mbus_device`
 */
export interface MbusDevice {
  /** `mbus-dev%u` of {@link index}. */
  readonly name: string;
  /** The SBOX MMIO registers (host: the card's MMIO BAR; card: its own), where the DMA registers are. */
  readonly mmioVa: Memory;
  readonly hwOps: MbusHwOps;
  /** `{ device: MBUS_DEV_DMA_HOST | MBUS_DEV_DMA_MIC, vendor: MBUS_DEV_ANY_ID }`. */
  readonly id: { readonly device: number; readonly vendor: number };
  /** Position on the bus: the COSM id on the host, 0 on the card. */
  readonly index: number;
  /** DMA map ops for the DMA driver's rings (kernel: `dev.dma_ops`; direct ops on the card). */
  readonly dmaOps: DmaMapOps;
}

/**
 * What `MbusBus.registerDevice` takes: the arguments of `mbus_register_device(pdev, id, dma_ops,
 * hw_ops, index, mmio_va)`.
 *
 * @see drivers/misc/mic/bus/mic_bus.c `mbus_register_device`
 */
export interface MbusDeviceParams {
  /** {@link MBUS_DEV_DMA_HOST} or {@link MBUS_DEV_DMA_MIC}. */
  readonly id: number;
  readonly dmaOps: DmaMapOps;
  readonly hwOps: MbusHwOps;
  readonly index: number;
  readonly mmioVa: Memory;
}

/**
 * An mbus driver (`struct mbus_driver`): id table, probe, an optional `scan` run after a
 * successful probe, and remove. `mic_x100_dma`'s table is
 * `[{ device: MBUS_DEV_DMA_HOST, vendor: ANY }, { device: MBUS_DEV_DMA_MIC, vendor: ANY }, { device: 0, vendor: 0 }]`.
 *
 * @see include/linux/mic_bus.h `struct mbus_driver`
 */
export interface MbusDriver extends BusDriver<MbusDevice> {
  readonly idTable: IdTable;
  /** Runs after a successful probe; a failure is logged, the device stays bound. */
  scan?(dev: MbusDevice): void | Promise<void>;
}
