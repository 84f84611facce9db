/**
 * The device page: `mic_bootparam`, then device entries from offset 24, each `desc | variable
 * part | mic_device_ctrl`, walked with stride `mic_total_desc_size`. `type == 0` ends the list
 * and `type == -1` is a removed entry whose slot the host may reuse.
 *
 * Every function here takes the device page as a {@link Memory} whose offset 0 is the page start
 * and which has at least {@link MIC_DP_SIZE} bytes; the page is shared with a peer that may be
 * buggy or hostile, so nothing read from it is trusted.
 *
 * Publication: the first 32-bit word of an entry holds `type`, `num_vq`, `feature_len` and
 * `config_len`. Writers change it only with an atomic `storeU32` (release) after writing the
 * rest of the entry; readers take it with an atomic `loadU32` (acquire) before reading anything
 * else, and get type and sizes from one consistent snapshot. Entries start at multiples of 8, so
 * the word is aligned whenever the page itself is (a page-aligned device page always is).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_page`
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_copy_dp_entry`
 * @see drivers/misc/mic/vop/vop_main.c `_vop_scan_devices`
 */
import { MicError, checkInt } from '@mic/errors';
import { BufferMemory, type Memory } from '@mic/memory';
import { toS8 } from './bytes.js';
import { MIC_DP_SIZE, MIC_MAX_VRING_ENTRIES, MIC_TYPE_END, MIC_TYPE_REMOVED } from './constants.js';
import { MIC_BOOTPARAM_SIZE } from './bootparam.js';
import {
  MIC_DEVICE_DESC_OFFSETS,
  MIC_VQCONFIG_OFFSETS,
  MIC_VQCONFIG_SIZE,
  type MicDescHeader,
  checkBlockLength,
  checkDescHeader,
  descHeaderProblem,
  micAlignedDescSize,
  micDescSize,
  micDeviceCtrlOffset,
  micGuestAcksOffset,
  micTotalDescSize,
  micVqConfigOffset,
  micVqConfigspaceOffset,
  micVqFeaturesOffset,
} from './desc.js';

/** The smallest entry: an 8-byte desc with nothing after it, plus its 16-byte ctrl. */
const MIN_TOTAL_DESC_SIZE = micTotalDescSize({ numVq: 0, featureLen: 0, configLen: 0 });

/**
 * Where the parts of one device entry are, as offsets from the start of the device page.
 *
 * @see include/uapi/linux/mic_common.h `mic_desc_size`, `mic_vq_config`, `mic_vq_features`,
 * `mic_vq_configspace`, `mic_total_desc_size`
 */
export interface DpEntryLayout extends MicDescHeader {
  /** Offset of the `mic_device_desc`. */
  readonly offset: number;
  readonly descSize: number;
  readonly alignedDescSize: number;
  /** Stride to the next entry. */
  readonly totalDescSize: number;
  /** `mic_vqconfig[0]`; the others follow every 24 bytes. */
  readonly vqconfigOffset: number;
  /** Host feature bytes (`feature_len` of them). */
  readonly featuresOffset: number;
  /** Guest ack bytes (`feature_len` of them). */
  readonly guestAcksOffset: number;
  /** Device config space (`config_len` bytes). */
  readonly configspaceOffset: number;
  /** `mic_device_ctrl`. */
  readonly ctrlOffset: number;
}

/**
 * The layout of an entry with `header` at page offset `offset`.
 *
 * @see include/uapi/linux/mic_common.h `mic_desc_size`
 */
export function dpEntryLayout(offset: number, header: MicDescHeader): DpEntryLayout {
  return {
    offset,
    numVq: header.numVq,
    featureLen: header.featureLen,
    configLen: header.configLen,
    descSize: micDescSize(header),
    alignedDescSize: micAlignedDescSize(header),
    totalDescSize: micTotalDescSize(header),
    vqconfigOffset: offset + micVqConfigOffset(0),
    featuresOffset: offset + micVqFeaturesOffset(header),
    guestAcksOffset: offset + micGuestAcksOffset(header),
    configspaceOffset: offset + micVqConfigspaceOffset(header),
    ctrlOffset: offset + micDeviceCtrlOffset(header),
  };
}

