/**
 * The VOP adapter: {@link BackendTransport} over a `@mic/vop-host` handle, the TypeScript
 * `/dev/vop_virtio<N>` file descriptor mpssd uses (samples/mic/mpssd/mpssd.c). It builds the
 * ADD_DEVICE block from the backend's description, adds the device, waits with `poll` (never
 * mpssd's `spin_for_descriptors` busy loop), moves bytes with COPY_DESC and hot-unplugs with
 * `remove`.
 *
 * Chains come from vop-host's `takeChain`: each one is an object of its own with its readable and
 * writable cursors (not COPY_DESC's single "chain in progress" per vring), so as many chains of a
 * queue as it has entries may be open at once and complete in any order
 * ({@link VopBackendTransport.maxInFlight} is the queue size): a block backend keeps several
 * requests in flight, as it does in-process. After a card-initiated reset vop-host kills the old
 * chains (`ENODEV`): nothing of them reaches the new rings, and here they are simply done.
 *
 * Chains offer direct access (`mapReadable`/`mapWritable`: vop-host's mapped chains, views of card
 * memory through the aperture, no DMA): vop-host holds a reset back until the mapped chains are
 * completed (bounded), and a chain that died with a reset gives its views up on `complete()`.
 * Copies (`read`/`write`) use the device's DMA threshold: `cpuCopyBytes + 1` of the description
 * when it has one, unless {@link VopBackendOptions.dmaMinBytes} says otherwise.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_ioctl`, `vop_poll`
 * @see samples/mic/mpssd/mpssd.c `add_virtio_device`, `wait_for_card_driver`
 */
