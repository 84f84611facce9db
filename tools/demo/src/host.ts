/**
 * The host half: boot one card on an x100 platform the way the e2e tests do (mic-host with the
 * X100 DMA driver on its mic bus, vop-host on its VOP bus, COSM `start`), then add virtio devices
 * over VOP and serve them with the backends of `@mic/virtio-backends`, as mpssd does for its card
 * (`add_virtio_device`, `wait_for_card_driver`, the backend threads).
 */
import { CosmBus } from '@mic/cosm-bus';
import { errorMessage } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { MbusBus } from '@mic/mic-bus';
import { dmaChannelProvider, MicDmaDriver } from '@mic/mic-dma';
import { type MicHost, MicHostDriver, type MicHostBuses, hostRam } from '@mic/mic-host';
import { ScifBus } from '@mic/scif-bus';
import {
  BlockBackend,
  type BlockBackendOptions,
  ConsoleBackend,
  type ConsoleBackendOptions,
  NetBackend,
  type NetBackendOptions,
  type VirtioBackend,
  VopBackendTransport,
  type VopBackendOptions,
  isDriverOk,
  waitForDriverOk,
} from '@mic/virtio-backends';
import { VopBus } from '@mic/vop-bus';
import { type VopHostControl, VopHostDriver, type VopHostOptions } from '@mic/vop-host';
import {
  type CardDebugHandle,
  type CardMain,
  type X100Platform,
  createInProcessPlatform,
  createWorkerPlatform,
} from '@mic/x100';
import { cardMain } from './card-os.js';

const MIB = 1 << 20;

/**
 * The built card program for the `worker` platform. The same relative path works from `src/`
 * (under jest) and from `dist/`: the card's worker always runs the built JavaScript.
 */
export const cardOsModule: URL = new URL('../dist/card-os.js', import.meta.url);

/** Options of {@link CardRig.boot}. */
export interface CardRigOptions {
  /** `worker` (default: the card in its own thread) or `inProcess` (deterministic, one thread). */
  readonly platform?: 'worker' | 'inProcess';
  /** The card program on `worker` (default {@link cardOsModule}). */
  readonly cardModule?: URL | string;
  /** The card program on `inProcess` (default the card OS's `cardMain`). */
  readonly cardMain?: CardMain;
  /** What the card program gets at boot (`CardOsData` for the card OS). */
  readonly cardData?: unknown;
  /** Card memory (default 128 MiB) and host RAM (default 64 MiB). */
  readonly cardMemorySize?: number;
  readonly hostRamSize?: number;
  /** `worker`: how long each side polls before it sleeps (ns; the platform's default 50 µs). */
  readonly spinNs?: number;
  /** Options of vop-host (DMA threshold, timeouts). */
  readonly vop?: VopHostOptions;
  readonly logger?: Logger;
}

/**
 * Rig options that trade the faithful copy path for throughput: every VOP copy by memcpy (no DMA
 * channel, `noDma`) and no polling before a side sleeps (`spinNs: 0`). On the x100 model the DMA
 * engine is a thread of its own: each copy waits for it to wake and for its completion interrupt,
 * which costs more than the copy itself up to megabytes; and on a machine with fewer cores than
 * busy threads, a side that polls holds the core its peer needs. Measured on 2 vCPUs under load
 * (bench `blk` and `net`, both variants in the same run): several times the block and frame
 * rates of the defaults (DMA from 1 KiB, 50 µs polls), which are what the kernel does.
 */
export const FAST_COPY_RIG: CardRigOptions = Object.freeze({
  vop: Object.freeze({ noDma: true }),
  spinNs: 0,
});

/** One booted card and the host drivers around it. */
export class CardRig {
  readonly platform: X100Platform;
  readonly hostDriver: MicHostDriver;
  readonly host: MicHost;
  readonly vop: VopHostDriver;
  /** The card program's debug channel. */
  readonly card: CardDebugHandle;
  #closed = false;

  private constructor(
    platform: X100Platform,
    hostDriver: MicHostDriver,
    host: MicHost,
    vop: VopHostDriver,
    card: CardDebugHandle,
  ) {
    this.platform = platform;
    this.hostDriver = hostDriver;
    this.host = host;
    this.vop = vop;
    this.card = card;
  }