/**
 * A device entry found by {@link walkDevicePage}: a live device (`type` > 0) or a removed one
 * (`type` -1).
 *
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc`
 */
export interface DpEntry extends DpEntryLayout {
  readonly type: number;
  /** `mic_device_desc.status` when the entry was read. */
  readonly status: number;
}

/**
 * Why a walk stopped: a `type == 0` entry, the end of the page, or an entry that cannot be
 * valid (see {@link walkDevicePage}).
 */
export type DpWalkStop = 'end-of-list' | 'end-of-page' | 'malformed';

/** Result of {@link walkDevicePage}. */
export interface DpWalk {
  /** Live and removed entries before the stop, in page order. */
  readonly entries: readonly DpEntry[];
  /** Offset where the walk stopped: the terminator, the malformed entry, or the page size. */
  readonly end: number;
  readonly stop: DpWalkStop;
  /** When `stop` is `'malformed'`: an `EIO` error naming the entry, the field and the value. */
  readonly error?: MicError;
}

function checkPage(mem: Memory): void {
  if (mem.byteLength < MIC_DP_SIZE) {
    throw new MicError(
      'EINVAL',
      `device page memory has ${mem.byteLength} bytes, a device page needs ${MIC_DP_SIZE}`,
      { details: { byteLength: mem.byteLength } },
    );
  }
}

function checkEntryOffset(offset: number): void {
  if (!Number.isInteger(offset) || offset < MIC_BOOTPARAM_SIZE || offset >= MIC_DP_SIZE || offset % 8 !== 0) {
    throw new MicError(
      'EINVAL',
      `device page offset ${String(offset)} is not an entry offset (a multiple of 8 in [${MIC_BOOTPARAM_SIZE}, ${MIC_DP_SIZE}))`,
      { details: { offset } },
    );
  }
}

/** The header in the first word of an entry (little-endian: type is the low byte). */
function headerOf(word: number): MicDescHeader {
  return { numVq: (word >>> 8) & 0xff, featureLen: (word >>> 16) & 0xff, configLen: word >>> 24 };
}

/** The first word of an entry with `type` and `header`. */
function wordOf(type: number, header: MicDescHeader): number {
  return ((type & 0xff) | (header.numVq << 8) | (header.featureLen << 16) | (header.configLen << 24)) >>> 0;
}

/** Why the entry at `offset` cannot be valid, or `undefined`. */
function entryProblem(offset: number, type: number, header: MicDescHeader): string | undefined {
  if (type < MIC_TYPE_REMOVED) return `type ${type} is neither a virtio device id nor -1`;
  const problem = descHeaderProblem(header);
  if (problem !== undefined) return problem;
  const total = micTotalDescSize(header);
  if (offset + total > MIC_DP_SIZE) {
    return `its ${total} bytes run past the end of the ${MIC_DP_SIZE}-byte device page`;
  }
  return undefined;
}

function malformed(offset: number, type: number, header: MicDescHeader, problem: string): MicError {
  return new MicError('EIO', `device page entry at offset ${offset} (type ${type}): ${problem}`, {
    details: { offset, type, ...header },
  });
}

/**
 * Walks the device entries: from offset 24 with stride `mic_total_desc_size`, stopping at
 * `type == 0` or the end of the page, and returning removed entries (`type == -1`) as well as
 * live ones. The type and the sizes of each entry come from one acquire load.
 *
 * Against a hostile page: each entry is checked before it is used (`num_vq` ≤ 4, aligned size
 * ≤ `MIC_MAX_DESC_BLK_SIZE`, whole entry inside the page, type ≥ -1); the first one that
 * fails stops the walk with `stop: 'malformed'` and an `EIO` error, keeping the entries before
 * it. The walk never reads outside the page and never throws for page contents; every entry
 * is at least 24 bytes, so it takes at most 170 steps.
 *
 * Throws `EINVAL` only when `mem` is smaller than a device page (a caller bug).
 *
 * @see drivers/misc/mic/vop/vop_main.c `_vop_scan_devices`
 * @see include/uapi/linux/mic_common.h `mic_total_desc_size`
 */
