/**
 * A SCIF queue pair (`struct scif_qp`): an inbound ring in local memory that the peer writes, and
 * an outbound ring that is the peer's inbound ring, mapped. Node queue pairs (64 KiB per
 * direction) and endpoint queue pairs (4 KiB by default) are the same thing.
 *
 * The part of `struct scif_qp` the peer maps lives in a 192-byte block of memory the peer can
 * reach; this port's layout of it (the kernel's is a C struct with pointers mixed in; these are the
 * fields the peer uses):
 *
 * | offset | field | written by |
 * |---|---|---|
 * | 0x00 | `magic` u64 = `SCIFEP_MAGIC` | owner |
 * | 0x08 | `inbound_q.size` u32 | owner |
 * | 0x0c | `qp_state` u32 (`SCIF_QP_ONLINE`/`OFFLINE`, peer-to-peer node QPs) | both |
 * | 0x10 | `local_buf` u64: address of the inbound ring | owner |
 * | 0x40 | `local_write` u32 (cache-line aligned): the peer's write offset into our ring | peer |
 * | 0x80 | `local_read` u32 (cache-line aligned): the peer's read offset of its ring | peer |
 *
 * | ring | buffer | `write_ptr` | `read_ptr` |
 * |---|---|---|---|
 * | inbound | local | `qp.local_write` (local) | `remote_qp.local_read` (remote) |
 * | outbound | remote | `remote_qp.local_write` (remote) | `qp.local_read` (local) |
 *
 * So each side only writes the peer's memory, and reads only its own. Every value read from the
 * peer's block (magic, size, ring address) is read once and checked before it is used.
 *
 * @see drivers/misc/mic/scif/scif_nodeqp.c `scif_setup_qp_connect`, `scif_setup_qp_accept`,
 * `scif_setup_qp_connect_response`
 */
import type { DmaBuffer } from '@mic/bus-core';
import { MicError, formatAddr } from '@mic/errors';
import { BufferMemory, type Memory } from '@mic/memory';
import { SCIFEP_MAGIC } from './constants.js';
import type { ScifMemOps } from './memops.js';
import { type RbPointer, ScifRb } from './rb.js';

/** Offsets in the shared block of a queue pair (see the module comment). */
export const SCIF_QP_OFFSETS = {
  magic: 0x00,
  inboundSize: 0x08,
  qpState: 0x0c,
  localBuf: 0x10,
  localWrite: 0x40,
  localRead: 0x80,
} as const;
/** Bytes of the shared block of a queue pair. */
export const SCIF_QP_SIZE = 0xc0;

/** Smallest and largest ring a peer may announce. */
const MIN_RING = 64;
const MAX_RING = 1 << 24;

/** Options of a queue pair. */
export interface ScifQpOptions {
  /** Write ring pointers twice (X100 card workaround; no effect on this model). */
  readonly doubleWrite?: boolean;
}

/** The peer's queue pair, read once from its block. */
interface RemoteQp {
  readonly block: Memory;
  readonly ring: Memory;
  readonly size: number;
}

/**
 * One queue pair. Build with {@link ScifQp.setupConnect} (our side first) or
 * {@link ScifQp.setupAccept} (the peer's first); {@link connectResponse} completes a
 * `setupConnect` once the peer's address is known; {@link cleanup} unmaps and frees everything.
 */
export class ScifQp {
  readonly ops: ScifMemOps;
  /** The shared block; its address is what the peer is told (`qp_offset`). */
  readonly block: DmaBuffer;
  /** The inbound ring's memory. */
  readonly ring: DmaBuffer;
  readonly inbound: ScifRb;
  outbound: ScifRb | undefined;
  #remote: RemoteQp | undefined;
  readonly #doubleWrite: boolean;
  #cleaned = false;

  private constructor(ops: ScifMemOps, size: number, options: ScifQpOptions) {
    this.ops = ops;
    this.#doubleWrite = options.doubleWrite ?? false;
    this.block = ops.alloc(SCIF_QP_SIZE);
    try {
      this.ring = ops.alloc(size);
    } catch (err) {
      ops.free(this.block);
      throw err;
    }
    const b = this.block.va;
    b.writeBigU64(SCIF_QP_OFFSETS.magic, SCIFEP_MAGIC);
    b.writeU32(SCIF_QP_OFFSETS.inboundSize, size);
    b.writeU64(SCIF_QP_OFFSETS.localBuf, this.ring.dmaAddr);
    // Until the peer's block is known the read pointer is a local scratch word (kernel: NULL).
    const scratch: RbPointer = { mem: BufferMemory.allocate(4), off: 0 };
    this.inbound = new ScifRb(this.ring.va, size, scratch, this.#local('localWrite'), this.#doubleWrite);
  }

  /** The address the peer maps our block at (`qp_offset`). */
  get qpOffset(): number {
    return this.block.dmaAddr;
  }

  /** True once the outbound ring is mapped. */
  get connected(): boolean {
    return this.outbound !== undefined;
  }

  /** The peer's `qp_state` word. */
  get remoteState(): number {
    return this.#remote?.block.loadU32(SCIF_QP_OFFSETS.qpState) ?? 0;
  }
  set remoteState(v: number) {
    this.#remote?.block.storeU32(SCIF_QP_OFFSETS.qpState, v);
  }

  /** Our own `qp_state` word. */
  get state(): number {
    return this.block.va.loadU32(SCIF_QP_OFFSETS.qpState);
  }
  set state(v: number) {
    this.block.va.storeU32(SCIF_QP_OFFSETS.qpState, v);
  }

  #local(field: 'localWrite' | 'localRead'): RbPointer {
    return { mem: this.block.va, off: SCIF_QP_OFFSETS[field] };
  }

