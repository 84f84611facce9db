/**
 * The boot handshake's first step: the host allocates the device page (4096 bytes of host RAM,
 * mapped through the SMPT), initialises `mic_bootparam` at its start and writes the page's card
 * address to scratchpads 14/15; the card reads the scratchpads, maps the page and checks the
 * magic, failing with `EIO` on a mismatch.
 *
 * The layouts (`mic_bootparam`, `MIC_DP_SIZE`, `MIC_MAGIC`) come from `@mic/mic-common`.
 *
 * @see drivers/misc/mic/host/mic_boot.c (mic_bootparam_init)
 * @see drivers/misc/mic/card/mic_device.c (mic_dp_init)
 * @see include/uapi/linux/mic_common.h (struct mic_bootparam)
 */
import { MicError, checkInt } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { MIC_BOOTPARAM_OFFSETS, MIC_DP_SIZE, bootparamCheckMagic, bootparamInit } from '@mic/mic-common';
import { X100_SPAD } from './constants.js';
import type { X100CardView } from './card-view.js';
import type { X100HostView } from './host-view.js';

/** The device page as the host holds it. */
export interface DevicePage {
  /** Host DMA address of the page. */
  readonly dmaAddr: number;
  /** Card-visible address (through the SMPT), what goes to `SPAD14/15`. */
  readonly micAddr: number;
  /** The 4096 bytes. */
  readonly mem: Memory;
}

/**
 * Allocates the device page in host RAM, maps it through the SMPT and initialises its
 * bootparam (`mic_dp_init` + `mic_bootparam_init` on the host). Write its address to the
 * scratchpads with {@link writeDpAddress} before booting the card.
 */
export function hostDpInit(host: X100HostView, nodeId: number): DevicePage {
  checkInt('node id', nodeId, 1, 255);
  const buf = host.allocDma(MIC_DP_SIZE, 4096);
  let micAddr: number;
  try {
    micAddr = host.smpt.map(buf.dmaAddr, MIC_DP_SIZE);
  } catch (err) {
    host.freeDma(buf);
    throw err;
  }
  bootparamInit(buf.mem, nodeId);
  return { dmaAddr: buf.dmaAddr, micAddr, mem: buf.mem };
}

/** Undoes {@link hostDpInit}: unmaps and frees the page (`mic_dp_uninit`). */
export function hostDpUninit(host: X100HostView, dp: DevicePage): void {
  host.smpt.unmap(dp.micAddr, MIC_DP_SIZE);
  host.freeDma(dp.dmaAddr);
}

/** Writes the device page's card address to `SPAD14` (low 32 bits) and `SPAD15` (high). */
export function writeDpAddress(host: X100HostView, micAddr: number): void {
  if (!Number.isSafeInteger(micAddr) || micAddr < 0) {
    throw new MicError('EINVAL', `device page address ${String(micAddr)} is not a non-negative safe integer`);
  }
  host.writeSpad(X100_SPAD.DPLO, micAddr % 2 ** 32);
  host.writeSpad(X100_SPAD.DPHI, Math.floor(micAddr / 2 ** 32));
}

/** Reads the device page's card address from `SPAD14/15`. */
export function readDpAddress(card: X100CardView): number {
  return card.readSpad(X100_SPAD.DPLO) + card.readSpad(X100_SPAD.DPHI) * 2 ** 32;
}

/**
 * The card's `mic_dp_init`: reads the device page address from the scratchpads, maps the page
 * and checks `mic_bootparam.magic`.
 * @returns the mapped device page
 * @throws MicError EFAULT when the address is not mapped, EIO on a magic mismatch
 */
export function cardDpInit(card: X100CardView): Memory {
  const dp = card.cardMap(readDpAddress(card), MIC_DP_SIZE);
  // Acquire: the host stores the magic last (bootparamInit).
  dp.loadU32(MIC_BOOTPARAM_OFFSETS.magic);
  bootparamCheckMagic(dp);
  return dp;
}