  /** Boots a card: mic-host probes the x100, COSM starts it, the card program runs. */
  static async boot(options: CardRigOptions = {}): Promise<CardRig> {
    const kind = options.platform ?? 'worker';
    const logger = options.logger ?? nullLogger;
    const sizes = {
      cardMemorySize: options.cardMemorySize ?? 128 * MIB,
      hostRamSize: options.hostRamSize ?? 64 * MIB,
    };
    const data = options.cardData === undefined ? {} : { cardData: options.cardData };
    const platform =
      kind === 'inProcess'
        ? createInProcessPlatform({
            cardMain: options.cardMain ?? cardMain,
            resetDelayMs: 100,
            logger,
            ...sizes,
            ...data,
          })
        : createWorkerPlatform({
            cardModule: options.cardModule ?? cardOsModule,
            resetDelayMs: 20,
            ...(options.spinNs === undefined ? {} : { spinNs: options.spinNs }),
            logger,
            ...sizes,
            ...data,
          });
    const buses: MicHostBuses = {
      mbus: new MbusBus(),
      scif: new ScifBus(),
      vop: new VopBus(),
      cosm: new CosmBus(),
    };
    const vop = new VopHostDriver({ clock: platform.clock, logger: logger.child('vop'), ...options.vop });
    const dma = new MicDmaDriver({ clock: platform.clock, logger: logger.child('dma') });
    let hostDriver: MicHostDriver | null = null;
    try {
      await buses.vop.registerDriver(vop);
      hostDriver = await MicHostDriver.init({
        logger: logger.child('mic'),
        loadDmaDriver: () => buses.mbus.registerDriver(dma),
      });
      const host = await hostDriver.probe({
        host: platform.host,
        clock: platform.clock,
        buses,
        dma: dmaChannelProvider(dma),
        resetSleepMs: kind === 'worker' ? 10 : 1000,
      });
      await host.cosmOps.start(host.cosmDevice!.index, {
        firmware: 'mic/uos.img',
        ramdisk: null,
        cmdline: null,
        bootmode: 'linux',
      });
      const card = await platform.boot!;
      return new CardRig(platform, hostDriver, host, vop, card);
    } catch (err) {
      await hostDriver?.exit().catch(() => {});
      await platform.close();
      throw err;
    }
  }

  /** The card's VOP control device (`/dev/vop_virtio0`). */
  get control(): VopHostControl {
    const c = this.vop.control(0);
    if (!c) throw new Error('the card has no VOP control device (it stopped)');
    return c;
  }

  /** Calls a card debug method (a typed shorthand for `card.call`). */
  call<T>(method: string, ...args: unknown[]): Promise<T> {
    return this.card.call(method, ...args) as Promise<T>;
  }

  /** Bytes of host RAM the host drivers hold (the device page stays while the card is known). */
  hostRamUsed(): number {
    return hostRam(this.platform.host).usedBytes;
  }

  /**
   * Stops the card (COSM `stop`: vop-host removes every device, the card's drivers unbind) and
   * resets it (the card's thread ends).
   */
  async stopCard(): Promise<void> {
    await this.host.cosmOps.stop(false);
    await this.host.cosmOps.reset();
  }

  /** Unbinds the host drivers and closes the platform (idempotent). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.hostDriver.exit();
    } finally {
      await this.platform.close();
    }
  }
}

/** Options of {@link ServedDevice.add}. */
export interface ServedDeviceOptions extends VopBackendOptions {
  readonly logger?: Logger;
}

/**
 * One backend served over VOP: ADD_DEVICE on a handle of its own, the backend's service loop
 * running until {@link stop} (hot-unplug) or the card removes the device.
 */
export class ServedDevice<B extends VirtioBackend> {
  readonly backend: B;
  readonly transport: VopBackendTransport;
  /** Settles when serving ends (the stop, or the device gone); never rejects. */
  readonly serving: Promise<void>;
  /** What ended serving with an error, if anything did. */
  error: unknown = null;
  readonly #stop = new AbortController();
  #stopped: Promise<void> | null = null;

  private constructor(backend: B, transport: VopBackendTransport, log: Logger) {
    this.backend = backend;
    this.transport = transport;
    this.serving = backend.serve(transport, { signal: this.#stop.signal }).catch((err: unknown) => {
      this.error = err;
      log.warn('backend stopped serving with an error', {
        type: transport.deviceType,
        error: errorMessage(err),
      });
    });
  }

