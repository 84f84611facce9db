/**
 * A small host for the card driver's tests, on MockVopLink: it writes the bootparam and device
 * entries the way the host does (mic-common's codecs), allocates vrings in host RAM with their
 * magic, answers the used-ring relocation and reset handshakes, and serves queues with a Vringh
 * over host RAM (desc, avail) and card RAM (used ring, buffers). Not a vop-host: only what the
 * card's tests need.
 */
import type { VopCardDriver } from '../src/index.js';
import { type VirtualClock } from '@mic/clock';
import { asBufferMemory, type Memory } from '@mic/memory';
import {
  type DpPendingEntry,
  MIC_BOOTPARAM_OFFSETS,
  MIC_DEVICE_CTRL_OFFSETS,
  MIC_VQCONFIG_OFFSETS,
  bootparamInit,
  copyDpEntry,
  deviceCtrlInit,
  dpVqconfigOffset,
  encodeDescBlock,
  featureBitsToBytes,
  micVringLayout,
  micVringMagic,
  publishDpEntry,
  readS8,
  removeDpEntry,
  writeS8,
} from '@mic/mic-common';
import { type VirtioBus, Vringh, VringhIov, usedRingSize } from '@mic/virtio';
import type { MicIrq, MockVopLink } from '@mic/vop-bus';

/** A host RAM buffer of the mock link. */
type HostBuffer = ReturnType<MockVopLink['hostDmaOps']['alloc']>;

const CTRL = MIC_DEVICE_CTRL_OFFSETS;

/** Gives pending tasks a turn. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Waits (in event-loop turns, not time) for `cond`; throws naming `what` when it never holds. */
export async function waitFor(cond: () => boolean, what: string, turns = 100_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await tick();
  }
  throw new Error(`never happened: ${what}`);
}

/** What to add: one device entry and its vrings. */
export interface HostDeviceSpec {
  readonly type: number;
  /** Entries of each vring; the length is num_vq. */
  readonly nums: readonly number[];
  /** Offered feature bits (default none). */
  readonly features?: bigint;
  /** Bytes of feature bits (default 4, as mpssd). */
  readonly featureLen?: number;
  /** Config space (default 12 zero bytes). */
  readonly config?: Uint8Array;
  /** Changes the encoded block before it is copied (hostile hosts). */
  readonly tamper?: (vqconfigs: { address: number; usedAddress: number; num: number }[]) => void;
  /** Magic written to vring i (default the right one). */
  readonly magic?: (index: number) => number;
  /** Doorbell put in c2h_vdev_db (default a host doorbell with the double's handler). */
  readonly c2hDb?: number;
}

/** One device the double added. */
export class HostDevice {
  readonly entry: DpPendingEntry;
  readonly type: number;
  readonly nums: readonly number[];
  readonly vrings: readonly HostBuffer[];
  readonly db: number;
  irq: MicIrq | null = null;
  /** The device side of each queue, once the card relocated the used rings. */
  vringh: (Vringh | null)[];
  usedMaps: Memory[] = [];
  relocations = 0;
  resets = 0;
  notifications = 0;

  constructor(
    entry: DpPendingEntry,
    type: number,
    nums: readonly number[],
    vrings: HostBuffer[],
    db: number,
  ) {
    this.entry = entry;
    this.type = type;
    this.nums = nums;
    this.vrings = vrings;
    this.db = db;
    this.vringh = nums.map(() => null);
  }

  get offset(): number {
    return this.entry.offset;
  }

  get ctrl(): number {
    return this.entry.ctrlOffset;
  }
}

/** Options of a {@link HostDouble}. */
export interface HostDoubleOptions {
  /** Clear `used_address_updated` after mapping the used rings (default true). */
  readonly answerRelocation?: boolean;
  /** Answer `vdev_reset` with `host_ack = 1` (default true). */
  readonly answerReset?: boolean;
  /** Called after each card notification of a device was handled. */
  readonly onNotify?: (dev: HostDevice) => void;
}

/** The host side of a MockVopLink, for the card's tests. */
export class HostDouble {
  readonly link: MockVopLink;
  readonly dp: Memory;
  readonly devices: HostDevice[] = [];
  answerRelocation: boolean;
  answerReset: boolean;
  onNotify: ((dev: HostDevice) => void) | undefined;

