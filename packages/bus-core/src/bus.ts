/**
 * A small driver core: a bus holds devices and drivers, matches them, and calls probe and remove,
 * with the Linux driver model's rules (`drivers/base/dd.c`) as the MIC buses use them.
 *
 * - Registering a device tries the drivers in registration order; registering a driver tries the
 *   unbound devices in registration order. The first driver that matches and probes successfully
 *   binds the device.
 * - A probe failure leaves the device unbound and registered; the error is kept
 *   ({@link Bus.probeError}), logged and announced, and the next matching driver gets its chance.
 * - Unregistering a device calls its driver's remove first. Unregistering a driver removes its
 *   devices in reverse bind order; they stay registered, unbound.
 * - Every operation takes the bus lock, so they run one at a time in call order: a device
 *   unregistered while its probe is still running is removed right after the probe finishes.
 *   A probe or remove callback must therefore not *await* another operation of the same bus (it
 *   would wait for itself); starting one without awaiting it is fine: it runs next.
 *
 * @see drivers/misc/mic/bus/vop_bus.c
 * @see drivers/misc/mic/bus/mic_bus.c
 */
import { MicError, checkFunction, checkObject, errorMessage, formatValue, isMicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { AsyncMutex } from './mutex.js';

/** What a bus needs of a device: a unique name (`vop-dev0`, `mbus-dev1`, ...). */
export interface BusDevice {
  readonly name: string;
}

/**
 * What a bus needs of a driver. `probe` binds the driver to a device and may be async (drivers do
 * handshakes); throwing or rejecting means the device is not bound. `remove` unbinds it.
 */
export interface BusDriver<D> {
  readonly name: string;
  probe(dev: D): void | Promise<void>;
  remove(dev: D): void | Promise<void>;
}

/**
 * The behaviour of one bus type (`struct bus_type`) plus how its devices are built
 * (`vop_register_device` and friends allocate and fill the device before `device_register`).
 */
export interface BusType<D extends BusDevice, Drv extends BusDriver<D>, P> {
  /** The bus name, e.g. `vop_bus`. */
  readonly name: string;
  /** Builds a device from registration parameters. Throws `EINVAL` for bad parameters. */
  create(params: P): D;
  /** Checks a driver before it is added (e.g. that it has an id table); throws `EINVAL`. */
  checkDriver?(drv: Drv): void;
  /** Called after a device left the bus, or when registering it failed after {@link create}. */
  release?(dev: D): void;
  /** True when `drv` can drive `dev`. */
  match(dev: D, drv: Drv): boolean;
  /** Binds (default: `drv.probe(dev)`). The mbus calls `scan` after a successful probe here. */
  probe?(dev: D, drv: Drv): void | Promise<void>;
  /** Unbinds (default: `drv.remove(dev)`). */
  remove?(dev: D, drv: Drv): void | Promise<void>;
  /** The device's modalias (`MODALIAS=` of its uevent), if the bus has one. */
  modalias?(dev: D): string;
}

/** Options of a {@link Bus}. */
export interface BusOptions {
  /** Where probe failures and remove errors are logged (default: nowhere). */
  readonly logger?: Logger;
}

/** What happened on a bus, in order, as {@link Bus.subscribe} reports it. */
export type BusEvent<D, Drv> =
  | { readonly type: 'device-added'; readonly device: D; readonly modalias: string | undefined }
  | { readonly type: 'device-removed'; readonly device: D }
  | { readonly type: 'driver-added'; readonly driver: Drv }
  | { readonly type: 'driver-removed'; readonly driver: Drv }
  | { readonly type: 'bound'; readonly device: D; readonly driver: Drv }
  | { readonly type: 'probe-failed'; readonly device: D; readonly driver: Drv; readonly error: MicError }
  | {
      readonly type: 'unbound';
      readonly device: D;
      readonly driver: Drv;
      /** Set when the driver's remove threw; the device is unbound anyway, as in the kernel. */
      readonly error: MicError | undefined;
    };

interface Entry<D, Drv> {
  readonly device: D;
  driver: Drv | undefined;
  bindSeq: number;
  probeError: MicError | undefined;
}

function wrap(err: unknown, message: string, details: Record<string, unknown>): MicError {
  const code = isMicError(err) ? err.code : 'EIO';
  const why = errorMessage(err);
  return new MicError(code, `${message}: ${why}`, { cause: err, details });
}

/** A device or driver as messages show it: its name, or the value when it has none. */
function nameOf(x: unknown): string {
  const name = (x as { name?: unknown } | null | undefined)?.name;
  return typeof name === 'string' && name !== '' ? name : formatValue(x);
}

/** Throws `EINVAL` naming what is wrong with `drv` (not an object, no name, no probe or remove). */
function checkDriver(bus: string, drv: unknown): void {
  checkObject(`${bus}: driver`, drv);
  const { name, probe, remove } = drv as Partial<BusDriver<unknown>>;
  if (typeof name !== 'string' || name === '') {
    throw new MicError('EINVAL', `${bus}: driver name ${formatValue(name)} is not a non-empty string`);
  }
  checkFunction(`${bus}: driver ${name} probe`, probe);
  checkFunction(`${bus}: driver ${name} remove`, remove);
}

/**
 * A bus: devices, drivers, matching, probe and remove. `P` is what {@link registerDevice} takes
 * (the device itself for a plain bus, registration parameters for the MIC buses).
 *
 * @example
 * const bus = new Bus<Dev, Drv, Dev>({ name: 'demo_bus', create: (d) => d, match: () => true });
 * await bus.registerDriver({ name: 'demo', probe: async () => {}, remove: () => {} });
 * const dev = await bus.registerDevice({ name: 'demo-dev0' });
 * bus.driverOf(dev)?.name; // 'demo'
 */
export class Bus<D extends BusDevice, Drv extends BusDriver<D>, P = D> {
  /** The bus name, e.g. `vop_bus`. */
  readonly name: string;
  readonly #type: BusType<D, Drv, P>;
  readonly #log: Logger;
  readonly #lock = new AsyncMutex();
  readonly #entries = new Map<D, Entry<D, Drv>>();
  readonly #byName = new Map<string, D>();
  readonly #drivers: Drv[] = [];
  readonly #listeners = new Set<(event: BusEvent<D, Drv>) => void>();
  #seq = 0;

  constructor(type: BusType<D, Drv, P>, options: BusOptions = {}) {
    checkObject('bus type', type);
    if (typeof type.name !== 'string' || type.name === '') {
      throw new MicError('EINVAL', `bus name ${formatValue(type.name)} is not a non-empty string`);
    }
    checkFunction(`bus ${type.name} create`, type.create);
    checkFunction(`bus ${type.name} match`, type.match);
    checkObject(`bus ${type.name} options`, options);
    this.name = type.name;
    this.#type = type;
    this.#log = (options.logger ?? nullLogger).child(type.name);
  }

  /**
   * Builds a device from `params`, adds it and binds it to the first matching driver whose probe
   * succeeds. Resolves with the device whether or not a driver bound it (see {@link driverOf} and
   * {@link probeError}). Rejects with the error of `create` (`EINVAL`), or `EEXIST` when a device
   * of the same name is registered.
   */
  registerDevice(params: P): Promise<D> {
    return this.#lock.run(async () => {
      const device = this.#type.create(params);
      const name = (device as { name?: unknown } | null)?.name;
      if (typeof device !== 'object' || device === null || typeof name !== 'string' || name === '') {
        throw new MicError(
          'EINVAL',
          `${this.name}: device ${formatValue(device)} (named ${formatValue(name)}) is not an object with a non-empty name`,
        );
      }
      if (this.#entries.has(device) || this.#byName.has(device.name)) {
        this.#type.release?.(device);
        throw new MicError('EEXIST', `${this.name}: a device named ${device.name} is already registered`, {
          details: { device: device.name },
        });
      }
      const entry: Entry<D, Drv> = { device, driver: undefined, bindSeq: 0, probeError: undefined };
      this.#entries.set(device, entry);
      this.#byName.set(device.name, device);
      this.#emit({ type: 'device-added', device, modalias: this.#type.modalias?.(device) });
      for (const driver of [...this.#drivers]) {
        if (this.#matches(device, driver) && (await this.#probe(entry, driver))) break;
      }
      return device;
    });
  }

  /**
   * Unbinds `dev` from its driver (calling remove) and takes it off the bus. Rejects with `ENODEV`
   * when it is not registered.
   */
  async unregisterDevice(dev: D): Promise<void> {
    checkObject(`${this.name}: device`, dev);
    return this.#lock.run(async () => {
      const entry = this.#entries.get(dev);
      if (!entry) {
        throw new MicError('ENODEV', `${this.name}: device ${nameOf(dev)} is not registered`, {
          details: { device: nameOf(dev) },
        });
      }
      if (entry.driver) await this.#unbind(entry, entry.driver);
      this.#entries.delete(dev);
      this.#byName.delete(dev.name);
      this.#type.release?.(dev);
      this.#emit({ type: 'device-removed', device: dev });
    });
  }

  /**
   * Adds a driver and binds it to every unbound device it matches, in device registration order.
   * Rejects with `EINVAL` for a driver without a name, probe or remove (or one the bus type's
   * `checkDriver` refuses), and `EBUSY` when this
   * driver or one of the same name is registered.
   */
  async registerDriver(drv: Drv): Promise<void> {
    checkDriver(this.name, drv);
    return this.#lock.run(async () => {
      this.#type.checkDriver?.(drv);
      if (this.#drivers.some((d) => d === drv || d.name === drv.name)) {
        throw new MicError('EBUSY', `${this.name}: driver ${drv.name} is already registered`, {
          details: { driver: drv.name },
        });
      }
      this.#drivers.push(drv);
      this.#emit({ type: 'driver-added', driver: drv });
      for (const entry of [...this.#entries.values()]) {
        if (!entry.driver && this.#matches(entry.device, drv)) await this.#probe(entry, drv);
      }
    });
  }

  /**
   * Removes a driver: its devices are unbound in reverse bind order (the last bound first) and stay
   * registered. Rejects with `ENODEV` when the driver is not registered.
   */
  async unregisterDriver(drv: Drv): Promise<void> {
    checkObject(`${this.name}: driver`, drv);
    return this.#lock.run(async () => {
      const at = this.#drivers.indexOf(drv);
      if (at < 0) {
        throw new MicError('ENODEV', `${this.name}: driver ${nameOf(drv)} is not registered`, {
          details: { driver: nameOf(drv) },
        });
      }
      this.#drivers.splice(at, 1);
      const bound = [...this.#entries.values()]
        .filter((e) => e.driver === drv)
        .sort((a, b) => b.bindSeq - a.bindSeq);
      for (const entry of bound) await this.#unbind(entry, drv);
      this.#emit({ type: 'driver-removed', driver: drv });
    });
  }

  /** Resolves once every operation started before this call has finished. */
  idle(): Promise<void> {
    return this.#lock.run(() => undefined);
  }

  /** Registered devices, in registration order. */
  devices(): readonly D[] {
    return [...this.#entries.keys()];
  }

  /** Registered drivers, in registration order. */
  drivers(): readonly Drv[] {
    return [...this.#drivers];
  }

  /** True when `dev` is registered on this bus. */
  has(dev: D): boolean {
    return this.#entries.has(dev);
  }

  /** The registered device named `name`. */
  deviceByName(name: string): D | undefined {
    return this.#byName.get(name);
  }

  /** The first registered device for which `pred` holds. */
  findDevice(pred: (dev: D) => boolean): D | undefined {
    checkFunction(`${this.name}: device predicate`, pred);
    for (const dev of this.#entries.keys()) if (pred(dev)) return dev;
    return undefined;
  }

  /** The driver bound to `dev`, if any. */
  driverOf(dev: D): Drv | undefined {
    return this.#entries.get(dev)?.driver;
  }

  /** Devices bound to `drv`, in bind order. */
  devicesOf(drv: Drv): readonly D[] {
    return [...this.#entries.values()]
      .filter((e) => e.driver === drv)
      .sort((a, b) => a.bindSeq - b.bindSeq)
      .map((e) => e.device);
  }

  /**
   * Why the last probe of `dev` failed, while it is unbound; `undefined` once a driver bound it or
   * when no probe failed.
   */
  probeError(dev: D): MicError | undefined {
    return this.#entries.get(dev)?.probeError;
  }

  /**
   * The modalias of registered device `dev`, if the bus has modaliases.
   * @throws MicError ENODEV when `dev` is not registered (EINVAL when it is not an object)
   */
  modalias(dev: D): string | undefined {
    if (!this.#entries.has(dev)) {
      checkObject(`${this.name}: device`, dev);
      throw new MicError('ENODEV', `${this.name}: device ${nameOf(dev)} is not registered`, {
        details: { device: nameOf(dev) },
      });
    }
    return this.#type.modalias?.(dev);
  }

  /**
   * Calls `listener` with every later event, synchronously and in order. A listener that throws is
   * logged and does not disturb the bus. Returns the function that unsubscribes.
   */
  subscribe(listener: (event: BusEvent<D, Drv>) => void): () => void {
    checkFunction(`${this.name}: bus event listener`, listener);
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #emit(event: BusEvent<D, Drv>): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.#log.error('bus event listener threw', { event: event.type, error: String(err) });
      }
    }
  }

  #matches(dev: D, drv: Drv): boolean {
    try {
      return this.#type.match(dev, drv);
    } catch (err) {
      this.#log.error('match threw; treated as no match', {
        device: dev.name,
        driver: drv.name,
        error: String(err),
      });
      return false;
    }
  }

  async #probe(entry: Entry<D, Drv>, drv: Drv): Promise<boolean> {
    const dev = entry.device;
    try {
      if (this.#type.probe) await this.#type.probe(dev, drv);
      else await drv.probe(dev);
    } catch (err) {
      const error = wrap(err, `probe of ${dev.name} by ${drv.name} failed`, {
        device: dev.name,
        driver: drv.name,
      });
      entry.probeError = error;
      // Like really_probe(): ENODEV and ENXIO mean "not mine" and are quiet.
      if (error.code === 'ENODEV' || error.code === 'ENXIO') {
        this.#log.debug(error.message, { code: error.code });
      } else {
        this.#log.warn(error.message, { code: error.code });
      }
      this.#emit({ type: 'probe-failed', device: dev, driver: drv, error });
      return false;
    }
    entry.driver = drv;
    entry.bindSeq = ++this.#seq;
    entry.probeError = undefined;
    this.#emit({ type: 'bound', device: dev, driver: drv });
    return true;
  }

  async #unbind(entry: Entry<D, Drv>, drv: Drv): Promise<void> {
    const dev = entry.device;
    let error: MicError | undefined;
    try {
      if (this.#type.remove) await this.#type.remove(dev, drv);
      else await drv.remove(dev);
    } catch (err) {
      error = wrap(err, `remove of ${dev.name} by ${drv.name} failed`, {
        device: dev.name,
        driver: drv.name,
      });
      this.#log.error(error.message, { code: error.code });
    }
    entry.driver = undefined;
    entry.bindSeq = 0;
    this.#emit({ type: 'unbound', device: dev, driver: drv, error });
  }
}