export function walkDevicePage(mem: Memory): DpWalk {
  checkPage(mem);
  const entries: DpEntry[] = [];
  let i = MIC_BOOTPARAM_SIZE;
  while (i < MIC_DP_SIZE) {
    const word = mem.loadU32(i);
    const type = toS8(word);
    if (type === MIC_TYPE_END) return { entries, end: i, stop: 'end-of-list' };
    const header = headerOf(word);
    const problem = entryProblem(i, type, header);
    if (problem !== undefined) {
      return { entries, end: i, stop: 'malformed', error: malformed(i, type, header, problem) };
    }
    const layout = dpEntryLayout(i, header);
    entries.push({ ...layout, type, status: mem.readU8(i + MIC_DEVICE_DESC_OFFSETS.status) });
    i += layout.totalDescSize;
  }
  return { entries, end: i, stop: 'end-of-page' };
}

/**
 * Reads `mic_device_desc.type` at `offset` with an acquire load, for readers that must see the
 * whole entry the type publishes (read the type first, then the rest).
 *
 * @see drivers/misc/mic/vop/vop_main.c `_vop_scan_devices` (`rmb()` before reading type)
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc`
 */
export function loadDpType(mem: Memory, offset: number): number {
  checkEntryOffset(offset);
  return toS8(mem.loadU32(offset));
}

/**
 * How a slot is taken:
 * - `end`: the list terminator (type 0);
 * - `exact`: a removed entry with the same stride;
 * - `last`: a removed entry followed by the end of the list (any size that fits in the page);
 * - `split`: a removed entry larger by at least 24 bytes; the rest becomes a removed filler.
 */
export type DpSlotKind = 'end' | 'exact' | 'last' | 'split';

/** A free slot found by {@link findDpSlot}. */
export interface DpSlot {
  readonly offset: number;
  readonly kind: DpSlotKind;
  /** Stride of the removed entry the slot held (0 for `end`). */
  readonly previousTotal: number;
}

/**
 * Finds the first slot an entry with `header` can take, like the host's `vop_copy_dp_entry`:
 * first fit from offset 24, considering offsets `i < MIC_DP_SIZE - mic_total_desc_size(new)`
 * (the kernel's bound, kept).
 *
 * QUIRK fixed: the kernel reuses any removed (-1) slot, even one smaller than the new entry,
 * which then overwrites the next entry. Here a removed slot is reused only when the walk stays
 * intact afterwards: same stride (`exact`), the last entry of the list (`last`), or larger by
 * at least 24 bytes so a removed filler entry can cover the rest (`split`). A smaller slot, or
 * one larger by only 8 or 16 bytes, is skipped: the walk would land inside stale bytes.
 *
 * Throws `EINVAL` when `header` breaks the ADD_DEVICE limits or no slot fits (as the kernel:
 * "slot not found"), and `EIO` when the walk meets a malformed entry first.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_copy_dp_entry`
 * @see include/uapi/linux/mic_common.h `mic_total_desc_size`
 */
export function findDpSlot(mem: Memory, header: MicDescHeader): DpSlot {
  checkPage(mem);
  checkDescHeader(header);
  const need = micTotalDescSize(header);
  const limit = MIC_DP_SIZE - need;
  let i = MIC_BOOTPARAM_SIZE;
  while (i < limit) {
    const word = mem.loadU32(i);
    const type = toS8(word);
    if (type === MIC_TYPE_END) return { offset: i, kind: 'end', previousTotal: 0 };
    const old = headerOf(word);
    const problem = entryProblem(i, type, old);
    if (problem !== undefined) throw malformed(i, type, old, problem);
    const have = micTotalDescSize(old);
    if (type === MIC_TYPE_REMOVED) {
      if (have === need) return { offset: i, kind: 'exact', previousTotal: have };
      const next = i + have;
      if (next >= MIC_DP_SIZE || toS8(mem.loadU32(next)) === MIC_TYPE_END) {
        return { offset: i, kind: 'last', previousTotal: have };
      }
      if (have - need >= MIN_TOTAL_DESC_SIZE) return { offset: i, kind: 'split', previousTotal: have };
    }
    i += have;
  }
  throw new MicError('EINVAL', `no free device page slot for an entry of ${need} bytes`, {
    details: { totalDescSize: need },
  });
}

