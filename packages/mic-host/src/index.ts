/**
 * `@mic/mic-host`: the host-side MIC hardware driver on the x100 model. It implements every bus
 * `*HwOps` (VOP, SCIF, mbus, COSM) on an `X100HostView` and registers the devices on the buses
 * the caller owns, in the kernel's order, unwinding in reverse on failure.
 *
 * @see drivers/misc/mic/host/mic_main.c
 * @see drivers/misc/mic/host/mic_boot.c
 */
export { MIC_MAX_NUM_DEVS, MIC_RESET_SLEEP_MS, aperBarAddress, mmioBarAddress } from './constants.js';
export type { DmaChannelProvider, DmaDriverLoader } from '@mic/mic-bus';
export { hostDpInit, hostDpUninit, writeDpAddress } from './device-page.js';
export type { DevicePage } from './device-page.js';
export { HostDmaMapOps } from './dma-ops.js';
export { hostRam } from './host-ram.js';
export { MicHostDriver } from './driver.js';
export type { MicHostDriverOptions } from './driver.js';
export { BOOT_PARAMS_RAMDISK, MIC_CMDLINE_SIZE, checkBootConfig, loadFirmware } from './firmware.js';
export type { FirmwareLayout, FirmwareLoader } from './firmware.js';
export { MIC_HOST_PROBE_STEPS, MIC_HOST_START_STEPS } from './host.js';
export type { MicHost, MicHostBuses, MicHostOptions, MicHostStep } from './host.js';
export { HostMbusHwOps, HostScifHwOps, HostVopHwOps } from './hw-ops.js';
export type { HostOpsContext } from './hw-ops.js';
export { HostIrqTable, MIC_INTR } from './irq.js';
export type { MicIntrType } from './irq.js';
