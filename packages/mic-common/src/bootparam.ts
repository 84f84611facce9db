/**
 * `struct mic_bootparam`: offset 0 of the device page, 24 bytes, plus the read-only legacy
 * (v3.13) 16-byte layout.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_bootparam`
 */
import { MicError, checkInt } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { readS8 } from './bytes.js';
import { MIC_DB_NONE, MIC_MAGIC } from './constants.js';

/**
 * Field offsets of `struct mic_bootparam` (final layout, v4.4 and later).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_bootparam`
 */
export const MIC_BOOTPARAM_OFFSETS = {
  /** `__le32 magic`: {@link MIC_MAGIC}. */
  magic: 0,
  /** `__s8 h2c_config_db`: doorbell the host rings for hot-plug and config changes; -1 none. */
  h2cConfigDb: 4,
  /** `__u8 node_id`: SCIF node id of the card (`mdev->id + 1`). */
  nodeId: 5,
  /** `__u8 h2c_scif_db`: SCIF doorbell set by the card; 0xFF (-1) none. */
  h2cScifDb: 6,
  /** `__u8 c2h_scif_db`: SCIF doorbell set by the host; 0xFF (-1) none. */
  c2hScifDb: 7,
  /** `__u64 scif_host_dma_addr`: SCIF queue-pair address. */
  scifHostDmaAddr: 8,
  /** `__u64 scif_card_dma_addr`: SCIF queue-pair address. */
  scifCardDmaAddr: 16,
} as const;

/**
 * `sizeof(struct mic_bootparam)` (aligned(8)); device entries start at this offset.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_bootparam`
 */
export const MIC_BOOTPARAM_SIZE = 24;

/**
 * Decoded `struct mic_bootparam`. Doorbells are signed: -1 means none. The two SCIF doorbells
 * are declared `__u8` in the header but hold a doorbell number with 0xFF as "none", so they
 * are decoded as `__s8` like every other doorbell (0xFF reads as -1).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_bootparam`
 */
export interface MicBootparam {
  readonly magic: number;
  readonly h2cConfigDb: number;
  readonly nodeId: number;
  readonly h2cScifDb: number;
  readonly c2hScifDb: number;
  /** Exact below 2^53 (see `Memory.readU64`). */
  readonly scifHostDmaAddr: number;
  /** Exact below 2^53 (see `Memory.readU64`). */
  readonly scifCardDmaAddr: number;
}

/**
 * Reads the `mic_bootparam` at `offset` (default 0, the start of the device page).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_bootparam`
 */
export function readBootparam(mem: Memory, offset = 0): MicBootparam {
  const o = MIC_BOOTPARAM_OFFSETS;
  return {
    magic: mem.readU32(offset + o.magic),
    h2cConfigDb: readS8(mem, offset + o.h2cConfigDb),
    nodeId: mem.readU8(offset + o.nodeId),
    h2cScifDb: readS8(mem, offset + o.h2cScifDb),
    c2hScifDb: readS8(mem, offset + o.c2hScifDb),
    scifHostDmaAddr: mem.readU64(offset + o.scifHostDmaAddr),
    scifCardDmaAddr: mem.readU64(offset + o.scifCardDmaAddr),
  };
}

/**
 * Writes every field of a `mic_bootparam` at `offset` (default 0). Throws `EINVAL` for a value
 * that does not fit its field, before writing anything.
 *
 * @see include/uapi/linux/mic_common.h `struct mic_bootparam`
 */
export function writeBootparam(mem: Memory, bp: MicBootparam, offset = 0): void {
  checkInt('magic', bp.magic, 0, 0xffffffff);
  checkInt('h2c_config_db', bp.h2cConfigDb, -128, 127);
  checkInt('node_id', bp.nodeId, 0, 0xff);
  checkInt('h2c_scif_db', bp.h2cScifDb, -128, 127);
  checkInt('c2h_scif_db', bp.c2hScifDb, -128, 127);
  checkInt('scif_host_dma_addr', bp.scifHostDmaAddr, 0, Number.MAX_SAFE_INTEGER);
  checkInt('scif_card_dma_addr', bp.scifCardDmaAddr, 0, Number.MAX_SAFE_INTEGER);
  const o = MIC_BOOTPARAM_OFFSETS;
  mem.writeU32(offset + o.magic, bp.magic);
  mem.writeU8(offset + o.h2cConfigDb, bp.h2cConfigDb & 0xff);
  mem.writeU8(offset + o.nodeId, bp.nodeId);
  mem.writeU8(offset + o.h2cScifDb, bp.h2cScifDb & 0xff);
  mem.writeU8(offset + o.c2hScifDb, bp.c2hScifDb & 0xff);
  mem.writeU64(offset + o.scifHostDmaAddr, bp.scifHostDmaAddr);
  mem.writeU64(offset + o.scifCardDmaAddr, bp.scifCardDmaAddr);
}

