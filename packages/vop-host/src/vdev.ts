/**
 * One virtio device the host added for the card (`struct vop_vdev`): its entry in the device
 * page, its vrings, the card → host doorbell and the bottom half it runs, the handshakes (config
 * change, hot-unplug, card-initiated reset, used-ring relocation), the copy path, poll and stats.
 *
 * The device page is shared with the card, which may scribble over any byte of it at any time.
 * The host therefore keeps its own copy of everything it wrote (type, sizes, vring geometry, host
 * features) and never reads those back; from the page it reads only what the card writes
 * (`status`, the ctrl flags, `used_address`, `h2c_vdev_db`, the guest acks), each once per use,
 * and checks it before use. Every wait on the card is bounded.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c
 */
import { type AsyncMutex, type MicIrq, NO_DOORBELL } from '@mic/bus-core';
import type { Clock } from '@mic/clock';
import { MicError, isMicError } from '@mic/errors';
import type { Logger } from '@mic/logger';
import type { BufferMemory, Memory } from '@mic/memory';
import {
  MIC_BOOTPARAM_OFFSETS,
  MIC_DEVICE_CTRL_OFFSETS,
  MIC_DEVICE_DESC_OFFSETS,
  MIC_DEVICE_DESC_SIZE,
  MIC_MAX_DESC_BLK_SIZE,
  MIC_MAX_VRING_ENTRIES,
  MIC_MAX_VRINGS,
  MIC_VIRTIO_PARAM_CONFIG_CHANGED,
  MIC_VIRTIO_PARAM_DEV_REMOVE,
  MIC_VQCONFIG_OFFSETS,
  MIC_VQCONFIG_SIZE,
  type DpPendingEntry,
  abortDpEntry,
  copyDpEntry,
  deviceCtrlInit,
  findDpSlot,
  micAlignedDescSize,
  micDescSize,
  publishDpEntry,
  readS8,
  removeDpEntry,
  writeS8,
} from '@mic/mic-common';
import { VIRTIO_CONFIG_S, VIRTIO_F, VringhIov, isPowerOfTwo } from '@mic/virtio';
import type { VopDevice, VopHwOps } from '@mic/vop-bus';
import {
  VOP_KNOWN_VIRTIO_TYPES,
  VOP_MAPPED_DRAIN_TIMEOUT_MS,
  VOP_NO_HEAD,
  VOP_NOTIFY_BATCH,
  VOP_NOTIFY_BATCH_PIPELINED,
  VOP_NOTIFY_BATCH_PIPELINED_MAX,
} from './constants.js';
import type { DmaMemcpyChannel } from './dma.js';
import type { VopDmaPool } from './dma-buffers.js';
import { type VopCopyContext, VopVring, type VopVdevStats, emptyStats } from './vring.js';

/** Timeouts of the handshakes with the card, on the control's clock. */
export interface VopHandshakeTimeouts {
  /** `configChange` waits this long for `guest_ack` (default 10 s). */
  readonly configChangeMs: number;
  /** A hot-unplug waits this long for `guest_ack` (default 15 s). */
  readonly removeMs: number;
  /** How often the waits look at the card's flags (default 10 ms). */
  readonly pollMs: number;
}

/** What every device of one card shares (`struct vop_info`). */
export interface VopControlContext {
  readonly vpdev: VopDevice;
  readonly hw: VopHwOps;
  /** The device page (host RAM, `MIC_DP_SIZE` bytes). */
  readonly dp: Memory;
  /** The card's memory through the aperture. */
  readonly aper: BufferMemory;
  readonly clock: Clock;
  readonly log: Logger;
  /** `vop_mutex`: device page slots, the device list, config change and delete. */
  readonly lock: AsyncMutex;
  readonly timeouts: VopHandshakeTimeouts;
  readonly dmaMinBytes: number;
  /** The DMA channel while it works, else null. */
  dma(): DmaMemcpyChannel | null;
  dmaFailed(err: unknown): void;
}

/** Per-device options of {@link VopVdev.add} (the handle's `addDevice`). */
export interface VopAddDeviceOptions {
  /**
   * Copies of this device shorter than this go by memcpy even with a DMA channel (default: the
   * control's `dmaMinBytes`, 1024). A backend whose copies are small and many (a NIC's frames)
   * asks for memcpy up to its frame size: on the worker platform a DMA copy of a frame costs
   * tens of times its memcpy (the engine is a thread that may be asleep). The kernel's VOP
   * always uses DMA when it has a channel.
   */
  readonly dmaMinBytes?: number;
}

/** What {@link VopVdev.poll} reports (`EPOLLIN | EPOLLOUT`, `EPOLLERR`). */
export interface VopPollEvents {
  /** The card notified or the status changed since the last poll: drain every ring. */
  readonly in: boolean;
  readonly out: boolean;
  /** The device is not added, or was removed (card stop, hot-unplug). */
  readonly err: boolean;
}

/** Arguments of {@link VopVdev.copyDesc} (`struct mic_copy_desc`). */
export interface VopCopyDesc {
  /** The user buffers, consumed in order: first against the chain's readable part, then its writable part. */
  readonly iov: readonly Uint8Array[];
  /** The vring, below `num_vq`. */
  readonly vrIdx: number;
  /** Publish the used entry when done (false keeps the chain open for the next call). */
  readonly updateUsed: boolean;
}

/** The chain in progress on a vring, from {@link VopVdev.chainInfo}. */
export interface VopChainInfo {
  readonly head: number;
  /** Bytes of the chain's device-readable part (card → host). */
  readonly readable: number;
  /** Bytes of its device-writable part (host → card). */
  readonly writable: number;
  /** Readable bytes already copied out by earlier calls. */
  readonly read: number;
  /** Writable bytes already filled by earlier calls. */
  readonly written: number;
}

/** The card's flags of a device, as read once (for debug views). */
export interface VopDeviceCtrlSnapshot {
  readonly configChange: number;
  readonly vdevReset: number;
  readonly guestAck: number;
  readonly hostAck: number;
  readonly usedAddressUpdated: number;
  readonly c2hVdevDb: number;
  readonly h2cVdevDb: number;
  readonly vdev: bigint;
}

const READY: VopPollEvents = Object.freeze({ in: true, out: true, err: false });
const ERR: VopPollEvents = Object.freeze({ in: false, out: false, err: true });
const NOTHING: VopPollEvents = Object.freeze({ in: false, out: false, err: false });