  constructor(link: MockVopLink, options: HostDoubleOptions = {}) {
    this.link = link;
    this.dp = link.dp.va;
    this.answerRelocation = options.answerRelocation ?? true;
    this.answerReset = options.answerReset ?? true;
    this.onNotify = options.onNotify;
    bootparamInit(this.dp, 1);
  }

  /** `bootparam.h2c_config_db` as the card published it. */
  get configDb(): number {
    return readS8(this.dp, MIC_BOOTPARAM_OFFSETS.h2cConfigDb);
  }

  /** Adds a device like `vop_virtio_add_device`: rings the config doorbell if the card listens. */
  add(spec: HostDeviceSpec): HostDevice {
    const host = this.link.host;
    const vrings = spec.nums.map((num, i) => {
      const layout = micVringLayout(num);
      const buf = this.link.hostDmaOps.alloc(layout.size);
      buf.va.writeU32(layout.infoOffset + 4, spec.magic ? spec.magic(i) : micVringMagic(spec.type, i));
      return buf;
    });
    const vqconfigs = spec.nums.map((num, i) => ({ address: vrings[i]!.dmaAddr, usedAddress: 0, num }));
    spec.tamper?.(vqconfigs);
    const featureLen = spec.featureLen ?? 4;
    const block = encodeDescBlock({
      type: spec.type,
      vqconfigs,
      hostFeatures: featureBitsToBytes(spec.features ?? 0n, featureLen),
      config: spec.config ?? new Uint8Array(12),
    });
    const entry = copyDpEntry(this.dp, block);
    deviceCtrlInit(this.dp, entry.ctrlOffset);
    const db = spec.c2hDb ?? host.nextDb();
    const device = new HostDevice(entry, spec.type, spec.nums, vrings, db);
    if (spec.c2hDb === undefined) {
      device.irq = host.requestIrq(
        (n: number, d: HostDevice) => this.#bh(n, d),
        `vop1virtio${spec.type}`,
        device,
        db,
      );
    }
    writeS8(this.dp, entry.ctrlOffset + CTRL.c2hVdevDb, db);
    publishDpEntry(this.dp, entry);
    this.devices.push(device);
    this.ringConfig();
    return device;
  }

  /** Rings `h2c_config_db` if the card published one. */
  ringConfig(): void {
    const db = this.configDb;
    if (db !== -1) this.link.host.sendIntr(db);
  }

  byte(offset: number): number {
    return this.dp.readU8(offset);
  }

  ctrlByte(dev: HostDevice, field: keyof typeof CTRL): number {
    return this.dp.readU8(dev.ctrl + CTRL[field]);
  }

  /** The card's `used_address` of vring `i`. */
  usedAddress(dev: HostDevice, i: number): number {
    return this.dp.readU64(dpVqconfigOffset(dev.entry, i) + MIC_VQCONFIG_OFFSETS.usedAddress);
  }

  /** Config change (`vop_virtio_config_change`): new bytes, `config_change = 2`, ring, wait for the ack. */
  async configChange(dev: HostDevice, bytes: Uint8Array): Promise<void> {
    this.dp.write(dev.entry.configspaceOffset, bytes);
    this.dp.writeU8(dev.ctrl + CTRL.configChange, 2);
    this.ringConfig();
    await waitFor(() => this.ctrlByte(dev, 'guestAck') === 1, 'guest_ack after a config change');
    this.dp.writeU8(dev.ctrl + CTRL.configChange, 0);
    this.dp.writeU8(dev.ctrl + CTRL.guestAck, 0);
  }

  /** Hot-unplug (`vop_virtio_del_device`): `config_change = 1`, ring, wait for the ack, free, type -1. */
  async remove(dev: HostDevice): Promise<void> {
    this.dp.writeU8(dev.ctrl + CTRL.configChange, 1);
    if (this.configDb !== -1) {
      this.ringConfig();
      await waitFor(() => this.ctrlByte(dev, 'guestAck') === 1, 'guest_ack after a hot-unplug');
    }
    this.dp.writeU8(dev.ctrl + CTRL.configChange, 0);
    this.dp.writeU8(dev.ctrl + CTRL.guestAck, 0);
    this.free(dev);
    removeDpEntry(this.dp, dev.offset);
  }

  /** Frees the device's interrupt, used-ring maps and vrings. */
  free(dev: HostDevice): void {
    if (dev.irq) this.link.host.freeIrq(dev.irq, dev);
    dev.irq = null;
    for (const m of dev.usedMaps) this.link.host.unmap(m);
    dev.usedMaps = [];
    for (const v of dev.vrings) this.link.hostDmaOps.free(v);
    this.devices.splice(this.devices.indexOf(dev), 1);
  }

