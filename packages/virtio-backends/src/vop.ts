/**
 * The VOP adapter: {@link BackendTransport} over a `@mic/vop-host` handle, the TypeScript
 * `/dev/vop_virtio<N>` file descriptor mpssd uses (samples/mic/mpssd/mpssd.c). It builds the
 * ADD_DEVICE block from the backend's description, adds the device, waits with `poll` (never
 * mpssd's `spin_for_descriptors` busy loop), moves bytes with COPY_DESC and hot-unplugs with
 * `remove`.
 *
 * COPY_DESC works on "the chain in progress" of a vring: one chain per queue is open at a time
 * ({@link VopBackendTransport.maxInFlight} is 1), and the used entry is published by the copy that
 * passes `updateUsed` and moves at least one byte. A chain here therefore keeps its writes back
 * (up to 1 MiB) and sends them in one copy with `updateUsed` from `complete()`; a chain with nothing written is
 * published by the read that consumes its readable part (a card → host buffer, used length 0).
 * Before each copy the adapter checks with `chainInfo` that the chain in progress is still its
 * own (same head, sizes and progress): after a card-initiated reset the old chain is dead and
 * nothing of it reaches the new rings.
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
  readonly logger?: Logger;
}

/** What vop-host reports for a chain it returned to the card as malformed. */
const BAD_CHAIN_CODES = new Set(['EINVAL', 'ELOOP', 'EFAULT', 'EOVERFLOW']);

type ChainInfo = NonNullable<Awaited<ReturnType<VopVirtioHandle['chainInfo']>>>;

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
  readonly #open: (VopChain | null)[];
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
    this.#open = d.queueSizes.map(() => null);
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
    await handle.addDevice(block);
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
    return 1;
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
    this.#open.fill(null);
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
    const open = this.#open[q];
    if (open && !open.done) {
      throw new MicError('EBUSY', `queue ${q} has a chain open; VOP copies one chain per vring at a time`, {
        details: { queue: q, head: open.head },
      });
    }
    for (;;) {
      let info: ChainInfo | null;
      try {
        info = await this.handle.chainInfo(q);
      } catch (err) {
        if (isMicError(err) && BAD_CHAIN_CODES.has(err.code)) {
          this.#stats.badChains++;
          continue;
        }
        throw this.#downError(err);
      }
      if (info === null) return null;
      this.#stats.chains++;
      const chain = new VopChain(this, q, info, this.#generation);
      this.#open[q] = chain;
      return chain;
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
    this.#open.fill(null);
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

  /** @internal the copy of one chain, after checking it is still the vring's chain in progress */
  async copy(
    chain: VopChain,
    iov: Uint8Array[],
    updateUsed: boolean,
    expect: { head: number; readable: number; writable: number; read: number; written: number },
  ): Promise<number | null> {
    if (!this.live(chain.generation)) return null;
    let info: ChainInfo | null;
    try {
      info = await this.handle.chainInfo(chain.queue);
    } catch (err) {
      if (isMicError(err, 'ENODEV') || isMicError(err, 'EBADF')) return null;
      throw err;
    }
    if (
      !this.live(chain.generation) ||
      info === null ||
      info.head !== expect.head ||
      info.readable !== expect.readable ||
      info.writable !== expect.writable ||
      info.read !== expect.read ||
      info.written !== expect.written
    ) {
      this.#log.debug('virtio-backends: VOP chain is no longer in progress (reset)', {
        queue: chain.queue,
        head: expect.head,
      });
      return null;
    }
    try {
      return await this.handle.copyDesc({ iov, vrIdx: chain.queue, updateUsed });
    } catch (err) {
      if (isMicError(err, 'ENODEV') || isMicError(err, 'EBADF')) return null;
      throw err;
    }
  }

  #checkQueue(q: number): void {
    if (!Number.isInteger(q) || q < 0 || q >= this.numQueues) {
      throw new MicError('EINVAL', `queue ${String(q)} is not below the ${this.numQueues} queues`, {
        details: { queue: q },
      });
    }
  }
}

const ONE_ZERO = new Uint8Array(1);
/** Bytes read away at a time when a readable part is skipped. */
const SKIP_CHUNK = 64 << 10;
/** Bytes of writes kept back at most before they are copied (one copy for data and status). */
const DEFER_LIMIT = 1 << 20;

