/**
 * The per-card control device, the host's `/dev/vop_virtio<N>` (`vop_host_init`): `open()` gives
 * a {@link VopVirtioHandle} (one file descriptor, one virtio device), and card stop
 * (`vop_host_uninit`) resets and removes every device while the handles stay valid and report
 * `ENODEV`.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_host_init`, `vop_host_uninit`, `vop_fops`
 */
import { AsyncMutex } from '@mic/bus-core';
import { type Clock, realClock } from '@mic/clock';
import { MicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { MIC_DP_SIZE } from '@mic/mic-common';
import { asBufferMemory } from '@mic/memory';
import type { VopDevice } from '@mic/vop-bus';
import {
  VOP_CONFIG_CHANGE_TIMEOUT_MS,
  VOP_DMA_MIN_BYTES,
  VOP_HANDSHAKE_POLL_MS,
  VOP_REMOVE_TIMEOUT_MS,
} from './constants.js';
import {
  type VopDpDump,
  type VopVdevInfo,
  dumpDevicePage,
  formatDpDump,
  formatVdevInfo,
  vdevInfo,
} from './debug.js';
import { type DmaMemcpyChannel, memcpyChannel } from './dma.js';
import { VopDmaPool } from './dma-buffers.js';
import {
  type VopAddDeviceOptions,
  type VopChain,
  type VopChainInfo,
  type VopControlContext,
  type VopCopyDesc,
  type VopHandshakeTimeouts,
  type VopPollEvents,
  VopVdev,
} from './vdev.js';
import { VopMapping } from './view.js';
import type { VopVdevStats } from './vring.js';

/** Options of the host side (given to `VopHostDriver`). */
export interface VopHostOptions {
  readonly logger?: Logger;
  /** The clock every handshake bound is measured on (default: real time). */
  readonly clock?: Clock;
  /** Copies shorter than this go by memcpy even with a DMA channel (default 1024; 0 = DMA whenever aligned). */
  readonly dmaMinBytes?: number;
  /** Never use the DMA channel (every copy a memcpy). */
  readonly noDma?: boolean;
  /** Handshake bounds (defaults: 10 s config change, 15 s remove, 10 ms polling). */
  readonly timeouts?: Partial<VopHandshakeTimeouts>;
}

/** What a handle reports about its device. */
export interface VopDeviceInfo {
  readonly type: number;
  /** Offset of the entry in the device page. */
  readonly offset: number;
  readonly numVq: number;
  readonly featureLen: number;
  readonly configLen: number;
  /** Entries of each vring. */
  readonly nums: readonly number[];
  /** The status byte the card wrote. */
  readonly status: number;
  /** The host doorbell the card rings for this device. */
  readonly c2hDb: number;
}

/**
 * The control device of one card (`vop_virtio<index>`). Made by `VopHostDriver` when it probes a
 * host-role VOP device.
 */
export class VopHostControl {
  /** `vop_virtio<index>`. */
  readonly name: string;
  /** The card index (`dnode - 1`). */
  readonly index: number;
  readonly vpdev: VopDevice;
  readonly #ctx: VopControlContext;
  readonly #vdevs = new Set<VopVdev>();
  readonly #handles = new Set<VopVirtioHandle>();
  #stopped = false;
  #dmaError: unknown = null;

  /** @throws MicError ENODEV when the VOP device has no device page or no aperture */
  constructor(vpdev: VopDevice, options: VopHostOptions = {}) {
    const dp = vpdev.hwOps.getDp();
    if (dp === null || dp.byteLength < MIC_DP_SIZE) {
      throw new MicError('ENODEV', `${vpdev.name}: no device page (getDp)`, {
        details: { device: vpdev.name },
      });
    }
    if (vpdev.aper === null) {
      throw new MicError('ENODEV', `${vpdev.name}: no aperture to reach card memory`, {
        details: { device: vpdev.name },
      });
    }
    this.vpdev = vpdev;
    this.index = vpdev.index;
    this.name = `vop_virtio${vpdev.index}`;
    const log = options.logger ?? nullLogger;
    const channel: DmaMemcpyChannel | null = options.noDma ? null : memcpyChannel(vpdev.dmaCh);
    const dmaMinBytes = options.dmaMinBytes ?? VOP_DMA_MIN_BYTES;
    if (!Number.isSafeInteger(dmaMinBytes) || dmaMinBytes < 0) {
      throw new MicError('EINVAL', `dmaMinBytes ${String(dmaMinBytes)} is not a non-negative integer`);
    }
    const timeouts: VopHandshakeTimeouts = {
      configChangeMs: options.timeouts?.configChangeMs ?? VOP_CONFIG_CHANGE_TIMEOUT_MS,
      removeMs: options.timeouts?.removeMs ?? VOP_REMOVE_TIMEOUT_MS,
      pollMs: options.timeouts?.pollMs ?? VOP_HANDSHAKE_POLL_MS,
    };
    for (const [k, v] of Object.entries(timeouts)) {
      if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) {
        throw new MicError('EINVAL', `timeout ${k} ${String(v)} is not a positive number of ms`);
      }
    }
    this.#ctx = {
      vpdev,
      hw: vpdev.hwOps,
      dp,
      aper: asBufferMemory(vpdev.aper.va, 'the card aperture'),
      clock: options.clock ?? realClock,
      log,
      lock: new AsyncMutex(),
      timeouts,
      dmaMinBytes,
      dma: () => (this.#dmaError === null ? channel : null),
      dmaFailed: (err) => {
        if (this.#dmaError !== null) return;
        this.#dmaError = err;
        log.error('vop: DMA failed; copies go by memcpy from now on', { control: this.name, err });
      },
    };
    log.debug('vop: host control up', { control: this.name, dma: channel?.name ?? null });
  }

  /** True after card stop: new handles and adds fail with ENODEV. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** The DMA channel copies use, or null (none, or it failed). */
  get dmaChannel(): DmaMemcpyChannel | null {
    return this.#ctx.dma();
  }

  /** Opens a handle (`open("/dev/vop_virtio<N>")`): no device until {@link VopVirtioHandle.addDevice}. */
  open(): VopVirtioHandle {
    if (this.#stopped) throw new MicError('ENODEV', `${this.name} is gone (the card stopped)`);
    const h = new VopVirtioHandle(this, this.#ctx, {
      add: (v) => this.#vdevs.add(v),
      drop: (v) => this.#vdevs.delete(v),
      close: (hh) => this.#handles.delete(hh),
    });
    this.#handles.add(h);
    return h;
  }

  /** Devices added and not removed, in add order. */
  devices(): readonly VopVdev[] {
    return [...this.#vdevs];
  }

  /** A copy of the device page (the whole 4096 bytes). */
  devicePage(): Uint8Array {
    const out = new Uint8Array(MIC_DP_SIZE);
    this.#ctx.dp.read(0, out);
    return out;
  }

  /** The debugfs `dp` view as data. */
  dpDump(): VopDpDump {
    return dumpDevicePage(this.#ctx.dp);
  }

  /** The debugfs `dp` view as the kernel's text. */
  dpText(): string {
    return formatDpDump(this.dpDump());
  }

  /** The debugfs `vdev_info` view as data (under the control's lock, as the kernel). */
  vdevInfo(): Promise<VopVdevInfo[]> {
    return this.#ctx.lock.run(() => this.devices().map(vdevInfo));
  }

  /** The debugfs `vdev_info` view as the kernel's text. */
  async vdevInfoText(): Promise<string> {
    return formatVdevInfo(await this.vdevInfo());
  }

  /**
   * Card stop (`vop_host_uninit`): every device reset (pollers woken), then every device removed
   * with its hot-unplug handshake, all at once so the whole takes at most one remove timeout.
   * Handles stay valid and report `ENODEV`. Idempotent.
   */
  async uninit(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const vdevs = await this.#ctx.lock.run(async () => {
      const list = this.devices();
      for (const v of list) await v.deviceReset();
      return list;
    });
    await Promise.all(
      vdevs.map(async (v) => {
        try {
          await v.remove();
        } catch (err) {
          this.#ctx.log.warn('vop: remove at card stop failed', { control: this.name, type: v.type, err });
        }
        this.#vdevs.delete(v);
      }),
    );
    this.#ctx.log.debug('vop: host control down', { control: this.name });
  }
}

interface ControlHooks {
  add(v: VopVdev): void;
  drop(v: VopVdev): void;
  close(h: VopVirtioHandle): void;
}

/**
 * One open handle of `/dev/vop_virtio<N>` (`struct vop_vdev` of a file): at most one virtio
 * device. Operations on the handle are serialised (`vdev_mutex`), except that copies on different
 * vrings may run at the same time and `poll` does not block the others.
 */
export class VopVirtioHandle {
  readonly control: VopHostControl;
  readonly #ctx: VopControlContext;
  readonly #hooks: ControlHooks;
  readonly #lock = new AsyncMutex();
  readonly #pool: VopDmaPool;
  #vdev: VopVdev | null = null;
  #closed = false;

  /** @internal made by {@link VopHostControl.open} */
  constructor(control: VopHostControl, ctx: VopControlContext, hooks: ControlHooks) {
    this.control = control;
    this.#ctx = ctx;
    this.#hooks = hooks;
    this.#pool = new VopDmaPool(ctx.vpdev.dmaOps);
  }

  /** The device, or null before `addDevice`. */
  get device(): VopVdev | null {
    return this.#vdev;
  }

  #open(): void {
    if (this.#closed) throw new MicError('EBADF', 'the VOP handle is closed');
  }

  /** `vop_vdev_inited`: EINVAL without a device, ENODEV once it was removed. */
  #inited(): VopVdev {
    this.#open();
    const v = this.#vdev;
    if (v === null) throw new MicError('EINVAL', 'no device was added on this handle');
    if (v.removed)
      throw new MicError('ENODEV', `device type ${v.type} was removed`, { details: { type: v.type } });
    return v;
  }

  /**
   * `MIC_VIRTIO_ADD_DEVICE`: adds the virtio device described by `block` (a `mic_device_desc`
   * with its vqconfigs, host features, guest acks and config, `mic_desc_size` bytes). Error codes,
   * one per cause: EFAULT (block shorter than its size), EMSGSIZE (aligned size over 256), E2BIG
   * (num_vq over 4), EINVAL (a vring size 0, over 128 or not a power of two), EOPNOTSUPP (not a
   * virtio device type), EBUSY (this handle has a device already), ENOSPC (no free slot in the
   * device page), ENODEV (the card stopped), ENOMEM (host memory), EIO (the page is corrupt).
   * `options` are this device's own (its DMA threshold); a bad one is EINVAL.
   */
  addDevice(block: Uint8Array, options: VopAddDeviceOptions = {}): Promise<void> {
    return this.#lock.run(async () => {
      this.#open();
      if (this.#vdev !== null) {
        throw new MicError('EBUSY', `this handle already has a device (type ${this.#vdev.type})`, {
          details: { type: this.#vdev.type },
        });
      }
      await this.#ctx.lock.run(() => {
        if (this.control.stopped)
          throw new MicError('ENODEV', `${this.control.name} is gone (the card stopped)`);
        for (const live of this.control.devices()) live.reassertEntry();
        const vdev = VopVdev.add(this.#ctx, block, options, this.#pool);
        this.#vdev = vdev;
        this.#hooks.add(vdev);
      });
    });
  }

  /** `MIC_VIRTIO_COPY_DESC`; see `VopVdev.copyDesc`. @returns bytes moved (`out_len`) */
  copyDesc(desc: VopCopyDesc): Promise<number> {
    let vdev: VopVdev;
    try {
      vdev = this.#inited();
    } catch (err) {
      return Promise.reject(err);
    }
    return vdev.copyDesc(desc);
  }

  /**
   * Allocates `size` zeroed bytes of host memory the card's DMA engine reaches (the device's
   * `dmaOps.alloc`, 64-byte aligned, page aligned from 4 KiB), for zero-copy copies: an iov
   * entry of {@link copyDesc} (or a `VopChain` read or write) that lies in such a buffer (the
   * array itself or any subarray of it) is moved by the engine straight between card memory and
   * it, with no bounce buffer and no CPU copy. Bytes that cannot go so (an unaligned head or tail,
   * a user address whose offset from the 64-byte alignment differs from the card's, a copy below
   * the DMA threshold) are copied by memcpy or through the bounce buffer, as for any
   * `Uint8Array`. The buffer stays allocated until {@link freeDmaBuffer} or {@link close}.
   * @throws MicError EBADF closed, EINVAL `size` not a positive integer, ENOMEM host DMA memory
   *   runs out, EOPNOTSUPP the device's DMA memory has no byte view
   */
  allocDmaBuffer(size: number): Uint8Array {
    this.#open();
    return this.#pool.alloc(size);
  }

  /**
   * Frees a buffer from {@link allocDmaBuffer} (the very array it returned).
   * @throws MicError EINVAL `buf` is not a live buffer of this handle, EBUSY a copy in flight
   *   uses it
   */
  freeDmaBuffer(buf: Uint8Array): void {
    this.#pool.free(buf);
  }

  /** The chain in progress on a vring (fetching the next one); see `VopVdev.chainInfo`. */
  async chainInfo(vrIdx: number): Promise<VopChainInfo | null> {
    return this.#inited().chainInfo(vrIdx);
  }

  /** Takes the next chain of a vring as an object of its own; see `VopVdev.takeChain`. */
  async takeChain(vrIdx: number): Promise<VopChain | null> {
    return this.#inited().takeChain(vrIdx);
  }

  /** `MIC_VIRTIO_CONFIG_CHANGE`; see `VopVdev.configChange`. */
  configChange(bytes: Uint8Array): Promise<void> {
    return this.#lock.run(() => this.#inited().configChange(bytes));
  }

  /**
   * `poll()`: `{err}` without a device or after its removal, else waits for the card (see
   * `VopVdev.poll`). `timeoutMs` (on the control's clock) and `signal` bound the wait.
   */
  async poll(
    options: { readonly timeoutMs?: number; readonly signal?: AbortSignal } = {},
  ): Promise<VopPollEvents> {
    this.#open();
    const v = this.#vdev;
    if (v === null || v.removed) return { in: false, out: false, err: true };
    return v.poll(options);
  }

  /** Hot-unplugs the device (the release path of the kernel); the handle keeps reporting ENODEV. */
  remove(): Promise<void> {
    return this.#lock.run(async () => {
      this.#open();
      const v = this.#vdev;
      if (v === null || v.removed) return;
      await this.#ctx.lock.run(() => v.remove());
      this.#hooks.drop(v);
    });
  }

  /** Closes the handle (`release`): removes its device, if any. Later calls fail with EBADF. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.remove();
    this.#closed = true;
    this.#pool.clear();
    this.#hooks.close(this);
  }

  /**
   * The read-only mapping (`mmap`): the device page at 0, the vrings from 0x1000. A writable
   * mapping is refused with EACCES.
   */
  view(options: { readonly write?: boolean } = {}): VopMapping {
    const v = this.#inited();
    if (options.write) throw new MicError('EACCES', 'VOP device mappings are read-only');
    return new VopMapping(
      this.#ctx.dp,
      v.vrings.map((vr) => vr.block.va),
    );
  }

  /** A copy of the device's counters. */
  stats(): VopVdevStats {
    return { ...this.#inited().stats };
  }

  /** What the device is (sizes as the host added it; status as the card wrote it). */
  info(): VopDeviceInfo {
    const v = this.#inited();
    return {
      type: v.type,
      offset: v.entry.offset,
      numVq: v.entry.numVq,
      featureLen: v.entry.featureLen,
      configLen: v.entry.configLen,
      nums: v.vrings.map((vr) => vr.num),
      status: v.status(),
      c2hDb: v.virtioDb,
    };
  }
}
