/**
 * The virtio network driver, like Linux `drivers/net/virtio_net.c` with one queue pair: a card
 * program gets a NIC ({@link VirtioNet}) that sends and receives Ethernet frames.
 *
 * Queues (virtio 1.2 §5.1.2): 0 is `receiveq1` (mpssd's vring 0, host → card), 1 is
 * `transmitq1` (mpssd's vring 1, card → host). Every frame is preceded by a `virtio_net_hdr`:
 * the legacy 10-byte form, or the 12-byte form with `num_buffers` when VIRTIO_NET_F_MRG_RXBUF
 * or VIRTIO_F_VERSION_1 was negotiated (§5.1.6). Without VERSION_1 or VIRTIO_F_ANY_LAYOUT the
 * header sits in a descriptor of its own (the legacy framing, §5.1.6.6), as mpssd's device
 * expects it.
 *
 * - Receive: with MRG_RXBUF, buffers of `mergeableBufferSize` bytes, a frame spanning
 *   `num_buffers` of them (`receive_mergeable`); otherwise buffers of header + 1518 bytes, one
 *   frame each (`receive_small`). Buffers go back to the device as soon as their frame is copied
 *   out; the queue is kept full.
 * - Transmit: a fixed set of transmit buffers; {@link VirtioNet.send} resolves once the frame is
 *   in the ring and waits (in order, bounded by its signal) while every buffer is in flight.
 * - Link status from config space with VIRTIO_NET_F_STATUS (else the link is up), read again on
 *   a config change (`link` event). The MAC from config space with VIRTIO_NET_F_MAC, else a
 *   random locally administered one (`eth_hw_addr_random`) or the one given.
 *
 * Offloads: the driver acks VIRTIO_NET_F_CSUM and uses it only when a caller asks for a
 * partial checksum ({@link NetSendOptions.csum}). It acks no segmentation offload (GSO,
 * HOST_TSO*, HOST_UFO: it never builds GSO frames) and no receive offload (GUEST_CSUM,
 * GUEST_TSO*, GUEST_ECN, GUEST_UFO: it would have to take 64 KiB frames and partial
 * checksums; the GUEST_TSO bits also require GUEST_CSUM, §5.1.3.1, which mpssd does not offer).
 * Of mpssd's offer (0x3C1) it therefore acks CSUM alone.
 *
 * The device is not trusted: used lengths are clamped by the ring; a frame shorter than the
 * header plus an Ethernet header, longer than 1518 bytes, or spread over missing or too many
 * buffers is dropped and counted (`rx_length_errors`); a header announcing GSO or a partial
 * checksum that were not negotiated is dropped and counted (`rx_frame_errors`); `num_buffers`
 * is read once.
 *
 * @see drivers/net/virtio_net.c
 * @see include/uapi/linux/virtio_net.h
 * @see virtio 1.2 §5.1
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { MicError, checkInt } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { ChunkArena } from '@mic/memory';
import {
  VIRTIO_CONFIG_S,
  VIRTIO_DEV_ANY_ID,
  VIRTIO_F,
  VIRTIO_ID,
  VIRTIO_NET_F,
  VIRTIO_NET_HDR_F,
  VIRTIO_NET_HDR_GSO,
  VIRTIO_NET_HDR_MRG_RXBUF_SIZE,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_S,
  type VirtioDevice,
  type VirtioDriver,
} from '@mic/virtio';
import { QueuePair, VirtioDriverBase, cancelled, descriptorsFor, drainUsed, safeEmit } from './common.js';

/** `ETH_HLEN`: the Ethernet header. */
export const ETH_HLEN = 14;
/**
 * Largest frame sent or received: `ETH_HLEN` + `VLAN_HLEN` + `ETH_DATA_LEN` (1518, Linux's
 * `GOOD_PACKET_LEN`), a 1514-byte frame with room for a VLAN tag.
 */
export const VIRTIO_NET_MAX_FRAME = 1518;
/** Default bytes of a mergeable receive buffer. */
export const VIRTIO_NET_MERGEABLE_BUF_SIZE = 2048;