/** Validates an ADD_DEVICE block with one distinct error code per failure; see the README table. */
export function checkAddDevice(block: unknown): {
  type: number;
  numVq: number;
  featureLen: number;
  configLen: number;
  nums: number[];
} {
  if (!(block instanceof Uint8Array)) {
    throw new MicError('EFAULT', 'addDevice takes the descriptor block as a Uint8Array');
  }
  if (block.length < MIC_DEVICE_DESC_SIZE) {
    throw new MicError(
      'EFAULT',
      `descriptor block of ${block.length} bytes is shorter than the 8-byte header`,
      {
        details: { length: block.length },
      },
    );
  }
  // One read of the header (the kernel reads it twice and compares: TOCTOU).
  const hdr = block.slice(0, MIC_DEVICE_DESC_SIZE);
  const type = (hdr[MIC_DEVICE_DESC_OFFSETS.type]! << 24) >> 24;
  const header = {
    numVq: hdr[MIC_DEVICE_DESC_OFFSETS.numVq]!,
    featureLen: hdr[MIC_DEVICE_DESC_OFFSETS.featureLen]!,
    configLen: hdr[MIC_DEVICE_DESC_OFFSETS.configLen]!,
  };
  const aligned = micAlignedDescSize(header);
  if (aligned > MIC_MAX_DESC_BLK_SIZE) {
    throw new MicError(
      'EMSGSIZE',
      `descriptor block size ${aligned} exceeds MIC_MAX_DESC_BLK_SIZE ${MIC_MAX_DESC_BLK_SIZE}`,
      {
        details: { alignedSize: aligned, ...header },
      },
    );
  }
  if (header.numVq > MIC_MAX_VRINGS) {
    throw new MicError('E2BIG', `num_vq ${header.numVq} exceeds MIC_MAX_VRINGS ${MIC_MAX_VRINGS}`, {
      details: { numVq: header.numVq },
    });
  }
  const size = micDescSize(header);
  if (block.length < size) {
    throw new MicError(
      'EFAULT',
      `descriptor block of ${block.length} bytes is shorter than its mic_desc_size ${size}`,
      {
        details: { length: block.length, descSize: size },
      },
    );
  }
  if (!VOP_KNOWN_VIRTIO_TYPES.has(type)) {
    throw new MicError('EOPNOTSUPP', `device type ${type} is not a virtio device id (virtio 1.2 §5)`, {
      details: { type },
    });
  }
  const nums: number[] = [];
  for (let q = 0; q < header.numVq; q++) {
    const at = MIC_DEVICE_DESC_SIZE + q * MIC_VQCONFIG_SIZE + MIC_VQCONFIG_OFFSETS.num;
    const num = block[at]! | (block[at + 1]! << 8);
    if (num === 0 || num > MIC_MAX_VRING_ENTRIES || !isPowerOfTwo(num)) {
      throw new MicError(
        'EINVAL',
        `vqconfig[${q}].num ${num} is not a power of two in [1, ${MIC_MAX_VRING_ENTRIES}]`,
        { details: { index: q, num } },
      );
    }
    nums.push(num);
  }
  return { type, ...header, nums };
}

/** Host features as a bigint from the first min(feature_len, 8) bytes (bit i = byte i/8, bit i%8). */
function featureBits(bytes: Uint8Array): bigint {
  let bits = 0n;
  for (let i = Math.min(bytes.length, 8) - 1; i >= 0; i--) bits = (bits << 8n) | BigInt(bytes[i]!);
  return bits;
}

/** A copy whose chain left the vring lock; `done` resolves `out_len` once it is published. */
class Detached {
  readonly done: Promise<number>;
  constructor(done: Promise<number>) {
    this.done = done;
  }
}

type CopyResult = number | Detached;

const settleCopy = (r: CopyResult): number | Promise<number> => (typeof r === 'number' ? r : r.done);

/**
 * One device on the host side. Built by {@link VopVdev.add}; driven through a handle of the
 * control device.
 */
export class VopVdev {
  /** The virtio device type. */
  readonly type: number;
  /** Where the entry is in the device page and its sizes, as the host wrote them. */
  readonly entry: DpPendingEntry;
  readonly vrings: readonly VopVring[];
  /** The host features the device was added with (at most 64 bits). */
  readonly hostFeatures: bigint;
  /** The host doorbell the card rings for this device (`virtio_db`). */
  readonly virtioDb: number;
  readonly stats: VopVdevStats;
  readonly #ctx: VopControlContext;
  readonly #cookie: MicIrq;
  #pollWake = false;
  readonly #waiters = new Set<() => void>();
  /** Timed waits: deadline (clock ms) and how to time each out; see {@link VopVdev.poll}. */
  readonly #timed = new Map<() => void, { readonly at: number; readonly expire: () => void }>();
  /** When the armed clock sleep ends (Infinity: none armed). */
  #timerAt = Infinity;
  #removed = false;
  #bh: Promise<void> = Promise.resolve();
  #bhPending = false;
  #linkError: MicError | null = null;
  /** Vrings with used entries published whose notification is not decided yet (see {@link #completed}). */
  readonly #unsignalled = new Set<VopVring>();
  /** Used entries published since the last {@link #flushNotify}. */
  #batch = 0;
  #flushQueued = false;
  /** Chains a backend mapped and has not completed (see {@link VopChain.mapWritable}). */
  readonly #mapped = new Set<VopChain>();
  /** Called once {@link #mapped} is empty. */
  #mappedIdle: (() => void)[] = [];

