/**
 * Debug views of the host side, as structured data and as the text of the kernel's debugfs
 * files `vop<dnode>/dp` (the device page) and `vop<dnode>/vdev_info` (each device's counters and
 * rings), line for line. A CLI prints the text; tests and tools use the data.
 *
 * Everything is read once from the live page and rings, which the card may change at any time:
 * the page is walked with the hostile-page-safe walk of `@mic/mic-common`, and ring entries are
 * shown as they are, masked where the kernel masks them.
 *
 * @see drivers/misc/mic/vop/vop_debugfs.c `vop_dp_show`, `vop_vdev_info_show`
 */
import type { Memory } from '@mic/memory';
import {
  MIC_BOOTPARAM_OFFSETS,
  MIC_TYPE_REMOVED,
  MIC_VQCONFIG_OFFSETS,
  MIC_VQCONFIG_SIZE,
  MIC_VRING_INFO_OFFSETS,
  readDeviceCtrl,
  readS8,
  walkDevicePage,
  type DpWalkStop,
  type MicDeviceCtrl,
} from '@mic/mic-common';
import { AVAIL, DESC, USED, VRING_DESC_SIZE, VRING_USED_ELEM_SIZE } from '@mic/virtio';
import type { VopVdev } from './vdev.js';

/** The bootparam as `dp` shows it. */
export interface VopBootparamDump {
  readonly magic: number;
  readonly h2cConfigDb: number;
  readonly nodeId: number;
  /** Raw `__u8` (255 when unset), as the kernel prints it. */
  readonly c2hScifDb: number;
  readonly h2cScifDb: number;
  readonly scifHostDmaAddr: bigint;
  readonly scifCardDmaAddr: bigint;
}

/** One device entry as `dp` shows it. */
export interface VopDpEntryDump {
  readonly offset: number;
  readonly type: number;
  readonly numVq: number;
  readonly featureLen: number;
  readonly configLen: number;
  /** `desc.status` (the kernel labels it "Shutdown Status"). */
  readonly status: number;
  readonly vqconfigs: readonly {
    readonly address: bigint;
    readonly num: number;
    readonly usedAddress: bigint;
  }[];
  /** First two u32 of the feature area (host features, guest acks with feature_len 4). */
  readonly hostFeatures: number;
  readonly guestFeatures: number;
  readonly config: readonly number[];
  readonly ctrl: MicDeviceCtrl;
}

/** The `dp` file as data. */
export interface VopDpDump {
  readonly bootparam: VopBootparamDump;
  readonly entries: readonly VopDpEntryDump[];
  /** Why the walk stopped (a malformed entry is reported, not shown). */
  readonly stop: DpWalkStop;
}

