/**
 * The SCIF hardware bus types: the device the MIC host and card drivers register for SCIF, its
 * hardware ops, and the driver that binds to it.
 *
 * @see drivers/misc/mic/bus/scif_bus.h
 */
import {
  ANY_ID,
  type BusDriver,
  type DmaChannel,
  type DmaMapOps,
  type IdTable,
  type IrqHandler,
  type MicIrq,
  type MicMw,
} from '@mic/bus-core';
import type { Memory } from '@mic/memory';

/** The SCIF device id (`MIC_SCIF_DEV`). */
export const MIC_SCIF_DEV = 1;

/** The id table wildcard (`SCIF_DEV_ANY_ID`). */
export const SCIF_DEV_ANY_ID = ANY_ID;

/** Most DMA channels a SCIF device carries (`MIC_MAX_DMA_CHAN`). */
export const MIC_MAX_DMA_CHAN = 4;

/** Largest SCIF node id: the management node 0 plus 128 cards (`MAX_SCIF_NODES - 1`). */
export const SCIF_MAX_NODE = 128;

/**
 * The hardware ops of a SCIF device (`struct scif_hw_ops`). One instance serves one device, so the
 * kernel's `sdev` argument is gone. Implemented by `mic-host`, `mic-card` and
 * {@link MockScifHwOps}; the contract is checked by `scifHwOpsCompliance` in
 * `@mic/hwops-compliance`.
 *
 * Doorbell numbers are local to the side that listens: `nextDb`/`requestIrq` work on this side's
 * doorbells, `sendIntr(db)` rings doorbell `db` of the node at the other end (`dnode`).
 *
 * @see drivers/misc/mic/bus/scif_bus.h `struct scif_hw_ops`
 */
export interface ScifHwOps {
  /**
   * Picks a local doorbell to listen on. x100 host: round-robin over 4; card: the least-used of
   * the first 8 of its 16, the lowest index on a tie. After a `requestIrq` on the returned doorbell, the next call
   * returns another one as long as some doorbell has no handler.
   */
  nextDb(): number;
  /**
   * Installs `func` on local doorbell `db`; `func(db, data)` runs asynchronously each time the
   * other end rings it. Returns the cookie for {@link freeIrq}. Throws `EINVAL` when `db` is not a
   * doorbell of this side.
   */
  requestIrq<D>(func: IrqHandler<D>, name: string, data: D, db: number): MicIrq;
  /** Removes the handler of `cookie`; it is not called after this returns. `EINVAL` if not live. */
  freeIrq<D>(cookie: MicIrq, data: D): void;
  /**
   * Acknowledges an interrupt; `scif_intr_handler` calls it first. On the x100 host it re-enables
   * the doorbells auto-clear masked (no further interrupt without it); on the card it does nothing.
   */
  ackInterrupt(num: number): void;
  /** Rings doorbell `db` of the node at the other end. `EINVAL` when it has no such doorbell (-1 included). */
  sendIntr(db: number): void;
  /**
   * Card only (absent on the host): rings doorbell `db` of a peer card through that card's MMIO
   * window `mw` (mapped from the `SCIF_NODE_ADD` payload; `mw.pa` is the host physical address of
   * its MMIO BAR). `EINVAL` when `mw` is not a card's MMIO window or `db` not one of its doorbells.
   */
  sendP2pIntr?(db: number, mw: MicMw): void;
  /**
   * Maps `len` bytes of remote memory at `pa` for CPU access. Host: `pa` is a card physical address
   * (`aper.va + pa`); card: `pa` is a host DMA address (SMPT window). `EINVAL` for a length that is
   * not a positive integer or an address that is not a non-negative integer, `EFAULT` when the
   * range is not reachable.
   */
  remap(pa: number, len: number): Memory;
  /** Undoes a {@link remap}. `EINVAL` for memory that is not a live mapping of this side. */
  unmap(va: Memory): void;
}

/**
 * A SCIF hardware device (`struct scif_hw_dev`), one per host–card link on each side. Frozen.
 *
 * | field | host | card |
 * |---|---|---|
 * | `dnode` | card id + 1 | 0 |
 * | `snode` | 0 | its node id |
 * | `mmio` | the card's MMIO BAR | its own SBOX MMIO |
 * | `aper` | the card's aperture BAR | `null` |
 * | `dp` | the device page | `null` |
 * | `rdp` | `null` | the host's device page, mapped |
 *
 * @see drivers/misc/mic/bus/scif_bus.h `struct scif_hw_dev`
 */
export interface ScifHwDev {
  /** `scif-dev%u` of {@link dnode}. */
  readonly name: string;
  readonly hwOps: ScifHwOps;
  /** `{ device: MIC_SCIF_DEV, vendor: SCIF_DEV_ANY_ID }`. */
  readonly id: { readonly device: number; readonly vendor: number };
  readonly dmaOps: DmaMapOps;
  readonly mmio: MicMw;
  readonly aper: MicMw | null;
  /** The node this device talks to. */
  readonly dnode: number;
  /** This node's own id. */
  readonly snode: number;
  readonly dp: Memory | null;
  readonly rdp: Memory | null;
  /** DMA channels for SCIF on this link (`dma_ch`, `num_dma_ch`), at most {@link MIC_MAX_DMA_CHAN}. */
  readonly dmaCh: readonly DmaChannel[];
  /** DMA addresses given to the engine are card-relative (both x100 sides pass true). */
  readonly cardRelDa: boolean;
}

/**
 * What `ScifBus.registerDevice` takes: the arguments of `scif_register_device(pdev, id, dma_ops,
 * hw_ops, dnode, snode, mmio, aper, dp, rdp, chan, num_chan, card_rel_da)`.
 *
 * @see drivers/misc/mic/bus/scif_bus.c `scif_register_device`
 */
export interface ScifHwDevParams {
  /** Device id, {@link MIC_SCIF_DEV}. */
  readonly id: number;
  readonly dmaOps: DmaMapOps;
  readonly hwOps: ScifHwOps;
  readonly dnode: number;
  readonly snode: number;
  readonly mmio: MicMw;
  readonly aper: MicMw | null;
  readonly dp: Memory | null;
  readonly rdp: Memory | null;
  readonly dmaCh: readonly DmaChannel[];
  readonly cardRelDa: boolean;
}

/**
 * A SCIF hardware driver (`struct scif_driver`). The SCIF driver's table is
 * `[{ device: MIC_SCIF_DEV, vendor: SCIF_DEV_ANY_ID }, { device: 0, vendor: 0 }]`.
 *
 * @see drivers/misc/mic/bus/scif_bus.h `struct scif_driver`
 */
export interface ScifDriver extends BusDriver<ScifHwDev> {
  readonly idTable: IdTable;
}