  private constructor(
    ctx: VopControlContext,
    entry: DpPendingEntry,
    vrings: VopVring[],
    hostFeatures: bigint,
    virtioDb: number,
    stats: VopVdevStats,
    cookie: (vdev: VopVdev) => MicIrq,
  ) {
    this.#ctx = ctx;
    this.stats = stats;
    this.type = entry.type;
    this.entry = entry;
    this.vrings = vrings;
    this.hostFeatures = hostFeatures;
    this.virtioDb = virtioDb;
    this.#cookie = cookie(this);
    for (const vr of vrings) vr.setNotify(() => this.#notifyCard());
  }

  /**
   * Adds a device (`vop_virtio_add_device`), under the control's lock: validates the block, takes
   * a device page slot, resets its ctrl, allocates each vring (magic, address published in the
   * vqconfig) and its bounce buffer, takes a host doorbell and installs the interrupt, publishes
   * the entry (type last) and rings `h2c_config_db` if the card listens. On failure everything is
   * undone and the slot is given back.
   */
  static add(
    ctx: VopControlContext,
    block: Uint8Array,
    options: VopAddDeviceOptions = {},
    pool: VopDmaPool | null = null,
  ): VopVdev {
    const dmaMinBytes = options.dmaMinBytes ?? ctx.dmaMinBytes;
    if (!Number.isSafeInteger(dmaMinBytes) || dmaMinBytes < 0) {
      throw new MicError('EINVAL', `dmaMinBytes ${String(dmaMinBytes)} is not a non-negative integer`, {
        details: { dmaMinBytes },
      });
    }
    const checked = checkAddDevice(block);
    const { dp, hw } = ctx;
    try {
      findDpSlot(dp, checked);
    } catch (err) {
      if (isMicError(err, 'EINVAL')) {
        throw new MicError('ENOSPC', `no free device page slot for a ${micDescSize(checked)}-byte entry`, {
          cause: err,
          details: { descSize: micDescSize(checked) },
        });
      }
      throw err;
    }
    const pending = copyDpEntry(dp, block);
    const vrings: VopVring[] = [];
    let cookie: MicIrq | null = null;
    try {
      deviceCtrlInit(dp, pending.ctrlOffset);
      const featureBytes = block.slice(
        pending.featuresOffset - pending.offset,
        pending.featuresOffset - pending.offset + pending.featureLen,
      );
      const stats = emptyStats();
      const copyCtx: VopCopyContext = {
        hw,
        dmaOps: ctx.vpdev.dmaOps,
        aper: ctx.aper,
        dma: () => ctx.dma(),
        dmaFailed: (err) => ctx.dmaFailed(err),
        dmaMinBytes,
        pool,
        stats,
        log: ctx.log,
      };
      for (let q = 0; q < checked.numVq; q++) {
        const vr = new VopVring(copyCtx, pending.type, q, checked.nums[q]!);
        vrings.push(vr);
        dp.writeU64(
          pending.vqconfigOffset + q * MIC_VQCONFIG_SIZE + MIC_VQCONFIG_OFFSETS.address,
          vr.block.dmaAddr,
        );
        dp.writeU64(pending.vqconfigOffset + q * MIC_VQCONFIG_SIZE + MIC_VQCONFIG_OFFSETS.usedAddress, 0);
      }
      const db = hw.nextDb();
      const name = `vop${ctx.vpdev.index}virtio${pending.type}`;
      const vdev = new VopVdev(ctx, pending, vrings, featureBits(featureBytes), db, stats, (self) => {
        cookie = hw.requestIrq((irq: number) => self.#interrupt(irq), name, self, db);
        return cookie;
      });
      writeS8(dp, pending.ctrlOffset + MIC_DEVICE_CTRL_OFFSETS.c2hVdevDb, db);
      publishDpEntry(dp, pending);
      ctx.log.debug('vop: added virtio device', { type: pending.type, db, offset: pending.offset });
      vdev.#hotplugNotify();
      return vdev;
    } catch (err) {
      if (cookie !== null) hw.freeIrq(cookie, null);
      for (const vr of vrings) vr.free();
      abortDpEntry(dp, pending);
      throw err;
    }
  }

  /** True once the device was removed (hot-unplug or card stop). */
  get removed(): boolean {
    return this.#removed;
  }

  /** The status byte the card wrote (0: the device is down). */
  status(): number {
    return this.#ctx.dp.loadU8(this.entry.offset + MIC_DEVICE_DESC_OFFSETS.status);
  }

  /** The card's ctrl flags, read once each. */
  ctrl(): VopDeviceCtrlSnapshot {
    const dp = this.#ctx.dp;
    const c = this.entry.ctrlOffset;
    const o = MIC_DEVICE_CTRL_OFFSETS;
    return {
      configChange: dp.loadU8(c + o.configChange),
      vdevReset: dp.loadU8(c + o.vdevReset),
      guestAck: dp.loadU8(c + o.guestAck),
      hostAck: dp.loadU8(c + o.hostAck),
      usedAddressUpdated: dp.loadU8(c + o.usedAddressUpdated),
      c2hVdevDb: readS8(dp, c + o.c2hVdevDb),
      h2cVdevDb: readS8(dp, c + o.h2cVdevDb),
      vdev: dp.readBigU64(c + o.vdev),
    };
  }

  /** The features both sides agreed on: host features the card acked. */
  negotiatedFeatures(): bigint {
    const dp = this.#ctx.dp;
    const acks = new Uint8Array(this.entry.featureLen);
    dp.read(this.entry.guestAcksOffset, acks);
    return this.hostFeatures & featureBits(acks);
  }

  #interrupt(irq: number): void {
    this.#ctx.hw.ackInterrupt(irq);
    this.#scheduleBh();
  }

  /** `schedule_work(virtio_bh_work)`: runs the bottom half once more, after any running one. */
  #scheduleBh(): void {
    if (this.#bhPending || this.#removed) return;
    this.#bhPending = true;
    this.#bh = this.#bh.then(async () => {
      this.#bhPending = false;
      if (this.#removed) return;
      try {
        await this.#bottomHalf();
      } catch (err) {
        this.#ctx.log.warn('vop: bottom half failed', { type: this.type, err });
      }
    });
  }