  /**
   * `scif_setup_qp_connect`: allocates our block and a `size`-byte inbound ring, both reachable by
   * the peer. The outbound ring is unusable until {@link connectResponse}.
   * @throws MicError ENOMEM (or what the DMA ops throw) when memory runs out
   */
  static setupConnect(ops: ScifMemOps, size: number, options: ScifQpOptions = {}): ScifQp {
    return new ScifQp(ops, size, options);
  }

  /**
   * `scif_setup_qp_accept`: maps the peer's block at `phys` first (its magic checked), then
   * allocates ours; both rings are usable at once.
   * @throws MicError EIO when the peer's block is not a queue pair, EFAULT when it cannot be
   * mapped, ENOMEM when memory runs out
   */
  static setupAccept(ops: ScifMemOps, phys: number, size: number, options: ScifQpOptions = {}): ScifQp {
    const remote = ScifQp.#mapRemote(ops, phys, 'EIO');
    let qp: ScifQp;
    try {
      qp = new ScifQp(ops, size, options);
    } catch (err) {
      ScifQp.#unmapRemote(ops, remote);
      throw err;
    }
    qp.#attach(remote);
    return qp;
  }

  /**
   * The peer's block at `phys`: mapped, magic checked, its ring size and address read once,
   * checked, and the ring mapped.
   */
  static #mapRemote(ops: ScifMemOps, phys: number, badMagic: 'EIO' | 'ENODEV'): RemoteQp {
    const block = ops.remap(phys, SCIF_QP_SIZE);
    try {
      const magic = block.readBigU64(SCIF_QP_OFFSETS.magic);
      if (magic !== SCIFEP_MAGIC) {
        throw new MicError(
          badMagic,
          `scif queue pair at ${formatAddr(phys)} has magic 0x${magic.toString(16)}`,
          {
            details: { phys },
          },
        );
      }
      const size = block.readU32(SCIF_QP_OFFSETS.inboundSize);
      const buf = block.readU64(SCIF_QP_OFFSETS.localBuf);
      if (size < MIN_RING || size > MAX_RING || (size & (size - 1)) !== 0) {
        throw new MicError(badMagic, `scif queue pair at ${formatAddr(phys)} announces a ${size}-byte ring`, {
          details: { phys, size },
        });
      }
      if (!Number.isSafeInteger(buf) || buf <= 0) {
        throw new MicError(
          badMagic,
          `scif queue pair at ${formatAddr(phys)} has ring address ${formatAddr(buf)}`,
        );
      }
      return { block, ring: ops.remap(buf, size), size };
    } catch (err) {
      ops.unmap(block);
      throw err;
    }
  }

  static #unmapRemote(ops: ScifMemOps, remote: RemoteQp): void {
    ops.unmap(remote.ring);
    ops.unmap(remote.block);
  }

  /** Points both rings at the peer's block (`scif_rb_init` of both directions). */
  #attach(remote: RemoteQp): void {
    this.#remote = remote;
    const rblock = remote.block;
    // Our inbound offsets restart where the reader is; tell the peer (kernel: remote_qp->local_read).
    rblock.storeU32(SCIF_QP_OFFSETS.localRead, this.inbound.currentReadOffset);
    this.inbound.setReadPtr({ mem: rblock, off: SCIF_QP_OFFSETS.localRead });
    this.block.va.storeU32(SCIF_QP_OFFSETS.localRead, 0);
    this.outbound = new ScifRb(
      remote.ring,
      remote.size,
      this.#local('localRead'),
      { mem: rblock, off: SCIF_QP_OFFSETS.localWrite },
      this.#doubleWrite,
    );
    // The peer's ring starts empty for us: our write offset is where its reader will look.
    this.outbound.currentWriteOffset = 0;
    this.outbound.currentReadOffset = 0;
    rblock.storeU32(SCIF_QP_OFFSETS.localWrite, 0);
  }

  /**
   * `scif_setup_qp_connect_response`: maps the peer's block at `phys` (magic checked) and sets up
   * the outbound ring; the inbound ring now publishes its read offset to the peer.
   * @throws MicError ENODEV on a bad magic or ring, EFAULT when the peer's memory cannot be mapped
   */
  connectResponse(phys: number): void {
    if (this.#remote) throw new MicError('EISCONN', 'scif queue pair is already connected');
    this.#attach(ScifQp.#mapRemote(this.ops, phys, 'ENODEV'));
  }

  /**
   * `scif_cleanup_ep_qp` / `scif_cleanup_qp`: drops the peer's mappings, so nothing more is
   * written to the peer; the local rings stay readable until {@link free}.
   */
  cleanup(): void {
    const r = this.#remote;
    if (!r) return;
    this.#remote = undefined;
    this.outbound = undefined;
    ScifQp.#unmapRemote(this.ops, r);
  }

  /** Unmaps and frees everything (`scif_teardown_ep`). Idempotent. */
  free(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    this.cleanup();
    this.ops.free(this.ring);
    this.ops.free(this.block);
  }
}

/**
 * The loopback node queue pair: inbound and outbound share one ring and one pair of pointers in
 * local memory (`scif_setup_loopback_qp`).
 */
export function loopbackRings(size: number): { inbound: ScifRb; outbound: ScifRb } {
  const ring = BufferMemory.allocate(size, { shared: true });
  const ptrs = BufferMemory.allocate(SCIF_QP_SIZE, { shared: true });
  const read: RbPointer = { mem: ptrs, off: SCIF_QP_OFFSETS.localRead };
  const write: RbPointer = { mem: ptrs, off: SCIF_QP_OFFSETS.localWrite };
  return { inbound: new ScifRb(ring, size, read, write), outbound: new ScifRb(ring, size, read, write) };
}