  /** Rings the card for `dev` (`_vop_notify`) when it published a doorbell. */
  notifyCard(dev: HostDevice): void {
    const db = readS8(this.dp, dev.ctrl + CTRL.h2cVdevDb);
    if (db !== -1) this.link.host.sendIntr(db);
  }

  /**
   * Moves every pending chain of vring `from` into chains of vring `to` (an echo): what the card
   * sent on one queue comes back on the other. Returns the bytes moved.
   */
  echo(dev: HostDevice, from: number, to: number): number {
    const src = dev.vringh[from];
    const dst = dev.vringh[to];
    if (!src || !dst) return 0;
    const riov = new VringhIov();
    const wiov = new VringhIov();
    const rx = new VringhIov();
    const none = new VringhIov();
    let moved = 0;
    for (;;) {
      if (dst.pending() === 0) break;
      const r = src.getDesc(riov, wiov);
      if (r.status !== 'chain') break;
      const data = new Uint8Array(riov.total);
      src.pull(riov, data);
      src.complete(r.head, 0);
      const w = dst.getDesc(none, rx);
      if (w.status !== 'chain') break;
      const n = dst.push(rx, data);
      dst.complete(w.head, n);
      moved += n;
    }
    if (src.needNotify() || dst.needNotify()) this.notifyCard(dev);
    return moved;
  }

  /** Writes `data` into the next buffer the card posted on vring `to` and notifies. */
  send(dev: HostDevice, to: number, data: Uint8Array): number {
    const dst = dev.vringh[to];
    if (!dst) return -1;
    const none = new VringhIov();
    const wiov = new VringhIov();
    const w = dst.getDesc(none, wiov);
    if (w.status !== 'chain') return -1;
    const n = dst.push(wiov, data);
    dst.complete(w.head, n);
    if (dst.needNotify()) this.notifyCard(dev);
    return n;
  }

  /** `vop_bh_handler`: relocation, reset, then the test's notification hook. */
  #bh(irq: number, dev: HostDevice): void {
    this.link.host.ackInterrupt(irq);
    dev.notifications++;
    const dp = this.dp;
    if (dp.readU8(dev.ctrl + CTRL.usedAddressUpdated) && this.answerRelocation) {
      for (let i = 0; i < dev.nums.length; i++) {
        const used = this.usedAddress(dev, i);
        if (used === 0) continue;
        const num = dev.nums[i]!;
        const layout = micVringLayout(num);
        const usedMem = this.link.host.remap(used, usedRingSize(num));
        dev.usedMaps.push(usedMem);
        dev.vringh[i] = new Vringh({
          num,
          mem: asBufferMemory(dev.vrings[i]!.va, 'vring'),
          desc: 0,
          avail: layout.availOffset,
          used: 0,
          usedMem: asBufferMemory(usedMem, 'used ring'),
          dataMem: asBufferMemory(this.link.aper.va, 'aperture'),
        });
      }
      dev.relocations++;
      dp.writeU8(dev.ctrl + CTRL.usedAddressUpdated, 0);
    }
    if (dp.readU8(dev.ctrl + CTRL.vdevReset) && this.answerReset) {
      dp.writeU8(dev.entry.offset + 4, 0);
      dp.writeU8(dev.ctrl + CTRL.vdevReset, 0);
      dp.writeU8(dev.ctrl + CTRL.hostAck, 1);
      for (const v of dev.vringh) v?.reset();
      dev.resets++;
    }
    this.onNotify?.(dev);
  }
}

/**
 * Lets every pending interrupt, scan and virtio bus operation run, until nothing is left (the
 * virtual clock moves by itself while the card polls).
 */
export async function settle(
  link: MockVopLink,
  driver: VopCardDriver,
  virtioBus: VirtioBus,
  clock?: VirtualClock,
): Promise<void> {
  for (let i = 0, quiet = 0; quiet < 3; i++) {
    if (i === 100_000) throw new Error('the card never settled');
    await link.flush();
    await driver.idle();
    await virtioBus.idle();
    await tick();
    const busy = link.host.pending > 0 || link.card.pending > 0 || (clock?.pending ?? 0) > 0;
    quiet = busy ? 0 : quiet + 1;
  }
}
