/**
 * The VOP (virtio over PCIe) bus types: the device the MIC host and card drivers register, its
 * hardware ops, and the driver that binds to it.
 *
 * @see drivers/misc/mic/bus/vop_bus.h
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

/** The only VOP device id (`VOP_DEV_TRNSP`). */
export const VOP_DEV_TRNSP = 1;

/** The id table wildcard (`VOP_DEV_ANY_ID`). */
export const VOP_DEV_ANY_ID = ANY_ID;

/** Size of the bounce buffer per vring (`VOP_INT_DMA_BUF_SIZE`, 64 KiB). */
export const VOP_INT_DMA_BUF_SIZE = 65536;

/**
 * The hardware ops of a VOP device (`struct vop_hw_ops`). One instance serves one device, so the
 * kernel's `vpdev` argument is gone. Implemented by `mic-host` (host role), `mic-card` (card role)
 * and {@link MockVopHwOps}; the contract is checked by `vopHwOpsCompliance` in
 * `@mic/hwops-compliance`.
 *
 * Doorbell numbers are local to the side that listens: `nextDb`/`requestIrq` work on this side's
 * doorbells, `sendIntr(db)` rings doorbell `db` of the other side.
 *
 * @see drivers/misc/mic/bus/vop_bus.h `struct vop_hw_ops`
 */
export interface VopHwOps {
  /**
   * Picks a local doorbell to receive interrupts on. x100 host: round-robin over 4; card: the
   * least-used of its doorbells. After a `requestIrq` on the returned doorbell, the next call
   * returns another one as long as some doorbell has no handler.
   */
  nextDb(): number;
  /**
   * Installs `func` on local doorbell `intrSrc`; `func(intrSrc, data)` runs asynchronously each
   * time the other side rings it. Returns the cookie for {@link freeIrq}. Throws `EINVAL` when
   * `intrSrc` is not a doorbell of this side.
   */
  requestIrq<D>(func: IrqHandler<D>, name: string, data: D, intrSrc: number): MicIrq;
  /**
   * Removes the handler of `cookie`; it is not called after this returns. Throws `EINVAL` for a
   * cookie that is not live (already freed, or not from this instance).
   */
  freeIrq<D>(cookie: MicIrq, data: D): void;
  /**
   * Acknowledges an interrupt, from inside the handler (host: the x100 interrupt workarounds, which
   * re-enable the doorbells auto-clear masked; card: nothing). Handlers call it first, as the
   * kernel's do, or the x100 host delivers no further interrupt.
   */
  ackInterrupt(num: number): void;
  /**
   * The peer's device page: the card's view of the host page (`mic_card_map` of the address in
   * SPAD 14/15). `null` on the host.
   */
  getRemoteDp(): Memory | null;
  /** This side's own device page (host: `mdev->dp`, `MIC_DP_SIZE` bytes). `null` on the card. */
  getDp(): Memory | null;
  /**
   * Rings doorbell `db` of the other side. Throws `EINVAL` when `db` is not a doorbell of the
   * other side, including -1 ("none": callers check it before ringing, as the kernel does).
   */
  sendIntr(db: number): void;
  /**
   * Maps `len` bytes of the other side's memory at address `pa` for CPU access. Host: `pa` is a
   * card physical address, reached through the aperture; card: `pa` is a DMA address the host
   * handed out (SMPT window). Throws `EINVAL` when `len` is not a positive integer or `pa` not a
   * non-negative integer, `EFAULT` when the range is not reachable.
   */
  remap(pa: number, len: number): Memory;
  /** Undoes a {@link remap}. Throws `EINVAL` for memory that is not a live mapping of this side. */
  unmap(va: Memory): void;
}

/**
 * A VOP device (`struct vop_device`). `dnode` chooses the role: 0 is the card, > 0 the host (card
 * index + 1). Frozen; drivers keep their own state elsewhere.
 *
 * @see drivers/misc/mic/bus/vop_bus.h `struct vop_device`
 */
export interface VopDevice {
  /** `vop-dev%u` of {@link index}; the card's index is -1, printed as 4294967295 as the kernel does. */
  readonly name: string;
  readonly hwOps: VopHwOps;
  /** `{ device: VOP_DEV_TRNSP, vendor: VOP_DEV_ANY_ID }`. */
  readonly id: { readonly device: number; readonly vendor: number };
  /** Destination node: 0 on the card, card index + 1 on the host. */
  readonly dnode: number;
  /** The card's aperture as the host sees it (card memory through BAR0); `null` on the card. */
  readonly aper: MicMw | null;
  /** The DMA channel for data copies (host: `dma_ch[0]`); `null` when there is none. */
  readonly dmaCh: DmaChannel | null;
  /** DMA map ops: host memory → card-visible address on the host, direct on the card. */
  readonly dmaOps: DmaMapOps;
  /** `dnode - 1`: the card index on the host, -1 on the card. */
  readonly index: number;
}

/**
 * What `VopBus.registerDevice` takes: the arguments of `vop_register_device(pdev, id, dma_ops,
 * hw_ops, dnode, aper, chan)`.
 *
 * @see drivers/misc/mic/bus/vop_bus.c `vop_register_device`
 */
export interface VopDeviceParams {
  /** Device id, {@link VOP_DEV_TRNSP}. */
  readonly id: number;
  readonly dmaOps: DmaMapOps;
  readonly hwOps: VopHwOps;
  readonly dnode: number;
  readonly aper: MicMw | null;
  readonly dmaCh: DmaChannel | null;
}

/**
 * A VOP driver (`struct vop_driver`): its id table, probe and remove. The `vop` driver's table is
 * `[{ device: VOP_DEV_TRNSP, vendor: VOP_DEV_ANY_ID }, { device: 0, vendor: 0 }]`.
 *
 * @see drivers/misc/mic/bus/vop_bus.h `struct vop_driver`
 */
export interface VopDriver extends BusDriver<VopDevice> {
  readonly idTable: IdTable;
}

/** The role of a VOP device: `dnode` 0 is the card, anything else the host. */
export function vopRole(dev: Pick<VopDevice, 'dnode'>): 'host' | 'card' {
  return dev.dnode === 0 ? 'card' : 'host';
}
