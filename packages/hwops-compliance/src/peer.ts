/**
 * The other end of a host–card link, as the VOP and SCIF suites see it. The suites exercise one
 * side's ops directly (in the test's thread); everything they need from the other side goes through
 * a {@link LinkPeer}, whose methods are asynchronous so the other side may live in another thread
 * (the `worker` platform) behind messages. {@link linkPeer} builds one from the other side's ops
 * when they are in the same thread (mocks, the `inProcess` platform).
 */
import type { Memory } from '@mic/memory';
import type { ScifHwDev } from '@mic/scif-bus';
import type { DmaMapOps, IrqHandler, MicIrq, VopDevice } from '@mic/vop-bus';

/** A doorbell the other side listens on, from {@link LinkPeer.listen}. */
export interface PeerDoorbell {
  /** The other side's doorbell number: what the side under test passes to `sendIntr`. */
  readonly db: number;
  /** Interrupts received on it so far (delivery is asynchronous: the count grows over time). */
  received(): Promise<number>;
  /** Stops listening (the other side's `freeIrq`). */
  close(): Promise<void>;
}

/** Memory of the other side that the side under test can reach, from {@link LinkPeer.alloc}. */
export interface PeerBuffer {
  /** The address the side under test passes to `remap` to reach these bytes. */
  readonly dmaAddr: number;
  /** The other side's own view of the same bytes. */
  readonly view: Memory;
  /** Gives the memory back. */
  free(): Promise<void>;
}

/**
 * The other end of the link. This is the contract a platform implements to run the VOP and SCIF
 * suites; each method says what the other side's driver would do.
 */
export interface LinkPeer {
  /**
   * Rings doorbell `db` of the side under test, exactly as the other side's `sendIntr(db)` does.
   * Resolves once it is rung, not once it is delivered.
   */
  ring(db: number): Promise<void>;
  /**
   * Takes a doorbell on the other side (its `nextDb`), installs a handler that acknowledges
   * (its `ackInterrupt`) and counts interrupts (its `requestIrq`) and returns it.
   */
  listen(): Promise<PeerDoorbell>;
  /**
   * Allocates `size` zeroed bytes of the other side's memory that the side under test can reach
   * (the other side's `dmaOps.alloc`).
   */
  alloc(size: number): Promise<PeerBuffer>;
  /**
   * The other side's view of `size` bytes at DMA address `dmaAddr` of the side under test (what the
   * other side reaches when it `remap`s an address the side under test's `dmaOps` handed out).
   * Views stay valid until teardown.
   */
  view(dmaAddr: number, size: number): Promise<Memory>;
  /**
   * The shared device page as the other side sees it: the host's own page when the card is under
   * test, the card's mapping of it when the host is under test.
   */
  devicePage(): Promise<Memory>;
}

/** The ops of the other side that {@link linkPeer} uses; `VopHwOps` and `ScifHwOps` both fit. */
export interface PeerHwOps {
  nextDb(): number;
  requestIrq<D>(func: IrqHandler<D>, name: string, data: D, db: number): MicIrq;
  freeIrq<D>(cookie: MicIrq, data: D): void;
  ackInterrupt(num: number): void;
  sendIntr(db: number): void;
  remap(pa: number, len: number): Memory;
  unmap(va: Memory): void;
}

/** The other side's objects, when they live in the test's thread. */
export interface InThreadPeer {
  readonly hwOps: PeerHwOps;
  readonly dmaOps: DmaMapOps;
  /** The other side's view of the device page. */
  readonly devicePage: Memory;
}

/** A {@link LinkPeer} that also releases what it holds. */
export interface ClosableLinkPeer extends LinkPeer {
  /** Closes open doorbells, unmaps views and frees buffers still held; call it in teardown. */
  close(): Promise<void>;
}

/**
 * A {@link LinkPeer} over the other side's ops in this thread.
 *
 * @example
 * const link = new MockVopLink();
 * const peer = linkPeer({ hwOps: link.card, dmaOps: link.cardDmaOps, devicePage: link.card.getRemoteDp()! });
 */
export function linkPeer(peer: InThreadPeer): ClosableLinkPeer {
  const doorbells = new Set<PeerDoorbell>();
  const views: Memory[] = [];
  const buffers = new Set<PeerBuffer>();
  return {
    async ring(db) {
      peer.hwOps.sendIntr(db);
    },
    async listen() {
      const db = peer.hwOps.nextDb();
      const state = { count: 0 };
      const cookie = peer.hwOps.requestIrq(
        (irq) => {
          peer.hwOps.ackInterrupt(irq);
          state.count++;
        },
        'compliance peer',
        state,
        db,
      );
      const door: PeerDoorbell = {
        db,
        async received() {
          return state.count;
        },
        async close() {
          if (!doorbells.delete(door)) return;
          peer.hwOps.freeIrq(cookie, state);
        },
      };
      doorbells.add(door);
      return door;
    },
    async alloc(size) {
      const buf = peer.dmaOps.alloc(size);
      const pb: PeerBuffer = {
        dmaAddr: buf.dmaAddr,
        view: buf.va,
        async free() {
          if (!buffers.delete(pb)) return;
          peer.dmaOps.free(buf);
        },
      };
      buffers.add(pb);
      return pb;
    },
    async view(dmaAddr, size) {
      const mem = peer.hwOps.remap(dmaAddr, size);
      views.push(mem);
      return mem;
    },
    async devicePage() {
      return peer.devicePage;
    },
    async close() {
      for (const d of [...doorbells]) await d.close();
      for (const b of [...buffers]) await b.free();
      for (const v of views.splice(0)) peer.hwOps.unmap(v);
    },
  };
}

/** {@link linkPeer} for a VOP device in this thread (device page: `getDp()` or `getRemoteDp()`). */
export function vopLinkPeer(dev: VopDevice): ClosableLinkPeer {
  const page = dev.hwOps.getDp() ?? dev.hwOps.getRemoteDp();
  if (!page) throw new TypeError(`${dev.name} has no device page`);
  return linkPeer({ hwOps: dev.hwOps, dmaOps: dev.dmaOps, devicePage: page });
}

/** {@link linkPeer} for a SCIF device in this thread (device page: `dp` or `rdp`). */
export function scifLinkPeer(dev: ScifHwDev): ClosableLinkPeer {
  const page = dev.dp ?? dev.rdp;
  if (!page) throw new TypeError(`${dev.name} has no device page`);
  return linkPeer({ hwOps: dev.hwOps, dmaOps: dev.dmaOps, devicePage: page });
}