/** Reads the device page for the `dp` view (removed entries skipped, as the kernel does). */
export function dumpDevicePage(dp: Memory): VopDpDump {
  const o = MIC_BOOTPARAM_OFFSETS;
  const bootparam: VopBootparamDump = {
    magic: dp.readU32(o.magic),
    h2cConfigDb: readS8(dp, o.h2cConfigDb),
    nodeId: dp.readU8(o.nodeId),
    c2hScifDb: dp.readU8(o.c2hScifDb),
    h2cScifDb: dp.readU8(o.h2cScifDb),
    scifHostDmaAddr: dp.readBigU64(o.scifHostDmaAddr),
    scifCardDmaAddr: dp.readBigU64(o.scifCardDmaAddr),
  };
  const walk = walkDevicePage(dp);
  const entries: VopDpEntryDump[] = [];
  for (const e of walk.entries) {
    if (e.type === MIC_TYPE_REMOVED) continue;
    const vqconfigs = [];
    for (let q = 0; q < e.numVq; q++) {
      const at = e.vqconfigOffset + q * MIC_VQCONFIG_SIZE;
      vqconfigs.push({
        address: dp.readBigU64(at + MIC_VQCONFIG_OFFSETS.address),
        num: dp.readU16(at + MIC_VQCONFIG_OFFSETS.num),
        usedAddress: dp.readBigU64(at + MIC_VQCONFIG_OFFSETS.usedAddress),
      });
    }
    const config = new Uint8Array(e.configLen);
    dp.read(e.configspaceOffset, config);
    const u32 = (at: number): number => (at + 4 <= dp.byteLength ? dp.readU32(at) : 0);
    entries.push({
      offset: e.offset,
      type: e.type,
      numVq: e.numVq,
      featureLen: e.featureLen,
      configLen: e.configLen,
      status: e.status,
      vqconfigs,
      hostFeatures: u32(e.featuresOffset),
      guestFeatures: u32(e.featuresOffset + 4),
      config: [...config],
      ctrl: readDeviceCtrl(dp, e.ctrlOffset),
    });
  }
  return { bootparam, entries, stop: walk.stop };
}

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** The text of debugfs `dp` for a dump. */
export function formatDpDump(d: VopDpDump): string {
  const b = d.bootparam;
  const lines = [
    `Bootparam: magic ${hex(b.magic)}`,
    `Bootparam: h2c_config_db ${b.h2cConfigDb}`,
    `Bootparam: node_id ${b.nodeId}`,
    `Bootparam: c2h_scif_db ${b.c2hScifDb}`,
    `Bootparam: h2c_scif_db ${b.h2cScifDb}`,
    `Bootparam: scif_host_dma_addr ${hex(b.scifHostDmaAddr)}`,
    `Bootparam: scif_card_dma_addr ${hex(b.scifCardDmaAddr)}`,
  ];
  for (const e of d.entries) {
    lines.push(`Type ${e.type} Num VQ ${e.numVq} Feature Len ${e.featureLen}`);
    lines.push(`Config Len ${e.configLen} Shutdown Status ${e.status}`);
    e.vqconfigs.forEach((v, i) =>
      lines.push(`vqconfig[${i}]: address ${hex(v.address)} num ${v.num} used address ${hex(v.usedAddress)}`),
    );
    lines.push(`Features: Host ${hex(e.hostFeatures)} Guest ${hex(e.guestFeatures)}`);
    e.config.forEach((v, i) => lines.push(`config[${i}]=${v}`));
    const c = e.ctrl;
    lines.push('Device control:');
    lines.push(`Config Change ${c.configChange} Vdev reset ${c.vdevReset}`);
    lines.push(`Guest Ack ${c.guestAck} Host ack ${c.hostAck}`);
    lines.push(`Used address updated ${c.usedAddressUpdated} Vdev ${hex(c.vdev)}`);
    lines.push(`c2h doorbell ${c.c2hVdevDb} h2c doorbell ${c.h2cVdevDb}`);
  }
  return lines.join('\n') + '\n';
}

/** One ring of a device as `vdev_info` shows it. */
export interface VopVringInfoDump {
  readonly index: number;
  readonly num: number;
  /** `_mic_vring_info.avail_idx`. */
  readonly infoAvailIdx: number;
  readonly lastAvailIdx: number;
  readonly lastUsedIdx: number;
  readonly completed: number;
  readonly desc: readonly {
    readonly addr: bigint;
    readonly len: number;
    readonly flags: number;
    readonly next: number;
  }[];
  readonly avail: { readonly flags: number; readonly idx: number; readonly ring: readonly number[] };
  /** The live used ring: the card's after relocation, the host copy before. */
  readonly used: {
    readonly flags: number;
    readonly idx: number;
    readonly ring: readonly { readonly id: number; readonly len: number }[];
  };
}

/** One device as `vdev_info` shows it. */
export interface VopVdevInfo {
  readonly type: number;
  /** `UP` when the status byte is not 0. */
  readonly state: 'UP' | 'DOWN';
  readonly inBytes: number;
  readonly outBytes: number;
  readonly inBytesDma: number;
  readonly outBytesDma: number;
  readonly vrings: readonly VopVringInfoDump[];
}

