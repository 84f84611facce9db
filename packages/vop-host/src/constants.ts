/**
 * Constants of the host side of VOP: handshake bounds, the bounce buffer, the copy engine's
 * thresholds, and the virtio device types a device may be added with.
 *
 * @see drivers/misc/mic/vop/vop_vringh.c
 * @see drivers/misc/mic/bus/vop_bus.h `VOP_INT_DMA_BUF_SIZE`
 */

/** How long `configChange` waits for the card's `guest_ack` (100 × 100 ms in the kernel). */
export const VOP_CONFIG_CHANGE_TIMEOUT_MS = 10_000;

/** How long a hot-unplug waits for the card's `guest_ack` (15 × 1 s in the kernel). */
export const VOP_REMOVE_TIMEOUT_MS = 15_000;

/**
 * How often the handshakes above look at the card's flags. The kernel polls every 100 ms (config
 * change) and every second (remove); the bounds are the kernel's, the polling is finer so that a
 * card that answers at once is not kept waiting.
 */
export const VOP_HANDSHAKE_POLL_MS = 10;

/** How long one DMA copy may take before it fails (`dma_sync_wait`'s 5 s). */
export const VOP_DMA_TIMEOUT_MS = 5_000;

/**
 * How long the wait for a chain in flight (zero-copy DMA queued behind other chains, see the
 * README) busy-polls the engine's completion before it sleeps until the completion interrupt
 * (ns; `@mic/mic-dma`'s default is 50 µs). The chains behind it keep the engine busy, and a
 * shorter spin leaves the CPU to the engine's and the card's threads. Measured on the worker
 * platform (the `vop` bench's DMA streams, 16 in flight, 2 vCPUs, in-process A/B of alternating
 * runs): 10 µs moved 64 KiB streams 13-45 % and 1 MiB ones ~50 % faster than 50 µs (4 KiB alike;
 * 300 µs was no better than 50).
 */
export const VOP_DMA_PIPELINE_POLL_NS = 10_000;

/**
 * The largest DMA piece (`VOP_INT_DMA_BUF_SIZE`, the kernel's bounce buffer per vring); the bounce
 * buffer here is twice that, so pieces overlap (see the README).
 */
export const VOP_BOUNCE_SIZE = 65536;

/**
 * The smallest piece a DMA copy longer than it is split into (`dmaPiece`): below ~16 KiB the
 * cost of a descriptor pair and its completion outweighs what overlapping the copies saves.
 */
export const VOP_DMA_PIECE_MIN = 16384;

/**
 * Copies of fewer bytes than this go by memcpy even when a DMA channel is there: below it the
 * cost of a DMA round trip (descriptor, engine, completion) exceeds the copy. The kernel always
 * uses DMA when it has a channel; {@link VopHostOptions.dmaMinBytes} changes the threshold (0: DMA
 * whenever alignment allows, as the kernel).
 */
export const VOP_DMA_MIN_BYTES = 1024;

/**
 * How long a device reset (card-initiated, or at card stop) and a hot-unplug wait for the chains a
 * backend mapped (`VopChain.mapWritable`) to be completed before they go on: a backend's file
 * read into a mapped view may still land in card memory until then, and the card reuses its
 * buffers once it sees `host_ack`. The kernel's reset waits the same way for a copy in progress
 * (it holds `vr_mutex`); the bound is below the card's own wait for `host_ack` (10 s).
 */
export const VOP_MAPPED_DRAIN_TIMEOUT_MS = 5_000;

/** `head` value meaning "no chain in progress" (`USHRT_MAX`). */
export const VOP_NO_HEAD = 0xffff;

/**
 * Most used entries the host publishes before it decides whether to notify the card (vhost-net
 * signals every `VHOST_NET_BATCH` used entries the same way, drivers/vhost/net.c). Smaller
 * batches let the card start on the first replies while the host goes on; larger ones save
 * doorbells. Measured on the worker platform (the `vop` bench's echo, stream and sink loops,
 * 2 vCPUs): 4 left the 64-byte echo rate as it was with one notification per chain while it
 * halved the echo's doorbells and cut those of 4 KiB streams to a third or less; no cap (one
 * notification per drain) halved the echo rate, as the card idles until the host is done.
 */
export const VOP_NOTIFY_BATCH = 4;

/**
 * {@link VOP_NOTIFY_BATCH} while chains of the vring are still in flight (zero-copy DMA queued
 * behind each other, see the README): they complete in bursts, and the batch also goes on past
 * an empty avail ring (the chains in flight are work left). Measured on the worker platform (the
 * `vop` bench's DMA streams, 16 copies in flight, 2 vCPUs, in-process A/B of alternating runs):
 * 64 KiB streams gained 20-60 % over 4 with a batch ended whenever no head was left to fetch
 * (a doorbell per chain then, as the host fetches ahead), 16 lost a little at 1 MiB (8 in flight).
 */
export const VOP_NOTIFY_BATCH_PIPELINED = 8;

/**
 * The largest batch while chains are in flight: the batch is half the chains in flight, at least
 * {@link VOP_NOTIFY_BATCH_PIPELINED} and at most this (the card is told when about half of what
 * it waits for came back, as `virtqueue_enable_cb_delayed` asks for three quarters). A doorbell
 * that wakes the card's thread can cost the host's thread its CPU for a millisecond on a busy
 * 2-vCPU machine (the woken thread preempts it); measured on the worker platform (the `vop`
 * bench's 64 KiB DMA streams, 64 chains in flight, 2 vCPUs, load 8-16): a quarter of the
 * doorbells of batches of 8 were followed by such a stall, 0.3 s of a 1.5 s run.
 */
export const VOP_NOTIFY_BATCH_PIPELINED_MAX = 32;

/**
 * The virtio device types `addDevice` accepts: the ids virtio 1.2 §5 assigns (1–13, 16–42). An
 * id outside this list is refused with `EOPNOTSUPP` (the kernel takes any `type`, and type 0
 * would hide the device and every later one).
 */
export const VOP_KNOWN_VIRTIO_TYPES: ReadonlySet<number> = new Set([
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
  32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42,
]);
