/**
 * The virtio device model, like Linux `drivers/virtio/virtio.c`: a virtio bus on which a
 * transport registers {@link VirtioDevice}s and drivers ({@link VirtioDriver}) bind by device id,
 * with the feature negotiation and status sequence of virtio 1.2 §3.1.1.
 *
 * It is transport-neutral. A transport implements {@link VirtioConfigOps} (`struct
 * virtio_config_ops`): the device's features, config space, status, reset, and its queues. VOP
 * (`@mic/vop-card`, the card side of `drivers/misc/mic/vop/vop_main.c`) is one transport; the
 * in-process transport of this package ({@link InProcessTransport}) is another, for unit tests of
 * drivers and backends in one thread.
 *
 * The sequence of `register_virtio_device` and `virtio_dev_probe`:
 * 1. register: reset the device (a driver before may have left it in any state), set
 *    ACKNOWLEDGE;
 * 2. a driver whose id table matches: set DRIVER, read the device features, keep those the
 *    driver's feature table lists (its legacy table when the device does not offer VERSION_1) plus
 *    every transport feature the device offers (bits 28–37), call the driver's `validate`, let
 *    the transport finalize them (`finalize_features`, which drops transport features the ring
 *    does not implement);
 * 3. when VERSION_1 was negotiated: set FEATURES_OK and read the status back; a device that
 *    cleared it refuses the features (`ENODEV`). A legacy device (no VERSION_1, such as VOP's,
 *    whose device page carries 32 feature bits) skips this step, as Linux does;
 * 4. the driver's `probe`; afterwards DRIVER_OK is set if the driver did not set it itself
 *    (`virtio_device_ready`), and config-change notifications are enabled;
 * 5. any failure in 2–4 sets FAILED and leaves the device unbound with the reason.
 *
 * On remove: config changes are disabled, the driver's `remove` runs (it resets the device and
 * deletes its queues), and ACKNOWLEDGE is set again so that another driver may bind.
 *
 * @see drivers/virtio/virtio.c
 * @see include/linux/virtio.h, include/linux/virtio_config.h
 * @see virtio 1.2 §2.1 (status), §2.2 (feature bits), §3.1 (device initialization)
 */
import {
  Bus,
  type BusEvent,
  type BusOptions,
  type DeviceId,
  IndexAllocator,
  checkIdTable,
  formatModalias,
  matchIdTable,
} from '@mic/bus-core';
import { MicError, checkInt } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import type { Memory } from '@mic/memory';
import { VIRTIO_CONFIG_S, VIRTIO_F, featureBit, hasFeature } from './constants.js';
import type { UsedBuf, VirtqBuf, VirtqChain, Virtqueue } from './virtqueue.js';

/** The id table wildcard (`VIRTIO_DEV_ANY_ID`). */
export const VIRTIO_DEV_ANY_ID = 0xffffffff;

/** First and one past the last transport feature bit (`VIRTIO_TRANSPORT_F_START`, `_END`). */
export const VIRTIO_TRANSPORT_F_START = 28;
export const VIRTIO_TRANSPORT_F_END = 38;

/** A virtio device id (`struct virtio_device_id`): the device type and the vendor. */
export type VirtioDeviceId = DeviceId;

/** Memory the device can reach, as a transport hands it to drivers (`dma_alloc_coherent`). */
export interface VirtioDmaBuffer {
  /** The CPU view of the buffer. */
  readonly va: Memory;
  /** The address the device uses for it: what goes into descriptors. */
  readonly addr: number;
  readonly size: number;
}

/**
 * How a driver gets buffers the device can reach. On VOP these come from the card's DMA ops
 * (card memory at its physical address, which the host reaches through its aperture).
 */
export interface VirtioDmaOps {
  /** Zeroed memory of `size` bytes, 64-byte aligned (page-aligned from 4096 bytes). */
  alloc(size: number): VirtioDmaBuffer;
  /** Frees a buffer from {@link alloc}. */
  free(buf: VirtioDmaBuffer): void;
}

/** One entry of {@link VirtioDevice.findVqs} (`names[i]`, `callbacks[i]` of `find_vqs`). */
export interface VirtqueueInfo {
  /**
   * The queue's name. `null` asks for no queue at this position: the result has `null` there
   * and the position uses no queue index of the device (`queue_idx` in Linux 5.x).
   */
  readonly name: string | null;
  /** Runs when the device returned buffers (`vring_interrupt`), or `null` for none. */
  readonly callback?: ((vq: VirtioQueue) => void) | null;
}