/**
 * An entry copied by {@link copyDpEntry} but not yet published: the page holds it with type 0
 * (`end` and `last` slots) or -1 (`exact` and `split` slots), so walkers do not see a device.
 */
export interface DpPendingEntry extends DpEntryLayout {
  /** The device type to publish with {@link publishDpEntry}. */
  readonly type: number;
  readonly slot: DpSlotKind;
}

/**
 * Copies a device entry block (as ADD_DEVICE passes it, `mic_desc_size` bytes) into the first
 * free slot, without publishing it, like the host's `vop_copy_dp_entry`. Next the host resets
 * the ctrl (`deviceCtrlInit`), sets up the vrings and doorbells, then calls
 * {@link publishDpEntry}; on failure it calls {@link abortDpEntry}.
 *
 * Checks, each `EINVAL`: the block holds its whole `mic_desc_size`; `num_vq` ≤ 4 and aligned
 * size ≤ 256; every `vqconfig[i].num` ≤ {@link MIC_MAX_VRING_ENTRIES} (as the kernel); `type`
 * in 1..127 (the kernel does not check: type 0 would end the list at this slot and hide every
 * later device, -1 would never become visible); and a slot exists (see {@link findDpSlot}).
 *
 * Write order (no walker ever sees a torn entry): for an `end` or `last` slot, the header word
 * with type 0 first, then the rest, then a type-0 terminator right after the entry; for an
 * `exact` or `split` slot the entry stays removed (-1) throughout: the filler first (`split`),
 * the rest, then the header word with the new sizes. Callers serialise allocations (the kernel
 * holds `vop_mutex`).
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_copy_dp_entry`
 * @see include/uapi/linux/mic_common.h `mic_desc_size`
 */
export function copyDpEntry(mem: Memory, block: Uint8Array): DpPendingEntry {
  checkPage(mem);
  // A private copy: the caller's bytes may change under us (the kernel's memdup_user).
  const src = new BufferMemory(block.slice().buffer);
  const desc = checkBlockLength(src);
  checkDescHeader(desc);
  checkInt('device type', desc.type, 1, 127);
  for (let q = 0; q < desc.numVq; q++) {
    const num = src.readU16(micVqConfigOffset(q) + MIC_VQCONFIG_OFFSETS.num);
    if (num > MIC_MAX_VRING_ENTRIES) {
      throw new MicError(
        'EINVAL',
        `vqconfig[${q}].num ${num} exceeds MIC_MAX_VRING_ENTRIES ${MIC_MAX_VRING_ENTRIES}`,
        { details: { index: q, num } },
      );
    }
  }
  const slot = findDpSlot(mem, desc);
  const layout = dpEntryLayout(slot.offset, desc);
  const at = slot.offset;
  const rest = src.bytes(4, layout.descSize - 4);
  switch (slot.kind) {
    case 'end':
    case 'last':
      mem.storeU32(at, wordOf(MIC_TYPE_END, desc));
      mem.write(at + 4, rest);
      mem.writeU8(at + layout.totalDescSize, MIC_TYPE_END);
      break;
    case 'split': {
      const gap = slot.previousTotal - layout.totalDescSize;
      const filler = { numVq: 0, featureLen: 0, configLen: gap - MIN_TOTAL_DESC_SIZE };
      mem.storeU32(at + layout.totalDescSize, wordOf(MIC_TYPE_REMOVED, filler));
      mem.write(at + 4, rest);
      mem.storeU32(at, wordOf(MIC_TYPE_REMOVED, desc));
      break;
    }
    case 'exact':
      mem.write(at + 4, rest);
      mem.storeU32(at, wordOf(MIC_TYPE_REMOVED, desc));
      break;
  }
  return { ...layout, type: desc.type, slot: slot.kind };
}

