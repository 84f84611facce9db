/**
 * The host's DMA map ops: host memory handed to a bus device is mapped in the host's IOMMU and
 * through the SMPT (`mic_map_single`), so every DMA address a driver gets is a card-visible
 * address (`0x80_0000_0000 + ...`) and, with the IOMMU on, the card reaches exactly the mapped
 * bytes, as the kernel's `mic_dma_ops`, `__mic_dma_ops` and `_mic_dma_ops` do.
 *
 * @see drivers/misc/mic/host/mic_boot.c (`_mic_dma_ops`, `__mic_dma_ops`, `mic_dma_ops`)
 * @see drivers/misc/mic/host/mic_smpt.c (`mic_map_single`, `mic_unmap_single`)
 */
import { type DmaAllocation, DmaMapOpsBase } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import type { Memory } from '@mic/memory';
import type { X100HostView } from '@mic/x100';
import { freeUnmapped, hostRam } from './host-ram.js';

/**
 * `DmaMapOps` of the host over an x100 host view: `alloc` takes zeroed host RAM from
 * {@link hostRam} (page-aligned from 4096 bytes up, 64-byte aligned below) and maps it for the
 * card (`X100HostView.mapSingle`: IOMMU and SMPT); `mapSingle` maps any view of host RAM. Every
 * live buffer and mapping holds its IOMMU range and SMPT references until it is freed or
 * unmapped. The bookkeeping is `DmaMapOpsBase` (`@mic/bus-core`), shared with
 * the card's and the mocks' ops.
 *
 * @example
 * const ops = new HostDmaMapOps(platform.host);
 * const buf = ops.alloc(8192); // buf.dmaAddr is what the card maps with cardMap
 * ops.free(buf);
 */
export class HostDmaMapOps extends DmaMapOpsBase {
  readonly #host: X100HostView;

  /**
   * @param host - the host's view of the card
   * @param name - what errors call these ops (default `mic host dma`)
   */
  constructor(host: X100HostView, name = 'mic host dma') {
    super(name);
    this.#host = host;
  }

  /**
   * Zeroed host RAM mapped for the card (`__get_free_pages` + `mic_map_single`).
   * @throws MicError ENOMEM when host RAM is exhausted, ENOSPC when no SMPT entry is free
   */
  protected allocMapped(size: number, align: number): DmaAllocation {
    const ram = hostRam(this.#host);
    const piece = ram.alloc(size, align);
    let dmaAddr: number;
    try {
      dmaAddr = this.#host.mapSingle(piece.offset, size);
    } catch (err) {
      ram.free(piece.offset);
      throw err;
    }
    return {
      va: piece.mem,
      dmaAddr,
      release: () => {
        this.#host.unmapSingle(dmaAddr, size);
        freeUnmapped(this.#host, piece.offset, size);
      },
    };
  }

  /** The host-physical address of a view of host RAM. @throws MicError EINVAL for other memory */
  protected addrOf(va: Memory): number {
    try {
      return this.#host.dmaAddrOf(va);
    } catch (err) {
      throw new MicError('EINVAL', `${this.name}: memory to map is not host RAM the card can reach`, {
        cause: err,
      });
    }
  }

  /**
   * `mic_map_single`: in the IOMMU, then through the SMPT.
   * @throws MicError ENOSPC when no SMPT entry or IOMMU range is free
   */
  protected override mapRange(hostAddr: number, len: number): number {
    return this.#host.mapSingle(hostAddr, len);
  }

  /** `mic_unmap_single`: returns once no DMA of the card can reach the range any more. */
  protected override unmapRange(dmaAddr: number, size: number): void {
    this.#host.unmapSingle(dmaAddr, size);
  }
}