/** Reads a device's counters and rings for the `vdev_info` view. */
export function vdevInfo(vdev: VopVdev): VopVdevInfo {
  const vrings: VopVringInfoDump[] = vdev.vrings.map((vr) => {
    const mem = vr.block.va;
    const num = vr.num;
    const desc = [];
    for (let i = 0; i < num; i++) {
      const at = vr.layout.descOffset + i * VRING_DESC_SIZE;
      desc.push({
        addr: mem.readBigU64(at + DESC.ADDR),
        len: mem.readU32(at + DESC.LEN),
        flags: mem.readU16(at + DESC.FLAGS),
        next: mem.readU16(at + DESC.NEXT),
      });
    }
    const a = vr.layout.availOffset;
    const availRing = [];
    for (let i = 0; i < num; i++) availRing.push(mem.readU16(a + AVAIL.RING + 2 * i));
    const usedMem = vr.usedRemap ?? mem.window(vr.layout.usedOffset, mem.byteLength - vr.layout.usedOffset);
    const usedRing = [];
    for (let i = 0; i < num; i++) {
      const at = USED.RING + i * VRING_USED_ELEM_SIZE;
      usedRing.push({ id: usedMem.readU32(at), len: usedMem.readU32(at + 4) });
    }
    const s = vr.vringh.state();
    return {
      index: vr.index,
      num,
      infoAvailIdx: mem.readU16(vr.layout.infoOffset + MIC_VRING_INFO_OFFSETS.availIdx),
      lastAvailIdx: s.lastAvailIdx,
      lastUsedIdx: s.lastUsedIdx,
      completed: s.completed,
      desc,
      avail: { flags: mem.readU16(a + AVAIL.FLAGS), idx: mem.readU16(a + AVAIL.IDX), ring: availRing },
      used: { flags: usedMem.readU16(USED.FLAGS), idx: usedMem.readU16(USED.IDX), ring: usedRing },
    };
  });
  return {
    type: vdev.type,
    state: vdev.removed || vdev.status() === 0 ? 'DOWN' : 'UP',
    inBytes: vdev.stats.inBytes,
    outBytes: vdev.stats.outBytes,
    inBytesDma: vdev.stats.inBytesDma,
    outBytesDma: vdev.stats.outBytesDma,
    vrings,
  };
}

/** The text of debugfs `vdev_info` for some devices. */
export function formatVdevInfo(infos: readonly VopVdevInfo[]): string {
  const lines: string[] = [];
  for (const d of infos) {
    lines.push(
      `VDEV type ${d.type} state ${d.state} in ${d.inBytes} out ${d.outBytes} in_dma ${d.inBytesDma} out_dma ${d.outBytesDma}`,
    );
    for (const v of d.vrings) {
      const mask = v.num - 1;
      lines.push(
        `vring i ${v.index} avail_idx ${v.infoAvailIdx & mask} vring i ${v.index} avail_idx ${v.infoAvailIdx}`,
      );
      lines.push(
        `vrh i ${v.index} weak_barriers 0 last_avail_idx ${v.lastAvailIdx} last_used_idx ${v.lastUsedIdx} completed ${v.completed}`,
      );
      v.desc.forEach((x, i) =>
        lines.push(`desc[${i}] addr ${hex(x.addr)} len ${x.len} flags ${hex(x.flags)} next ${x.next}`),
      );
      lines.push(`avail flags ${hex(v.avail.flags)} idx ${v.avail.idx & mask}`);
      lines.push(`avail flags ${hex(v.avail.flags)} idx ${v.avail.idx}`);
      v.avail.ring.forEach((x, i) => lines.push(`avail ring[${i}] ${x}`));
      lines.push(`used flags ${hex(v.used.flags)} idx ${v.used.idx & mask}`);
      lines.push(`used flags ${hex(v.used.flags)} idx ${v.used.idx}`);
      v.used.ring.forEach((x, i) => lines.push(`used ring[${i}] id ${x.id} len ${x.len}`));
    }
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}
