// A small stand-in for the card side of VOP on a MockVopLink, for testing the host side alone: it
// reads the host's device page as the card's vop driver does, answers the handshakes, and drives
// the rings with the driver side of @mic/virtio (desc and avail in the remapped host vring, the
// used ring in card memory). It is deliberately minimal and written from the reference, not from
// vop-card, so the host is tested against the protocol itself.
import { MicError } from '@mic/errors';
import { asBufferMemory, type BufferMemory, type Memory } from '@mic/memory';
import {
  MIC_BOOTPARAM_OFFSETS,
  MIC_DEVICE_CTRL_OFFSETS,
  MIC_DEVICE_DESC_OFFSETS,
  MIC_VQCONFIG_OFFSETS,
  MIC_VQCONFIG_SIZE,
  MIC_VRING_INFO_OFFSETS,
  type DpEntry,
  micVringLayout,
  micVringMagic,
  readS8,
  walkDevicePage,
  writeS8,
} from '@mic/mic-common';
import { VIRTIO_CONFIG_S, Virtqueue, usedRingSize } from '@mic/virtio';
import type { MockVopLink } from '@mic/vop-bus';

export interface CardVq {
  readonly index: number;
  readonly num: number;
  readonly vq: Virtqueue<number>;
  readonly hostVring: Memory;
  readonly usedAddr: number;
  readonly used: Memory;
}

export interface CardDevice {
  readonly entry: DpEntry;
  readonly db: number;
  readonly c2hDb: number;
  readonly interrupts: number[];
  vqs: CardVq[];
}