/**
 * What a transport implements (`struct virtio_config_ops`). Calls that wait for the other side
 * (reset and queue setup on VOP are handshakes with the host) return promises; every wait is
 * bounded by the transport.
 */
export interface VirtioConfigOps {
  /**
   * Called once by {@link VirtioBus.registerDevice} with the device built around these ops,
   * before anything else: the transport keeps it to report config changes
   * ({@link VirtioDevice.configChanged}) and to run queue callbacks.
   */
  attach?(vdev: VirtioDevice): void;
  /** The device's feature bits (`get_features`). */
  getFeatures(): bigint;
  /**
   * Tells the device the features the driver accepted (`finalize_features`). Gets the features
   * the core negotiated and returns them as the transport finalized them (e.g. without transport
   * features the ring does not implement, see {@link vringTransportFeatures}).
   */
  finalizeFeatures(features: bigint): bigint;
  /** `length` bytes of config space at `offset` (`get`). Throws `EINVAL` outside the space. */
  getConfig(offset: number, length: number): Uint8Array;
  /** Writes config space (`set`). Throws `EINVAL` outside the space. */
  setConfig(offset: number, bytes: Uint8Array): void;
  /** Bytes of config space the device has. */
  readonly configSize: number;
  /** Config generation counter (`generation`), if the transport has one. */
  generation?(): number;
  /** The status byte (`get_status`). */
  getStatus(): number;
  /** Writes the status byte (`set_status`); 0 is not written here, it is {@link reset}. */
  setStatus(status: number): void;
  /** Resets the device (`reset`): status 0, queues stopped. */
  reset(): Promise<void>;
  /**
   * Sets up the queues (`find_vqs`). Returns one entry per info: a queue, or `null` where the
   * info's name is `null`. Throws `ENOENT` for more queues than the device has; on failure no
   * queue is left set up.
   */
  findVqs(vdev: VirtioDevice, infos: readonly VirtqueueInfo[]): Promise<(VirtioQueue | null)[]>;
  /** Tears every queue down (`del_vqs`). */
  delVqs(vdev: VirtioDevice): Promise<void>;
}

/**
 * The transport features the split ring of this package implements, kept by
 * `finalize_features`; other transport bits (28–37) are cleared, as `vring_transport_features`
 * does (RING_PACKED included: there is no packed ring here).
 *
 * @see drivers/virtio/virtio_ring.c `vring_transport_features`
 */
export function vringTransportFeatures(features: bigint): bigint {
  const keep = new Set<number>([
    VIRTIO_F.RING_INDIRECT_DESC,
    VIRTIO_F.RING_EVENT_IDX,
    VIRTIO_F.VERSION_1,
    VIRTIO_F.ACCESS_PLATFORM,
  ]);
  let f = features;
  for (let bit = VIRTIO_TRANSPORT_F_START; bit < VIRTIO_TRANSPORT_F_END; bit++) {
    if (!keep.has(bit)) f &= ~featureBit(bit);
  }
  return f;
}

/** What {@link VirtioBus.registerDevice} takes (`register_virtio_device` of a filled device). */
export interface VirtioDeviceParams {
  /** `{ device: type, vendor }`; the vendor defaults to 0. */
  readonly id: { readonly device: number; readonly vendor?: number };
  readonly config: VirtioConfigOps;
  readonly dma: VirtioDmaOps;
  /** Where the device sits, for logs (e.g. `vop-dev4294967295`). */
  readonly parent?: string;
}

/**
 * A virtio driver (`struct virtio_driver`): its id table, the feature bits it understands, and
 * its callbacks.
 */
export interface VirtioDriver {
  readonly name: string;
  /** Device ids it drives; matching stops at an entry with `device === 0`. */
  readonly idTable: readonly VirtioDeviceId[];
  /** Feature bit numbers the driver understands (`feature_table`). */
  readonly featureTable: readonly number[];
  /** Feature bits for legacy devices, when they differ (`feature_table_legacy`). */
  readonly featureTableLegacy?: readonly number[];
  /** Checks the negotiated features before they are finalized; may clear bits (`validate`). */
  validate?(vdev: VirtioDevice): void | Promise<void>;
  probe(vdev: VirtioDevice): void | Promise<void>;
  remove(vdev: VirtioDevice): void | Promise<void>;
  /** The device changed its config space (`config_changed`). */
  configChanged?(vdev: VirtioDevice): void;
}