/** Stores `type` into the header word at `offset`, keeping the sizes (release). */
function storeType(mem: Memory, offset: number, word: number, type: number): void {
  mem.storeU32(offset, ((word & 0xffffff00) | (type & 0xff)) >>> 0);
}

/** Throws `EINVAL` unless the slot of `pending` still holds it, unpublished; returns its word. */
function checkPending(mem: Memory, pending: DpPendingEntry): number {
  checkPage(mem);
  checkEntryOffset(pending.offset);
  const word = mem.loadU32(pending.offset);
  const current = toS8(word);
  if (current !== MIC_TYPE_END && current !== MIC_TYPE_REMOVED) {
    throw new MicError(
      'EINVAL',
      `device page slot at offset ${pending.offset} was already published (type ${current})`,
      { details: { offset: pending.offset, type: current } },
    );
  }
  if (wordOf(0, headerOf(word)) !== wordOf(0, pending)) {
    throw new MicError('EINVAL', `device page slot at offset ${pending.offset} no longer holds this entry`, {
      details: { offset: pending.offset },
    });
  }
  return word;
}

/**
 * Publishes an entry made by {@link copyDpEntry}: one release store of its header word with
 * the real type, after everything else of the entry (desc, vqconfigs, ctrl) has been written.
 * Readers pair it with {@link loadDpType} or {@link walkDevicePage}. Throws `EINVAL` for a type
 * outside 1..127, or when the slot was already published or no longer holds the entry's sizes.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_virtio_add_device` (`smp_wmb()` then `dd->type`)
 * @see include/uapi/linux/mic_common.h `struct mic_device_desc`
 */
export function publishDpEntry(mem: Memory, pending: DpPendingEntry): void {
  checkInt('device type', pending.type, 1, 127);
  storeType(mem, pending.offset, checkPending(mem, pending), pending.type);
}

/**
 * Marks the entry at `offset` removed (`type = -1`, release store), as the card does when it
 * drops the device and the host does after the hot-unplug handshake. Idempotent. Throws
 * `EINVAL` when the slot does not hold a device (type 0 or below -1).
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_virtio_del_device`
 * @see drivers/misc/mic/vop/vop_main.c `_vop_remove_device`
 */
export function removeDpEntry(mem: Memory, offset: number): void {
  checkPage(mem);
  checkEntryOffset(offset);
  const word = mem.loadU32(offset);
  const current = toS8(word);
  if (current === MIC_TYPE_END || current < MIC_TYPE_REMOVED) {
    throw new MicError('EINVAL', `device page slot at offset ${offset} holds no device (type ${current})`, {
      details: { offset, type: current },
    });
  }
  storeType(mem, offset, word, MIC_TYPE_REMOVED);
}

/**
 * Gives back the slot of a pending entry after a failed device add: marks it removed (-1), so
 * it is reusable and, unlike the kernel, which leaves type 0 in the slot, does not end the list
 * early and hide the devices after it. Throws `EINVAL` when the entry was already published or
 * the slot no longer holds its sizes.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_virtio_add_device` (error paths)
 */
export function abortDpEntry(mem: Memory, pending: DpPendingEntry): void {
  storeType(mem, pending.offset, checkPending(mem, pending), MIC_TYPE_REMOVED);
}

/**
 * Page offset of `mic_vqconfig[index]` of `entry`. Throws `EINVAL` unless `index < num_vq`.
 *
 * @see include/uapi/linux/mic_common.h `mic_vq_config`
 */
export function dpVqconfigOffset(entry: DpEntryLayout, index: number): number {
  checkInt('vring index', index, 0, entry.numVq - 1);
  return entry.vqconfigOffset + index * MIC_VQCONFIG_SIZE;
}

/**
 * A bounds-checked view of the config space of `entry` (`config_len` bytes): reads and writes
 * outside it fail with `EFAULT`.
 *
 * @see include/uapi/linux/mic_common.h `mic_vq_configspace`
 */
export function configSpaceWindow(mem: Memory, entry: DpEntryLayout): Memory {
  return mem.window(entry.configspaceOffset, entry.configLen);
}
