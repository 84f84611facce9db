/**
 * The argument checks of the driver's entry points (issue 10): an mbus device as the driver, its
 * devices and channels use it, and the ring and drain settings. Each throws `EINVAL` naming the
 * argument and showing its value, before anything is allocated or requested.
 */
import { checkDeviceId, checkOps } from '@mic/bus-core';
import { MicError, checkInt, checkObject, formatValue } from '@mic/errors';
import { checkMemory } from '@mic/memory';
import type { MbusDevice } from '@mic/mic-bus';
import type { MicDmaChanContext } from './chan.js';
import {
  MIC_DMA_ALIGN_BYTES,
  MIC_DMA_MAX_NUM_CHAN,
  MIC_DMA_MAX_RING_SIZE,
  MIC_DMA_MAX_XFER_SIZE_CARD,
} from './constants.js';

/** Throws `EINVAL` unless `mbdev` has what the driver uses of an mbus device. */
export function checkMbusDevice(what: string, mbdev: unknown): asserts mbdev is MbusDevice {
  checkObject(what, mbdev);
  const d = mbdev as Partial<MbusDevice>;
  checkDeviceId(`${what} id`, d.id as MbusDevice['id']);
  checkMemory(`${what} mmioVa`, d.mmioVa);
  checkOps(`${what} hwOps`, d.hwOps, ['requestThreadedIrq', 'freeIrq', 'ackInterrupt']);
  checkOps(`${what} dmaOps`, d.dmaOps, ['alloc', 'free']);
}

/** Throws `EINVAL` unless `ringSize` is a descriptor count the ring can have (16–131 071). */
export function checkRingSize(ringSize: number): void {
  checkInt('DMA ring size', ringSize, 16, MIC_DMA_MAX_RING_SIZE);
}

/** Throws `EINVAL` unless `ms` is a finite number of milliseconds ≥ 0. */
export function checkDrainTimeout(ms: number): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new MicError(
      'EINVAL',
      `DMA drain timeout ${formatValue(ms)} ms is not a finite non-negative number`,
      {
        details: { drainTimeoutMs: formatValue(ms) },
      },
    );
  }
}

/** Throws `EINVAL` unless `ctx` is a channel context and `chanId` a channel number (0–7). */
export function checkChanContext(ctx: unknown, chanId: number): void {
  checkObject('DMA channel context', ctx);
  const c = ctx as Partial<MicDmaChanContext>;
  checkMbusDevice('DMA channel context mbus device', c.mbdev);
  checkInt(
    'DMA channel max transfer size',
    c.maxXferSize as number,
    MIC_DMA_ALIGN_BYTES,
    MIC_DMA_MAX_XFER_SIZE_CARD,
  );
  checkRingSize(c.ringSize as number);
  checkDrainTimeout(c.drainTimeoutMs as number);
  checkInt('DMA channel id', chanId, 0, MIC_DMA_MAX_NUM_CHAN - 1);
}
