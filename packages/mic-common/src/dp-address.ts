/**
 * The device page address in the scratchpad pair: the host writes the low 32 bits of the page's
 * card-visible address to `MIC_DPLO_SPAD` (14) and the high 32 bits to `MIC_DPHI_SPAD` (15); the
 * card reads them back and maps the page. The host and the card driver use this one codec.
 *
 * @see drivers/misc/mic/host/mic_x100.c (`mic_x100_write_spad(mdev, MIC_DPLO_SPAD, ...)`)
 * @see drivers/misc/mic/card/mic_device.c (`mic_dp_init`: `lo | hi << 32`)
 */
import { checkAddr } from '@mic/errors';

/** The two scratchpad values of a device page address. */
export interface DpAddressSpads {
  /** `MIC_DPLO_SPAD`: bits 31:0. */
  readonly lo: number;
  /** `MIC_DPHI_SPAD`: bits 63:32. */
  readonly hi: number;
}

/**
 * Splits a device page address into its scratchpad values.
 * @throws MicError EINVAL for an address that is not a non-negative safe integer
 */
export function encodeDpAddress(addr: number): DpAddressSpads {
  checkAddr('device page address', addr);
  return { lo: addr % 2 ** 32, hi: Math.floor(addr / 2 ** 32) };
}

/**
 * The device page address from its scratchpad values (each taken as a u32). Values from the
 * registers are not checked here: whoever maps the address checks where it points.
 */
export function decodeDpAddress(lo: number, hi: number): number {
  return (lo >>> 0) + (hi >>> 0) * 2 ** 32;
}
