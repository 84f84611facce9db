/**
 * The card's side of the boot handshake's first step (`mic_dp_init` on the card): read the device
 * page's address from scratchpads 14/15, map the page through the SMPT and check
 * `mic_bootparam.magic`.
 *
 * @see drivers/misc/mic/card/mic_device.c (mic_dp_init)
 * @see include/uapi/linux/mic_common.h (struct mic_bootparam)
 */
import type { Memory } from '@mic/memory';
import {
  MIC_BOOTPARAM_OFFSETS,
  MIC_DP_SIZE,
  MIC_DPHI_SPAD,
  MIC_DPLO_SPAD,
  bootparamCheckMagic,
  decodeDpAddress,
} from '@mic/mic-common';
import type { X100CardView } from '@mic/x100';

/** Reads the device page's card address from `SPAD14/15`. @throws MicError ENODEV after a reset */
export function readDpAddress(card: X100CardView): number {
  return decodeDpAddress(card.readSpad(MIC_DPLO_SPAD), card.readSpad(MIC_DPHI_SPAD));
}

/**
 * Maps the host's device page and checks its magic.
 * @returns the mapped device page
 * @throws MicError EFAULT when the address is not mapped, EIO on a magic mismatch, ENODEV after a
 * card reset
 */
export function cardDpInit(card: X100CardView): Memory {
  const dp = card.cardMap(readDpAddress(card), MIC_DP_SIZE);
  // Acquire: the host stores the magic last (bootparamInit).
  dp.loadU32(MIC_BOOTPARAM_OFFSETS.magic);
  bootparamCheckMagic(dp);
  return dp;
}
