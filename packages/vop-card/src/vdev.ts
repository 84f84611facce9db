/**
 * One virtio device of the card's VOP transport (`struct _vop_vdev`): the `virtio_config_ops`
 * over its entry of the host's device page (`vop_vq_config_ops`), its queues (host vring for
 * desc and avail, used ring in card memory), its doorbells and the DMA ops its driver gets.
 *
 * Everything the host wrote that sizes or places memory (the entry's header, every vqconfig, the
 * doorbell the host listens on) was read once when the device was added, checked, and is used
 * from that snapshot; the device page is only read again for values the host legitimately
 * changes (status, config space, the handshake flags).
 *
 * @see drivers/misc/mic/vop/vop_main.c
 */
import { type Clock, pollUntil } from '@mic/clock';
import { type ErrnoCode, MicError, checkInt, isMicError } from '@mic/errors';
import type { Logger } from '@mic/logger';
import { asBufferMemory, type Memory } from '@mic/memory';
import {
  type DpEntryLayout,
  MIC_DB_NONE,
  MIC_DEVICE_CTRL_OFFSETS,
  MIC_DEVICE_DESC_OFFSETS,
  MIC_VQCONFIG_OFFSETS,
  MIC_VQCONFIG_SIZE,
  checkVringMagic,
  micFeatureMask,
  micVringLayout,
  readFeatureBits,
  writeFeatureBits,
} from '@mic/mic-common';
import {
  VIRTIO_F,
  type VirtioConfigOps,
  type VirtioDevice,
  type VirtioDmaBuffer,
  type VirtioDmaOps,
  VirtioQueue,
  Virtqueue,
  type VirtqueueInfo,
  alignUp,
  featureBit,
  usedRingSize,
  vringTransportFeatures,
} from '@mic/virtio';
import type { DmaBuffer, MicIrq, VopDevice } from '@mic/vop-bus';

/**
 * How long the card waits for the host to acknowledge a reset (`host_ack`): 100 × 100 ms in
 * `vop_reset_inform_host`.
 */
export const VOP_RESET_TIMEOUT_MS = 10_000;

/**
 * How long the card waits for the host to take the relocated used rings (clear
 * `used_address_updated`): 99 × 100 ms in `vop_find_vqs`.
 */
export const VOP_RELOCATION_TIMEOUT_MS = 9_900;

/** Default period of the handshake polls. The kernel sleeps 100 ms between reads. */
export const VOP_POLL_INTERVAL_MS = 10;

const PAGE_SIZE = 4096;
const CTRL = MIC_DEVICE_CTRL_OFFSETS;

/** A vqconfig as read (once) and checked when the device was added. */
export interface VopVringConfig {
  /** `mic_vqconfig.address`: the host vring block, as the card's `remap` reaches it. */
  readonly address: number;
  /** `mic_vqconfig.num`: a power of two from 1 to 32768. */
  readonly num: number;
}

/** What the card driver knows about one of its devices. */
export interface VopCardDeviceInfo {
  /** The card VOP device it sits on. */
  readonly vpdev: VopDevice;
  /** Offset of its `mic_device_desc` in the device page. */
  readonly offset: number;
  /** The virtio device id (`mic_device_desc.type`). */
  readonly type: number;
  readonly numVq: number;
  readonly featureLen: number;
  readonly configLen: number;
  /** The device on the card's virtio bus. */
  readonly vdev: VirtioDevice;
  /** Card doorbell the host rings for this device (`dc.h2c_vdev_db`). */
  readonly h2cVdevDb: number;
  /** Host doorbell the card rings for this device (`dc.c2h_vdev_db`, read once at add). */
  readonly c2hVdevDb: number;
  /** The opaque handle written to `dc.vdev`. */
  readonly handle: number;
  /** The vqconfigs as read at add. */
  readonly vrings: readonly VopVringConfig[];
}

/** @internal what {@link CardVdev} is built from */
export interface CardVdevInit {
  readonly vpdev: VopDevice;
  readonly dp: Memory;
  /** The entry's layout and type, from the page walk. */
  readonly entry: DpEntryLayout & { readonly type: number };
  /** The entry's first word (type and sizes) when it was added. */
  readonly word: number;
  readonly vrings: readonly VopVringConfig[];
  readonly c2hDb: number;
  readonly handle: number;
  readonly clock: Clock;
  readonly pollIntervalMs: number;
  /** The signal that cancels waits on the host, read when a wait starts. */
  readonly signal: () => AbortSignal;
  readonly log: Logger;
}

