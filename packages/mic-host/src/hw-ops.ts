/**
 * The host's implementations of the bus hardware ops on the x100 model: `VopHwOps` and
 * `ScifHwOps` (doorbells, device page, the aperture as remote memory) and `MbusHwOps` (DMA
 * channel interrupts).
 *
 * @see drivers/misc/mic/host/mic_boot.c (`vop_hw_ops`, `scif_hw_ops`, `mbus_hw_ops`)
 * @see drivers/misc/mic/host/mic_x100.c (`mic_x100_send_intr`, `mic_x100_intr_workarounds`)
 */
import { type HostDoorbellAllocator, type IrqHandler, type MicIrq, NO_DOORBELL } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import type { Memory } from '@mic/memory';
import type { MbusHwOps } from '@mic/mic-bus';
import type { ScifHwOps } from '@mic/scif-bus';
import type { VopHwOps } from '@mic/vop-bus';
import type { X100HostView } from '@mic/x100';
import { MIC_INTR, type HostIrqTable } from './irq.js';

/** What the host's hw ops share: one per card. */
export interface HostOpsContext {
  readonly host: X100HostView;
  readonly irqs: HostIrqTable;
  /** `mic_next_db`: round robin over the 4 host doorbells, shared by SCIF and VOP. */
  readonly doorbells: HostDoorbellAllocator;
}

/** Throws EINVAL unless `pa`/`len` can name a remote range. */
function checkRange(pa: number, len: number): void {
  if (!Number.isSafeInteger(len) || len <= 0) {
    throw new MicError('EINVAL', `remap length ${String(len)} is not a positive integer`, {
      details: { len },
    });
  }
  if (!Number.isSafeInteger(pa) || pa < 0) {
    throw new MicError('EINVAL', `remap address ${String(pa)} is not a non-negative integer`, {
      details: { pa },
    });
  }
}

/**
 * The doorbell-link ops the host's SCIF and VOP devices share: doorbells 0–3 round robin,
 * handlers on the host interrupt line (acknowledged with `mic_x100_intr_workarounds`), card
 * doorbells rung through `APICICR`/`RDMASR`, and card memory reached through the aperture.
 */
class HostLinkOps {
  protected readonly ctx: HostOpsContext;
  readonly #mappings = new Set<Memory>();

  constructor(ctx: HostOpsContext) {
    this.ctx = ctx;
  }

  /** `mic_next_db`: the next host doorbell, round robin over 4. */
  nextDb(): number {
    return this.ctx.doorbells.next();
  }

  /**
   * `mic_request_threaded_irq(..., db, MIC_INTR_DB)`.
   * @throws MicError EINVAL for a doorbell outside 0–3 or a missing handler
   */
  requestIrq<D>(func: IrqHandler<D>, name: string, data: D, db: number): MicIrq {
    if (typeof func !== 'function')
      throw new MicError('EINVAL', `interrupt request '${name}' has no handler`);
    return this.ctx.irqs.request(MIC_INTR.DB, func, null, name, data, db);
  }

  /** `mic_free_irq`. @throws MicError EINVAL for a cookie that is not live */
  freeIrq<D>(cookie: MicIrq, data: D): void {
    this.ctx.irqs.free(cookie, data);
  }

  /** `mic_x100_intr_workarounds`: re-enables the sources auto-clear masked. */
  ackInterrupt(_num: number): void {
    this.ctx.host.ackInterrupt();
  }

  /**
   * Rings card doorbell `db` (`mic_x100_send_intr`).
   * @throws MicError EINVAL for -1 ("no doorbell") or a doorbell outside 0–15
   */
  sendIntr(db: number): void {
    if (db === NO_DOORBELL) {
      throw new MicError('EINVAL', `card doorbell ${String(db)} is "no doorbell": nothing to ring`, {
        details: { db },
      });
    }
    this.ctx.host.sendIntr(db);
  }

  /**
   * Card memory at card physical address `pa` through the aperture (`aper.va + pa`).
   * @throws MicError EINVAL for a bad length or address, EFAULT outside card memory
   */
  remap(pa: number, len: number): Memory {
    checkRange(pa, len);
    const va = this.ctx.host.apertureWindow(pa, len);
    this.#mappings.add(va);
    return va;
  }

  /** Undoes a {@link remap} (nothing to unmap in the aperture). @throws MicError EINVAL if not live */
  unmap(va: Memory): void {
    if (!this.#mappings.delete(va)) {
      throw new MicError('EINVAL', 'unmap of memory that is not a live remap of this host device');
    }
  }

  /** Mappings from {@link remap} not unmapped yet. */
  get liveMappings(): number {
    return this.#mappings.size;
  }
}

/**
 * The host's `VopHwOps`: its own device page, no remote page.
 * @see drivers/misc/mic/host/mic_boot.c (`vop_hw_ops`)
 */
export class HostVopHwOps extends HostLinkOps implements VopHwOps {
  readonly #dp: Memory;

  /** @param dp - the host's device page (`mdev->dp`) */
  constructor(ctx: HostOpsContext, dp: Memory) {
    super(ctx);
    this.#dp = dp;
  }

  /** The host has no remote device page (`NULL`). */
  getRemoteDp(): Memory | null {
    return null;
  }

  /** The host's device page. */
  getDp(): Memory | null {
    return this.#dp;
  }
}

/**
 * The host's `ScifHwOps` (no `sendP2pIntr`: only cards ring peers).
 * @see drivers/misc/mic/host/mic_boot.c (`scif_hw_ops`)
 */
export class HostScifHwOps extends HostLinkOps implements ScifHwOps {}

/**
 * The host's `MbusHwOps` for the DMA device: channel interrupts at host source 8 + channel.
 * @see drivers/misc/mic/host/mic_boot.c (`mbus_hw_ops`)
 */
export class HostMbusHwOps implements MbusHwOps {
  readonly #ctx: HostOpsContext;

  constructor(ctx: HostOpsContext) {
    this.#ctx = ctx;
  }

  /**
   * `mic_request_threaded_irq(..., intr_src, MIC_INTR_DMA)`: `intrSrc` is the channel (0–7).
   * @throws MicError EINVAL for another channel or when both functions are null
   */
  requestThreadedIrq<D>(
    handler: IrqHandler<D> | null,
    threadFn: IrqHandler<D> | null,
    name: string,
    data: D,
    intrSrc: number,
  ): MicIrq {
    return this.#ctx.irqs.request(MIC_INTR.DMA, handler, threadFn, name, data, intrSrc);
  }

  /** `mic_free_irq`. @throws MicError EINVAL for a cookie that is not live */
  freeIrq<D>(cookie: MicIrq, data: D): void {
    this.#ctx.irqs.free(cookie, data);
  }

  /** `mic_x100_intr_workarounds`. */
  ackInterrupt(_num: number): void {
    this.#ctx.host.ackInterrupt();
  }
}
