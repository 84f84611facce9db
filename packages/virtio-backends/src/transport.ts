/**
 * The transport-neutral device interface the backends are written against: what a virtio device
 * implementation needs from whatever carries the rings (VOP, an in-process queue, later
 * vhost-user). It is the device half of a virtio transport (virtio 1.2 §2 and §4), reduced to what
 * a backend does: describe the device, wait for the driver, fetch a chain, copy bytes out of its
 * device-readable part and into its device-writable part, return it, and change the config.
 *
 * Two implementations: {@link VopBackendTransport} over a `@mic/vop-host` handle (the kernel's
 * `/dev/vop_virtio<N>` as mpssd uses it) and {@link InProcessBackendTransport} over
 * `@mic/virtio`'s `InProcessTransport` (unit tests of each backend against a driver in the same
 * thread).
 *
 * The driver on the other side is untrusted. A transport hands out chains whose sizes it checked
 * and copies only inside them; a backend checks everything it reads from a chain (headers,
 * lengths, sector numbers) before it acts on it.
 */
import { MicError, throwIfAborted } from '@mic/errors';
import { VIRTIO_CONFIG_S } from '@mic/virtio';

/** What a backend offers: everything a transport needs to create the device. */
export interface VirtioDeviceDescription {
  /** The virtio device id (`VIRTIO_ID.*`, virtio 1.2 §5). */
  readonly deviceType: number;
  /** The feature bits the device offers (device and transport bits, at most 64). */
  readonly features: bigint;
  /** The initial device config space (`struct virtio_*_config`, little-endian). */
  readonly config: Uint8Array;
  /** The size of each queue (powers of two), one entry per queue. */
  readonly queueSizes: readonly number[];
  /**
   * A hint for transports that move bytes with a DMA engine (VOP): copies of up to this many bytes
   * are cheaper done by the CPU. A device whose copies are small and many (a NIC's frames) sets
   * it to its frame size; unset, the transport's default applies.
   */
  readonly cpuCopyBytes?: number;
}

/**
 * One chain a driver made available (a descriptor chain of virtio 1.2 §2.7.5): first its
 * device-readable part (driver → device), then its device-writable part (device → driver). Each
 * direction has a cursor: {@link read} and {@link write} continue where the last call stopped.
 * The transport already checked the chain: every byte it names is driver memory the device may
 * touch, and `readable + writable` is below 2^32.
 */
export interface BackendChain {
  /** The queue the chain came from. */
  readonly queue: number;
  /** The head descriptor index (for logs; the transport completes by it). */
  readonly head: number;
  /** Bytes of the device-readable part. */
  readonly readable: number;
  /** Bytes of the device-writable part. */
  readonly writable: number;
  /** Readable bytes consumed so far. */
  readonly bytesRead: number;
  /** Writable bytes filled so far: the used length the chain is completed with. */
  readonly bytesWritten: number;
  /** True once {@link complete} ran, or when the device was reset under the chain (then it is dead). */
  readonly done: boolean;
  /**
   * Copies the next readable bytes into `dst`. @returns bytes copied: `dst.length`, or fewer at
   * the end of the readable part, 0 once it is consumed or the chain is done
   */
  read(dst: Uint8Array): Promise<number>;
  /**
   * Copies `src` into the next writable bytes (skipping whatever of the readable part was not
   * read). The transport may keep a reference to `src` until {@link complete} resolves (VOP sends
   * a request's writes together): do not change it before. @returns bytes taken: `src.length`, or fewer when the writable part is full
   */
  write(src: Uint8Array): Promise<number>;
  /**
   * Direct access, optional: a transport that can reach the driver's buffers as memory offers it
   * (VOP through the aperture, the in-process transport), a backend uses it when present and
   * {@link read} / {@link write} otherwise. Views of the next `n` readable bytes (fewer at the end
   * of the readable part; none once it is consumed or the chain is done), one per descriptor
   * segment (adjacent segments may share one), consumed as if read: a backend writes a file straight from the driver's buffers. The
   * driver may change those bytes at any time: copy with {@link read} whatever is interpreted (a
   * header), never from a view. The views may be used until {@link complete} resolves and not
   * after; the transport may hold a device reset back until then.
   */
  mapReadable?(n: number): readonly Uint8Array[];
  /**
   * Direct access, optional (as {@link mapReadable}): views of the next `n` writable bytes
   * (skipping what of the readable part was not read), counted in {@link bytesWritten}: a backend
   * reads a file straight into the driver's buffers. What they hold at {@link complete} is what
   * the driver gets.
   */
  mapWritable?(n: number): readonly Uint8Array[];
  /**
   * Returns the chain to the driver with {@link bytesWritten} as its used length (virtio 1.2
   * §2.7.8.2), notifying the driver unless it suppressed notifications. Idempotent; a no-op on a
   * dead chain.
   */
  complete(): Promise<void>;
}