/** A chain in progress on one vring of a VOP device; see the module comment for the copy rules. */
class VopChain implements BackendChain {
  readonly queue: number;
  readonly head: number;
  readonly readable: number;
  readonly writable: number;
  readonly generation: number;
  readonly #t: VopBackendTransport;
  /** What vop-host had moved of the chain when it was fetched. */
  readonly #base: { read: number; written: number };
  #read = 0;
  /** Written bytes already copied to the card. */
  #flushed = 0;
  /** Writes kept back for the next copy (the last one goes with `updateUsed`). */
  #deferred: Uint8Array[] = [];
  #deferredBytes = 0;
  #done = false;

  constructor(t: VopBackendTransport, queue: number, info: ChainInfo, generation: number) {
    this.#t = t;
    this.queue = queue;
    this.head = info.head;
    this.readable = info.readable - info.read;
    this.writable = info.writable - info.written;
    this.#base = { read: info.read, written: info.written };
    this.generation = generation;
  }

  get bytesRead(): number {
    return this.#read;
  }

  get bytesWritten(): number {
    return this.#flushed + this.#deferredBytes;
  }

  get done(): boolean {
    if (!this.#done && !this.#t.live(this.generation)) this.#done = true;
    return this.#done;
  }

  #expect(): { head: number; readable: number; writable: number; read: number; written: number } {
    return {
      head: this.head,
      readable: this.readable + this.#base.read,
      writable: this.writable + this.#base.written,
      read: this.#base.read + this.#read,
      written: this.#base.written + this.#flushed,
    };
  }

  /** One copy; false (and the chain dead) when it did not move exactly the bytes of `iov`. */
  async #copy(iov: Uint8Array[], updateUsed: boolean): Promise<boolean> {
    const moved = await this.#t.copy(this, iov, updateUsed, this.#expect());
    if (moved !== iov.reduce((sum, b) => sum + b.length, 0)) {
      this.#done = true;
      return false;
    }
    if (updateUsed) this.#done = true;
    return true;
  }

  async read(dst: Uint8Array): Promise<number> {
    if (this.done) return 0;
    const n = Math.min(dst.length, this.readable - this.#read);
    if (n === 0) return 0;
    // A chain with no writable part is published by the read that finishes it.
    const last = this.#read + n === this.readable && this.writable === 0;
    if (!(await this.#copy([dst.subarray(0, n)], last))) return 0;
    this.#read += n;
    return n;
  }

  async write(src: Uint8Array): Promise<number> {
    if (this.done) return 0;
    if (!(await this.#skipReadable(false))) return 0;
    const n = Math.min(src.length, this.writable - this.bytesWritten);
    if (n === 0) return 0;
    const piece = src.subarray(0, n);
    // Writes go together in one copy; past DEFER_LIMIT all but the newest go now.
    if (this.#deferredBytes + n > DEFER_LIMIT && !(await this.#flush(false))) return 0;
    this.#deferred.push(piece);
    this.#deferredBytes += n;
    return n;
  }

  async #flush(updateUsed: boolean): Promise<boolean> {
    const iov = this.#deferred;
    const bytes = this.#deferredBytes;
    this.#deferred = [];
    this.#deferredBytes = 0;
    if (!(await this.#copy(iov, updateUsed))) return false;
    this.#flushed += bytes;
    return true;
  }

  /** Reads away what is left of the readable part, 64 KiB at a time; the last piece publishes if asked. */
  async #skipReadable(updateUsed: boolean): Promise<boolean> {
    while (this.#read < this.readable) {
      const n = Math.min(this.readable - this.#read, SKIP_CHUNK);
      const last = this.#read + n === this.readable;
      if (!(await this.#copy([new Uint8Array(n)], updateUsed && last))) return false;
      this.#read += n;
    }
    return true;
  }

  async complete(): Promise<void> {
    if (this.done) return;
    if (this.#deferred.length > 0) {
      await this.#flush(true);
      return;
    }
    if (this.#read < this.readable) {
      await this.#skipReadable(true);
      return;
    }
    if (this.bytesWritten < this.writable) {
      // COPY_DESC publishes only after moving a byte: one zero byte, used length 1.
      if (await this.#copy([ONE_ZERO], true)) this.#flushed += 1;
      return;
    }
    // Nothing left to move (an empty chain): vop-host completes it before fetching the next.
    this.#done = true;
  }
}