interface LiveQueue {
  readonly index: number;
  readonly vq: VirtioQueue;
  /** The host vring, remapped. */
  readonly va: Memory;
  /** The used ring, in card memory. */
  readonly used: DmaBuffer;
}

/**
 * @internal One device of the card VOP driver. The driver creates it for a new device page
 * entry, registers {@link ops} and {@link dma} on the virtio bus, and removes it on hot-unplug.
 */
export class CardVdev {
  readonly offset: number;
  readonly type: number;
  readonly numVq: number;
  readonly featureLen: number;
  readonly configLen: number;
  readonly c2hDb: number;
  readonly handle: number;
  readonly word: number;
  readonly vrings: readonly VopVringConfig[];
  /** Offset of the `mic_device_ctrl` in the device page. */
  readonly ctrl: number;
  /** Card-initiated resets started (the kernel's `reset_done` completion). */
  resets = 0;
  h2cDb = MIC_DB_NONE;
  vdev: VirtioDevice | null = null;
  /** The transport ops registered on the virtio bus. */
  readonly ops: VirtioConfigOps;
  /** DMA ops for the driver: card memory, addr = DMA address = card physical address. */
  readonly dma: VirtioDmaOps;

  readonly #vpdev: VopDevice;
  readonly #dp: Memory;
  readonly #entry: DpEntryLayout;
  readonly #clock: Clock;
  readonly #poll: number;
  readonly #signal: () => AbortSignal;
  readonly #log: Logger;
  readonly #what: string;
  readonly #bufs = new Map<VirtioDmaBuffer, DmaBuffer>();
  #queues: LiveQueue[] = [];
  #irq: MicIrq | null = null;
  #detached = false;
  #released = false;
  #localStatus = 0;