/** What {@link BackendTransport.wait} reports. */
export type BackendTransportEvent =
  /** The driver notified a queue or changed the status: look at every queue again. */
  | 'event'
  /** The device is gone (removed, the card stopped, the transport closed): stop serving. */
  | 'gone';

/** Counters of a transport. */
export interface BackendTransportStats {
  /** Chains fetched and handed to the backend. */
  chains: number;
  /** Chains the transport refused as malformed (returned to the driver with length 0). */
  badChains: number;
  /** Device resets seen (each one ends the chains in flight). */
  resets: number;
}

/**
 * The device side of one virtio device, as a backend uses it. Calls on different queues may run
 * at the same time; on one queue, {@link nextChain} and the chains' operations may interleave up to
 * {@link maxInFlight} chains.
 */
export interface BackendTransport {
  /** The virtio device id. */
  readonly deviceType: number;
  /** Queues of the device. */
  readonly numQueues: number;
  /** The features the device offered. */
  readonly offeredFeatures: bigint;
  /**
   * How many chains of queue `q` may be open (fetched and not completed) at once. VOP allows one
   * (its COPY_DESC works on the chain in progress); the in-process transport the queue size.
   */
  maxInFlight(q: number): number;
  /** The features the driver accepted (a subset of {@link offeredFeatures}; 0 before). */
  negotiatedFeatures(): bigint;
  /** The status byte the driver wrote (virtio 1.2 §2.1; 0 after a reset). */
  status(): number;
  /**
   * Increases by one each time the transport sees the device reset; chains of an older
   * generation are dead. Backends drop per-session state when it changes.
   */
  readonly generation: number;
  /** The config space as the device holds it now (a copy). */
  config(): Uint8Array;
  /**
   * Replaces the config space and tells the driver (a config-change notification, virtio 1.2
   * §4 per transport). `bytes` must be exactly the config size.
   */
  configChange(bytes: Uint8Array): Promise<void>;
  /**
   * The next chain of queue `q`, or null when the driver has none available. Malformed chains are
   * returned to the driver with length 0 and skipped (counted in {@link stats}).
   * @throws MicError EBUSY when {@link maxInFlight} chains of `q` are open; ENODEV when the
   *   device is down or gone; EIO when the driver broke the ring (the device needs a reset)
   */
  nextChain(q: number): Promise<BackendChain | null>;
  /**
   * Waits for the driver: resolves `'event'` after a notification or a status change since the
   * last call (an edge: look at every queue after it), `'gone'` once the device is gone.
   * @throws MicError ECANCELED when `signal` aborts
   */
  wait(signal?: AbortSignal): Promise<BackendTransportEvent>;
  /** A copy of the counters. */
  stats(): BackendTransportStats;
}

/** True when the status byte says the driver is ready and nothing went wrong (virtio 1.2 §2.1). */
export function isDriverOk(status: number): boolean {
  return (
    (status & VIRTIO_CONFIG_S.DRIVER_OK) !== 0 &&
    (status & (VIRTIO_CONFIG_S.FAILED | VIRTIO_CONFIG_S.NEEDS_RESET)) === 0
  );
}

/**
 * Waits until the driver set DRIVER_OK (mpssd's `wait_for_card_driver`, without its busy loop on
 * POLLERR). @returns false when the device went away first
 * @throws MicError ECANCELED when `signal` aborts
 */
export async function waitForDriverOk(transport: BackendTransport, signal?: AbortSignal): Promise<boolean> {
  for (;;) {
    throwIfAborted(signal, 'waiting for DRIVER_OK');
    if (isDriverOk(transport.status())) return true;
    if ((await transport.wait(signal)) === 'gone') return false;
  }
}

/** Checks a device description (sizes, ids); throws EINVAL naming the bad field. */
export function checkDescription(d: VirtioDeviceDescription): void {
  if (!Number.isInteger(d.deviceType) || d.deviceType < 1 || d.deviceType > 0xff) {
    throw new MicError('EINVAL', `device type ${String(d.deviceType)} is not a virtio device id`);
  }
  if (typeof d.features !== 'bigint' || d.features < 0n || d.features >= 1n << 64n) {
    throw new MicError('EINVAL', `features ${String(d.features)} are not 64 feature bits`);
  }
  if (!(d.config instanceof Uint8Array)) throw new MicError('EINVAL', 'device config is not a Uint8Array');
  if (!Array.isArray(d.queueSizes) || d.queueSizes.length === 0) {
    throw new MicError('EINVAL', 'a device needs at least one queue');
  }
  if (d.cpuCopyBytes !== undefined && (!Number.isSafeInteger(d.cpuCopyBytes) || d.cpuCopyBytes < 0)) {
    throw new MicError('EINVAL', `cpuCopyBytes ${String(d.cpuCopyBytes)} is not a non-negative integer`);
  }
}