/**
 * A virtio device on a {@link VirtioBus} (`struct virtio_device`). Drivers use its config
 * helpers, status helpers and {@link findVqs}; transports call {@link configChanged} when the
 * device announces a config change.
 */
export class VirtioDevice {
  /** `virtio<index>`. */
  readonly name: string;
  readonly index: number;
  readonly id: VirtioDeviceId;
  /** The transport. */
  readonly config: VirtioConfigOps;
  /** Where drivers get buffers the device can reach. */
  readonly dma: VirtioDmaOps;
  readonly parent: string | undefined;
  #features = 0n;
  #configEnabled = false;
  #configPending = false;
  #driver: VirtioDriver | undefined;
  readonly #log: Logger;

  /** @internal built by {@link VirtioBus.registerDevice} */
  constructor(index: number, params: VirtioDeviceParams, log: Logger) {
    this.index = index;
    this.name = `virtio${index}`;
    this.id = Object.freeze({ device: params.id.device, vendor: params.id.vendor ?? 0 });
    this.config = params.config;
    this.dma = params.dma;
    this.parent = params.parent;
    this.#log = log;
  }

  /** The negotiated features (0 until a driver's probe negotiated them). */
  get features(): bigint {
    return this.#features;
  }

  /** @internal set by the bus during negotiation */
  setFeatures(features: bigint): void {
    this.#features = features;
  }

  /**
   * Drops feature bit `bit` from the negotiated features (`__virtio_clear_bit`): for a driver's
   * `validate`, before the features are finalized, e.g. when the config field a feature needs
   * lies outside the device's config space.
   */
  clearFeature(bit: number): void {
    this.#features &= ~featureBit(bit);
  }