/** Waits until `check()` holds, flushing the link between looks (bounded). */
export async function until(link: MockVopLink, check: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (check()) return;
    await link.flush();
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export class CardDouble {
  readonly link: MockVopLink;
  readonly dp: Memory;
  configDb = -1;
  configInterrupts = 0;
  readonly devices = new Map<number, CardDevice>();
  #next = 1;

  constructor(link: MockVopLink) {
    this.link = link;
    this.dp = link.card.getRemoteDp()!;
  }

  get cardRam(): BufferMemory {
    return this.link.cardRam;
  }

  /** Takes a card doorbell for config interrupts and publishes it (`h2c_config_db`). */
  listen(): void {
    const db = this.link.card.nextDb();
    this.link.card.requestIrq(
      (irq) => {
        this.link.card.ackInterrupt(irq);
        this.configInterrupts++;
      },
      'config',
      null,
      db,
    );
    this.configDb = db;
    writeS8(this.dp, MIC_BOOTPARAM_OFFSETS.h2cConfigDb, db);
  }

  entries(): DpEntry[] {
    return walkDevicePage(this.dp).entries.filter((e) => e.type > 0);
  }

  /** `_vop_add_device` for the entry at `offset`: doorbell, irq, `h2c_vdev_db`. */
  attach(offset: number): CardDevice {
    const entry = this.entries().find((e) => e.offset === offset);
    if (!entry) throw new Error(`no device at ${offset}`);
    const db = this.link.card.nextDb();
    const interrupts: number[] = [];
    this.link.card.requestIrq(
      (irq) => {
        this.link.card.ackInterrupt(irq);
        interrupts.push(irq);
      },
      'virtio intr',
      null,
      db,
    );
    writeS8(this.dp, entry.ctrlOffset + MIC_DEVICE_CTRL_OFFSETS.h2cVdevDb, db);
    const c2hDb = readS8(this.dp, entry.ctrlOffset + MIC_DEVICE_CTRL_OFFSETS.c2hVdevDb);
    this.dp.writeBigU64(entry.ctrlOffset + MIC_DEVICE_CTRL_OFFSETS.vdev, BigInt(this.#next++));
    const dev: CardDevice = { entry, db, c2hDb, interrupts, vqs: [] };
    this.devices.set(offset, dev);
    return dev;
  }

  ctrl(dev: CardDevice, field: keyof typeof MIC_DEVICE_CTRL_OFFSETS): number {
    return this.dp.readU8(dev.entry.ctrlOffset + MIC_DEVICE_CTRL_OFFSETS[field]);
  }

  setCtrl(dev: CardDevice, field: keyof typeof MIC_DEVICE_CTRL_OFFSETS, v: number): void {
    this.dp.writeU8(dev.entry.ctrlOffset + MIC_DEVICE_CTRL_OFFSETS[field], v);
  }

  ring(dev: CardDevice): void {
    this.link.card.sendIntr(dev.c2hDb);
  }

  /** Writes guest acks for `features` (bit i = byte i/8, bit i%8). */
  ackFeatures(dev: CardDevice, features: bigint): void {
    for (let i = 0; i < dev.entry.featureLen; i++) {
      this.dp.writeU8(dev.entry.guestAcksOffset + i, Number((features >> BigInt(8 * i)) & 0xffn));
    }
  }

  /** `find_vqs`: maps, zeroes and checks each host vring, relocates the used rings, waits for LINKUP. */
  async findVqs(dev: CardDevice, options: { eventIdx?: boolean; waitLinkup?: boolean } = {}): Promise<void> {
    for (let q = 0; q < dev.entry.numVq; q++) {
      const at = dev.entry.vqconfigOffset + q * MIC_VQCONFIG_SIZE;
      const address = this.dp.readU64(at + MIC_VQCONFIG_OFFSETS.address);
      const num = this.dp.readU16(at + MIC_VQCONFIG_OFFSETS.num);
      const layout = micVringLayout(num);
      const hostVring = this.link.card.remap(address, layout.size);
      hostVring.fill(0, layout.vringSize, 0);
      const magic = hostVring.readU32(layout.infoOffset + MIC_VRING_INFO_OFFSETS.magic);
      if (magic !== micVringMagic(dev.entry.type, q)) throw new MicError('EIO', 'magic mismatch');
      const usedBuf = this.link.cardDmaOps.alloc(Math.ceil(usedRingSize(num) / 4096) * 4096);
      const vq = new Virtqueue<number>({
        num,
        mem: asBufferMemory(hostVring, 'vring'),
        desc: layout.descOffset,
        avail: layout.availOffset,
        used: 0,
        usedMem: asBufferMemory(usedBuf.va, 'used ring'),
        eventIdx: options.eventIdx ?? false,
      });
      this.dp.writeU64(at + MIC_VQCONFIG_OFFSETS.usedAddress, usedBuf.dmaAddr);
      dev.vqs.push({ index: q, num, vq, hostVring, usedAddr: usedBuf.dmaAddr, used: usedBuf.va });
    }
    this.setCtrl(dev, 'usedAddressUpdated', 1);
    this.ring(dev);
    if (options.waitLinkup ?? true) {
      await until(this.link, () => this.ctrl(dev, 'usedAddressUpdated') === 0, 'LINKUP');
    }
  }

  setStatus(dev: CardDevice, status: number): void {
    this.dp.writeU8(dev.entry.offset + MIC_DEVICE_DESC_OFFSETS.status, status);
    this.ring(dev);
  }

  /** The whole bring-up of a device the host added: attach, features, queues, DRIVER_OK. */
  async bringUp(offset: number, features = 0n): Promise<CardDevice> {
    const dev = this.attach(offset);
    this.setStatus(dev, VIRTIO_CONFIG_S.ACKNOWLEDGE | VIRTIO_CONFIG_S.DRIVER);
    this.ackFeatures(dev, features);
    await this.findVqs(dev);
    this.setStatus(dev, VIRTIO_CONFIG_S.ACKNOWLEDGE | VIRTIO_CONFIG_S.DRIVER | VIRTIO_CONFIG_S.DRIVER_OK);
    return dev;
  }

  /** A zeroed card buffer and its card physical address. */
  buffer(size: number): { addr: number; mem: Memory } {
    const b = this.link.cardDmaOps.alloc(size);
    return { addr: b.dmaAddr, mem: b.va };
  }

  /** The card-initiated reset handshake (`vop_reset_inform_host`), up to the host's ack. */
  async reset(dev: CardDevice): Promise<void> {
    this.setCtrl(dev, 'hostAck', 0);
    this.setCtrl(dev, 'vdevReset', 1);
    this.ring(dev);
    await until(this.link, () => this.ctrl(dev, 'hostAck') === 1, 'host_ack');
    this.dp.writeU8(dev.entry.offset + MIC_DEVICE_DESC_OFFSETS.status, 0);
  }
}