  constructor(init: CardVdevInit) {
    const e = init.entry;
    this.offset = e.offset;
    this.type = e.type;
    this.numVq = e.numVq;
    this.featureLen = e.featureLen;
    this.configLen = e.configLen;
    this.ctrl = e.ctrlOffset;
    this.c2hDb = init.c2hDb;
    this.handle = init.handle;
    this.word = init.word;
    this.vrings = init.vrings;
    this.#vpdev = init.vpdev;
    this.#dp = init.dp;
    this.#entry = e;
    this.#clock = init.clock;
    this.#poll = init.pollIntervalMs;
    this.#signal = init.signal;
    this.#log = init.log;
    this.#what = `type ${e.type} device at offset ${e.offset}`;
    this.ops = {
      configSize: this.configLen,
      attach: (vdev) => {
        this.vdev = vdev;
      },
      getFeatures: () => readFeatureBits(this.#dp, this.#entry.featuresOffset, this.featureLen),
      finalizeFeatures: (f) => this.#finalizeFeatures(f),
      getConfig: (offset, length) => {
        this.#checkConfig(offset, length);
        const out = new Uint8Array(length);
        this.#dp.read(this.#entry.configspaceOffset + offset, out);
        return out;
      },
      setConfig: (offset, bytes) => {
        this.#checkConfig(offset, bytes.length);
        if (!this.#detached) this.#dp.write(this.#entry.configspaceOffset + offset, bytes);
      },
      getStatus: () => (this.#detached ? this.#localStatus : this.#dp.loadU8(this.#statusOffset)),
      setStatus: (status) => this.#setStatus(status),
      reset: () => this.reset(),
      findVqs: (vdev, infos) => this.#findVqs(vdev, infos),
      delVqs: () => {
        this.#delVqs(false);
        return Promise.resolve();
      },
    };
    this.dma = {
      alloc: (size) => {
        if (this.#released) throw new MicError('ENODEV', `${this.#what} was removed: no DMA buffers`);
        const b = this.#vpdev.dmaOps.alloc(size);
        const buf: VirtioDmaBuffer = Object.freeze({ va: b.va, addr: b.dmaAddr, size: b.size });
        this.#bufs.set(buf, b);
        return buf;
      },
      free: (buf) => {
        const b = this.#bufs.get(buf);
        if (!b) throw new MicError('EINVAL', `DMA buffer is not a live buffer of the ${this.#what}`);
        this.#bufs.delete(buf);
        this.#vpdev.dmaOps.free(b);
      },
    };
  }

  get #statusOffset(): number {
    return this.offset + MIC_DEVICE_DESC_OFFSETS.status;
  }

  /** The driver-facing description. Only valid once the device is registered. */
  info(): VopCardDeviceInfo {
    return Object.freeze({
      vpdev: this.#vpdev,
      offset: this.offset,
      type: this.type,
      numVq: this.numVq,
      featureLen: this.featureLen,
      configLen: this.configLen,
      vdev: this.vdev!,
      h2cVdevDb: this.h2cDb,
      c2hVdevDb: this.c2hDb,
      handle: this.handle,
      vrings: this.vrings,
    });
  }

  /**
   * Takes a card doorbell, installs the device interrupt on it and publishes it in
   * `dc.h2c_vdev_db` (`_vop_add_device` steps 2–3).
   */
  startIrq(): void {
    const hw = this.#vpdev.hwOps;
    const db = hw.nextDb();
    this.#irq = hw.requestIrq(this.#onInterrupt, 'virtio intr', this, db);
    this.h2cDb = db;
    this.#dp.storeU8(this.ctrl + CTRL.h2cVdevDb, db);
  }

  /** Frees the device interrupt and, unless detached, writes `dc.h2c_vdev_db = -1`. */
  stopIrq(): void {
    const irq = this.#irq;
    if (irq) this.#try('free_irq', () => this.#vpdev.hwOps.freeIrq(irq, this));
    this.#irq = null;
    if (!this.#detached && this.h2cDb !== MIC_DB_NONE)
      this.#dp.storeU8(this.ctrl + CTRL.h2cVdevDb, MIC_DB_NONE);
    this.h2cDb = MIC_DB_NONE;
  }

  /**
   * The host took the entry away without the hot-unplug handshake: from now on nothing of this
   * device touches the device page or the host vrings (they may belong to another device), the
   * queues are broken and the host is never rung again.
   */
  detach(): void {
    this.#detached = true;
    this.#localStatus = 0;
    for (const q of this.#queues) q.vq.breakQueue();
  }

  /**
   * After the device left the virtio bus: deletes queues and frees DMA buffers its driver left
   * behind (logged), so nothing of the device outlives it.
   */
  release(): void {
    if (this.#queues.length > 0) {
      this.#log.warn(`${this.#what}: its driver left ${this.#queues.length} queues set up; deleted`);
      this.#delVqs(false);
    }
    if (this.#bufs.size > 0) {
      this.#log.warn(`${this.#what}: its driver left ${this.#bufs.size} DMA buffers; freed`);
      for (const b of this.#bufs.values())
        this.#try('freeing a DMA buffer', () => this.#vpdev.dmaOps.free(b));
      this.#bufs.clear();
    }
    this.#released = true;
  }

  /** `vop_virtio_intr_handler`: ack, then `vring_interrupt` for every queue of the device. */
  readonly #onInterrupt = (irq: number): void => {
    this.#vpdev.hwOps.ackInterrupt(irq);
    for (const q of this.#queues) {
      try {
        q.vq.interrupt();
      } catch (err) {
        this.#log.error(`${this.#what}: callback of queue ${q.index} threw`, { error: String(err) });
      }
    }
  };

  /** Rings the host (`send_intr(c2h_vdev_db)`); `EIO` naming what for when the doorbell fails. */
  #ring(what: string): void {
    try {
      this.#vpdev.hwOps.sendIntr(this.c2hDb);
    } catch (err) {
      throw new MicError(
        'EIO',
        `${this.#what}: cannot ring c2h_vdev_db ${this.c2hDb} for ${what}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err, details: { offset: this.offset, c2hVdevDb: this.c2hDb } },
      );
    }
  }

  /** `vop_notify`: one doorbell per device, whichever queue was kicked. */
  #kick(): boolean {
    if (this.#detached) return false;
    try {
      this.#vpdev.hwOps.sendIntr(this.c2hDb);
      return true;
    } catch (err) {
      this.#log.warn(`${this.#what}: kick failed`, { error: String(err) });
      return false;
    }
  }

  #writeStatus(status: number): void {
    if (this.#detached) this.#localStatus = status;
    else this.#dp.storeU8(this.#statusOffset, status);
  }

  /**
   * `vop_finalize_features`: the ring's transport features (RING_PACKED cleared), minus
   * RING_INDIRECT_DESC (not usable over VOP), plus ACCESS_PLATFORM; then the guest acks are
   * rewritten with every negotiated bit that `feature_len` bytes can carry.
   */
  #finalizeFeatures(features: bigint): bigint {
    let f = vringTransportFeatures(features) & ~featureBit(VIRTIO_F.RING_INDIRECT_DESC);
    f |= featureBit(VIRTIO_F.ACCESS_PLATFORM);
    if (!this.#detached) {
      writeFeatureBits(
        this.#dp,
        this.#entry.guestAcksOffset,
        this.featureLen,
        f & micFeatureMask(this.featureLen),
      );
    }
    return f;
  }

  #checkConfig(offset: number, length: number): void {
    if (
      !Number.isInteger(offset) ||
      !Number.isInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > this.configLen
    ) {
      throw new MicError(
        'EINVAL',
        `config access [${String(offset)}, +${String(length)}) is outside the ${this.configLen}-byte config space of the ${this.#what}`,
        { details: { offset, length, configLen: this.configLen } },
      );
    }
  }

  /** `vop_set_status`: 0 is not written (that is a reset); anything else is, then the host is rung. */
  #setStatus(status: number): void {
    checkInt('virtio status', status, 0, 0xff);
    if (status === 0) return;
    this.#writeStatus(status);
    if (!this.#detached) this.#ring('a status change');
  }

  /**
   * The card-initiated reset (`vop_reset_inform_host`): `host_ack = 0`, `vdev_reset = 1`, ring,
   * poll `host_ack` for up to {@link VOP_RESET_TIMEOUT_MS}, then `status = 0` whatever happened.
   * A timeout or a cancellation is logged, not thrown (the kernel's reset cannot fail); a doorbell
   * that cannot be rung is thrown (`EIO`), after status 0.
   */
  async reset(): Promise<void> {
    this.resets++;
    if (this.#detached) {
      this.#localStatus = 0;
      return;
    }
    const dp = this.#dp;
    dp.storeU8(this.ctrl + CTRL.hostAck, 0);
    dp.storeU8(this.ctrl + CTRL.vdevReset, 1);
    try {
      this.#ring('a reset');
      const acked = await this.#wait(() => dp.loadU8(this.ctrl + CTRL.hostAck) !== 0, VOP_RESET_TIMEOUT_MS);
      if (acked === false) {
        this.#log.warn(
          `${this.#what}: the host did not acknowledge the reset within ${VOP_RESET_TIMEOUT_MS} ms; status set to 0 anyway`,
          { offset: this.offset },
        );
      }
    } finally {
      this.#writeStatus(0);
    }
  }

  /** Polls `check` on the injected clock; true, false on timeout, or null when cancelled. */
  async #wait(check: () => boolean, timeoutMs: number): Promise<boolean | null> {
    try {
      return await pollUntil(
        this.#clock,
        () => this.#detached || check(),
        timeoutMs,
        this.#poll,
        this.#signal(),
      );
    } catch (err) {
      if (!isMicError(err, 'ECANCELED')) throw err;
      this.#log.info(`${this.#what}: a wait on the host was cancelled (driver removed)`);
      return null;
    }
  }

  /**
   * `vop_find_vqs`: one queue per named info (null names take no queue index), then the used-ring
   * relocation handshake: `used_address_updated = 1`, ring, wait up to
   * {@link VOP_RELOCATION_TIMEOUT_MS} for the host to clear it (`ENODEV` otherwise). Any failure
   * undoes every queue and clears the published used addresses.
   */
  async #findVqs(vdev: VirtioDevice, infos: readonly VirtqueueInfo[]): Promise<(VirtioQueue | null)[]> {
    if (this.#detached) throw new MicError('ENODEV', `${this.#what} was removed by the host`);
    if (this.#queues.length > 0) throw new MicError('EBUSY', `${this.#what}: queues are already set up`);
    if (infos.length > this.numVq) {
      throw new MicError(
        'ENOENT',
        `${infos.length} queues asked for, the ${this.#what} has num_vq ${this.numVq}`,
        {
          details: { asked: infos.length, numVq: this.numVq },
        },
      );
    }
    const result: (VirtioQueue | null)[] = [];
    try {
      let index = 0;
      for (const info of infos) {
        result.push(
          info.name === null ? null : this.#findVq(vdev, index++, info.name, info.callback ?? null),
        );
      }
      const dp = this.#dp;
      dp.storeU8(this.ctrl + CTRL.usedAddressUpdated, 1);
      this.#ring('the used ring relocation');
      const taken = await this.#wait(
        () => dp.loadU8(this.ctrl + CTRL.usedAddressUpdated) === 0,
        VOP_RELOCATION_TIMEOUT_MS,
      );
      if (this.#detached) throw new MicError('ENODEV', `${this.#what} was removed by the host`);
      if (taken === null) throw new MicError('ECANCELED', 'the vop card driver was removed');
      if (!taken) {
        throw new MicError(
          'ENODEV',
          `the host did not take the relocated used rings within ${VOP_RELOCATION_TIMEOUT_MS} ms (used_address_updated still set)`,
          { details: { offset: this.offset } },
        );
      }
    } catch (err) {
      this.#delVqs(true);
      throw this.#context(err);
    }
    return result;
  }

  #context(err: unknown): MicError {
    const code: ErrnoCode = isMicError(err) ? err.code : 'EIO';
    const msg = err instanceof Error ? err.message : String(err);
    return new MicError(code, `${this.#what}: find_vqs failed: ${msg}`, { cause: err });
  }

  /**
   * `vop_find_vq(index)`: remap the host vring, zero desc/avail/used (`memset_io` of
   * `_vr_size`), check the magic, allocate the used ring in card memory, build the queue on both,
   * publish `used_address`.
   */
  #findVq(
    vdev: VirtioDevice,
    index: number,
    name: string,
    callback: ((vq: VirtioQueue) => void) | null,
  ): VirtioQueue {
    const { address, num } = this.vrings[index]!;
    const layout = micVringLayout(num);
    const hw = this.#vpdev.hwOps;
    const va = hw.remap(address, layout.size);
    let used: DmaBuffer | null = null;
    try {
      va.fill(0, layout.infoOffset, 0);
      checkVringMagic(va, layout.infoOffset, this.type, index);
      used = this.#vpdev.dmaOps.alloc(alignUp(usedRingSize(num), PAGE_SIZE));
      const ring = new Virtqueue<unknown>({
        num,
        mem: asBufferMemory(va, `${name}: the host's vring ${index}`),
        desc: layout.descOffset,
        avail: layout.availOffset,
        used: 0,
        usedMem: asBufferMemory(used.va, `${name}: the used ring of vring ${index}`),
        eventIdx: vdev.hasFeature(VIRTIO_F.RING_EVENT_IDX),
      });
      const vq = new VirtioQueue<unknown>({ vdev, index, name, ring, notify: () => this.#kick(), callback });
      this.#dp.writeU64(this.#vqconfig(index) + MIC_VQCONFIG_OFFSETS.usedAddress, used.dmaAddr);
      this.#queues.push({ index, vq, va, used });
      return vq;
    } catch (err) {
      if (used) this.#vpdev.dmaOps.free(used);
      hw.unmap(va);
      throw err;
    }
  }

  #vqconfig(index: number): number {
    return this.#entry.vqconfigOffset + index * MIC_VQCONFIG_SIZE;
  }

  /**
   * `vop_del_vqs`: breaks every queue, frees its used ring and unmaps its host vring. With
   * `unpublish` (a failed find_vqs) it also clears `used_address` and `used_address_updated`, so
   * a host that answers late does not map used rings that are gone.
   */
  #delVqs(unpublish: boolean): void {
    const hw = this.#vpdev.hwOps;
    const page = unpublish && !this.#detached;
    for (const q of this.#queues) {
      q.vq.breakQueue();
      if (page) this.#dp.writeU64(this.#vqconfig(q.index) + MIC_VQCONFIG_OFFSETS.usedAddress, 0);
      this.#try(`freeing the used ring of queue ${q.index}`, () => this.#vpdev.dmaOps.free(q.used));
      this.#try(`unmapping the vring of queue ${q.index}`, () => hw.unmap(q.va));
    }
    if (page) this.#dp.storeU8(this.ctrl + CTRL.usedAddressUpdated, 0);
    this.#queues = [];
  }

  /** Runs a teardown step; a failure is logged and the teardown goes on. */
  #try(what: string, step: () => void): void {
    try {
      step();
    } catch (err) {
      this.#log.error(`${this.#what}: ${what} failed`, { error: String(err) });
    }
  }
}