/**
 * Frames one receive drain must bring for the next interrupt to be coalesced: with
 * VIRTIO_RING_F_EVENT_IDX the driver then asks for it only once about three quarters of the
 * posted buffers are used (`virtqueue_enable_cb_delayed`), as adaptive interrupt moderation does
 * under load; a timer of {@link VIRTIO_NET_RX_COALESCE_MS} collects what came meanwhile if
 * fewer arrive. A drain with fewer frames (a ping, sparse traffic) re-arms the interrupt for the
 * next frame.
 */
export const VIRTIO_NET_RX_COALESCE_FRAMES = 4;
/** Longest a received frame waits in coalesced mode (see {@link VIRTIO_NET_RX_COALESCE_FRAMES}). */
export const VIRTIO_NET_RX_COALESCE_MS = 1;
/** `VIRTIO_F_ANY_LAYOUT` (legacy devices: the header may share a descriptor with the frame). */
const VIRTIO_F_ANY_LAYOUT = VIRTIO_F.ANY_LAYOUT;

/** Feature bits the driver implements (virtio 1.2 §5.1.3). */
const NET_FEATURES: readonly number[] = [
  VIRTIO_NET_F.CSUM,
  VIRTIO_NET_F.MAC,
  VIRTIO_NET_F.MRG_RXBUF,
  VIRTIO_NET_F.STATUS,
];

/** Options of a {@link VirtioNetDriver}. */
export interface VirtioNetDriverOptions {
  readonly logger?: Logger;
  /**
   * The MAC to use when the device has none (VIRTIO_NET_F_MAC not negotiated): 6 bytes or
   * `aa:bb:cc:dd:ee:ff`. Default: a random locally administered unicast address per device.
   */
  readonly mac?: Uint8Array | string;
  /** Bytes of each receive buffer with VIRTIO_NET_F_MRG_RXBUF (default 2048, at least 64). */
  readonly mergeableBufferSize?: number;
  /** Receive buffers (default: as many as the receive queue holds). */
  readonly rxBuffers?: number;
  /** Transmit buffers (default: as many as the transmit queue holds). */
  readonly txBuffers?: number;
}

/** What the header of a received frame said. */
export interface NetFrameInfo {
  /** VIRTIO_NET_HDR_F_DATA_VALID: the device checked the checksums (mpssd always sets it). */
  readonly dataValid: boolean;
  /** Receive buffers the frame came in (1 without MRG_RXBUF). */
  readonly buffers: number;
}

/** Options of {@link VirtioNet.send}. */
export interface NetSendOptions {
  /** Ends the wait for a transmit buffer with `ECANCELED` (a posted frame is not taken back). */
  readonly signal?: AbortSignal;
  /**
   * Let the device finish the checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM, needs VIRTIO_NET_F_CSUM):
   * the ones' complement sum from `start` to the end of the frame goes at `start + offset`; the
   * caller puts the pseudo-header sum there (virtio 1.2 §5.1.6.2).
   */
  readonly csum?: { readonly start: number; readonly offset: number };
}

/** Options of {@link VirtioNet.frames}. */
export interface NetFramesOptions {
  /** Ends the iteration with `ECANCELED`. */
  readonly signal?: AbortSignal;
  /** Frames kept for a slow consumer before newer ones are dropped (default 256). */
  readonly highWaterMark?: number;
}

/** Counters, named after Linux's `struct rtnl_link_stats64`. */
export interface VirtioNetCounters {
  rxPackets: number;
  rxBytes: number;
  /** Frames an iterator had no room for. */
  rxDropped: number;
  /** Frames too short, too long, or with missing buffers. */
  rxLengthErrors: number;
  /** Frames whose header announced an offload that was not negotiated. */
  rxFrameErrors: number;
  txPackets: number;
  txBytes: number;
}

