/**
 * The host's DMA map ops: host memory handed to a bus device is mapped through the SMPT, so every
 * DMA address a driver gets is a card-visible address (`0x80_0000_0000 + ...`), as the kernel's
 * `mic_dma_ops`, `__mic_dma_ops` and `_mic_dma_ops` do with `mic_map_single`.
 *
 * @see drivers/misc/mic/host/mic_boot.c (`_mic_dma_ops`, `__mic_dma_ops`, `mic_dma_ops`)
 * @see drivers/misc/mic/host/mic_smpt.c (`mic_map_single`, `mic_unmap_single`)
 */
import { MicError, formatAddr } from '@mic/errors';
import type { Memory } from '@mic/memory';
import { DmaMappingCounts } from '@mic/bus-core';
import type { DmaBuffer, DmaMapOps } from '@mic/vop-bus';
import type { X100HostView } from '@mic/x100';
import { hostRam } from './host-ram.js';

interface Allocation {
  readonly buf: DmaBuffer;
  /** The host-physical address of the buffer (what the SMPT entry points at). */
  readonly hostAddr: number;
}

const isSize = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/**
 * {@link DmaMapOps} of the host over an x100 host view: `alloc` takes zeroed host RAM
 * (page-aligned from 4096 bytes up, 64-byte aligned below) and maps it through the SMPT;
 * `mapSingle` maps any view of host RAM. Every live buffer and mapping holds SMPT references
 * until it is freed or unmapped.
 *
 * @example
 * const ops = new HostDmaMapOps(platform.host);
 * const buf = ops.alloc(8192); // buf.dmaAddr is what the card maps with cardMap
 * ops.free(buf);
 */
export class HostDmaMapOps implements DmaMapOps {
  readonly #host: X100HostView;
  readonly #name: string;
  readonly #buffers = new Map<number, Allocation>();
  readonly #mappings: DmaMappingCounts;

  /**
   * @param host - the host's view of the card
   * @param name - what errors call these ops (default `mic host dma`)
   */
  constructor(host: X100HostView, name = 'mic host dma') {
    this.#host = host;
    this.#name = name;
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
   * Allocates zeroed host RAM and maps it for the card (`__get_free_pages` + `mic_map_single`).
   * @throws MicError EINVAL for a size that is not a positive integer, ENOMEM when host RAM is
   * exhausted, ENOSPC when no SMPT entry is free
   */
  alloc(size: number): DmaBuffer {
    if (!isSize(size)) {
      throw new MicError(
        'EINVAL',
        `${this.#name}: allocation size ${String(size)} is not a positive integer`,
        {
          details: { size },
        },
      );
    }
    const ram = hostRam(this.#host);
    const piece = ram.alloc(size, size >= 4096 ? 4096 : 64);
    let dmaAddr: number;
    try {
      dmaAddr = this.#host.smpt.map(piece.offset, size);
    } catch (err) {
      ram.free(piece.offset);
      throw err;
    }
    const buf: DmaBuffer = Object.freeze({ va: piece.mem, dmaAddr, size });
    this.#buffers.set(dmaAddr, { buf, hostAddr: piece.offset });
    return buf;
  }

  /**
   * Unmaps and frees a buffer from {@link alloc}.
   * @throws MicError EINVAL when it is not a live buffer of these ops
   */
  free(buf: DmaBuffer): void {
    const dmaAddr = (buf as { dmaAddr?: unknown } | null)?.dmaAddr;
    const entry = typeof dmaAddr === 'number' ? this.#buffers.get(dmaAddr) : undefined;
    if (!entry || entry.buf !== buf) {
      throw new MicError('EINVAL', `${this.#name}: buffer at ${formatAddr(dmaAddr)} is not live`, {
        details: { dmaAddr },
      });
    }
    this.#buffers.delete(entry.buf.dmaAddr);
    this.#host.smpt.unmap(entry.buf.dmaAddr, entry.buf.size);
    hostRam(this.#host).free(entry.hostAddr);
  }

  /**
   * Maps a view of host RAM for the card (`mic_map_single`) and returns its card-visible address.
   * @throws MicError EINVAL for memory that is not host RAM of this card's host, or an empty view
   */
  mapSingle(va: Memory): number {
    let hostAddr: number;
    try {
      hostAddr = this.#host.dmaAddrOf(va);
    } catch (err) {
      throw new MicError('EINVAL', `${this.#name}: memory to map is not host RAM the card can reach`, {
        cause: err,
      });
    }
    const len = va.byteLength;
    if (!isSize(len)) throw new MicError('EINVAL', `${this.#name}: cannot map an empty view`);
    const dmaAddr = this.#host.smpt.map(hostAddr, len);
    this.#mappings.add(dmaAddr, len);
    return dmaAddr;
  }

  /**
   * Undoes one {@link mapSingle} of `size` bytes at card address `dmaAddr` (`mic_unmap_single`).
   * @throws MicError EINVAL when no such mapping is live
   */
  unmapSingle(dmaAddr: number, size: number): void {
    this.#mappings.release(dmaAddr, size, () => this.#host.smpt.unmap(dmaAddr, size));
  }
}
