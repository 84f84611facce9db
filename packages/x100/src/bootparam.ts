/**
 * The boot handshake's first step: the host allocates the device page (4096 bytes of host RAM,
 * mapped through the SMPT), initialises `mic_bootparam` at its start and writes the page's card
 * address to scratchpads 14/15; the card reads the scratchpads, maps the page and checks the
 * magic, failing with `EIO` on a mismatch.
 *
 * Only the fields the handshake needs are handled here; the full device page layouts belong to
 * `@mic/mic-common`.
 *
 * @see drivers/misc/mic/host/mic_boot.c (mic_bootparam_init)
 * @see drivers/misc/mic/card/mic_device.c (mic_dp_init)
 * @see include/uapi/linux/mic_common.h (struct mic_bootparam)
 */
import { MicError, checkInt } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { MIC_BOOTPARAM, MIC_DP_SIZE, MIC_MAGIC, X100_SPAD } from './constants.js';
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
 * Initialises `mic_bootparam` at the start of `dp` (`mic_bootparam_init`): magic 0xC0FFEE00,
 * `h2c_config_db` -1, `node_id`, both SCIF doorbells -1, both SCIF addresses 0. The rest of the
 * page is left alone.
 * @param nodeId - the card's SCIF node id (`mdev->id + 1`, 1–255)
 */
export function bootparamInit(dp: Memory, nodeId: number): void {
  checkInt('node id', nodeId, 1, 255);
  dp.writeU8(MIC_BOOTPARAM.H2C_CONFIG_DB, 0xff);
  dp.writeU8(MIC_BOOTPARAM.NODE_ID, nodeId);
  dp.writeU8(MIC_BOOTPARAM.H2C_SCIF_DB, 0xff);
  dp.writeU8(MIC_BOOTPARAM.C2H_SCIF_DB, 0xff);
  dp.writeU64(MIC_BOOTPARAM.SCIF_HOST_DMA_ADDR, 0);
  dp.writeU64(MIC_BOOTPARAM.SCIF_CARD_DMA_ADDR, 0);
  // The magic last, with an atomic store: a card that sees it sees the rest.
  dp.storeU32(MIC_BOOTPARAM.MAGIC, MIC_MAGIC);
}

/**
 * Allocates the device page in host RAM, maps it through the SMPT and initialises its
 * bootparam (`mic_dp_init` + `mic_bootparam_init` on the host). Write its address to the
 * scratchpads with {@link writeDpAddress} before booting the card.
 */
export function hostDpInit(host: X100HostView, nodeId: number): DevicePage {
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
  const magic = dp.loadU32(MIC_BOOTPARAM.MAGIC);
  if (magic !== MIC_MAGIC) {
    throw new MicError('EIO', `bootparam magic mismatch 0x${magic.toString(16)}`, {
      details: { magic, expected: MIC_MAGIC },
    });
  }
  return dp;
}