/** Events of a {@link VirtioNet}. */
export type VirtioNetEvents = {
  /** A frame arrived (a copy: keep it). */
  frame: [frame: Uint8Array, info: NetFrameInfo];
  /** The link went up or down (VIRTIO_NET_F_STATUS). */
  link: [up: boolean];
  /** A queue broke or the device asked for a reset: sends fail with `error`, nothing arrives. */
  broken: [error: MicError];
  /** The device was removed. */
  remove: [];
};

interface FrameSink {
  push(frame: Uint8Array): void;
  end(err: MicError | null): void;
}

/**
 * One NIC bound by {@link VirtioNetDriver} (`struct virtnet_info` with one queue pair).
 *
 * @example
 * const nic = await netDriver.waitForDevice();
 * nic.on('frame', (frame) => handle(frame));
 * await nic.send(frame);
 */
export class VirtioNet extends EventEmitter<VirtioNetEvents> {
  readonly vdev: VirtioDevice;
  /** The MAC address (6 bytes). */
  readonly mac: Uint8Array;
  /** Bytes of `virtio_net_hdr` on both queues: 10, or 12 with MRG_RXBUF or VERSION_1. */
  readonly hdrSize: 10 | 12;
  /** VIRTIO_NET_F_MRG_RXBUF was negotiated. */
  readonly mergeable: boolean;
  /** The header shares a descriptor with the frame (VERSION_1 or ANY_LAYOUT). */
  readonly anyLayout: boolean;
  /** Largest frame {@link send} takes and the receive side accepts. */
  readonly maxFrameSize = VIRTIO_NET_MAX_FRAME;
  readonly counters: VirtioNetCounters = {
    rxPackets: 0,
    rxBytes: 0,
    rxDropped: 0,
    rxLengthErrors: 0,
    rxFrameErrors: 0,
    txPackets: 0,
    txBytes: 0,
  };
  #linkUp = true;
  #q: QueuePair | null = null;
  readonly #sinks = new Set<FrameSink>();
  #broken: MicError | null = null;
  #removed = false;
  readonly #opts: VirtioNetDriverOptions;
  readonly #log: Logger;
  /** Received frames are carved from shared chunks, aligned as in their receive buffers. */
  readonly #frames = new ChunkArena();
  /** Where a transmitted frame is put behind its header before it goes into a transmit buffer. */
  #txStage = new Uint8Array(VIRTIO_NET_HDR_MRG_RXBUF_SIZE + VIRTIO_NET_MAX_FRAME);
  /** Frames received since the last drain ended. */
  #drained = 0;
  /** The coalescing timer (see {@link VIRTIO_NET_RX_COALESCE_FRAMES}), or null. */
  #coalesceTimer: ReturnType<typeof setTimeout> | null = null;

  /** @internal built by {@link VirtioNetDriver} */
  constructor(vdev: VirtioDevice, options: VirtioNetDriverOptions, log: Logger) {
    super();
    this.vdev = vdev;
    this.#opts = options;
    this.#log = log;
    this.mergeable = vdev.hasFeature(VIRTIO_NET_F.MRG_RXBUF);
    const modern = vdev.hasFeature(VIRTIO_F.VERSION_1);
    this.hdrSize = this.mergeable || modern ? VIRTIO_NET_HDR_MRG_RXBUF_SIZE : VIRTIO_NET_HDR_SIZE;
    this.anyLayout = modern || vdev.hasFeature(VIRTIO_F_ANY_LAYOUT);
    this.mac = vdev.hasFeature(VIRTIO_NET_F.MAC)
      ? vdev.readConfig(0, 6)
      : (parseMac(options.mac) ?? randomMac());
    this.#linkUp = this.#readLink();
  }

  /** The MAC as `aa:bb:cc:dd:ee:ff`. */
  get macString(): string {
    return formatMac(this.mac);
  }

  /** The link state: from config space with VIRTIO_NET_F_STATUS, else always up. */
  get linkUp(): boolean {
    return this.#linkUp;
  }

  /** Why the NIC stopped (a broken queue, a reset request), or null. */
  get broken(): MicError | null {
    return this.#broken;
  }

