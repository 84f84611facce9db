/**
 * The host's side of the boot handshake's first step: the device page is 4096 bytes of host RAM,
 * mapped for the card (the host's IOMMU and the SMPT, `mic_map_single`), with `mic_bootparam` at its start; its card-visible address goes to
 * scratchpads 14/15 (`MIC_DPLO_SPAD`/`MIC_DPHI_SPAD`), where the card driver reads it.
 *
 * The layouts (`mic_bootparam`, `MIC_DP_SIZE`) and the scratchpad codec come from `@mic/mic-common`.
 *
 * @see drivers/misc/mic/host/mic_main.c (mic_dp_init, mic_dp_uninit)
 * @see drivers/misc/mic/host/mic_boot.c (mic_bootparam_init)
 * @see include/uapi/linux/mic_common.h (struct mic_bootparam)
 */
import { checkInt } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { MIC_DP_SIZE, MIC_DPHI_SPAD, MIC_DPLO_SPAD, bootparamInit, encodeDpAddress } from '@mic/mic-common';
import type { X100HostView } from '@mic/x100';
import { freeUnmapped, hostRam } from './host-ram.js';

/** The device page as the host holds it (`mdev->dp`, `mdev->dp_dma_addr`). */
export interface DevicePage {
  /** Host DMA address of the page. */
  readonly dmaAddr: number;
  /** Card-visible address (through the SMPT), what goes to `SPAD14/15`. */
  readonly micAddr: number;
  /** The 4096 bytes. */
  readonly mem: Memory;
}

/**
 * Allocates the device page in host RAM, maps it for the card (`mic_map_single`: the host's
 * IOMMU and the SMPT) and initialises its
 * bootparam (`mic_dp_init` + `mic_bootparam_init`). Write its address to the scratchpads with
 * {@link writeDpAddress} before booting the card.
 * @throws MicError EINVAL for a node id outside 1–255, ENOMEM when host RAM is exhausted, ENOSPC
 * when no SMPT entry is free (nothing is left allocated then)
 */
export function hostDpInit(host: X100HostView, nodeId: number): DevicePage {
  checkInt('node id', nodeId, 1, 255);
  const ram = hostRam(host);
  const page = ram.alloc(MIC_DP_SIZE, 4096);
  let micAddr: number;
  try {
    micAddr = host.mapSingle(page.offset, MIC_DP_SIZE);
  } catch (err) {
    ram.free(page.offset);
    throw err;
  }
  bootparamInit(page.mem, nodeId);
  return { dmaAddr: page.offset, micAddr, mem: page.mem };
}

/** Undoes {@link hostDpInit}: unmaps and frees the page (`mic_dp_uninit`). */
export function hostDpUninit(host: X100HostView, dp: DevicePage): void {
  host.unmapSingle(dp.micAddr, MIC_DP_SIZE);
  freeUnmapped(host, dp.dmaAddr, MIC_DP_SIZE);
}

/**
 * Writes the device page's card address to `SPAD14` (low 32 bits) and `SPAD15` (high), as
 * `_mic_start` does before the bootstrap interrupt.
 * @throws MicError EINVAL for an address that is not a non-negative safe integer
 */
export function writeDpAddress(host: X100HostView, micAddr: number): void {
  const { lo, hi } = encodeDpAddress(micAddr);
  host.writeSpad(MIC_DPLO_SPAD, lo);
  host.writeSpad(MIC_DPHI_SPAD, hi);
}