  /** `vop_bh_handler`: relocation, reset, then wake the pollers. */
  async #bottomHalf(): Promise<void> {
    const { dp } = this.#ctx;
    const c = this.entry.ctrlOffset;
    if (dp.loadU8(c + MIC_DEVICE_CTRL_OFFSETS.usedAddressUpdated) !== 0) await this.#initPost();
    if (dp.loadU8(c + MIC_DEVICE_CTRL_OFFSETS.vdevReset) !== 0) await this.deviceReset();
    this.#wake();
  }

  /**
   * `vop_virtio_init_post`: moves every vring to the used ring the card allocated (its
   * `used_address`, read once), then clears `used_address_updated` ("LINKUP"). A bad address
   * leaves the device unusable (copies report EIO) until a later relocation succeeds, and is
   * logged; the handshake still completes so the card is not left waiting.
   */
  async #initPost(): Promise<void> {
    const { dp, log } = this.#ctx;
    this.#linkError = null;
    const negotiated = this.negotiatedFeatures();
    const features = {
      eventIdx: (negotiated >> BigInt(VIRTIO_F.RING_EVENT_IDX)) & 1n ? true : false,
      indirect: (negotiated >> BigInt(VIRTIO_F.RING_INDIRECT_DESC)) & 1n ? true : false,
    };
    await this.#withAllVrings(() => {
      for (const vr of this.vrings) {
        const at =
          this.entry.vqconfigOffset + vr.index * MIC_VQCONFIG_SIZE + MIC_VQCONFIG_OFFSETS.usedAddress;
        const usedAddress = dp.readU64(at);
        if (usedAddress === 0) {
          log.warn('vop: used_address zero??', { type: this.type, vring: vr.index });
          continue;
        }
        try {
          vr.relocate(usedAddress, features);
        } catch (err) {
          this.#linkError = new MicError('EIO', `vring ${vr.index}: the card's used ring cannot be used`, {
            cause: err,
            details: { vring: vr.index, usedAddress },
          });
          log.error('vop: used ring relocation refused', {
            type: this.type,
            vring: vr.index,
            usedAddress,
            err,
          });
        }
      }
    });
    dp.storeU8(this.entry.ctrlOffset + MIC_DEVICE_CTRL_OFFSETS.usedAddressUpdated, 0);
    log.info(`vop_virtio_init_post: device type ${this.type} LINKUP`, { type: this.type });
  }

  /**
   * `vop_virtio_device_reset` (card-initiated reset, and every device at card stop): under every
   * vring lock, ring state forgotten (indices, `info.avail_idx`, the chain in progress), then
   * `status = 0`, `vdev_reset = 0` and, last, `host_ack = 1` (the card waits for it before it
   * uses the rings again; the kernel writes it before resetting the indices).
   */
  async deviceReset(): Promise<void> {
    const { dp } = this.#ctx;
    const c = this.entry.ctrlOffset;
    await this.#drainMapped('reset');
    await this.#withAllVrings(() => {
      for (const vr of this.vrings) vr.resetState();
      dp.storeU8(this.entry.offset + MIC_DEVICE_DESC_OFFSETS.status, 0);
      dp.storeU8(c + MIC_DEVICE_CTRL_OFFSETS.vdevReset, 0);
      dp.storeU8(c + MIC_DEVICE_CTRL_OFFSETS.hostAck, 1);
    });
    this.#wake();
  }

  /** @internal a chain was mapped: resets and removal wait for its completion */
  mapped(chain: VopChain): void {
    this.#mapped.add(chain);
  }

  /** @internal a mapped chain was completed or given up */
  unmapped(chain: VopChain): void {
    if (!this.#mapped.delete(chain) || this.#mapped.size !== 0) return;
    const idle = this.#mappedIdle;
    this.#mappedIdle = [];
    for (const f of idle) f();
  }

  /**
   * Waits until no chain is mapped, at most {@link VOP_MAPPED_DRAIN_TIMEOUT_MS} on the control's
   * clock (a backend's file operation into card memory may still be running: the card must not
   * get its buffers back before it ended). Past the bound it logs and goes on.
   */
  async #drainMapped(why: string): Promise<void> {
    if (this.#mapped.size === 0) return;
    const { clock, log } = this.#ctx;
    log.debug('vop: waiting for mapped chains', { type: this.type, why, chains: this.#mapped.size });
    const idle = new Promise<boolean>((resolve) => this.#mappedIdle.push(() => resolve(true)));
    const timer = new AbortController(); // no timer left behind once the chains are done
    const ok = await Promise.race([
      idle,
      clock.sleep(VOP_MAPPED_DRAIN_TIMEOUT_MS, timer.signal).then(
        () => false,
        () => true,
      ),
    ]);
    timer.abort();
    if (!ok) {
      log.error('vop: mapped chains still in use; going on without them', {
        type: this.type,
        why,
        chains: this.#mapped.size,
        timeoutMs: VOP_MAPPED_DRAIN_TIMEOUT_MS,
      });
      this.#mapped.clear();
      this.#mappedIdle = [];
    }
  }

  /** Runs `fn` holding every vring lock, in index order (`mutex_lock_nested`). */
  #withAllVrings<T>(fn: () => T | Promise<T>, i = 0): Promise<T> {
    // With every lock held, the chains still in flight (zero-copy DMA, see #copy) end first.
    if (i === this.vrings.length) return Promise.all(this.vrings.map((vr) => vr.settled())).then(fn);
    return this.vrings[i]!.lock.run(() => this.#withAllVrings(fn, i + 1));
  }

  #wake(): void {
    this.#pollWake = true;
    if (this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /**
   * Waits for the card (`poll`): resolves `{in, out}` once the card rang this device's doorbell
   * or its state changed since the last poll (edge: the flag is consumed, so drain every ring
   * after a wake-up), `{err}` when the device is removed, or nothing set after `timeoutMs`.
   */
  async poll(
    options: { readonly timeoutMs?: number; readonly signal?: AbortSignal } = {},
  ): Promise<VopPollEvents> {
    if (this.#removed) return ERR;
    // Before it may sleep: the card gets the notification of what was completed, and its kicks
    // are on again. Heads it made available while they were off came without a doorbell, so
    // they count as one (the backend may not have seen them).
    this.#flushNotify();
    if (this.#enableKicks()) this.#pollWake = true;
    if (!this.#pollWake) {
      const woken = await this.#waitWake(options);
      if (this.#removed) return ERR;
      if (!woken) {
        if (options.signal?.aborted) {
          throw new MicError('ECANCELED', 'poll was cancelled', { cause: options.signal.reason });
        }
        return NOTHING;
      }
    }
    this.#pollWake = false;
    return READY;
  }

  /**
   * Resolves true on the next wake-up, false on timeout or abort. A plain wait allocates no timer;
   * timed waits share one armed clock sleep per device (re-armed for the earliest deadline left
   * when it fires), so a poll that is woken before its timeout costs no timer, no cancellation
   * and no abort event: the busy path of a backend (poll, wake, drain, poll) stays allocation-light.
   */
  #waitWake(options: { readonly timeoutMs?: number; readonly signal?: AbortSignal }): Promise<boolean> {
    const { signal, timeoutMs } = options;
    if (signal === undefined && timeoutMs === undefined) {
      return new Promise((resolve) => this.#waiters.add(() => resolve(true)));
    }
    // Aborted already, or timeoutMs 0 (a look without waiting): no wake-up is pending here.
    if (signal?.aborted || (timeoutMs !== undefined && timeoutMs <= 0)) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (woken: boolean): void => {
        this.#waiters.delete(waiter);
        this.#timed.delete(waiter);
        signal?.removeEventListener('abort', onAbort);
        resolve(woken);
      };
      const waiter = (): void => finish(true);
      const onAbort = (): void => finish(false);
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        const at = this.#ctx.clock.now() + timeoutMs;
        this.#timed.set(waiter, { at, expire: () => finish(false) });
        this.#armTimer(at);
      }
    });
  }

  /** Makes sure a clock sleep ends no later than `at` (one is armed already, or a new one). */
  #armTimer(at: number): void {
    if (at >= this.#timerAt) return;
    this.#timerAt = at;
    const clock = this.#ctx.clock;
    void clock.sleep(Math.max(0, at - clock.now())).then(() => this.#timerFired(at));
  }

  /** Times out every timed wait whose deadline passed; re-arms for the earliest one left. */
  #timerFired(at: number): void {
    if (this.#timerAt === at) this.#timerAt = Infinity;
    const now = this.#ctx.clock.now();
    let next = Infinity;
    for (const t of [...this.#timed.values()]) {
      if (t.at <= now) t.expire();
      else if (t.at < next) next = t.at;
    }
    if (next !== Infinity) this.#armTimer(next);
  }

  /** Rings the card's `h2c_vdev_db` for this device (`_vop_notify`), if it set one. */
  #notifyCard(): void {
    const db = readS8(this.#ctx.dp, this.entry.ctrlOffset + MIC_DEVICE_CTRL_OFFSETS.h2cVdevDb);
    if (db === NO_DOORBELL) return;
    try {
      this.#ctx.hw.sendIntr(db);
    } catch (err) {
      this.#ctx.log.warn('vop: the card published a doorbell that cannot be rung', {
        type: this.type,
        db,
        err,
      });
    }
  }

  /**
   * A used entry was published on `vr`: its notification is decided once per batch, like
   * `vringh_complete` calls followed by one `vringh_need_notify`/`vringh_notify`
   * (drivers/vhost/vringh.c) or vhost's `vhost_add_used_and_signal_n`. The batch ends, and the
   * card is notified if it asked for it (`used_event` with EVENT_IDX, else unless NO_INTERRUPT),
   * at the first of: {@link VOP_NOTIFY_BATCH} entries were published, the ring has no more heads
   * to fetch (the backend has nothing left to do on it), a fetch finds a ring empty, `poll` is
   * about to wait, or the end of this event-loop turn (`setImmediate`). A backend that drains
   * many chains in one turn thus rings the card's doorbell once per batch, not once per chain
   * (each ring may cost the card's thread a futex wake-up), and no used entry waits longer than
   * the turn it was published in.
   */
  #completed(vr: VopVring): void {
    this.#unsignalled.add(vr);
    // Chains still in flight on the vring (zero-copy DMA, see #copy) are work left to do even
    // when no head is left to fetch, and their completions come in bursts: a larger batch.
    const inFlight = vr.pendingCompletions;
    const cap =
      inFlight > 0
        ? Math.min(VOP_NOTIFY_BATCH_PIPELINED_MAX, Math.max(VOP_NOTIFY_BATCH_PIPELINED, inFlight >> 1))
        : VOP_NOTIFY_BATCH;
    if (++this.#batch >= cap || (inFlight === 0 && vr.vringh.pending() === 0)) {
      this.#flushNotify();
      return;
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flushTurn);
    }
  }

  readonly #flushTurn = (): void => {
    this.#flushQueued = false;
    this.#flushNotify();
  };

  /**
   * Ends the batch of {@link #completed}: `needNotify` on every vring with new used entries (each
   * folds its own), then one doorbell for the device if any of them wants it (the card has one
   * `h2c_vdev_db` per device). After a reset the vrings have nothing completed: no doorbell.
   */
  #flushNotify(): void {
    this.#batch = 0;
    if (this.#unsignalled.size === 0) return;
    let notify = false;
    for (const vr of this.#unsignalled) if (vr.vringh.needNotify()) notify = true;
    this.#unsignalled.clear();
    if (notify && !this.#removed) this.#notifyCard();
  }

  /**
   * Turns the card's kicks back on for every vring that has them off (`vringh_notify_enable`).
   * @returns true when heads arrived on one of them while they were off
   */
  #enableKicks(): boolean {
    let arrived = false;
    for (const vr of this.vrings) {
      if (!vr.kicksOff) continue;
      vr.kicksOff = false;
      if (!vr.vringh.notifyEnable()) arrived = true;
    }
    return arrived;
  }

  /** Rings `h2c_config_db` if the card listens: a hot-plug notification. */
  #hotplugNotify(): void {
    const db = readS8(this.#ctx.dp, MIC_BOOTPARAM_OFFSETS.h2cConfigDb);
    if (db === NO_DOORBELL) return;
    try {
      this.#ctx.hw.sendIntr(db);
    } catch (err) {
      this.#ctx.log.warn('vop: h2c_config_db cannot be rung', { db, err });
    }
  }

  /**
   * `MIC_VIRTIO_COPY_DESC`: moves data between `iov` and the next chain of vring `vrIdx`. See
   * the README for the semantics (read phase, write phase, partial progress, publish).
   * @returns bytes moved (`out_len`); 0 when the ring is empty
   * @throws MicError ENODEV removed or status 0, EINVAL bad arguments or a bad chain (returned to
   *   the card with length 0), EIO a broken ring or an unusable used ring (the card must reset)
   */
  copyDesc(desc: VopCopyDesc): Promise<number> {
    let vr: VopVring;
    let iov: readonly Uint8Array[];
    let updateUsed: boolean;
    try {
      this.#checkUp();
      if (typeof desc !== 'object' || desc === null)
        throw new MicError('EINVAL', 'copyDesc takes { iov, vrIdx, updateUsed }');
      iov = desc.iov;
      if (!Array.isArray(iov)) throw new MicError('EINVAL', 'copyDesc iov must be an array of Uint8Array');
      for (let k = 0; k < iov.length; k++) {
        if (!(iov[k] instanceof Uint8Array)) {
          throw new MicError('EINVAL', 'copyDesc iov must be an array of Uint8Array');
        }
      }
      updateUsed = desc.updateUsed === true;
      vr = this.#vring(desc.vrIdx);
      if (!vr.lock.locked) {
        // A free lock runs its callback at once (AsyncMutex.run), so the copy runs here without
        // the mutex's promises; whatever goes on asynchronously (a DMA piece) takes the lock in
        // this same call, before any other caller can run.
        const r = this.#copy(vr, iov, updateUsed);
        if (typeof r === 'number') return Promise.resolve(r);
        if (r instanceof Detached) return r.done;
        return vr.lock.run(() => r).then(settleCopy);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return vr.lock.run(() => this.#copy(vr, iov, updateUsed)).then(settleCopy);
  }

  /**
   * The copy of `copyDesc`, under the vring lock. It runs synchronously as long as every piece is
   * a memcpy, and goes on asynchronously from the first piece that waits for the DMA engine
   * (through the bounce buffer). Zero-copy DMA (a user buffer in the handle's DMA memory) is
   * queued without waiting; a chain to be published then leaves the lock ({@link Detached}): the
   * next copy on the vring runs while its DMA does, and its used entry is published in order
   * once the DMA ended (see `VopVring.enqueue`).
   */
  #copy(vr: VopVring, iov: readonly Uint8Array[], updateUsed: boolean): CopyResult | Promise<CopyResult> {
    if (!this.#ensureChain(vr)) return 0;
    vr.beginDefer();
    let r: number | Promise<number>;
    try {
      r = this.#copyBody(vr, iov);
    } catch (err) {
      this.#abandon(vr);
      throw err;
    }
    if (typeof r === 'number') return this.#endCopy(vr, r, updateUsed);
    return r.then(
      (n) => this.#endCopy(vr, n, updateUsed),
      (err: unknown) => {
        this.#abandon(vr);
        throw err;
      },
    );
  }

  #copyBody(vr: VopVring, iov: readonly Uint8Array[]): number | Promise<number> {
    let outLen = 0;
    for (let k = 0; k < iov.length; k++) {
      const buf = iov[k]!;
      const r = vr.readInto(buf, 0);
      if (typeof r !== 'number') return this.#copyAsync(vr, iov, k, outLen, r, true);
      const w = vr.writeFrom(buf, r);
      if (typeof w !== 'number') return this.#copyAsync(vr, iov, k, outLen + r, w, false);
      outLen += r + w;
      if (vr.riov.remaining === 0 && vr.wiov.remaining === 0) break;
    }
    return outLen;
  }

  /** The rest of {@link #copyBody} from buffer `k`, once a piece went to the DMA engine. */
  async #copyAsync(
    vr: VopVring,
    iov: readonly Uint8Array[],
    k: number,
    outLen: number,
    pending: Promise<number>,
    reading: boolean,
  ): Promise<number> {
    let total = outLen;
    let n = await pending;
    if (reading) n += await vr.writeFrom(iov[k]!, n);
    total += n;
    if (vr.riov.remaining !== 0 || vr.wiov.remaining !== 0) {
      for (let j = k + 1; j < iov.length; j++) {
        const buf = iov[j]!;
        let m = await vr.readInto(buf, 0);
        m += await vr.writeFrom(buf, m);
        total += m;
        if (vr.riov.remaining === 0 && vr.wiov.remaining === 0) break;
      }
    }
    return total;
  }

  /**
   * The end of a copy: publish as before when nothing is in flight on the vring; else the chain
   * is detached (a used entry due) or the copy waits for its zero-copy DMA under the lock.
   */
  #endCopy(vr: VopVring, outLen: number, updateUsed: boolean): CopyResult | Promise<number> {
    const batches = vr.endDefer();
    if (batches.length === 0 && vr.pendingCompletions === 0) return this.#finishCopy(vr, outLen, updateUsed);
    if (vr.head !== VOP_NO_HEAD && outLen !== 0 && updateUsed) {
      return new Detached(this.#detachComplete(vr, batches).then(() => outLen));
    }
    // The chain stays in progress: its bytes must be in place before the call returns.
    return vr.enqueue(batches, () => {}).then(() => outLen);
  }

  /**
   * Takes the chain in progress off `vr` and queues its publish behind its DMA and the chains
   * queued before it. The publish is skipped if the vring was reset meanwhile (a reset waits for
   * the queue, so this is only a guard: a stale head never reaches a new ring).
   */
  #detachComplete(vr: VopVring, batches: Parameters<VopVring['enqueue']>[0]): Promise<void> {
    const head = vr.head;
    const written = vr.wiov.done;
    const generation = vr.generation;
    vr.head = VOP_NO_HEAD;
    vr.riov.reset();
    vr.wiov.reset();
    return vr.enqueue(batches, () => {
      if (vr.generation !== generation) return;
      vr.vringh.complete(head, written);
      vr.publishAvailIdx();
      this.#completed(vr);
    });
  }

  /** A copy failed while deferring: its queued DMA is still waited for (a reset waits for it). */
  #abandon(vr: VopVring): void {
    const batches = vr.endDefer();
    if (batches.length > 0) void vr.enqueue(batches, () => {});
  }

  #finishCopy(vr: VopVring, outLen: number, updateUsed: boolean): number {
    if (vr.head !== VOP_NO_HEAD && outLen !== 0 && updateUsed) this.#complete(vr);
    return outLen;
  }

  /**
   * Makes sure a chain is in progress on `vr`, fetching the next one when the last is consumed.
   * @returns false when the ring is empty
   */
  #ensureChain(vr: VopVring): boolean {
    if (!this.#fetchable()) return false;
    if (vr.riov.remaining !== 0 || vr.wiov.remaining !== 0) return true;
    // A chain consumed by earlier calls without update_used is completed before the next one
    // (the kernel overwrote its head and leaked the card's buffers), in order behind the chains
    // whose DMA is in flight.
    if (vr.head !== VOP_NO_HEAD) {
      if (vr.pendingCompletions === 0) this.#complete(vr);
      else
        this.#detachComplete(vr, []).catch((err: unknown) =>
          this.#ctx.log.warn('vop: publishing a used entry failed', { vring: vr.index, err }),
        );
    }
    const head = this.#fetch(vr, vr.riov, vr.wiov);
    if (head === null) return false;
    vr.head = head;
    return true;
  }

  /**
   * Whether chains may be fetched: throws ENODEV when the device is removed or down (status 0),
   * the latched link error when the card's rings cannot be used; false before DRIVER_OK.
   */
  #fetchable(): boolean {
    this.#checkUp();
    const status = this.status();
    if (status === 0) {
      throw new MicError('ENODEV', `device type ${this.type} is down (status 0)`, {
        details: { type: this.type },
      });
    }
    // The device consumes no buffers before DRIVER_OK (virtio 1.2 §3.1.1): until then the card
    // may still be setting the rings up (zeroing them after a reset), so nothing is fetched.
    if ((status & VIRTIO_CONFIG_S.DRIVER_OK) === 0) return false;
    if (this.#linkError) throw this.#linkError;
    return true;
  }

  /**
   * Fetches the next chain of `vr` into `riov`/`wiov`. @returns its head, or null when the ring is
   * empty. A broken ring throws EIO; a bad chain was returned to the card with length 0 and
   * throws its error.
   */
  #fetch(vr: VopVring, riov: VringhIov, wiov: VringhIov): number | null {
    const vrh = vr.vringh;
    let r = vrh.getDesc(riov, wiov);
    if (r.status === 'empty' && vr.kicksOff) {
      // Drained with the card's kicks off: turn them on, then look once more, since a head made
      // available before the card could see that came without a kick (vhost's
      // `vhost_enable_notify` and re-check in `handle_tx`, drivers/vhost/net.c).
      vr.kicksOff = false;
      if (!vrh.notifyEnable()) r = vrh.getDesc(riov, wiov);
    }
    if (r.status !== 'empty' && r.status !== 'broken' && !vr.kicksOff) {
      // The host is draining this ring and looks again before it waits: the card need not kick
      // (`vringh_notify_disable`, virtio 1.2 §2.7.10; a hint the card may ignore).
      vrh.notifyDisable();
      vr.kicksOff = true;
    }
    switch (r.status) {
      case 'empty':
        this.#flushNotify();
        return null;
      case 'broken':
        throw new MicError('EIO', `vring ${vr.index} of device type ${this.type}: ${r.error.message}`, {
          cause: r.error,
          details: { vring: vr.index },
        });
      case 'bad-chain':
        this.stats.badChains++;
        vr.publishAvailIdx();
        this.#completed(vr);
        throw new MicError(r.error.code, `vring ${vr.index} head ${r.head}: ${r.error.message}`, {
          cause: r.error,
          details: { vring: vr.index, head: r.head },
        });
      case 'chain':
        return r.head;
    }
  }

  /**
   * The chain in progress on vring `vrIdx`, fetching the next one if the last was consumed: its
   * head and how many bytes it has and has moved in each direction, or null when the ring is
   * empty. Backends use it to size their buffers exactly (the kernel's mpssd walks the mapped ring
   * for this). Errors as {@link copyDesc}.
   */
  async chainInfo(vrIdx: number): Promise<VopChainInfo | null> {
    this.#checkUp();
    const vr = this.#vring(vrIdx);
    return vr.lock.run(() => {
      if (!this.#ensureChain(vr)) return null;
      return {
        head: vr.head,
        readable: vr.riov.total,
        writable: vr.wiov.total,
        read: vr.riov.done,
        written: vr.wiov.done,
      };
    });
  }

  /**
   * Takes the next chain of vring `vrIdx` as an object of its own ({@link VopChain}), apart from
   * the chain in progress of {@link copyDesc}: a backend can hold several requests of one vring at
   * once and complete them in any order (virtio 1.2 §2.7.8), as a block backend with several
   * requests in flight does. Resolves null when the ring is empty or the card has not set
   * DRIVER_OK. A bad chain was returned to the card with length 0 and rejects as in `copyDesc`.
   */
  async takeChain(vrIdx: number): Promise<VopChain | null> {
    this.#checkUp();
    const vr = this.#vring(vrIdx);
    return vr.lock.run(() => {
      if (!this.#fetchable()) return null;
      const riov = new VringhIov();
      const wiov = new VringhIov();
      const head = this.#fetch(vr, riov, wiov);
      return head === null ? null : new VopChain(this, vr, head, riov, wiov);
    });
  }

  /** @internal a chain's completion, under its vring lock */
  completeChain(vr: VopVring, head: number, written: number): void {
    vr.vringh.complete(head, written);
    vr.publishAvailIdx();
    this.#completed(vr);
  }

  /** @internal throws ENODEV unless the device is up */
  checkUp(): void {
    this.#checkUp();
  }

  #vring(vrIdx: number): VopVring {
    if (!Number.isInteger(vrIdx) || vrIdx < 0 || vrIdx >= this.vrings.length) {
      throw new MicError('EINVAL', `vring index ${String(vrIdx)} is not below num_vq ${this.vrings.length}`, {
        details: { vrIdx, numVq: this.vrings.length },
      });
    }
    return this.vrings[vrIdx]!;
  }

  /**
   * Publishes the chain in progress: used entry `{head, bytes written to the card}` (virtio 1.2
   * §2.7.8.2; QUIRK fixed: the kernel also counts bytes read from the card), the unconsumed rest
   * dropped, `info.avail_idx` refreshed; the card is notified with the batch ({@link #completed}).
   */
  #complete(vr: VopVring): void {
    vr.vringh.complete(vr.head, vr.wiov.done);
    vr.head = VOP_NO_HEAD;
    vr.riov.reset();
    vr.wiov.reset();
    vr.publishAvailIdx();
    this.#completed(vr);
  }

  #checkUp(): void {
    if (this.#removed) {
      throw new MicError('ENODEV', `device type ${this.type} was removed`, { details: { type: this.type } });
    }
  }

  /**
   * `MIC_VIRTIO_CONFIG_CHANGE`: writes new config bytes, tells the card (`config_change = 2` and
   * `h2c_config_db`) and waits for its `guest_ack`. Resolves on the ack (QUIRK fixed: the kernel
   * returns jiffies); both flags are cleared whatever the outcome.
   * @throws MicError ENODEV removed, EINVAL wrong length, EIO the card does not listen,
   *   ETIMEDOUT no ack within the bound
   */
  async configChange(bytes: Uint8Array): Promise<void> {
    this.#checkUp();
    if (!(bytes instanceof Uint8Array) || bytes.length !== this.entry.configLen) {
      throw new MicError(
        'EINVAL',
        `config change takes exactly config_len ${this.entry.configLen} bytes, got ${bytes instanceof Uint8Array ? bytes.length : String(bytes)}`,
        { details: { configLen: this.entry.configLen } },
      );
    }
    const { dp, hw, timeouts } = this.#ctx;
    const c = this.entry.ctrlOffset;
    await this.#ctx.lock.run(() =>
      this.#withAllVrings(async () => {
        this.#checkUp();
        const db = readS8(dp, MIC_BOOTPARAM_OFFSETS.h2cConfigDb);
        if (db === NO_DOORBELL) {
          throw new MicError('EIO', 'the card does not listen for config changes (h2c_config_db is -1)');
        }
        dp.write(this.entry.configspaceOffset, bytes);
        dp.storeU8(c + MIC_DEVICE_CTRL_OFFSETS.configChange, MIC_VIRTIO_PARAM_CONFIG_CHANGED);
        let acked = false;
        try {
          hw.sendIntr(db);
          acked = await this.#waitGuestAck(timeouts.configChangeMs);
        } finally {
          dp.storeU8(c + MIC_DEVICE_CTRL_OFFSETS.configChange, 0);
          dp.storeU8(c + MIC_DEVICE_CTRL_OFFSETS.guestAck, 0);
        }
        if (!acked) {
          throw new MicError(
            'ETIMEDOUT',
            `the card did not ack the config change within ${timeouts.configChangeMs} ms`,
            {
              details: { type: this.type, timeoutMs: timeouts.configChangeMs },
            },
          );
        }
      }),
    );
  }

  async #waitGuestAck(timeoutMs: number): Promise<boolean> {
    const { dp, clock, timeouts } = this.#ctx;
    const at = this.entry.ctrlOffset + MIC_DEVICE_CTRL_OFFSETS.guestAck;
    const deadline = clock.now() + timeoutMs;
    for (;;) {
      if (dp.loadU8(at) !== 0) return true;
      const left = deadline - clock.now();
      if (left <= 0) return false;
      await clock.sleep(Math.min(timeouts.pollMs, left));
    }
  }

  /**
   * Hot-unplug (`vop_virtio_del_device`), under the control's lock: `config_change = 1`, ring
   * `h2c_config_db` and wait for `guest_ack` (bounded) if the card listens, then free the
   * interrupt, the vrings and the bounce buffers, and mark the slot removed (`type = -1`).
   * Pollers are woken with an error. Idempotent.
   */
  async remove(): Promise<void> {
    if (this.#removed) return;
    const { dp, hw, log, timeouts } = this.#ctx;
    const c = this.entry.ctrlOffset;
    dp.storeU8(c + MIC_DEVICE_CTRL_OFFSETS.configChange, MIC_VIRTIO_PARAM_DEV_REMOVE);
    const db = readS8(dp, MIC_BOOTPARAM_OFFSETS.h2cConfigDb);
    if (db !== NO_DOORBELL) {
      let acked = false;
      try {
        hw.sendIntr(db);
        acked = await this.#waitGuestAck(timeouts.removeMs);
      } catch (err) {
        log.warn('vop: hot-unplug notification failed', { type: this.type, db, err });
      }
      if (!acked)
        log.warn('vop: the card did not ack the hot-unplug', {
          type: this.type,
          timeoutMs: timeouts.removeMs,
        });
    }
    dp.storeU8(c + MIC_DEVICE_CTRL_OFFSETS.configChange, 0);
    dp.storeU8(c + MIC_DEVICE_CTRL_OFFSETS.guestAck, 0);
    this.#removed = true;
    // The rings go away: no notification is owed for them any more.
    this.#unsignalled.clear();
    hw.freeIrq(this.#cookie, this);
    await this.#bh;
    await this.#drainMapped('remove');
    await this.#withAllVrings(() => {
      for (const vr of this.vrings) vr.free();
    });
    this.#markSlotRemoved();
    this.#wake();
    log.debug('vop: removed virtio device', { type: this.type, offset: this.entry.offset });
  }

  /** The first word of this entry as the host wrote it, with `type`. */
  #headerWord(type: number): number {
    const e = this.entry;
    return ((type & 0xff) | (e.numVq << 8) | (e.featureLen << 16) | (e.configLen << 24)) >>> 0;
  }

  /**
   * Writes this live entry's type and sizes back into the page if the card changed them. The
   * card marks entries removed on its own (`type = -1` when its VOP driver goes away); before a
   * slot search the host re-asserts its live entries, so a new device never takes the slot of a
   * device the host still has (the kernel would overwrite it).
   */
  reassertEntry(): void {
    if (this.#removed) return;
    const word = this.#headerWord(this.type);
    if (this.#ctx.dp.loadU32(this.entry.offset) !== word) this.#ctx.dp.storeU32(this.entry.offset, word);
  }

  /** `type = -1` for our slot, with our own sizes if the card corrupted the header word. */
  #markSlotRemoved(): void {
    const { dp } = this.#ctx;
    try {
      removeDpEntry(dp, this.entry.offset);
      return;
    } catch {
      // The card wrote a type that is no device: restore the header word the host owns.
    }
    dp.storeU32(this.entry.offset, this.#headerWord(-1));
  }
}

/**
 * One chain taken with {@link VopVdev.takeChain}: its readable part (card → host) and writable
 * part (host → card), each with a cursor, and its completion. Copies take the vring's lock, so
 * chains of one vring move their bytes one at a time (they share the bounce buffer) while any
 * number of them may be outstanding; a zero-copy copy (a DMA buffer of the handle) gives the lock
 * back while the engine runs it. After a reset or removal of the device the chain is dead:
 * every call throws `ENODEV` and nothing reaches the new rings.
 */
export class VopChain {
  readonly vrIdx: number;
  readonly head: number;
  /** Bytes of the device-readable part. */
  readonly readable: number;
  /** Bytes of the device-writable part. */
  readonly writable: number;
  readonly #vdev: VopVdev;
  readonly #vr: VopVring;
  readonly #riov: VringhIov;
  readonly #wiov: VringhIov;
  readonly #generation: number;
  #done = false;
  #mapped = false;
  /** The last zero-copy DMA of a read or write not known to be done (settles, never rejects). */
  #inFlight: Promise<void> | null = null;

  /** @internal made by {@link VopVdev.takeChain} */
  constructor(vdev: VopVdev, vr: VopVring, head: number, riov: VringhIov, wiov: VringhIov) {
    this.#vdev = vdev;
    this.#vr = vr;
    this.vrIdx = vr.index;
    this.head = head;
    this.#riov = riov;
    this.#wiov = wiov;
    this.readable = riov.total;
    this.writable = wiov.total;
    this.#generation = vr.generation;
  }

  /** Readable bytes copied out so far. */
  get bytesRead(): number {
    return this.#riov.done;
  }

  /** Writable bytes filled so far. */
  get bytesWritten(): number {
    return this.#wiov.done;
  }

  /** True once completed. */
  get done(): boolean {
    return this.#done;
  }

  #check(): void {
    this.#vdev.checkUp();
    if (this.#done)
      throw new MicError('EINVAL', `chain ${this.head} of vring ${this.vrIdx} is already complete`);
    if (this.#vr.generation !== this.#generation) {
      throw new MicError('ENODEV', `chain ${this.head} of vring ${this.vrIdx} died with a device reset`, {
        details: { head: this.head, vring: this.vrIdx },
      });
    }
  }

  /**
   * Copies the next readable bytes into `dst` (card → host). When `dst` lies in a DMA buffer of
   * the handle (`allocDmaBuffer`) the engine moves them straight, and the vring lock is given back
   * while it does (other chains of the vring copy meanwhile); the promise resolves once the bytes
   * are in place. @returns bytes copied
   */
  read(dst: Uint8Array): Promise<number> {
    return this.#move(dst, true);
  }

  #move(buf: Uint8Array, reading: boolean): Promise<number> {
    const vr = this.#vr;
    return vr.lock
      .run(() => {
        this.#check();
        vr.beginDefer();
        let r: number | Promise<number>;
        try {
          r = reading ? vr.readInto(buf, 0, this.#riov) : vr.writeFrom(buf, 0, this.#wiov);
        } catch (err) {
          this.#endMove(0);
          throw err;
        }
        if (typeof r === 'number') return this.#endMove(r);
        return r.then(
          (n) => this.#endMove(n),
          (err: unknown) => {
            this.#endMove(0);
            throw err;
          },
        );
      })
      .then(settleCopy);
  }

  /** The end of a read or write under the lock: its zero-copy DMA, if any, waited for outside it. */
  #endMove(n: number): CopyResult {
    const batches = this.#vr.endDefer();
    if (batches.length === 0) return n;
    const done = this.#vr.enqueue(batches, () => {});
    this.#inFlight = done.catch(() => {});
    return new Detached(done.then(() => n));
  }

  /** Skips `n` readable bytes without copying them. @returns bytes skipped */
  skip(n: number): Promise<number> {
    return this.#vr.lock.run(() => {
      this.#check();
      return this.#vr.vringh.skip(this.#riov, n);
    });
  }

  /**
   * Copies `src` into the next writable bytes (host → card); from a DMA buffer of the handle by
   * the engine straight, without the vring lock while it runs, as {@link read}. @returns bytes copied
   */
  write(src: Uint8Array): Promise<number> {
    return this.#move(src, false);
  }

  /**
   * Direct access, card → host: views of the next `n` readable bytes (fewer at the end of the
   * readable part) in card memory, one per run of descriptor segments adjacent in card memory,
   * consumed as if read. A backend
   * hands them to a file write (or reads them) without a copy into a buffer of its own: one copy
   * where {@link read} and a `write(2)` make two. No DMA and no vring lock: chains map at the same
   * time. The segments are those the chain was fetched with (each descriptor read once, checked
   * against the aperture); the card can still change the bytes under the views, so a backend
   * copies what it interprets (a header) with {@link read}, never from a view.
   *
   * The views stay valid until {@link complete} (or {@link unmap}); a device reset or a
   * hot-unplug waits for that, up to `VOP_MAPPED_DRAIN_TIMEOUT_MS`, before the card gets its
   * buffers back. @returns the views (empty when nothing is left)
   * @throws MicError ENODEV after a reset or removal, EINVAL when complete or `n` is no count
   */
  mapReadable(n: number): Uint8Array[] {
    return this.#map(this.#riov, n, true);
  }

  /**
   * Direct access, host → card: views of the next `n` writable bytes in card memory, counted as
   * written (they are in the used length), for a file read straight into the card's buffers. As
   * {@link mapReadable} otherwise: whatever the backend puts there before {@link complete} is
   * what the card gets.
   */
  mapWritable(n: number): Uint8Array[] {
    return this.#map(this.#wiov, n, false);
  }

  #map(iov: VringhIov, n: number, cardToHost: boolean): Uint8Array[] {
    this.#check();
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new MicError('EINVAL', `cannot map ${String(n)} bytes of chain ${this.head}`, {
        details: { head: this.head, n },
      });
    }
    const out: Uint8Array[] = [];
    if (this.#vr.map(iov, n, out, cardToHost) > 0 && !this.#mapped) {
      this.#mapped = true;
      this.#vdev.mapped(this);
    }
    return out;
  }

  /**
   * Gives up the views of a chain that will not be completed (it died with a reset): a reset
   * waiting for mapped chains need not wait for this one. Idempotent; {@link complete} does it.
   */
  unmap(): void {
    if (!this.#mapped) return;
    this.#mapped = false;
    this.#vdev.unmapped(this);
  }

  /**
   * Returns the chain to the card: used entry `{head, bytes written}` (virtio 1.2 §2.7.8.2), a
   * notification if the card wants one, `info.avail_idx` refreshed. Ends the views of a mapped
   * chain (whether it succeeds or not).
   */
  complete(): Promise<void> {
    return this.#vr.lock.run(() => {
      // Never before the bytes of a read or write still on the engine are in place (the wait is
      // bounded: each DMA by `vop_sync_dma`'s 5 s, then memcpy).
      const inFlight = this.#inFlight;
      return inFlight === null ? this.#completeLocked() : inFlight.then(() => this.#completeLocked());
    });
  }

  #completeLocked(): void {
    try {
      this.#check();
      this.#done = true;
      this.#vdev.completeChain(this.#vr, this.head, this.#wiov.done);
    } finally {
      this.unmap();
    }
  }
}