  /** Receive buffers posted to the device now. */
  get rxPosted(): number {
    return this.#q?.rxPosted ?? 0;
  }

  /** Transmit buffers the device holds now. */
  get txInFlight(): number {
    return this.#q?.txInFlight ?? 0;
  }

  /** @internal `init_vqs` and the buffers: receive buffers are posted by {@link start}. */
  async init(): Promise<void> {
    const vdev = this.vdev;
    const o = this.#opts;
    const slot = roundUp(this.hdrSize + VIRTIO_NET_MAX_FRAME, 64);
    const rxDescs = descriptorsFor(vdev, this.#rxParts());
    const txDescs = descriptorsFor(vdev, this.anyLayout ? 1 : 2);
    this.#q = await QueuePair.open(vdev, {
      what: 'virtio-net',
      names: ['input.0', 'output.0'],
      rxSlots: (rx) => ({
        count: Math.max(1, Math.min(o.rxBuffers ?? Math.floor(rx.num / rxDescs), rx.num)),
        size: this.mergeable ? (o.mergeableBufferSize ?? VIRTIO_NET_MERGEABLE_BUF_SIZE) : slot,
      }),
      txSlots: (tx) => ({
        count: Math.max(1, Math.min(o.txBuffers ?? Math.floor(tx.num / txDescs), tx.num)),
        size: slot,
      }),
      onRx: (s, len) => this.#onRx(s, len),
      afterRx: () => this.#afterRx(),
      // Legacy devices report wrong lengths here (virtio 1.2 §5.1.6.3): the length is not used.
      onBroken: (err) => this.#break(err),
      // No interrupt per transmitted frame: buffers are collected when the next frames go out.
      lazyTxReclaim: true,
    });
  }

  /** @internal Posts the receive buffers and notifies the device (after DRIVER_OK). */
  start(): void {
    this.#refill();
  }

  /** Descriptors of one receive buffer: the header apart from the frame in the legacy framing. */
  #rxParts(): number {
    return this.mergeable || this.anyLayout ? 1 : 2;
  }

  /** `try_fill_recv`: posts parked receive buffers while they fit, then kicks once. */
  #refill(): void {
    const q = this.#q;
    if (!q || this.#removed || this.#broken) return;
    const slab = q.rxSlab;
    const split = this.#rxParts() === 2;
    const whole = this.mergeable ? slab.slotSize : this.hdrSize + VIRTIO_NET_MAX_FRAME;
    q.refill((slot) =>
      split
        ? [
            { addr: slab.addr(slot), len: this.hdrSize },
            { addr: slab.addr(slot, this.hdrSize), len: VIRTIO_NET_MAX_FRAME },
          ]
        : [{ addr: slab.addr(slot), len: whole }],
    );
  }

  #onRx(slot: number, len: number): void {
    this.#drained++;
    this.#receive(slot, len);
  }

  /**
   * After a drain (interrupt or timer): buffers back to the device, then the next interrupt
   * for the next frame, or coalesced after a busy drain (see
   * {@link VIRTIO_NET_RX_COALESCE_FRAMES}).
   */
  #afterRx(): void {
    const busy = this.#drained >= VIRTIO_NET_RX_COALESCE_FRAMES;
    this.#drained = 0;
    if (this.#coalesceTimer !== null) {
      clearTimeout(this.#coalesceTimer);
      this.#coalesceTimer = null;
    }
    this.#refill();
    const q = this.#q;
    if (!busy || !q || !q.rx.ring.eventIdx || this.#removed || this.#broken) return;
    if (!q.rx.enableCbDelayed()) {
      // That many came in meanwhile: collect them now.
      this.#coalesceTimer = setTimeout(this.#rxTimer, 0);
    } else {
      this.#coalesceTimer = setTimeout(this.#rxTimer, VIRTIO_NET_RX_COALESCE_MS);
    }
    this.#coalesceTimer.unref?.();
  }

  /** The coalescing timer: drains as the interrupt would (`virtnet_poll`). */
  readonly #rxTimer = (): void => {
    this.#coalesceTimer = null;
    const q = this.#q;
    if (!q || this.#removed || this.#broken) return;
    const rx = q.rx;
    drainUsed(rx, (slot, len) => {
      q.parked.push(slot);
      this.#onRx(slot, len);
    });
    if (rx.broken) {
      this.#break(
        rx.ring.broken ?? new MicError('EIO', `virtio-net ${this.vdev.name}: the receive queue broke`),
      );
      return;
    }
    this.#afterRx();
  };

  #stopCoalescing(): void {
    if (this.#coalesceTimer !== null) clearTimeout(this.#coalesceTimer);
    this.#coalesceTimer = null;
  }

  /** `receive_buf`: copies a frame out (its buffers are parked, to be posted again). */
  #receive(slot: number, len: number): void {
    const slab = this.#q!.rxSlab;
    const va = slab.va;
    const at = slab.offset(slot);
    if (len < this.hdrSize + (this.mergeable ? 0 : ETH_HLEN)) {
      this.counters.rxLengthErrors++;
      return;
    }
    // Read once: the device may still change the buffer.
    const flags = va.readU8(at);
    const gsoType = va.readU8(at + 1);
    const buffers = this.mergeable ? va.readU16(at + 10) : 1;
    let frame: Uint8Array;
    if (this.mergeable) {
      const parts = this.#gather(slot, len, buffers);
      if (!parts) return;
      frame = parts;
    } else {
      if (len - this.hdrSize > VIRTIO_NET_MAX_FRAME) {
        this.counters.rxLengthErrors++;
        return;
      }
      frame = this.#frames.take(len - this.hdrSize, at + this.hdrSize);
      va.read(at + this.hdrSize, frame);
    }
    if (frame.length < ETH_HLEN || frame.length > VIRTIO_NET_MAX_FRAME) {
      this.counters.rxLengthErrors++;
      return;
    }
    if (
      (gsoType & ~VIRTIO_NET_HDR_GSO.ECN) !== VIRTIO_NET_HDR_GSO.NONE ||
      (flags & VIRTIO_NET_HDR_F.NEEDS_CSUM) !== 0
    ) {
      this.counters.rxFrameErrors++;
      return;
    }
    this.counters.rxPackets++;
    this.counters.rxBytes += frame.length;
    const info: NetFrameInfo = { dataValid: (flags & VIRTIO_NET_HDR_F.DATA_VALID) !== 0, buffers };
    safeEmit(this.#log, this, 'frame', frame, info);
    for (const sink of this.#sinks) sink.push(frame);
  }

  /**
   * `receive_mergeable`: the frame in the first buffer (after the header) and `buffers − 1` more
   * used buffers. Returns null (counted) when buffers are missing or the frame is too long.
   */
  #gather(first: number, len: number, buffers: number): Uint8Array | null {
    const q = this.#q!;
    const slab = q.rxSlab;
    if (buffers < 1 || buffers > slab.count) {
      this.counters.rxLengthErrors++;
      return null;
    }
    const pieces: [slot: number, from: number, len: number][] = [[first, this.hdrSize, len - this.hdrSize]];
    let total = len - this.hdrSize;
    for (let k = 1; k < buffers; k++) {
      const u = q.rx.getBuf();
      if (!u) {
        this.#log.debug(`virtio-net ${this.vdev.name}: ${buffers - k} of ${buffers} receive buffers missing`);
        this.counters.rxLengthErrors++;
        return null;
      }
      q.parked.push(u.token);
      pieces.push([u.token, 0, u.len]);
      total += u.len;
    }
    if (total > VIRTIO_NET_MAX_FRAME) {
      this.counters.rxLengthErrors++;
      return null;
    }
    const frame = this.#frames.take(total, slab.offset(first) + this.hdrSize);
    let off = 0;
    for (const [slot, from, n] of pieces) {
      slab.va.read(slab.offset(slot) + from, frame.subarray(off, off + n));
      off += n;
    }
    return frame;
  }

  /**
   * Sends one Ethernet frame (14 to 1518 bytes, FCS not included). Resolves once it is in the
   * transmit ring; waits, in order with other sends, while every transmit buffer is in flight.
   * Fails with `EMSGSIZE` (too long), `EINVAL` (too short, bad `csum`), `EOPNOTSUPP` (`csum`
   * without VIRTIO_NET_F_CSUM), `ENODEV` (removed), `ECANCELED`, or the error that broke the NIC.
   */
  send(frame: Uint8Array, options: NetSendOptions = {}): Promise<void> {
    if (this.#removed) return Promise.reject(this.#gone());
    if (this.#broken) return Promise.reject(this.#broken);
    if (frame.length > VIRTIO_NET_MAX_FRAME) {
      return Promise.reject(
        new MicError(
          'EMSGSIZE',
          `virtio-net ${this.vdev.name}: a frame of ${frame.length} bytes exceeds ${VIRTIO_NET_MAX_FRAME}`,
        ),
      );
    }
    if (frame.length < ETH_HLEN) {
      return Promise.reject(
        new MicError(
          'EINVAL',
          `virtio-net ${this.vdev.name}: a frame of ${frame.length} bytes has no Ethernet header`,
        ),
      );
    }
    const csum = options.csum;
    if (csum) {
      if (!this.vdev.hasFeature(VIRTIO_NET_F.CSUM)) {
        return Promise.reject(
          new MicError(
            'EOPNOTSUPP',
            `virtio-net ${this.vdev.name}: checksum offload needs VIRTIO_NET_F_CSUM`,
          ),
        );
      }
      if (
        !Number.isInteger(csum.start) ||
        !Number.isInteger(csum.offset) ||
        csum.start < 0 ||
        csum.offset < 0 ||
        csum.start + csum.offset + 2 > frame.length
      ) {
        return Promise.reject(
          new MicError(
            'EINVAL',
            `virtio-net ${this.vdev.name}: checksum at ${String(csum.start)}+${String(csum.offset)} is outside a frame of ${frame.length} bytes`,
          ),
        );
      }
    }
    const q = this.#q!;
    return q.room.run(this.anyLayout ? 1 : 2, () => this.#postTx(q, frame, csum), options.signal);
  }

  /** `start_xmit` / `xmit_skb`: header and frame into a transmit buffer, one or two descriptors. */
  #postTx(q: QueuePair, frame: Uint8Array, csum: NetSendOptions['csum']): boolean {
    const slab = q.txSlab;
    const slot = q.postTx((s) => {
      // Header and frame are put together here and written with one aligned copy (a copy into
      // shared memory at another alignment than its source's goes byte by byte).
      const need = this.hdrSize + frame.length;
      if (this.#txStage.length < need) this.#txStage = new Uint8Array(need);
      const stage = this.#txStage;
      stage[0] = csum ? VIRTIO_NET_HDR_F.NEEDS_CSUM : 0;
      stage[1] = VIRTIO_NET_HDR_GSO.NONE;
      stage[2] = stage[3] = 0; // hdr_len
      stage[4] = stage[5] = 0; // gso_size
      const start = csum?.start ?? 0;
      const offset = csum?.offset ?? 0;
      stage[6] = start & 0xff; // little-endian, as the device reads it
      stage[7] = start >>> 8;
      stage[8] = offset & 0xff;
      stage[9] = offset >>> 8;
      if (this.hdrSize === VIRTIO_NET_HDR_MRG_RXBUF_SIZE) stage[10] = stage[11] = 0; // num_buffers: 0 on transmit
      stage.set(frame, this.hdrSize);
      const va = slab.va;
      const at = slab.offset(s);
      va.write(at, stage.subarray(0, need));
      return this.anyLayout
        ? [{ addr: slab.addr(s), len: this.hdrSize + frame.length }]
        : [
            { addr: slab.addr(s), len: this.hdrSize },
            { addr: slab.addr(s, this.hdrSize), len: frame.length },
          ];
    });
    if (slot < 0) return false;
    this.counters.txPackets++;
    this.counters.txBytes += frame.length;
    return true;
  }

  /**
   * The frames that arrive from now on, as an async iterator. It ends when the device is
   * removed, throws when the NIC breaks or `signal` aborts; a consumer more than
   * `highWaterMark` frames behind loses newer frames (`rxDropped`), as a NIC drops.
   */
  frames(options: NetFramesOptions = {}): AsyncIterableIterator<Uint8Array> {
    const hwm = options.highWaterMark ?? 256;
    checkInt('virtio-net iterator high-water mark', hwm, 1, 1 << 20);
    const queue: Uint8Array[] = [];
    let waiter: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: unknown) => void } | null =
      null;
    let done = false;
    let failure: MicError | null = null;
    const { signal } = options;
    const finish = (): void => {
      done = true;
      this.#sinks.delete(sink);
      signal?.removeEventListener('abort', onAbort);
    };
    const sink: FrameSink = {
      push: (frame) => {
        if (waiter) {
          const w = waiter;
          waiter = null;
          w.resolve({ value: frame, done: false });
        } else if (queue.length < hwm) {
          queue.push(frame);
        } else {
          this.counters.rxDropped++;
        }
      },
      end: (err) => {
        failure = err;
        finish();
        const w = waiter;
        waiter = null;
        if (w) {
          if (err) w.reject(err);
          else w.resolve({ value: undefined, done: true });
        }
      },
    };
    const onAbort = (): void => sink.end(cancelled(signal!, 'virtio-net frame iteration'));
    if (signal?.aborted) sink.end(cancelled(signal, 'virtio-net frame iteration'));
    else if (this.#removed) sink.end(null);
    else if (this.#broken) sink.end(this.#broken);
    else {
      this.#sinks.add(sink);
      signal?.addEventListener('abort', onAbort, { once: true });
    }
    const it: AsyncIterableIterator<Uint8Array> = {
      next: () => {
        const f = queue.shift();
        if (f) return Promise.resolve({ value: f, done: false });
        if (failure) return Promise.reject(failure);
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => (waiter = { resolve, reject }));
      },
      return: () => {
        queue.length = 0;
        sink.end(null);
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** Same as {@link frames} with default options. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.frames();
  }

  #readLink(): boolean {
    if (!this.vdev.hasFeature(VIRTIO_NET_F.STATUS)) return true;
    return (this.vdev.readConfigU16(6) & VIRTIO_NET_S.LINK_UP) !== 0;
  }

  /** @internal `virtnet_config_changed_work`: link status, and NEEDS_RESET. */
  configChanged(): void {
    if ((this.vdev.getStatus() & VIRTIO_CONFIG_S.NEEDS_RESET) !== 0) {
      this.#break(new MicError('EIO', `virtio-net ${this.vdev.name}: the device needs a reset`));
      return;
    }
    const up = this.#readLink();
    if (up === this.#linkUp) return;
    this.#linkUp = up;
    this.#log.info(`virtio-net ${this.vdev.name}: link ${up ? 'up' : 'down'}`);
    safeEmit(this.#log, this, 'link', up);
  }

  #gone(): MicError {
    return new MicError('ENODEV', `virtio-net ${this.vdev.name} was removed`);
  }

  #break(err: MicError): void {
    if (this.#broken) return;
    this.#broken = err;
    this.#stopCoalescing();
    this.#log.error(`virtio-net ${this.vdev.name}: ${err.message}`);
    this.#q?.room.fail(err);
    for (const s of [...this.#sinks]) s.end(err);
    safeEmit(this.#log, this, 'broken', err);
  }

  /** @internal `virtnet_remove`: reset, delete the queues, free every buffer, end iterators. */
  async shutdown(): Promise<void> {
    this.#removed = true;
    this.#stopCoalescing();
    this.#q?.room.fail(this.#gone());
    try {
      await this.vdev.reset();
    } finally {
      await this.vdev.delVqs();
      this.#q?.release();
      for (const s of [...this.#sinks]) s.end(null);
      safeEmit(this.#log, this, 'remove');
    }
  }
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** A random locally administered unicast MAC (`eth_random_addr`). */
function randomMac(): Uint8Array {
  const mac = new Uint8Array(randomBytes(6));
  mac[0] = (mac[0]! & 0xfe) | 0x02;
  return mac;
}

/** `aa:bb:cc:dd:ee:ff` of 6 bytes. */
export function formatMac(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The 6 bytes of a MAC given as bytes or `aa:bb:cc:dd:ee:ff`; undefined stays undefined. */
export function parseMac(mac: Uint8Array | string | undefined): Uint8Array | undefined {
  if (mac === undefined) return undefined;
  let bytes: Uint8Array;
  if (typeof mac === 'string') {
    const parts = mac.split(':');
    if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
      throw new MicError('EINVAL', `MAC address ${JSON.stringify(mac)} is not aa:bb:cc:dd:ee:ff`);
    }
    bytes = Uint8Array.from(parts, (p) => parseInt(p, 16));
  } else {
    if (mac.length !== 6) throw new MicError('EINVAL', `MAC address has ${mac.length} bytes, not 6`);
    bytes = mac.slice();
  }
  if ((bytes[0]! & 1) !== 0)
    throw new MicError('EINVAL', `MAC address ${formatMac(bytes)} is a multicast address`);
  return bytes;
}

/**
 * The virtio-net driver (`virtio_net`, one queue pair): every network device it binds becomes a
 * {@link VirtioNet} (`add` event, {@link devices}, {@link waitForDevice}).
 *
 * Features: CSUM, MAC, MRG_RXBUF, STATUS, and ANY_LAYOUT for legacy devices. Not: GUEST_CSUM,
 * the GSO, TSO, UFO and ECN offloads, MTU, CTRL_VQ and what needs it (CTRL_RX, CTRL_VLAN,
 * GUEST_ANNOUNCE, MQ, CTRL_MAC_ADDR), SPEED_DUPLEX.
 *
 * @example
 * const net = new VirtioNetDriver();
 * await virtioBus.registerDriver(net);
 * const nic = await net.waitForDevice();
 * console.log(nic.macString, nic.linkUp);
 */
export class VirtioNetDriver extends VirtioDriverBase<VirtioNet> implements VirtioDriver {
  readonly name = 'virtio_net';
  readonly idTable = [
    { device: VIRTIO_ID.NET, vendor: VIRTIO_DEV_ANY_ID },
    { device: 0, vendor: 0 },
  ];
  readonly featureTable = NET_FEATURES;
  readonly featureTableLegacy: readonly number[] = [...NET_FEATURES, VIRTIO_F_ANY_LAYOUT];
  readonly #options: VirtioNetDriverOptions;

  constructor(options: VirtioNetDriverOptions = {}) {
    super(options.logger ?? nullLogger);
    parseMac(options.mac);
    if (options.mergeableBufferSize !== undefined) {
      checkInt('virtio-net mergeable buffer size', options.mergeableBufferSize, 64, 1 << 16);
    }
    if (options.rxBuffers !== undefined)
      checkInt('virtio-net receive buffers', options.rxBuffers, 1, 1 << 15);
    if (options.txBuffers !== undefined)
      checkInt('virtio-net transmit buffers', options.txBuffers, 1, 1 << 15);
    this.#options = options;
  }

  protected readonly configFields = [
    [VIRTIO_NET_F.MAC, 6],
    [VIRTIO_NET_F.STATUS, 8],
  ] as const;

  /** `virtnet_probe` (the base sets it up, sets DRIVER_OK, posts the receive buffers). */
  protected create(vdev: VirtioDevice): VirtioNet {
    return new VirtioNet(vdev, this.#options, this.log);
  }

  protected describe(nic: VirtioNet): string {
    return `${nic.macString}, link ${nic.linkUp ? 'up' : 'down'}`;
  }
}