import { MicError, isMicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { MIC_MAX_VRING_ENTRIES, encodeDescBlock, featureBitsToBytes } from '@mic/mic-common';
import { VIRTIO_CONFIG_S, isPowerOfTwo } from '@mic/virtio';
import type { VopVirtioHandle } from '@mic/vop-host';
import type {
  BackendChain,
  BackendTransport,
  BackendTransportEvent,
  BackendTransportStats,
  VirtioDeviceDescription,
} from './transport.js';
import { checkDescription } from './transport.js';

/** Options of {@link VopBackendTransport.add}. */
export interface VopBackendOptions {
  /**
   * Bytes of feature bits in the device page (`feature_len`): 4 as mpssd (bits 0–31), or 8 to
   * carry VERSION_1 and the other bits 32–63. Default: 4 when every offered bit is below 32, else 8.
   */
  readonly featureLen?: 4 | 8;
  /**
   * This device's DMA threshold on vop-host (`addDevice`'s `dmaMinBytes`): copies shorter than
   * this go by memcpy. Default: one more than the description's `cpuCopyBytes` when it has one
   * (the net backend asks for memcpy up to its frame size), else vop-host's default.
   */
  readonly dmaMinBytes?: number;
  readonly logger?: Logger;
}

/** What vop-host reports for a chain it returned to the card as malformed. */
const BAD_CHAIN_CODES = new Set(['EINVAL', 'ELOOP', 'EFAULT', 'EOVERFLOW']);

type HostChain = NonNullable<Awaited<ReturnType<VopVirtioHandle['takeChain']>>>;

/**
 * A virtio device served through a VOP host handle. Made by {@link VopBackendTransport.add}.
 *
 * @example
 * const handle = vop.control(0)!.open();
 * const t = await VopBackendTransport.add(handle, backend.description);
 * await backend.serve(t, { signal }); // until the signal aborts or the card removes the device
 * await t.remove();
 */
export class VopBackendTransport implements BackendTransport {
  readonly handle: VopVirtioHandle;
  readonly deviceType: number;
  readonly numQueues: number;
  readonly offeredFeatures: bigint;
  readonly #log: Logger;
  readonly #sizes: readonly number[];
  readonly #stats: BackendTransportStats = { chains: 0, badChains: 0, resets: 0 };
  #config: Uint8Array;
  #generation = 0;
  #lastStatus = 0;
  #gone = false;

  private constructor(handle: VopVirtioHandle, d: VirtioDeviceDescription, log: Logger) {
    this.handle = handle;
    this.deviceType = d.deviceType;
    this.numQueues = d.queueSizes.length;
    this.offeredFeatures = d.features;
    this.#config = d.config.slice();
    this.#log = log;
    this.#sizes = d.queueSizes.slice();
  }

  /**
   * Adds the device `description` asks for on `handle` (`MIC_VIRTIO_ADD_DEVICE`, mpssd's
   * `add_virtio_device`): one vqconfig per queue, the offered features in `featureLen` bytes, the
   * config space. It does not wait for the card: see `waitForDriverOk`.
   * @throws MicError EINVAL when the description does not fit VOP (a queue over 128 entries,
   *   feature bits beyond `featureLen`), or the errors of `addDevice` (ENOSPC no free slot, EBUSY
   *   the handle has a device, ENODEV the card stopped, ...)
   */
  static async add(
    handle: VopVirtioHandle,
    description: VirtioDeviceDescription,
    options: VopBackendOptions = {},
  ): Promise<VopBackendTransport> {
    checkDescription(description);
    const featureLen = options.featureLen ?? (description.features >> 32n === 0n ? 4 : 8);
    if (featureLen !== 4 && featureLen !== 8) {
      throw new MicError('EINVAL', `feature_len ${String(featureLen)} is neither 4 nor 8`);
    }
    if (description.features >> BigInt(featureLen * 8) !== 0n) {
      throw new MicError(
        'EINVAL',
        `features 0x${description.features.toString(16)} do not fit in feature_len ${featureLen} (bits 0-${featureLen * 8 - 1})`,
        { details: { featureLen } },
      );
    }
    description.queueSizes.forEach((num, q) => {
      if (!isPowerOfTwo(num) || num > MIC_MAX_VRING_ENTRIES) {
        throw new MicError(
          'EINVAL',
          `queue ${q} size ${String(num)} is not a power of two in [1, ${MIC_MAX_VRING_ENTRIES}] (MIC_MAX_VRING_ENTRIES)`,
          { details: { queue: q, num } },
        );
      }
    });
    const block = encodeDescBlock({
      type: description.deviceType,
      vqconfigs: description.queueSizes.map((num) => ({ address: 0, usedAddress: 0, num })),
      hostFeatures: featureBitsToBytes(description.features, featureLen),
      config: description.config,
    });
    const dmaMinBytes =
      options.dmaMinBytes ??
      (description.cpuCopyBytes === undefined ? undefined : description.cpuCopyBytes + 1);
    await handle.addDevice(block, dmaMinBytes === undefined ? {} : { dmaMinBytes });
    const log = options.logger ?? nullLogger;
    log.info('virtio-backends: device added over VOP', {
      type: description.deviceType,
      offset: handle.info().offset,
    });
    return new VopBackendTransport(handle, description, log);
  }

  get generation(): number {
    return this.#generation;
  }

  maxInFlight(q: number): number {
    this.#checkQueue(q);
    return this.#sizes[q]!;
  }

  negotiatedFeatures(): bigint {
    const dev = this.handle.device;
    return dev === null || dev.removed ? 0n : dev.negotiatedFeatures();
  }

  status(): number {
    const s = this.#readStatus();
    this.#observe(s);
    return s;
  }

  #readStatus(): number {
    const dev = this.handle.device;
    return dev === null || dev.removed ? 0 : dev.status();
  }

  /** Notes a reset (status back to 0, or DRIVER_OK gone) and ends the chains of the old session. */
  #observe(s: number): void {
    const was = this.#lastStatus;
    this.#lastStatus = s;
    const down =
      (was !== 0 && s === 0) || (was & VIRTIO_CONFIG_S.DRIVER_OK && !(s & VIRTIO_CONFIG_S.DRIVER_OK));
    if (!down) return;
    this.#generation++;
    this.#stats.resets++;
    this.#log.debug('virtio-backends: VOP device reset by the card', { type: this.deviceType });
  }

  config(): Uint8Array {
    return this.#config.slice();
  }

  /** `MIC_VIRTIO_CONFIG_CHANGE`: resolves once the card acked (ETIMEDOUT, EIO as vop-host). */
  async configChange(bytes: Uint8Array): Promise<void> {
    await this.handle.configChange(bytes);
    this.#config = bytes.slice();
  }

  async nextChain(q: number): Promise<BackendChain | null> {
    this.#checkQueue(q);
    this.status();
    for (;;) {
      let chain: HostChain | null;
      try {
        chain = await this.handle.takeChain(q);
      } catch (err) {
        if (isMicError(err) && BAD_CHAIN_CODES.has(err.code)) {
          this.#stats.badChains++;
          continue;
        }
        throw this.#downError(err);
      }
      if (chain === null) return null;
      this.#stats.chains++;
      return new VopChain(this, q, chain, this.#generation);
    }
  }

  /** ENODEV for the ways a handle says its device is down or gone; other errors unchanged. */
  #downError(err: unknown): unknown {
    if (isMicError(err, 'EBADF')) return new MicError('ENODEV', 'the VOP handle is closed', { cause: err });
    return err;
  }

  async wait(signal?: AbortSignal): Promise<BackendTransportEvent> {
    if (this.#gone) return 'gone';
    let ev;
    try {
      ev = await this.handle.poll(signal ? { signal } : {});
    } catch (err) {
      if (isMicError(err, 'EBADF')) return this.#markGone();
      throw err;
    }
    if (ev.err) return this.#markGone();
    this.status();
    return 'event';
  }

  #markGone(): 'gone' {
    this.#gone = true;
    return 'gone';
  }

  stats(): BackendTransportStats {
    return { ...this.#stats };
  }

  /** Hot-unplugs the device (mpssd closes the fd; the card removes its driver and acks). */
  async remove(): Promise<void> {
    this.#markGone();
    await this.handle.remove();
  }

  /** @internal whether chains of `generation` may still touch the rings */
  live(generation: number): boolean {
    return !this.#gone && generation === this.#generation;
  }

  #checkQueue(q: number): void {
    if (!Number.isInteger(q) || q < 0 || q >= this.numQueues) {
      throw new MicError('EINVAL', `queue ${String(q)} is not below the ${this.numQueues} queues`, {
        details: { queue: q },
      });
    }
  }
}

