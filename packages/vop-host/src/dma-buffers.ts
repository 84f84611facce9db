/**
 * Host buffers the card's DMA engine reaches, for zero-copy `copyDesc` (see
 * {@link VopVirtioHandle.allocDmaBuffer}): memory from the device's `dmaOps.alloc` (host RAM
 * mapped for the card, as the bounce buffers are), handed to a backend as a plain `Uint8Array`.
 * `copyDesc` looks every iov entry up here: one that lies in such a buffer is moved by the
 * engine straight between card memory and it (no bounce copy); any other `Uint8Array` takes the
 * bounce or memcpy path as before.
 *
 * The kernel has nothing like it (its `copy_to_user` needs the bounce buffer because user pages
 * are not DMA-mapped); this is the host analogue of a backend using `dma_alloc_coherent` memory.
 */
import type { DmaBuffer, DmaMapOps } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import { asBufferMemory } from '@mic/memory';

/** One live DMA buffer: its bytes, where they start in their ArrayBuffer, and copies using it. */
export interface VopDmaRegion {
  readonly buf: DmaBuffer;
  readonly bytes: Uint8Array;
  /** `bytes.byteOffset`. */
  readonly start: number;
  /** `bytes.byteOffset + bytes.length`. */
  readonly end: number;
  /** Copies in flight that use it (a DMA of the engine may be writing it). */
  busy: number;
  /** Dropped from its pool while busy: freed when the last copy ends. */
  dead: boolean;
}

/** The DMA buffers of one handle. */
export class VopDmaPool {
  readonly #ops: DmaMapOps;
  /** Live regions by the array buffer they are in (host RAM is often one SharedArrayBuffer). */
  readonly #regions = new Map<ArrayBufferLike, VopDmaRegion[]>();
  readonly #byBytes = new Map<Uint8Array, VopDmaRegion>();
  #last: VopDmaRegion | null = null;

  constructor(ops: DmaMapOps) {
    this.#ops = ops;
  }

  /** Live buffers. */
  get size(): number {
    return this.#byBytes.size;
  }

  /**
   * Allocates `size` zeroed bytes of DMA memory (64-byte aligned, page aligned from 4 KiB).
   * @throws MicError EINVAL when `size` is not a positive safe integer, ENOMEM when host DMA
   *   memory runs out, EOPNOTSUPP when the device's DMA memory has no byte view
   */
  alloc(size: number): Uint8Array {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new MicError('EINVAL', `allocDmaBuffer size ${String(size)} is not a positive integer`, {
        details: { size: String(size) },
      });
    }
    const buf = this.#ops.alloc(size);
    let bytes: Uint8Array;
    try {
      bytes = asBufferMemory(buf.va, 'allocDmaBuffer').bytes(0, size);
    } catch (err) {
      this.#ops.free(buf);
      throw new MicError('EOPNOTSUPP', 'the device DMA memory has no byte view', { cause: err });
    }
    const region: VopDmaRegion = {
      buf,
      bytes,
      start: bytes.byteOffset,
      end: bytes.byteOffset + bytes.length,
      busy: 0,
      dead: false,
    };
    let list = this.#regions.get(bytes.buffer);
    if (list === undefined) this.#regions.set(bytes.buffer, (list = []));
    list.push(region);
    this.#byBytes.set(bytes, region);
    return bytes;
  }

  /**
   * Frees a buffer from {@link alloc} (the very array it returned).
   * @throws MicError EINVAL when `bytes` is not a live buffer of this pool, EBUSY while a copy
   *   uses it
   */
  free(bytes: Uint8Array): void {
    const region = bytes instanceof Uint8Array ? this.#byBytes.get(bytes) : undefined;
    if (region === undefined) {
      throw new MicError('EINVAL', 'freeDmaBuffer buf is not a live buffer from allocDmaBuffer');
    }
    if (region.busy > 0) {
      throw new MicError('EBUSY', 'freeDmaBuffer buf is in use by a copy', {
        details: { busy: region.busy },
      });
    }
    this.#drop(region);
    this.#ops.free(region.buf);
  }

  /** Frees every buffer; one a copy still uses is freed when that copy ends ({@link unpin}). */
  clear(): void {
    for (const region of [...this.#byBytes.values()]) {
      this.#drop(region);
      if (region.busy === 0) this.#ops.free(region.buf);
      else region.dead = true;
    }
  }

  /** A copy starts using `region`: it cannot be freed until {@link unpin}. */
  pin(region: VopDmaRegion): void {
    region.busy++;
  }

  /** A copy using `region` ended (its DMA completed or failed). */
  unpin(region: VopDmaRegion): void {
    if (--region.busy === 0 && region.dead) {
      region.dead = false;
      this.#ops.free(region.buf);
    }
  }

  #drop(region: VopDmaRegion): void {
    this.#byBytes.delete(region.bytes);
    const list = this.#regions.get(region.bytes.buffer)!;
    list.splice(list.indexOf(region), 1);
    if (list.length === 0) this.#regions.delete(region.bytes.buffer);
    if (this.#last === region) this.#last = null;
  }

  /** The live region `u` lies in entirely, or null (any other memory). */
  find(u: Uint8Array): VopDmaRegion | null {
    if (this.#byBytes.size === 0) return null;
    const at = u.byteOffset;
    const end = at + u.length;
    const last = this.#last;
    if (last !== null && last.bytes.buffer === u.buffer && at >= last.start && end <= last.end) return last;
    const list = this.#regions.get(u.buffer);
    if (list === undefined) return null;
    for (const r of list) {
      if (at >= r.start && end <= r.end) {
        this.#last = r;
        return r;
      }
    }
    return null;
  }
}