  /** True when feature bit `bit` was negotiated (`virtio_has_feature`). */
  hasFeature(bit: number): boolean {
    return hasFeature(this.#features, bit);
  }

  /** The driver bound to this device, if any. */
  get driver(): VirtioDriver | undefined {
    return this.#driver;
  }

  /** The status byte. */
  getStatus(): number {
    return this.config.getStatus();
  }

  /** Sets `bits` in the status byte (`virtio_add_status`). */
  addStatus(bits: number): void {
    this.config.setStatus(this.config.getStatus() | bits);
  }

  /** Sets DRIVER_OK: the driver is ready (`virtio_device_ready`). */
  ready(): void {
    const status = this.config.getStatus();
    if ((status & VIRTIO_CONFIG_S.DRIVER_OK) === 0) this.config.setStatus(status | VIRTIO_CONFIG_S.DRIVER_OK);
  }

  /** Resets the device (`virtio_reset_device`). */
  reset(): Promise<void> {
    return this.config.reset();
  }

  /**
   * Sets up queues (`virtio_find_vqs`). `T` is the token type the driver posts with its buffers.
   */
  async findVqs<T = unknown>(infos: readonly VirtqueueInfo[]): Promise<(VirtioQueue<T> | null)[]> {
    return (await this.config.findVqs(this, infos)) as (VirtioQueue<T> | null)[];
  }

  /** Tears down every queue (`del_vqs`). */
  delVqs(): Promise<void> {
    return this.config.delVqs(this);
  }

  /**
   * Reads `length` bytes of config space at `offset`. When the transport has a generation counter,
   * the read is repeated until the generation did not change around it (`virtio_cread_bytes`).
   */
  readConfig(offset: number, length: number): Uint8Array {
    const gen = this.config.generation?.bind(this.config);
    if (!gen) return this.config.getConfig(offset, length);
    for (;;) {
      const before = gen();
      const bytes = this.config.getConfig(offset, length);
      if (gen() === before) return bytes;
    }
  }

  /** A little-endian u8/u16/u32 of config space (`virtio_cread8/16/32`, legacy devices are LE here). */
  readConfigU8(offset: number): number {
    return this.readConfig(offset, 1)[0]!;
  }
  readConfigU16(offset: number): number {
    const b = this.readConfig(offset, 2);
    return b[0]! | (b[1]! << 8);
  }
  readConfigU32(offset: number): number {
    const b = this.readConfig(offset, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }
  /** A little-endian u64 of config space, exactly (`virtio_cread64`). */
  readConfigU64(offset: number): bigint {
    const b = this.readConfig(offset, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }
  /** Writes config space (`virtio_cwrite_bytes`). */
  writeConfig(offset: number, bytes: Uint8Array): void {
    this.config.setConfig(offset, bytes);
  }

  /**
   * The device changed its config space (`virtio_config_changed`): the driver's
   * `configChanged` runs now, or once the driver finished probing if it is still probing.
   */
  configChanged(): void {
    if (!this.#configEnabled) {
      this.#configPending = true;
      return;
    }
    const drv = this.#driver;
    if (!drv?.configChanged) return;
    try {
      drv.configChanged(this);
    } catch (err) {
      this.#log.warn('virtio config change handler failed', { device: this.name, driver: drv.name, err });
    }
  }

  /** @internal the bus binds a driver */
  bind(drv: VirtioDriver | undefined): void {
    this.#driver = drv;
  }

  /** @internal `virtio_config_enable` */
  enableConfig(): void {
    this.#configEnabled = true;
    if (this.#configPending) {
      this.#configPending = false;
      this.configChanged();
    }
  }

  /** @internal `virtio_config_disable` */
  disableConfig(): void {
    this.#configEnabled = false;
  }
}

/** Options of a {@link VirtioQueue}. */
export interface VirtioQueueInit<T> {
  readonly vdev: VirtioDevice;
  /** The queue index on the device. */
  readonly index: number;
  readonly name: string;
  /** The driver side of the ring. */
  readonly ring: Virtqueue<T>;
  /** Notifies the device (the transport's `notify`); returns false when it could not. */
  readonly notify: () => boolean;
  readonly callback?: ((vq: VirtioQueue<T>) => void) | null;
}

/**
 * A queue as a driver sees it (`struct virtqueue`): the ring's driver side, the transport's
 * notification and the driver's callback.
 */
export class VirtioQueue<T = unknown> {
  readonly vdev: VirtioDevice;
  readonly index: number;
  readonly name: string;
  readonly ring: Virtqueue<T>;
  readonly #notify: () => boolean;
  readonly #callback: ((vq: VirtioQueue<T>) => void) | null;
  #broken = false;

  constructor(init: VirtioQueueInit<T>) {
    this.vdev = init.vdev;
    this.index = init.index;
    this.name = init.name;
    this.ring = init.ring;
    this.#notify = init.notify;
    this.#callback = init.callback ?? null;
  }

  /** Queue size. */
  get num(): number {
    return this.ring.num;
  }

  /** Free descriptors (`vq->num_free`). */
  get numFree(): number {
    return this.ring.numFree;
  }

  /** True once the ring latched an error or the transport broke the queue. */
  get broken(): boolean {
    return this.#broken || this.ring.broken !== null;
  }

  /** Marks the queue broken (`virtio_break_device`): nothing more is posted or collected. */
  breakQueue(): void {
    this.#broken = true;
  }

  /** Posts a chain (`virtqueue_add_sgs`); see `Virtqueue.add`. Throws `EIO` when broken. */
  add(out: readonly VirtqBuf[], inBufs: readonly VirtqBuf[], token: T): void {
    if (this.#broken) throw new MicError('EIO', `virtqueue ${this.name} is broken`);
    this.ring.add(out, inBufs, token);
  }

  /** Posts several chains with one index update; see `Virtqueue.addMany`. */
  addMany(chains: readonly VirtqChain<T>[]): void {
    if (this.#broken) throw new MicError('EIO', `virtqueue ${this.name} is broken`);
    this.ring.addMany(chains);
  }

  /** Notifies the device when needed (`virtqueue_kick`); false when the notification failed. */
  kick(): boolean {
    if (!this.ring.kickPrepare()) return true;
    return this.notify();
  }

  /** Notifies the device unconditionally (`virtqueue_notify`); false when it failed. */
  notify(): boolean {
    if (this.broken) return false;
    if (!this.#notify()) {
      this.#broken = true;
      return false;
    }
    return true;
  }

  /** The next used buffer, or null (`virtqueue_get_buf`). */
  getBuf(): UsedBuf<T> | null {
    if (this.#broken) return null;
    return this.ring.getBuf();
  }

  /** See `Virtqueue.disableCb`. */
  disableCb(): void {
    this.ring.disableCb();
  }

  /** Re-enables callbacks; false when buffers arrived meanwhile (`virtqueue_enable_cb`). */
  enableCb(): boolean {
    return this.ring.enableCb();
  }

  /** See `Virtqueue.enableCbDelayed`. */
  enableCbDelayed(): boolean {
    return this.ring.enableCbDelayed();
  }

  /** Takes back every buffer still posted (`virtqueue_detach_unused_buf`), after a reset. */
  detachUnused(): T[] {
    return this.ring.detachUnused();
  }

  /**
   * The device signalled this queue (`vring_interrupt`): runs the callback when buffers came
   * back. Returns false when there was nothing to do (`IRQ_NONE`).
   */
  interrupt(): boolean {
    if (!this.ring.moreUsed()) return false;
    if (this.broken) return true;
    this.#callback?.(this);
    return true;
  }
}

/** Options of a {@link VirtioBus}. */
export interface VirtioBusOptions extends BusOptions {
  /** Bus name (default `virtio`). */
  readonly name?: string;
}

/**
 * The virtio bus: transports register devices, drivers bind by id table and negotiate features
 * (see the module comment for the sequence). Devices are named `virtio<n>` with the lowest free
 * `n`; the modalias is `virtio:d%08Xv%08X`.
 *
 * @example
 * const bus = new VirtioBus();
 * await bus.registerDriver(myDriver); // { name, idTable: [{ device: VIRTIO_ID.CONSOLE, vendor: VIRTIO_DEV_ANY_ID }], featureTable: [], probe, remove }
 * const vdev = await bus.registerDevice(transport.params()); // probes myDriver
 * await bus.unregisterDevice(vdev); // myDriver.remove
 */
export class VirtioBus {
  readonly name: string;
  readonly #bus: Bus<VirtioDevice, VirtioDriver, VirtioDevice>;
  readonly #ida = new IndexAllocator();
  readonly #log: Logger;

  constructor(options: VirtioBusOptions = {}) {
    this.name = options.name ?? 'virtio';
    this.#log = options.logger ?? nullLogger;
    this.#bus = new Bus<VirtioDevice, VirtioDriver, VirtioDevice>(
      {
        name: this.name,
        create: (dev) => dev,
        checkDriver: (drv) => checkDriver(drv),
        match: (dev, drv) => matchIdTable(drv.idTable, dev.id) !== undefined,
        probe: (dev, drv) => this.#probe(dev, drv),
        remove: (dev, drv) => this.#remove(dev, drv),
        release: (dev) => {
          if (this.#ida.has(dev.index)) this.#ida.remove(dev.index);
        },
        modalias: (dev) => formatModalias('virtio', dev.id),
      },
      options,
    );
  }

  /**
   * Registers a device (`register_virtio_device`): names it, resets it, sets ACKNOWLEDGE and
   * binds a matching driver. A failed probe leaves the device registered and unbound
   * ({@link probeError}). Throws when the reset fails (the device is not registered then).
   */
  async registerDevice(params: VirtioDeviceParams): Promise<VirtioDevice> {
    checkParams(params);
    const index = this.#ida.get();
    const dev = new VirtioDevice(index, params, this.#log);
    try {
      dev.config.attach?.(dev);
      // "We always start by resetting the device, in case a previous driver messed it up."
      await dev.config.reset();
      dev.addStatus(VIRTIO_CONFIG_S.ACKNOWLEDGE);
    } catch (err) {
      this.#ida.remove(index);
      throw err;
    }
    return this.#bus.registerDevice(dev);
  }

  /** Unregisters a device (`unregister_virtio_device`): its driver's remove runs first. */
  unregisterDevice(dev: VirtioDevice): Promise<void> {
    return this.#bus.unregisterDevice(dev);
  }

  /** Registers a driver (`register_virtio_driver`) and binds it to matching unbound devices. */
  registerDriver(drv: VirtioDriver): Promise<void> {
    return this.#bus.registerDriver(drv);
  }

  /** Unregisters a driver; its devices are removed in reverse bind order. */
  unregisterDriver(drv: VirtioDriver): Promise<void> {
    return this.#bus.unregisterDriver(drv);
  }

  /** Registered devices. */
  devices(): readonly VirtioDevice[] {
    return this.#bus.devices();
  }

  /** The driver bound to `dev`. */
  driverOf(dev: VirtioDevice): VirtioDriver | undefined {
    return this.#bus.driverOf(dev);
  }

  /** Why the last probe of `dev` failed, if it did. */
  probeError(dev: VirtioDevice): MicError | undefined {
    return this.#bus.probeError(dev);
  }

  /** `virtio:d%08Xv%08X` of a registered device. */
  modalias(dev: VirtioDevice): string | undefined {
    return this.#bus.modalias(dev);
  }

  /** Reports bus events (device added, bound, probe failed, unbound, ...). */
  subscribe(listener: (event: BusEvent<VirtioDevice, VirtioDriver>) => void): () => void {
    return this.#bus.subscribe(listener);
  }

  /** Resolves when no bus operation is running or queued. */
  idle(): Promise<void> {
    return this.#bus.idle();
  }

  /** `virtio_dev_probe`. */
  async #probe(dev: VirtioDevice, drv: VirtioDriver): Promise<void> {
    dev.addStatus(VIRTIO_CONFIG_S.DRIVER);
    try {
      const deviceFeatures = dev.config.getFeatures();
      const driverFeatures = featureMask(drv.featureTable);
      const legacyFeatures = drv.featureTableLegacy ? featureMask(drv.featureTableLegacy) : driverFeatures;
      let negotiated = hasFeature(deviceFeatures, VIRTIO_F.VERSION_1)
        ? driverFeatures & deviceFeatures
        : legacyFeatures & deviceFeatures;
      // Transport features are always preserved, for finalize_features to decide.
      for (let bit = VIRTIO_TRANSPORT_F_START; bit < VIRTIO_TRANSPORT_F_END; bit++) {
        if (hasFeature(deviceFeatures, bit)) negotiated |= featureBit(bit);
      }
      dev.setFeatures(negotiated);
      dev.bind(drv);
      if (drv.validate) await drv.validate(dev);
      dev.setFeatures(dev.config.finalizeFeatures(dev.features));
      if (dev.hasFeature(VIRTIO_F.VERSION_1)) {
        dev.addStatus(VIRTIO_CONFIG_S.FEATURES_OK);
        const status = dev.getStatus();
        if ((status & VIRTIO_CONFIG_S.FEATURES_OK) === 0) {
          throw new MicError('ENODEV', `virtio: device refuses features: status 0x${status.toString(16)}`, {
            details: { status, features: dev.features.toString(16) },
          });
        }
      }
      await drv.probe(dev);
      if ((dev.getStatus() & VIRTIO_CONFIG_S.DRIVER_OK) === 0) dev.ready();
      dev.enableConfig();
    } catch (err) {
      dev.bind(undefined);
      try {
        dev.addStatus(VIRTIO_CONFIG_S.FAILED);
      } catch (statusErr) {
        this.#log.warn('virtio: could not set FAILED', { device: dev.name, err: statusErr });
      }
      throw err;
    }
  }

  /** `virtio_dev_remove`. */
  async #remove(dev: VirtioDevice, drv: VirtioDriver): Promise<void> {
    dev.disableConfig();
    try {
      await drv.remove(dev);
    } finally {
      dev.bind(undefined);
      if (dev.getStatus() !== 0) {
        this.#log.warn('virtio: driver did not reset the device on remove', {
          device: dev.name,
          driver: drv.name,
          status: dev.getStatus(),
        });
      }
      dev.setFeatures(0n);
      // Acknowledge the device's existence again, for the next driver.
      dev.addStatus(VIRTIO_CONFIG_S.ACKNOWLEDGE);
    }
  }
}

function featureMask(table: readonly number[]): bigint {
  let mask = 0n;
  for (const bit of table) mask |= featureBit(bit);
  return mask;
}

function checkDriver(drv: VirtioDriver): void {
  checkIdTable(`virtio driver ${drv.name} id table`, drv.idTable);
  for (const table of [drv.featureTable, drv.featureTableLegacy ?? []]) {
    if (!Array.isArray(table)) {
      throw new MicError('EINVAL', `virtio driver ${drv.name}: feature table is not an array`);
    }
    for (const bit of table) checkInt(`virtio driver ${drv.name} feature bit`, bit, 0, 63);
  }
}

function checkParams(params: VirtioDeviceParams): void {
  if (typeof params !== 'object' || params === null) {
    throw new MicError('EINVAL', 'virtio device parameters are not an object');
  }
  checkInt('virtio device id', params.id?.device, 1, 0xffffffff);
  if (params.id.vendor !== undefined) checkInt('virtio vendor id', params.id.vendor, 0, 0xffffffff);
  for (const op of [
    'getFeatures',
    'finalizeFeatures',
    'getConfig',
    'setConfig',
    'getStatus',
    'setStatus',
    'reset',
    'findVqs',
    'delVqs',
  ] as const) {
    if (typeof params.config?.[op] !== 'function') {
      throw new MicError('EINVAL', `virtio config ops lack ${op}`);
    }
  }
  if (typeof params.dma?.alloc !== 'function' || typeof params.dma.free !== 'function') {
    throw new MicError('EINVAL', 'virtio dma ops lack alloc or free');
  }
}