/** The end of a chain's device (card reset, removal, handle closed): the chain is done. */
const isDown = (err: unknown): boolean => isMicError(err, 'ENODEV') || isMicError(err, 'EBADF');

/** One chain taken from vop-host (`takeChain`), as a {@link BackendChain}. */
class VopChain implements BackendChain {
  readonly queue: number;
  readonly generation: number;
  readonly #t: VopBackendTransport;
  readonly #c: HostChain;
  #done = false;

  constructor(t: VopBackendTransport, queue: number, chain: HostChain, generation: number) {
    this.#t = t;
    this.queue = queue;
    this.#c = chain;
    this.generation = generation;
  }

  get head(): number {
    return this.#c.head;
  }

  get readable(): number {
    return this.#c.readable;
  }

  get writable(): number {
    return this.#c.writable;
  }

  get bytesRead(): number {
    return this.#c.bytesRead;
  }

  get bytesWritten(): number {
    return this.#c.bytesWritten;
  }

  get done(): boolean {
    if (!this.#done && !this.#t.live(this.generation)) this.#done = true;
    return this.#done;
  }

  async read(dst: Uint8Array): Promise<number> {
    if (this.done) return 0;
    try {
      return await this.#c.read(dst);
    } catch (err) {
      if (!isDown(err)) throw err;
      this.#done = true;
      return 0;
    }
  }

  async write(src: Uint8Array): Promise<number> {
    if (this.done) return 0;
    try {
      return await this.#c.write(src);
    } catch (err) {
      if (!isDown(err)) throw err;
      this.#done = true;
      return 0;
    }
  }

  mapReadable(n: number): readonly Uint8Array[] {
    return this.#map(n, true);
  }

  mapWritable(n: number): readonly Uint8Array[] {
    return this.#map(n, false);
  }

  #map(n: number, readable: boolean): readonly Uint8Array[] {
    if (this.done) return [];
    try {
      return readable ? this.#c.mapReadable(n) : this.#c.mapWritable(n);
    } catch (err) {
      if (!isDown(err)) throw err;
      this.#done = true;
      return [];
    }
  }

  async complete(): Promise<void> {
    if (this.done) {
      // Dead with a reset: its views are no longer used (a reset waits for that).
      this.#c.unmap();
      return;
    }
    this.#done = true;
    try {
      await this.#c.complete();
    } catch (err) {
      if (!isDown(err)) throw err;
    }
  }
}
