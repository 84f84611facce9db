/**
 * The read-only mapping user space gets of a device (`mmap` of `/dev/vop_virtio<N>`): the whole
 * device page at offset 0 (every device's entry, not only this one), then the device's vrings one
 * after the other from 0x1000, each its vring block (`PAGE_ALIGN(round_up(vring_size, 4) + 8)`
 * bytes: desc, avail, the host copy of used, `_mic_vring_info`). Reads see the live bytes; writes
 * fail with `EACCES`, as a writable mapping does in the kernel.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c `vop_mmap`, `vop_query_offset`
 */
import { MicError } from '@mic/errors';
import { type Memory, checkRange } from '@mic/memory';
import { MIC_DP_SIZE } from '@mic/mic-common';

interface Region {
  readonly start: number;
  readonly mem: Memory;
}

const denied = (): never => {
  throw new MicError('EACCES', 'the VOP device mapping is read-only');
};

/** A read-only {@link Memory} over the device page and the vrings of one device. */
export class VopMapping implements Memory {
  readonly byteLength: number;
  readonly shared: boolean;
  readonly #regions: readonly Region[];

  /** @param dp - the device page; @param vrings - the vring blocks, in index order */
  constructor(dp: Memory, vrings: readonly Memory[]) {
    const regions: Region[] = [{ start: 0, mem: dp.window(0, MIC_DP_SIZE) }];
    let at = MIC_DP_SIZE;
    for (const v of vrings) {
      regions.push({ start: at, mem: v });
      at += v.byteLength;
    }
    this.#regions = regions;
    this.byteLength = at;
    this.shared = dp.shared;
  }

  /** Where the vring `index` starts in the mapping. */
  vringOffset(index: number): number {
    const r = this.#regions[index + 1];
    if (!r) throw new MicError('EINVAL', `the mapping has no vring ${String(index)}`);
    return r.start;
  }

  /** The region and offset inside it of `[offset, offset + length)`; EFAULT when it crosses regions. */
  #at(offset: number, length: number): [Memory, number] {
    checkRange('VOP mapping', offset, length, this.byteLength);
    for (let i = this.#regions.length - 1; i >= 0; i--) {
      const r = this.#regions[i]!;
      if (offset >= r.start) {
        const inner = offset - r.start;
        checkRange('VOP mapping region', inner, length, r.mem.byteLength);
        return [r.mem, inner];
      }
    }
    throw new MicError('EFAULT', `VOP mapping offset ${offset} is not mapped`);
  }

  readU8(offset: number): number {
    const [m, o] = this.#at(offset, 1);
    return m.readU8(o);
  }
  readU16(offset: number): number {
    const [m, o] = this.#at(offset, 2);
    return m.readU16(o);
  }
  readU32(offset: number): number {
    const [m, o] = this.#at(offset, 4);
    return m.readU32(o);
  }
  readU64(offset: number): number {
    const [m, o] = this.#at(offset, 8);
    return m.readU64(o);
  }
  readBigU64(offset: number): bigint {
    const [m, o] = this.#at(offset, 8);
    return m.readBigU64(o);
  }
  loadU8(offset: number): number {
    const [m, o] = this.#at(offset, 1);
    return m.loadU8(o);
  }
  loadU16(offset: number): number {
    const [m, o] = this.#at(offset, 2);
    return m.loadU16(o);
  }
  loadU32(offset: number): number {
    const [m, o] = this.#at(offset, 4);
    return m.loadU32(o);
  }
  read(offset: number, dst: Uint8Array): void {
    const [m, o] = this.#at(offset, dst.length);
    m.read(o, dst);
  }
  window(offset: number, length: number): Memory {
    const [m, o] = this.#at(offset, length);
    return readOnly(m.window(o, length));
  }

  writeU8: Memory['writeU8'] = denied;
  writeU16: Memory['writeU16'] = denied;
  writeU32: Memory['writeU32'] = denied;
  writeU64: Memory['writeU64'] = denied;
  writeBigU64: Memory['writeBigU64'] = denied;
  storeU8: Memory['storeU8'] = denied;
  storeU16: Memory['storeU16'] = denied;
  storeU32: Memory['storeU32'] = denied;
  write: Memory['write'] = denied;
  fill: Memory['fill'] = denied;
}

/** `mem` with every write refused (`EACCES`). */
function readOnly(mem: Memory): Memory {
  return {
    byteLength: mem.byteLength,
    shared: mem.shared,
    readU8: (o) => mem.readU8(o),
    readU16: (o) => mem.readU16(o),
    readU32: (o) => mem.readU32(o),
    readU64: (o) => mem.readU64(o),
    readBigU64: (o) => mem.readBigU64(o),
    loadU8: (o) => mem.loadU8(o),
    loadU16: (o) => mem.loadU16(o),
    loadU32: (o) => mem.loadU32(o),
    read: (o, dst) => mem.read(o, dst),
    window: (o, n) => readOnly(mem.window(o, n)),
    writeU8: denied,
    writeU16: denied,
    writeU32: denied,
    writeU64: denied,
    writeBigU64: denied,
    storeU8: denied,
    storeU16: denied,
    storeU32: denied,
    write: denied,
    fill: denied,
  };
}