/**
 * Resets the bootparam to its defaults, as the host does at every card start and after every
 * stop: magic = {@link MIC_MAGIC}, `h2c_config_db` = -1, `node_id` = `nodeId`, both SCIF
 * doorbells -1 (0xFF), both SCIF addresses 0. Like the kernel, it leaves the device entries
 * after the bootparam untouched.
 *
 * @param nodeId - the card's SCIF node id (`mdev->id + 1`), 0..255
 * @see drivers/misc/mic/host/mic_boot.c `mic_bootparam_init`
 * @see include/uapi/linux/mic_common.h `struct mic_bootparam`
 */
export function bootparamInit(mem: Memory, nodeId: number, offset = 0): void {
  writeBootparam(
    mem,
    {
      magic: 0,
      h2cConfigDb: MIC_DB_NONE,
      nodeId,
      h2cScifDb: MIC_DB_NONE,
      c2hScifDb: MIC_DB_NONE,
      scifHostDmaAddr: 0,
      scifCardDmaAddr: 0,
    },
    offset,
  );
  // The magic last, with a release store: a card that sees it sees the rest.
  mem.storeU32(offset + MIC_BOOTPARAM_OFFSETS.magic, MIC_MAGIC);
}

/**
 * Checks `mic_bootparam.magic`, as the card does after mapping the device page. Throws `EIO`
 * naming the value found when it is not {@link MIC_MAGIC}.
 *
 * @see drivers/misc/mic/card/mic_device.c `mic_dp_init` ("bootparam magic mismatch")
 * @see include/uapi/linux/mic_common.h `MIC_MAGIC`
 */
export function bootparamCheckMagic(mem: Memory, offset = 0): void {
  const magic = mem.readU32(offset + MIC_BOOTPARAM_OFFSETS.magic);
  if (magic !== MIC_MAGIC) {
    throw new MicError(
      'EIO',
      `bootparam magic mismatch: found 0x${magic.toString(16)}, expected 0x${MIC_MAGIC.toString(16)}`,
      { details: { magic, expected: MIC_MAGIC } },
    );
  }
}

/**
 * Field offsets of the legacy (v3.13) `struct mic_bootparam`, before SCIF and COSM. Read-only
 * support: the stack itself uses {@link MIC_BOOTPARAM_OFFSETS}.
 *
 * @see include/uapi/linux/mic_common.h (v3.13) `struct mic_bootparam`
 */
export const MIC_BOOTPARAM_LEGACY_OFFSETS = {
  /** `__u32 magic` */
  magic: 0,
  /** `__s8 c2h_shutdown_db`: set by the host. */
  c2hShutdownDb: 4,
  /** `__s8 h2c_shutdown_db`: set by the card. */
  h2cShutdownDb: 5,
  /** `__s8 h2c_config_db`: set by the card. */
  h2cConfigDb: 6,
  /** `__u8 shutdown_status`: set by the card. */
  shutdownStatus: 7,
  /** `__u8 shutdown_card`: set to 1 by the host to start a shutdown. */
  shutdownCard: 8,
} as const;

/**
 * `sizeof` the legacy (v3.13) `struct mic_bootparam` (aligned(8)); legacy device entries
 * started at this offset.
 *
 * @see include/uapi/linux/mic_common.h (v3.13) `struct mic_bootparam`
 */
export const MIC_BOOTPARAM_LEGACY_SIZE = 16;

/**
 * Decoded legacy (v3.13) `struct mic_bootparam`.
 *
 * @see include/uapi/linux/mic_common.h (v3.13) `struct mic_bootparam`
 */
export interface MicBootparamLegacy {
  readonly magic: number;
  readonly c2hShutdownDb: number;
  readonly h2cShutdownDb: number;
  readonly h2cConfigDb: number;
  readonly shutdownStatus: number;
  readonly shutdownCard: number;
}

/**
 * Reads a legacy (v3.13) `mic_bootparam` at `offset` (default 0).
 *
 * @see include/uapi/linux/mic_common.h (v3.13) `struct mic_bootparam`
 */
export function readBootparamLegacy(mem: Memory, offset = 0): MicBootparamLegacy {
  const o = MIC_BOOTPARAM_LEGACY_OFFSETS;
  return {
    magic: mem.readU32(offset + o.magic),
    c2hShutdownDb: readS8(mem, offset + o.c2hShutdownDb),
    h2cShutdownDb: readS8(mem, offset + o.h2cShutdownDb),
    h2cConfigDb: readS8(mem, offset + o.h2cConfigDb),
    shutdownStatus: mem.readU8(offset + o.shutdownStatus),
    shutdownCard: mem.readU8(offset + o.shutdownCard),
  };
}
