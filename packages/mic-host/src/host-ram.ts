/**
 * Host RAM allocation, the host OS's business (what `kzalloc`, `__get_free_pages` and
 * `dma_alloc_coherent` hand the kernel's MIC driver). The x100 model gives the host its RAM and no
 * allocator; this is the one every host-side user of a host view allocates from, so the device
 * page, the DMA map ops of every device and anything else on the same host never overlap.
 *
 * A piece's `offset` is its host-physical address, which is its DMA address before the SMPT maps it
 * for the card. The first page is never handed out: 0 means "no address" in several device page
 * fields.
 *
 * @see drivers/misc/mic/host/mic_boot.c (`__mic_dma_alloc`: `__get_free_pages` + `mic_map_single`)
 */
import { MemoryPool } from '@mic/bus-core';
import type { X100HostView } from '@mic/x100';

const pools = new WeakMap<X100HostView, MemoryPool>();

/**
 * The allocator of `host`'s RAM: one per host view, made on first use.
 *
 * @example
 * const buf = hostRam(platform.host).alloc(8192, 4096); // { offset, size, mem }, zeroed
 * hostRam(platform.host).free(buf.offset);
 */
export function hostRam(host: X100HostView): MemoryPool {
  let pool = pools.get(host);
  if (!pool) {
    pool = new MemoryPool(host.ram, { name: 'host RAM' });
    pools.set(host, pool);
  }
  return pool;
}

/**
 * Gives host RAM the host just unmapped for the card back to {@link hostRam}: at once, or, when
 * a window of the running card still reached it at the unmap (`X100Iommu.cardHolds`), once the
 * card can no longer reach it (it gave the window back, or the platform stopped it), so that a
 * card cannot write into RAM handed out again.
 */
export function freeUnmapped(host: X100HostView, offset: number, size: number): void {
  const held = host.iommu.cardHolds(offset, size);
  if (held) void held.then(() => hostRam(host).free(offset));
  else hostRam(host).free(offset);
}