  /**
   * Adds `backend`'s device on a new handle of `control` and starts serving it. On failure the
   * handle is closed; the backend stays open (the caller owns it until this succeeds).
   */
  static async add<B extends VirtioBackend>(
    control: VopHostControl,
    backend: B,
    options: ServedDeviceOptions = {},
  ): Promise<ServedDevice<B>> {
    const handle = control.open();
    let t: VopBackendTransport;
    try {
      t = await VopBackendTransport.add(handle, backend.description, options);
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
    return new ServedDevice(backend, t, options.logger ?? nullLogger);
  }

  /** The device's offset in the device page. */
  get offset(): number {
    return this.transport.handle.info().offset;
  }

  /** Whether the card's driver set DRIVER_OK (and not FAILED). */
  get driverOk(): boolean {
    return isDriverOk(this.transport.status());
  }

  /** Waits for DRIVER_OK, at most `timeoutMs`. @throws Error when it did not come */
  async waitDriverOk(timeoutMs = 60_000): Promise<void> {
    const ok = await waitForDriverOk(this.transport, AbortSignal.timeout(timeoutMs)).catch(() => false);
    if (!ok)
      throw new Error(`virtio device type ${this.transport.deviceType}: no DRIVER_OK within ${timeoutMs} ms`);
  }

  /** Stops serving, hot-unplugs the device, closes the handle and the backend (idempotent). */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stop.abort();
      await this.serving;
      try {
        await this.transport.remove();
      } catch {
        // the card stopped: the device is gone already
      }
      await this.transport.handle.close().catch(() => {});
      await this.backend.close();
    })();
    return this.#stopped;
  }
}

/** Which devices {@link serveCard} adds, with their backend options. */
export interface CardDevicesOptions {
  readonly console?: ConsoleBackendOptions;
  readonly net?: NetBackendOptions;
  /** The block device (`eventIdx` defaults to true here: the card's ring implements it). */
  readonly block?: BlockBackendOptions;
  readonly logger?: Logger;
  /** Called after each device was added (for progress lines). */
  readonly onAdded?: (kind: 'console' | 'net' | 'block', device: ServedDevice<VirtioBackend>) => void;
}

/** The devices {@link serveCard} added. */
export interface CardDevices {
  readonly console: ServedDevice<ConsoleBackend> | null;
  readonly net: ServedDevice<NetBackend> | null;
  readonly block: ServedDevice<BlockBackend> | null;
  /** Every device, in the order added. */
  readonly all: readonly ServedDevice<VirtioBackend>[];
  /** Stops every device (hot-unplug, backends closed), last added first. */
  stop(): Promise<void>;
}

/**
 * Opens the backends asked for and adds their devices for the card of `control` (console, then
 * net, then block, as mpssd starts them). What was opened is closed again when a later step fails.
 */
export async function serveCard(control: VopHostControl, options: CardDevicesOptions): Promise<CardDevices> {
  const all: ServedDevice<VirtioBackend>[] = [];
  const log = options.logger ?? nullLogger;
  const stop = async (): Promise<void> => {
    for (const d of [...all].reverse()) await d.stop();
  };
  const add = async <B extends VirtioBackend>(
    kind: 'console' | 'net' | 'block',
    open: () => Promise<B>,
  ): Promise<ServedDevice<B>> => {
    const backend = await open();
    let d: ServedDevice<B>;
    try {
      d = await ServedDevice.add(control, backend, { logger: log.child(kind) });
    } catch (err) {
      await backend.close();
      throw err;
    }
    all.push(d);
    options.onAdded?.(kind, d);
    return d;
  };
  try {
    const con = options.console
      ? await add('console', () => ConsoleBackend.open({ logger: log.child('console'), ...options.console! }))
      : null;
    const net = options.net
      ? await add('net', () => NetBackend.open({ logger: log.child('net'), ...options.net }))
      : null;
    const block = options.block
      ? await add('block', () =>
          BlockBackend.open({ logger: log.child('block'), eventIdx: true, ...options.block! }),
        )
      : null;
    return { console: con, net, block, all, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
