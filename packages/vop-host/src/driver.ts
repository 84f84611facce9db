/**
 * The `vop` driver on the host (`vop_driver` with `dnode > 0`): it probes the host-role VOP
 * device each card's driver registers at card start, making that card's control device
 * (`/dev/vop_virtio<index>`), and removes it at card stop (`vop_host_uninit`).
 *
 * @see drivers/misc/mic/vop/vop_main.c `vop_driver_probe`, `vop_driver_remove`
 */
import { MicError } from '@mic/errors';
import { VOP_DEV_ANY_ID, VOP_DEV_TRNSP, type VopDevice, type VopDriver, vopRole } from '@mic/vop-bus';
import { VopHostControl, type VopHostOptions } from './control.js';

/** What {@link VopHostDriver.subscribe} reports. */
export type VopHostEvent =
  | { readonly type: 'control-added'; readonly control: VopHostControl }
  | { readonly type: 'control-removed'; readonly control: VopHostControl };

/**
 * The host side of VOP as a VOP bus driver. Register it on the host's VOP bus; each card's
 * control device appears when the card starts.
 *
 * @example
 * const vop = new VopHostDriver({ logger, clock });
 * await hostBuses.vop.registerDriver(vop);
 * // ... the card starts: mic-host registers its VOP device, vop.probe runs
 * const handle = vop.control(0)!.open();
 * await handle.addDevice(consoleBlock);
 */
export class VopHostDriver implements VopDriver {
  readonly name = 'vop';
  readonly idTable = Object.freeze([
    Object.freeze({ device: VOP_DEV_TRNSP, vendor: VOP_DEV_ANY_ID }),
    Object.freeze({ device: 0, vendor: 0 }),
  ]);
  readonly #options: VopHostOptions;
  readonly #controls = new Map<VopDevice, VopHostControl>();
  readonly #listeners = new Set<(e: VopHostEvent) => void>();

  constructor(options: VopHostOptions = {}) {
    this.#options = options;
  }

  /** `vop_driver_probe`, host role. Throws ENODEV for a card-role device (dnode 0). */
  probe(vpdev: VopDevice): void {
    if (vopRole(vpdev) !== 'host') {
      throw new MicError(
        'ENODEV',
        `${vpdev.name} is a card-side VOP device (dnode 0): not the host driver's`,
      );
    }
    const control = new VopHostControl(vpdev, this.#options);
    this.#controls.set(vpdev, control);
    this.#emit({ type: 'control-added', control });
  }

  /** `vop_driver_remove`: `vop_host_uninit` of the card's control device. */
  async remove(vpdev: VopDevice): Promise<void> {
    const control = this.#controls.get(vpdev);
    if (!control) return;
    try {
      await control.uninit();
    } finally {
      this.#controls.delete(vpdev);
      this.#emit({ type: 'control-removed', control });
    }
  }

  /** The control device of card `index` (`/dev/vop_virtio<index>`), while the card runs. */
  control(index: number): VopHostControl | undefined {
    for (const c of this.#controls.values()) if (c.index === index) return c;
    return undefined;
  }

  /** Every live control device. */
  controls(): readonly VopHostControl[] {
    return [...this.#controls.values()];
  }

  /** Reports control devices coming and going; returns the unsubscribe function. */
  subscribe(listener: (e: VopHostEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(e: VopHostEvent): void {
    for (const l of this.#listeners) l(e);
  }
}
