/**
 * Numbers of the host driver that the x100 model leaves to it.
 *
 * @see drivers/misc/mic/host/mic_device.h
 * @see drivers/misc/mic/host/mic_x100.c
 */

/** Most cards one host driver serves (`MIC_MAX_NUM_DEVS`). */
export const MIC_MAX_NUM_DEVS = 128;

/** How long the host waits after setting the reset bit (`mic_x100_hw_reset`: `msleep(1000)`). */
export const MIC_RESET_SLEEP_MS = 1000;

/**
 * Host physical address of card `id`'s aperture BAR (BAR0) in this model: the x100 model has no
 * PCI address space, so the driver places the BARs at fixed, aligned addresses (16 GiB apart),
 * the way firmware would assign them.
 */
export function aperBarAddress(id: number): number {
  return 0x38_0000_0000 + id * 0x4_0000_0000;
}

/** Host physical address of card `id`'s MMIO BAR (BAR4) in this model (1 MiB apart). */
export function mmioBarAddress(id: number): number {
  return 0x3f_0000_0000 + id * 0x10_0000;
}
