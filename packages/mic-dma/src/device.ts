/**
 * One X100 DMA engine as one side sees it (`struct mic_dma_device`): the mbus device it was
 * probed on, the side's four channels, the transfer limit and the dmaengine capabilities.
 *
 * @see drivers/dma/mic_x100_dma.c (mic_dma_dev_reg, mic_dma_init, mic_dma_register_dma_device)
 */
import type { Clock } from '@mic/clock';
import type { Logger } from '@mic/logger';
import { MBUS_DEV_DMA_MIC } from '@mic/mic-bus';
import type { MbusDevice } from '@mic/mic-bus';
import { MicError, checkInt, checkObject, formatValue } from '@mic/errors';
import { checkDrainTimeout, checkMbusDevice, checkRingSize } from './args.js';
import { MicDmaChan } from './chan.js';
import type { MicDmaChanContext } from './chan.js';
import {
  MIC_DMA_ALIGN_SHIFT,
  MIC_DMA_MAX_XFER_SIZE_CARD,
  MIC_DMA_MAX_XFER_SIZE_HOST,
  MIC_DMA_NUM_CHAN,
  MIC_DMA_OWNER,
  MIC_DMA_SBOX,
} from './constants.js';
import type { MicDmaOwner } from './constants.js';

/** What a DMA device can do (`dma_device.cap_mask`, `copy_align`). */
export interface MicDmaCapabilities {
  /** `DMA_MEMCPY`: always. */
  readonly memcpy: boolean;
  /**
   * `DMA_PRIVATE`: set on the host, whose channels are only handed out through an explicit
   * request (with a filter), never to general users.
   */
  readonly private: boolean;
  /** `copy_align`: log2 of the alignment copies need (6: 64 bytes). */
  readonly copyAlign: number;
}

/** What a device is built with. */
export interface MicDmaDeviceOptions {
  readonly ringSize: number;
  readonly drainTimeoutMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * The side's DMA engine (built by `MicDmaDriver.probe`). Its channels are
 * {@link MicDmaChan}s numbered 0–3 on the host, 4–7 on the card.
 */
export class MicDmaDevice {
  /** Position in the driver's device list (`dma<id>`). */
  readonly id: number;
  /** `dma<id>`. */
  readonly name: string;
  readonly mbdev: MbusDevice;
  /** Card-owned when probed on an `MBUS_DEV_DMA_MIC` device, host-owned otherwise. */
  readonly owner: MicDmaOwner;
  /** First hardware channel: 0 on the host, 4 on the card. */
  readonly startCh: number;
  /** Largest bytes per descriptor: 512 KiB on the host, 1 MiB − 64 on the card. */
  readonly maxXferSize: number;
  readonly capabilities: MicDmaCapabilities;
  /** The side's four channels, in channel order. */
  readonly channels: readonly MicDmaChan[];

  /** @throws MicError EINVAL for a device, id or options the driver could not use */
  constructor(mbdev: MbusDevice, id: number, options: MicDmaDeviceOptions) {
    checkMbusDevice('mbus device', mbdev);
    checkInt('DMA device id', id, 0, 0x7fffffff);
    checkObject('DMA device options', options);
    checkRingSize(options.ringSize);
    checkDrainTimeout(options.drainTimeoutMs);
    this.id = id;
    this.name = `dma${id}`;
    this.mbdev = mbdev;
    this.owner = mbdev.id.device === MBUS_DEV_DMA_MIC ? MIC_DMA_OWNER.MIC : MIC_DMA_OWNER.HOST;
    const host = this.owner === MIC_DMA_OWNER.HOST;
    this.startCh = host ? 0 : MIC_DMA_NUM_CHAN;
    this.maxXferSize = host ? MIC_DMA_MAX_XFER_SIZE_HOST : MIC_DMA_MAX_XFER_SIZE_CARD;
    this.capabilities = Object.freeze({ memcpy: true, private: host, copyAlign: MIC_DMA_ALIGN_SHIFT });
    const ctx: MicDmaChanContext = {
      mbdev,
      owner: this.owner,
      maxXferSize: this.maxXferSize,
      ringSize: options.ringSize,
      drainTimeoutMs: options.drainTimeoutMs,
      clock: options.clock,
      logger: options.logger.child(this.name),
    };
    this.channels = Object.freeze(
      Array.from(
        { length: MIC_DMA_NUM_CHAN },
        (_, i) => new MicDmaChan(ctx, this.startCh + i, `${this.name}chan${i}`),
      ),
    );
  }

  /** Requests every channel's interrupt (`mic_dma_init`), undoing them all on a failure. */
  setupIrqs(): void {
    const done: MicDmaChan[] = [];
    try {
      for (const ch of this.channels) {
        ch.setupIrq();
        done.push(ch);
      }
    } catch (err) {
      for (const ch of done.reverse()) ch.freeIrq();
      throw err;
    }
  }

  /** Frees every channel's interrupt (`mic_dma_uninit`). */
  freeIrqs(): void {
    for (const ch of this.channels) ch.freeIrq();
  }

  /** `DCR` and every channel's registers (the kernel's debugfs `mic_dma_reg`). */
  registers(): {
    readonly DCR: number;
    readonly channels: readonly (ReturnType<MicDmaChan['registers']> & { ch: number })[];
  } {
    return {
      DCR: this.mbdev.mmioVa.readU32(MIC_DMA_SBOX.DCR),
      channels: this.channels.map((c) => ({ ch: c.chanId, ...c.registers() })),
    };
  }
}

const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * True when a copy between offsets `off1` and `off2` of `len` bytes meets the device's copy
 * alignment (`is_dma_copy_aligned`); SCIF uses it to choose between DMA and the CPU.
 * @throws MicError EINVAL for a `dev` without capabilities, or offsets and a length that are
 * not non-negative integers
 */
export function isDmaCopyAligned(dev: MicDmaDevice, off1: number, off2: number, len: number): boolean {
  const copyAlign = (dev as Partial<MicDmaDevice> | null)?.capabilities?.copyAlign;
  if (typeof copyAlign !== 'number') {
    throw new MicError(
      'EINVAL',
      `DMA device ${formatValue(dev)} has no copy alignment (capabilities.copyAlign)`,
    );
  }
  // The cheap test first: SCIF asks this for every RMA transfer.
  if (!(isCount(off1) && isCount(off2) && isCount(len))) {
    for (const [what, v] of [
      ['first offset', off1],
      ['second offset', off2],
      ['length', len],
    ] as const) {
      if (!isCount(v)) {
        throw new MicError('EINVAL', `DMA copy ${what} ${formatValue(v)} is not a non-negative integer`);
      }
    }
  }
  const align = 2 ** copyAlign;
  return off1 % align === 0 && off2 % align === 0 && len % align === 0;
}
