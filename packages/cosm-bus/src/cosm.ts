/**
 * The COSM (coprocessor OS state management) bus types: one device per card on the host, driven
 * by the COSM driver through its hardware ops.
 *
 * @see drivers/misc/mic/bus/cosm_bus.h
 */
import type { BusDriver, MicMw } from '@mic/bus-core';

/**
 * The boot settings the COSM driver keeps per card (set through sysfs) and hands to
 * {@link CosmHwOps.start}; the kernel reads them from `cdev->firmware` etc. inside `_mic_start`.
 */
export interface CosmBootConfig {
  /** Firmware (card kernel) name, resolved by the hardware driver's firmware loader. */
  readonly firmware: string | null;
  /** Ramdisk name, or null for none. */
  readonly ramdisk: string | null;
  /** Extra kernel command line. */
  readonly cmdline: string | null;
  /** `linux` (x100 supports only this) or `flash`. */
  readonly bootmode: string | null;
}

/** Family strings `family()` returns (without the sysfs newline). */
export const COSM_FAMILY = {
  X100: 'x100',
  UNKNOWN: 'Unknown',
} as const;

/** Stepping strings by PCI revision id; any other revision is `??`. */
export const COSM_STEPPINGS: Readonly<Record<number, string>> = Object.freeze({
  0x00: 'A0',
  0x10: 'B0',
  0x11: 'B1',
  0x20: 'C0',
});

/**
 * The stepping string of a PCI revision id (`A0`, `B0`, `B1`, `C0`, else `??`).
 *
 * @see drivers/misc/mic/host/mic_boot.c `_mic_stepping`
 */
export function steppingName(revision: number): string {
  return COSM_STEPPINGS[revision] ?? '??';
}

/**
 * The hardware ops of a COSM device (`struct cosm_hw_ops`), implemented by `mic-host` per card and
 * by {@link MockCosmHwOps}; checked by `cosmHwOpsCompliance` in `@mic/hwops-compliance`. The COSM
 * driver serialises all calls per device (its `cosm_mutex`). The kernel's `cdev` argument is gone.
 *
 * @see drivers/misc/mic/bus/cosm_bus.h `struct cosm_hw_ops`
 */
export interface CosmHwOps {
  /** Triggers a card reset (host: clear the firmware-ready scratchpad, set RGCR bit 0, wait 1 s). */
  reset(): Promise<void>;
  /** Forces a reset (on x100 the same as {@link reset}). */
  forceReset(): Promise<void>;
  /** Tells the hardware driver a reset finished, with the new `enum mic_states` value. Absent on the x100 host. */
  postReset?(state: number): void;
  /** True when the card's firmware is ready for an OS download (host: SPAD2 bit 0). */
  ready(): boolean;
  /**
   * Boots the card (`_mic_start`): registers the DMA, SCIF and VOP devices, loads firmware, command
   * line and ramdisk into the aperture and sends the boot interrupt; errors unwind in reverse.
   * `id` is the COSM device index. Rejects with `EINVAL` for bootmode `flash` (unsupported on x100)
   * or a missing firmware name.
   */
  start(id: number, boot: CosmBootConfig): Promise<void>;
  /**
   * Prepares the card for a reset (`_mic_stop`): unregisters the VOP, SCIF and DMA devices and
   * reinitialises the boot parameters. `force` is true when the card is not expected to cooperate.
   */
  stop(force: boolean): Promise<void>;
  /** The hardware family: `x100` or `Unknown` (the sysfs attribute adds the newline). */
  family(): string;
  /** The stepping: `A0`, `B0`, `B1`, `C0` or `??`. */
  stepping(): string;
  /** The card's aperture as the host sees it (used to read the card's log buffer), or null. */
  aper(): MicMw | null;
}

/**
 * A COSM device (`struct cosm_device`), as the bus knows it. The COSM driver's state (card state,
 * shutdown status, sysfs settings, SCIF endpoint) lives in the driver, keyed by this device.
 * Frozen.
 *
 * @see drivers/misc/mic/bus/cosm_bus.h `struct cosm_device`
 */
export interface CosmDevice {
  /** `cosm-dev%u` of {@link index}. */
  readonly name: string;
  /** The lowest free index at registration (an IDA); equals the SCIF node id minus 1. */
  readonly index: number;
  readonly hwOps: CosmHwOps;
}

/** What `CosmBus.registerDevice` takes: the arguments of `cosm_register_device(pdev, hw_ops)`. */
export interface CosmDeviceParams {
  readonly hwOps: CosmHwOps;
}

/**
 * A COSM driver (`struct cosm_driver`). The bus has no match function: a driver binds every device.
 *
 * @see drivers/misc/mic/bus/cosm_bus.h `struct cosm_driver`
 */
export type CosmDriver = BusDriver<CosmDevice>;
