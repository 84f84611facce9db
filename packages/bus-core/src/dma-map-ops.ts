/**
 * The half of every `DmaMapOps` that is the same on the host, on the card and in the mocks: the
 * size check and alignment rule of `alloc`, the book of live buffers `free` checks against, and the
 * live `mapSingle` mappings (`DmaMappingCounts`). What differs is where memory comes from and how
 * an address is made device-visible; a subclass says that in three hooks.
 *
 * @see drivers/misc/mic/host/mic_boot.c (`__mic_dma_alloc`, `__mic_dma_free`, `mic_dma_map_page`)
 */
import { MicError, checkObject, formatAddr, formatValue } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { DmaMappingCounts } from './dma-mappings.js';
import type { DmaBuffer, DmaMapOps } from './hw.js';

/** What {@link DmaMapOpsBase.allocMapped} returns: the memory, its DMA address, how to give it back. */
export interface DmaAllocation {
  /** The CPU's view of the zeroed bytes. */
  readonly va: Memory;
  /** Where the other side of the link reaches them. */
  readonly dmaAddr: number;
  /** Unmaps and frees them. */
  release(): void;
}

const isSize = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/**
 * A {@link DmaMapOps} built on three hooks: {@link allocMapped} (memory plus its DMA address),
 * {@link addrOf} (where a view of reachable memory sits) and, when mapping does something,
 * {@link mapRange}/{@link unmapRange}. `alloc` hands out page-aligned memory from 4096 bytes up
 * and 64-byte aligned below, as the `DmaMapOps` contract says.
 */
export abstract class DmaMapOpsBase implements DmaMapOps {
  /** What errors call these ops (`mic0 dma`, `host vop dma`). */
  protected readonly name: string;
  readonly #buffers = new Map<number, { readonly buf: DmaBuffer; readonly release: () => void }>();
  readonly #mappings: DmaMappingCounts;

  /** @param name - what errors call these ops */
  protected constructor(name: string) {
    this.name = name;
    this.#mappings = new DmaMappingCounts(name);
  }

  /** Buffers from {@link alloc} not freed yet. */
  get liveBuffers(): number {
    return this.#buffers.size;
  }

  /** Mappings from {@link mapSingle} not unmapped yet. */
  get liveMappings(): number {
    return this.#mappings.live;
  }

  /**
   * Allocates and maps zeroed memory.
   * @throws MicError EINVAL for a size that is not a positive integer, or what
   * {@link allocMapped} throws (ENOMEM, ENOSPC, ENODEV)
   */
  alloc(size: number): DmaBuffer {
    if (!isSize(size)) {
      throw new MicError(
        'EINVAL',
        `${this.name}: allocation size ${formatValue(size)} is not a positive integer`,
        {
          details: { size },
        },
      );
    }
    const a = this.allocMapped(size, size >= 4096 ? 4096 : 64);
    const buf: DmaBuffer = Object.freeze({ va: a.va, dmaAddr: a.dmaAddr, size });
    this.#buffers.set(buf.dmaAddr, { buf, release: () => a.release() });
    return buf;
  }

  /**
   * Unmaps and frees a buffer from {@link alloc}.
   * @throws MicError EINVAL when it is not a live buffer of these ops
   */
  free(buf: DmaBuffer): void {
    checkObject(`${this.name}: buffer to free`, buf);
    const dmaAddr = (buf as { dmaAddr?: unknown } | null)?.dmaAddr;
    const entry = typeof dmaAddr === 'number' ? this.#buffers.get(dmaAddr) : undefined;
    if (!entry || entry.buf !== buf) {
      throw new MicError('EINVAL', `${this.name}: buffer at ${formatAddr(dmaAddr)} is not live`, {
        details: { dmaAddr },
      });
    }
    this.#buffers.delete(entry.buf.dmaAddr);
    entry.release();
  }

  /**
   * Maps a view of memory the device can reach (`dma_map_single`) and returns its DMA address.
   * @throws MicError EINVAL for memory it cannot reach (what {@link addrOf} throws) or an empty view
   */
  mapSingle(va: Memory): number {
    checkObject(`${this.name}: memory to map`, va);
    const addr = this.addrOf(va);
    const len = va.byteLength;
    if (!isSize(len)) throw new MicError('EINVAL', `${this.name}: cannot map an empty view`);
    const dmaAddr = this.mapRange(addr, len);
    this.#mappings.add(dmaAddr, len);
    return dmaAddr;
  }

  /**
   * Undoes one {@link mapSingle} of `size` bytes at `dmaAddr` (`dma_unmap_single`).
   * @throws MicError EINVAL when no such mapping is live
   */
  unmapSingle(dmaAddr: number, size: number): void {
    this.#mappings.release(dmaAddr, size, () => this.unmapRange(dmaAddr, size));
  }

  /**
   * Zeroed memory of `size` bytes aligned to `align`, mapped for the device; `release` undoes both.
   * Must leave nothing allocated when it throws.
   */
  protected abstract allocMapped(size: number, align: number): DmaAllocation;

  /**
   * Where `va` sits in the memory these ops map (host-physical, card-physical, pool address).
   * @throws MicError EINVAL for memory these ops cannot map
   */
  protected abstract addrOf(va: Memory): number;

  /** Makes `[addr, addr + len)` device-visible and returns its DMA address (default: as it is). */
  protected mapRange(addr: number, _len: number): number {
    return addr;
  }

  /** Undoes a {@link mapRange} (default: nothing to undo). */
  protected unmapRange(_dmaAddr: number, _size: number): void {}
}
