/**
 * The card role of the `vop` driver (`vop_driver_probe`/`vop_driver_remove` with `dnode == 0`):
 * it reads the host's device page, registers a virtio device on the card's virtio bus for every
 * entry, and follows the host's hot-plug, config-change and hot-unplug requests.
 *
 * Scans of the device page (probe, the `h2c_config_db` interrupt, remove) run one at a time
 * under a per-device lock (the kernel's `vop_mutex`). The host is not trusted: see the README for
 * what each kind of bad page does.
 *
 * @see drivers/misc/mic/vop/vop_main.c (`vop_driver_probe`, `_vop_scan_devices`,
 *      `_vop_add_device`, `_vop_handle_config_change`, `_vop_remove_device`)
 */
import { AsyncMutex, type IdTable, type MicIrq, type UndoStep, unwind } from '@mic/bus-core';
import { type Clock, realClock } from '@mic/clock';
import { type ErrnoCode, MicError, isMicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import type { Memory } from '@mic/memory';
import {
  type DpEntry,
  MIC_BOOTPARAM_OFFSETS,
  MIC_DB_NONE,
  MIC_DEVICE_CTRL_OFFSETS,
  MIC_DEVICE_DESC_OFFSETS,
  MIC_DP_SIZE,
  MIC_TYPE_REMOVED,
  MIC_VIRTIO_PARAM_CONFIG_CHANGED,
  MIC_VIRTIO_PARAM_DEV_REMOVE,
  MIC_VQCONFIG_OFFSETS,
  MIC_VQCONFIG_SIZE,
  bootparamCheckMagic,
  checkVringMagic,
  micVringLayout,
  readS8,
  removeDpEntry,
  walkDevicePage,
} from '@mic/mic-common';
import { VIRTIO_CONFIG_S, VIRTQUEUE_MAX_SIZE, type VirtioBus, isPowerOfTwo } from '@mic/virtio';
import { VOP_DEV_ANY_ID, VOP_DEV_TRNSP, type VopDevice, type VopDriver } from '@mic/vop-bus';
import { CardVdev, VOP_POLL_INTERVAL_MS, type VopCardDeviceInfo, type VopVringConfig } from './vdev.js';

const CTRL = MIC_DEVICE_CTRL_OFFSETS;

/** Options of a {@link VopCardDriver}. */
export interface VopCardDriverOptions {
  /** The card's virtio bus: every device page entry becomes a device on it. */
  readonly virtioBus: VirtioBus;
  readonly logger?: Logger;
  /** Clock of the handshake timeouts (default: the wall clock). */
  readonly clock?: Clock;
  /**
   * Period of the handshake polls in ms (default {@link VOP_POLL_INTERVAL_MS}; the kernel sleeps
   * 100 ms). The total bounds stay the kernel's whatever the period.
   */
  readonly pollIntervalMs?: number;
}

/**
 * Why a device left the card:
 * - `hot-unplug`: the host asked (`config_change = 1`) and the card acked;
 * - `driver-remove`: the card driver was removed (the kernel's `REMOVE_DEVICES` scan);
 * - `host-dropped`: the host took the entry away without the handshake (the slot became -1 or
 *   another device); the card let go without touching the page.
 */
export type VopCardRemoveReason = 'hot-unplug' | 'driver-remove' | 'host-dropped';

/** What {@link VopCardDriver.subscribe} reports, in order. */
export type VopCardEvent =
  | { readonly type: 'device-added'; readonly device: VopCardDeviceInfo }
  | {
      /** A device page entry could not become a device; the scan goes on with the next one. */
      readonly type: 'device-failed';
      readonly vpdev: VopDevice;
      readonly offset: number;
      readonly deviceType: number;
      readonly error: MicError;
    }
  | { readonly type: 'config-changed'; readonly device: VopCardDeviceInfo }
  | {
      readonly type: 'device-removed';
      readonly device: VopCardDeviceInfo;
      readonly reason: VopCardRemoveReason;
    }
  | {
      /** The page walk stopped at a malformed entry; entries after it are not seen. */
      readonly type: 'page-malformed';
      readonly vpdev: VopDevice;
      readonly offset: number;
      readonly error: MicError;
    };

/** The `vop` driver's id table (`vop_driver_id_table`). */
export const VOP_CARD_ID_TABLE: IdTable = Object.freeze([
  Object.freeze({ device: VOP_DEV_TRNSP, vendor: VOP_DEV_ANY_ID }),
  Object.freeze({ device: 0, vendor: 0 }),
]);

/** Per bound card VOP device (`struct vop_info` of the card role). */
class CardState {
  readonly vpdev: VopDevice;
  readonly dp: Memory;
  readonly lock = new AsyncMutex();
  /** Known devices by entry offset (`device_find_child` matching the desc pointer). */
  readonly devices = new Map<number, CardVdev>();
  /** Entries that failed, by offset, with the header word they had: not retried while unchanged. */
  readonly failed = new Map<number, number>();
  configDb = MIC_DB_NONE;
  configIrq: MicIrq | null = null;
  /** Cancels waits on the host; replaced when aborted. */
  cancel = new AbortController();
  rescanQueued = false;
  removing = false;
  /** Offset of the malformed entry last reported, so a stuck page is logged once. */
  malformedAt = -1;

  constructor(vpdev: VopDevice, dp: Memory) {
    this.vpdev = vpdev;
    this.dp = dp;
  }
}

/** The first word of an entry: type and the three sizes, as the page walk read them. */
function headerWord(e: DpEntry): number {
  return ((e.type & 0xff) | (e.numVq << 8) | (e.featureLen << 16) | (e.configLen << 24)) >>> 0;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The card side of VOP: a {@link VopDriver} for the card's VOP device (`dnode` 0) that is the
 * virtio transport for the devices the host publishes in its device page.
 *
 * @example
 * const virtioBus = new VirtioBus();
 * const vopBus = new VopBus();
 * const driver = new VopCardDriver({ virtioBus });
 * await vopBus.registerDriver(driver);
 * await vopBus.registerDevice(link.cardParams()); // probe: scan, virtio devices, h2c_config_db
 * driver.subscribe((e) => { if (e.type === 'device-added') console.log(e.device.vdev.name); });
 */
export class VopCardDriver implements VopDriver {
  readonly name = 'vop';
  readonly idTable: IdTable = VOP_CARD_ID_TABLE;
  readonly #virtioBus: VirtioBus;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #poll: number;
  readonly #states = new Map<VopDevice, CardState>();
  readonly #listeners = new Set<(e: VopCardEvent) => void>();
  #nextHandle = 1;

  constructor(options: VopCardDriverOptions) {
    if (typeof options?.virtioBus?.registerDevice !== 'function') {
      throw new MicError('EINVAL', 'vop card driver needs a virtio bus (options.virtioBus)');
    }
    const poll = options.pollIntervalMs ?? VOP_POLL_INTERVAL_MS;
    if (!Number.isFinite(poll) || poll <= 0) {
      throw new MicError('EINVAL', `poll interval ${String(poll)} ms is not a positive number`);
    }
    this.#virtioBus = options.virtioBus;
    this.#log = (options.logger ?? nullLogger).child('vop-card');
    this.#clock = options.clock ?? realClock;
    this.#poll = poll;
  }

  /**
   * `vop_driver_probe`, card role. Throws `ENODEV` for a host-role device (`dnode` ≠ 0) or one
   * without a remote device page, `EIO` when the bootparam magic is wrong. Entries that cannot
   * become devices do not fail the probe (see {@link VopCardEvent} `device-failed`).
   */
  async probe(vpdev: VopDevice): Promise<void> {
    if (vpdev.dnode !== 0) {
      throw new MicError(
        'ENODEV',
        `${vpdev.name} has dnode ${vpdev.dnode}: it is a host-role device, vop-card drives dnode 0`,
        {
          details: { device: vpdev.name, dnode: vpdev.dnode },
        },
      );
    }
    if (this.#states.has(vpdev)) throw new MicError('EBUSY', `${vpdev.name} is already bound`);
    const dp = vpdev.hwOps.getRemoteDp();
    if (!dp)
      throw new MicError('ENODEV', `${vpdev.name} has no remote device page (get_remote_dp returned null)`);
    if (dp.byteLength < MIC_DP_SIZE) {
      throw new MicError(
        'EIO',
        `${vpdev.name}: the device page has ${dp.byteLength} bytes, not ${MIC_DP_SIZE}`,
      );
    }
    bootparamCheckMagic(dp);
    const st = new CardState(vpdev, dp);
    this.#states.set(vpdev, st);
    try {
      await st.lock.run(() => this.#scan(st, false));
      const hw = vpdev.hwOps;
      const db = hw.nextDb();
      st.configIrq = hw.requestIrq(this.#onConfigInterrupt, 'virtio_config_intr', st, db);
      st.configDb = db;
      dp.storeU8(MIC_BOOTPARAM_OFFSETS.h2cConfigDb, db);
      // Entries the host published after the first scan passed their slot but before it saw
      // h2c_config_db: it did not ring, so look once more.
      await st.lock.run(() => this.#scan(st, false));
    } catch (err) {
      await this.#teardown(st);
      throw err;
    }
  }

  /**
   * `vop_driver_remove`, card role: `h2c_config_db = -1`, the config interrupt freed, waits on
   * the host cancelled, then (after a running scan) every device removed as the kernel's
   * `REMOVE_DEVICES` scan does; nothing of the devices stays allocated.
   */
  async remove(vpdev: VopDevice): Promise<void> {
    const st = this.#states.get(vpdev);
    if (st) await this.#teardown(st);
  }

  /** The devices of every bound card VOP device, in page order per device. */
  devices(): VopCardDeviceInfo[] {
    const out: VopCardDeviceInfo[] = [];
    for (const st of this.#states.values()) {
      for (const dev of [...st.devices.values()].sort((a, b) => a.offset - b.offset)) out.push(dev.info());
    }
    return out;
  }

  /** Resolves once no scan is running or queued (interrupts not yet delivered are not seen). */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.#states.values()].filter((st) => st.rescanQueued || st.lock.locked);
      if (busy.length === 0) return;
      await Promise.all(busy.map((st) => st.lock.run(() => undefined)));
    }
  }

  /** Calls `listener` with every later event; returns the function that unsubscribes. */
  subscribe(listener: (e: VopCardEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #emit(e: VopCardEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(e);
      } catch (err) {
        this.#log.error('vop card event listener threw', { event: e.type, error: messageOf(err) });
      }
    }
  }

  async #teardown(st: CardState): Promise<void> {
    st.removing = true;
    st.dp.storeU8(MIC_BOOTPARAM_OFFSETS.h2cConfigDb, MIC_DB_NONE);
    const irq = st.configIrq;
    if (irq) {
      try {
        st.vpdev.hwOps.freeIrq(irq, st);
      } catch (err) {
        this.#log.error(`${st.vpdev.name}: free_irq of the config interrupt failed`, {
          error: messageOf(err),
        });
      }
    }
    st.configIrq = null;
    st.configDb = MIC_DB_NONE;
    // A running scan sees its waits cancelled and stops adding; the removal's own handshakes
    // (after it) get a fresh signal.
    st.cancel.abort(new MicError('ECANCELED', `${st.vpdev.name}: the vop card driver is being removed`));
    await st.lock.run(() => {
      st.cancel = new AbortController();
      return this.#scan(st, true);
    });
    this.#states.delete(st.vpdev);
  }

  /** `vop_extint_handler`: ack, then a rescan (coalesced while one is queued). */
  readonly #onConfigInterrupt = (irq: number, st: CardState): void => {
    st.vpdev.hwOps.ackInterrupt(irq);
    if (st.rescanQueued || st.removing) return;
    st.rescanQueued = true;
    void st.lock
      .run(async () => {
        st.rescanQueued = false;
        await this.#scan(st, false);
      })
      .catch((err: unknown) => {
        this.#log.error(`${st.vpdev.name}: device page scan failed`, { error: messageOf(err) });
      });
  };

  /**
   * `_vop_scan_devices`. Entries are walked with mic-common's `walkDevicePage` (checked sizes,
   * stops at the first malformed entry). With `remove`, every device is removed.
   */
  async #scan(st: CardState, remove: boolean): Promise<void> {
    if (st.removing && !remove) return;
    const walk = walkDevicePage(st.dp);
    if (walk.stop === 'malformed' && walk.error) {
      if (st.malformedAt !== walk.end) {
        st.malformedAt = walk.end;
        this.#log.warn(`${st.vpdev.name}: device page walk stopped: ${walk.error.message}`, {
          offset: walk.end,
        });
        this.#emit({ type: 'page-malformed', vpdev: st.vpdev, offset: walk.end, error: walk.error });
      }
    } else {
      st.malformedAt = -1;
    }
    const live = new Set<number>();
    for (const e of walk.entries) {
      if (st.removing && !remove) return;
      if (e.type === MIC_TYPE_REMOVED) continue;
      live.add(e.offset);
      const word = headerWord(e);
      const dev = st.devices.get(e.offset);
      if (dev && dev.word === word) {
        if (remove) await this.#removeDevice(st, dev, 'driver-remove');
        else await this.#handleKnown(st, dev);
        continue;
      }
      // Another entry where one of ours was: the host replaced it without the handshake.
      if (dev) await this.#removeDevice(st, dev, 'host-dropped');
      if (remove) continue;
      if (st.failed.get(e.offset) === word) {
        this.#handleFailed(st, e);
        continue;
      }
      st.failed.delete(e.offset);
      await this.#addDevice(st, e, word);
    }
    if (st.removing && !remove) return;
    // Beyond a malformed entry the page cannot be read: keep what is there until it can.
    const unreadable = (offset: number): boolean => walk.stop === 'malformed' && offset >= walk.end;
    for (const dev of [...st.devices.values()]) {
      if (live.has(dev.offset) || (!remove && unreadable(dev.offset))) continue;
      await this.#removeDevice(st, dev, 'host-dropped');
    }
    for (const offset of [...st.failed.keys()]) {
      if (remove || (!live.has(offset) && !unreadable(offset))) st.failed.delete(offset);
    }
  }

  /** `_vop_handle_config_change` and `_vop_remove_device` for a known device. */
  async #handleKnown(st: CardState, dev: CardVdev): Promise<void> {
    const change = st.dp.loadU8(dev.ctrl + CTRL.configChange);
    if (change === MIC_VIRTIO_PARAM_CONFIG_CHANGED) {
      // Acked already and the host has not cleared the flags yet: not a new change.
      if (st.dp.loadU8(dev.ctrl + CTRL.guestAck) !== 0) return;
      dev.vdev?.configChanged();
      st.dp.storeU8(dev.ctrl + CTRL.guestAck, 1);
      this.#emit({ type: 'config-changed', device: dev.info() });
    } else if (change === MIC_VIRTIO_PARAM_DEV_REMOVE) {
      await this.#removeDevice(st, dev, 'hot-unplug');
    }
  }

  /** The host asks to remove an entry that never became a device: ack it at once. */
  #handleFailed(st: CardState, e: DpEntry): void {
    if (st.dp.loadU8(e.ctrlOffset + CTRL.configChange) !== MIC_VIRTIO_PARAM_DEV_REMOVE) return;
    st.dp.storeU8(e.ctrlOffset + CTRL.guestAck, 1);
    this.#markRemoved(st, e.offset);
    st.failed.delete(e.offset);
  }

  #markRemoved(st: CardState, offset: number): void {
    try {
      removeDpEntry(st.dp, offset);
    } catch (err) {
      this.#log.warn(`${st.vpdev.name}: could not mark the entry at offset ${offset} removed`, {
        error: messageOf(err),
      });
    }
  }

  /**
   * `_vop_add_device`: reads and checks the entry's vqconfigs and `c2h_vdev_db` (once), takes a
   * doorbell with its interrupt and publishes it, registers the virtio device (the bus resets it:
   * the reset handshake), then writes the handle to `dc.vdev`. A failure undoes every step, is
   * logged with the reason and announced; the entry is not retried until it changes.
   */
  async #addDevice(st: CardState, e: DpEntry, word: number): Promise<void> {
    const what = `type ${e.type} device at offset ${e.offset}`;
    const undo: UndoStep[] = [];
    let dev: CardVdev | undefined;
    try {
      const vrings = this.#readVrings(st, e);
      const c2hDb = readS8(st.dp, e.ctrlOffset + CTRL.c2hVdevDb);
      if (c2hDb < 0) {
        throw new MicError('EINVAL', `c2h_vdev_db is ${c2hDb}: the host gave the device no doorbell`, {
          details: { c2hVdevDb: c2hDb },
        });
      }
      dev = new CardVdev({
        vpdev: st.vpdev,
        dp: st.dp,
        entry: e,
        word,
        vrings,
        c2hDb,
        handle: this.#nextHandle++,
        clock: this.#clock,
        pollIntervalMs: this.#poll,
        signal: () => st.cancel.signal,
        log: this.#log,
      });
      const d = dev;
      d.startIrq();
      undo.push(() => d.stopIrq());
      await this.#virtioBus.registerDevice({
        id: { device: e.type },
        config: d.ops,
        dma: d.dma,
        parent: st.vpdev.name,
      });
      st.dp.writeU64(e.ctrlOffset + CTRL.vdev, d.handle);
      st.devices.set(e.offset, d);
      this.#log.debug(`added virtio id ${e.type} db ${d.h2cDb}`, { offset: e.offset });
      this.#emit({ type: 'device-added', device: d.info() });
    } catch (err) {
      await unwind(undo, this.#log, what);
      dev?.release();
      const code: ErrnoCode = isMicError(err) ? err.code : 'EIO';
      const error = new MicError(code, `${st.vpdev.name}: ${what} failed to probe: ${messageOf(err)}`, {
        cause: err,
        details: { offset: e.offset, type: e.type },
      });
      st.failed.set(e.offset, word);
      this.#log.warn(error.message, { offset: e.offset, type: e.type, code });
      this.#emit({ type: 'device-failed', vpdev: st.vpdev, offset: e.offset, deviceType: e.type, error });
    }
  }

  /**
   * Reads every vqconfig of `e` once and checks what a queue will be built from: `num` a power
   * of two up to 32768 (`EINVAL`), `address` 16-byte aligned and inside the card's view of host
   * memory (`remap` throws `EFAULT`), the vring's magic (`EIO`). Nothing stays mapped.
   */
  #readVrings(st: CardState, e: DpEntry): VopVringConfig[] {
    const hw = st.vpdev.hwOps;
    const out: VopVringConfig[] = [];
    for (let i = 0; i < e.numVq; i++) {
      const at = e.vqconfigOffset + i * MIC_VQCONFIG_SIZE;
      const address = st.dp.readU64(at + MIC_VQCONFIG_OFFSETS.address);
      const num = st.dp.readU16(at + MIC_VQCONFIG_OFFSETS.num);
      if (!isPowerOfTwo(num) || num > VIRTQUEUE_MAX_SIZE) {
        throw new MicError(
          'EINVAL',
          `vqconfig[${i}].num ${num} is not a power of two from 1 to ${VIRTQUEUE_MAX_SIZE}`,
          {
            details: { index: i, num },
          },
        );
      }
      if (!Number.isSafeInteger(address) || address % 16 !== 0) {
        throw new MicError(
          'EFAULT',
          `vqconfig[${i}].address 0x${address.toString(16)} is not a 16-byte aligned address`,
          {
            details: { index: i, address },
          },
        );
      }
      const layout = micVringLayout(num);
      const va = hw.remap(address, layout.size);
      try {
        checkVringMagic(va, layout.infoOffset, e.type, i);
      } finally {
        hw.unmap(va);
      }
      out.push(Object.freeze({ address, num }));
    }
    return out;
  }

  /**
   * `_vop_remove_device` (and its forced form in the `REMOVE_DEVICES` scan): the virtio device
   * is unregistered (its driver's remove runs the reset handshake), the interrupt freed,
   * `h2c_vdev_db = -1`, `guest_ack = 1`, `type = -1`; for `driver-remove` `config_change` and
   * `guest_ack` end at 0 as the kernel leaves them. For `host-dropped` the page is not touched.
   */
  async #removeDevice(st: CardState, dev: CardVdev, reason: VopCardRemoveReason): Promise<void> {
    const info = dev.info();
    const page = reason !== 'host-dropped';
    if (!page) {
      this.#log.warn(
        `${st.vpdev.name}: the host dropped the type ${dev.type} device at offset ${dev.offset} without the hot-unplug handshake`,
      );
      dev.detach();
    }
    if (reason === 'driver-remove') st.dp.storeU8(dev.ctrl + CTRL.configChange, MIC_VIRTIO_PARAM_DEV_REMOVE);
    const status = page ? st.dp.loadU8(dev.offset + MIC_DEVICE_DESC_OFFSETS.status) : 0;
    const resets = dev.resets;
    try {
      await this.#virtioBus.unregisterDevice(info.vdev);
    } catch (err) {
      this.#log.error(`${st.vpdev.name}: unregistering ${info.vdev.name} failed`, { error: messageOf(err) });
    }
    dev.stopIrq();
    // The kernel waits for reset_done when the device was live; a driver that did not reset it
    // gets the handshake here (the kernel would wait forever).
    if (page && status & VIRTIO_CONFIG_S.DRIVER_OK && dev.resets === resets) {
      try {
        await dev.reset();
      } catch (err) {
        this.#log.warn(`${st.vpdev.name}: reset of ${info.vdev.name} failed`, { error: messageOf(err) });
      }
    }
    dev.release();
    if (page) {
      st.dp.storeU8(dev.ctrl + CTRL.guestAck, 1);
      this.#markRemoved(st, dev.offset);
      if (reason === 'driver-remove') {
        st.dp.storeU8(dev.ctrl + CTRL.configChange, 0);
        st.dp.storeU8(dev.ctrl + CTRL.guestAck, 0);
      }
    }
    st.devices.delete(dev.offset);
    this.#emit({ type: 'device-removed', device: info, reason });
  }
}
