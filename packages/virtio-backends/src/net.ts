/**
 * The virtio-net backend: the host end of the card's NIC, mpssd's `virtio_net` thread (reference
 * §7.7), done properly. Frames the card transmits (its transmit queue, vring 1) go to a
 * {@link FrameLink}; frames from the link go into the card's receive buffers (vring 0), each
 * behind a `virtio_net_hdr`: the legacy 10-byte form as mpssd, the 12-byte form when VERSION_1 or
 * MRG_RXBUF was negotiated (virtio 1.2 §5.1.6).
 *
 * The link is a port of the userspace {@link VirtualSwitch} (the default: no privileges), a QEMU
 * `-netdev stream` socket, or a TAP device (root). Any of them can also write a pcap file of
 * every frame the card sent and received.
 *
 * Offloads: the device offers VIRTIO_NET_F_CSUM (the card may leave checksums partial; the
 * backend completes them, so the link always carries plain frames) and VIRTIO_NET_F_GUEST_CSUM
 * (frames to the card carry DATA_VALID, as mpssd sets it: "reliable PCIe link"; without the
 * feature the flags are 0, as the spec requires). No GSO is offered: the card never sends a frame
 * larger than its MTU, and a frame with a GSO type is dropped.
 *
 * @see virtio 1.2 §5.1 (network device)
 * @see samples/mic/mpssd/mpssd.c `virtio_net`, `tun_alloc`
 */
import { MicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { ChunkArena } from '@mic/memory';
import { MIC_VRING_ENTRIES } from '@mic/mic-common';
import {
  VIRTIO_F,
  VIRTIO_ID,
  checkQueueSize,
  VIRTIO_NET_F,
  VIRTIO_NET_HDR_F,
  VIRTIO_NET_HDR_GSO,
  VIRTIO_NET_HDR_MRG_RXBUF_SIZE,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_S,
  encodeNetConfig,
  featureBit,
  hasFeature,
} from '@mic/virtio';
import type { BackendChain, BackendTransport, VirtioDeviceDescription } from './transport.js';
import type { FrameLink } from './link.js';
import { PcapWriter } from './pcap.js';
import { QemuStreamLink, type QemuStreamOptions } from './qemu-stream.js';
import { type ServeOptions, ServiceLoop, type VirtioBackend } from './service.js';
import { ETH_HLEN, VirtualSwitch } from './switch.js';
import { TapLink, type TapOptions } from './tap.js';

/** Queue indices (virtio 1.2 §5.1.2; mpssd's "tx" vring 0 and "rx" vring 1). */
export const NET_RECEIVEQ = 0;
export const NET_TRANSMITQ = 1;
/** Largest frame the card may send (64 KiB plus the Ethernet header, mpssd's MAX_NET_PKT_SIZE less its alignment). */
export const NET_MAX_FRAME = 65536 + ETH_HLEN;
/**
 * Copies of up to this many bytes go by the CPU on a transport with a DMA engine (the device
 * description's `cpuCopyBytes`): a 1514-byte frame behind the 12-byte header. On the worker
 * platform a DMA copy of a frame costs tens of times its memcpy (the engine is a thread of its own
 * that may be asleep); the kernel's VOP would use DMA for them.
 */
export const NET_CPU_COPY_BYTES = VIRTIO_NET_HDR_MRG_RXBUF_SIZE + 1514;
/** Frames from the link waiting for receive buffers at most, by default. */
export const NET_DEFAULT_RX_QUEUE = 256;

/** Transmit completions left pending at most before the backend waits for them. */
const TX_COMPLETIONS_AWAITED = 64;

/** Where the NIC is connected. */
export type NetLinkOptions =
  | { readonly kind: 'switch'; readonly switch?: VirtualSwitch }
  | ({ readonly kind: 'tap' } & TapOptions)
  | ({ readonly kind: 'qemu-stream' } & QemuStreamOptions);

/** Options of {@link NetBackend.open}. */
export interface NetBackendOptions {
  /** The network (default: a new {@link VirtualSwitch}); a {@link FrameLink} object is used as is (and not closed). */
  readonly link?: NetLinkOptions | FrameLink;
  /** Offer VIRTIO_NET_F_MAC with this unicast MAC (`aa:bb:cc:dd:ee:ff` or 6 bytes); default none (the card picks one, as with mpssd). */
  readonly mac?: string | Uint8Array;
  /** Also write every frame the card sends and receives to this pcap file. */
  readonly pcapPath?: string;
  /** Offer VIRTIO_F_VERSION_1 (12-byte header; on VOP the device page then carries 64 feature bits). */
  readonly version1?: boolean;
  /**
   * Offer VIRTIO_NET_F_MRG_RXBUF: a frame may fill several receive buffers. On a transport that
   * opens one chain at a time (VOP) a frame must still fit one buffer.
   */
  readonly mergeableRxBuffers?: boolean;
  /**
   * Offer VIRTIO_F_ANY_LAYOUT (virtio 1.2 §2.7.4.3 for legacy devices; default true): the backend
   * reads and writes header and frame as one byte stream, whatever the descriptors, so a legacy
   * driver may put both in one descriptor (one descriptor per frame instead of two: twice the
   * frames in flight and half the descriptor walks). False offers mpssd's framing only.
   */
  readonly anyLayout?: boolean;
  /**
   * Offer VIRTIO_F_RING_EVENT_IDX (virtio 1.2 §2.7.7.2, §2.7.10; default false, as mpssd): the
   * card asks for an interrupt at a given used index (`used_event`) and the backend for a kick at
   * a given avail index (`avail_event`), so a driver that collects transmit buffers lazily is
   * interrupted once per batch (`virtqueue_enable_cb_delayed`) instead of on the next completion,
   * and `@mic/virtio-drivers`' net driver coalesces receive interrupts under load. VOP
   * (`@mic/vop-host`) implements it; the in-process adapter's tests with the driver double stall
   * with it (not yet understood), hence the default.
   */
  readonly eventIdx?: boolean;
  /** Entries of each queue (default 128). */
  readonly queueSize?: number;
  /** Frames from the link kept while the card has no receive buffer (default 256; more are dropped). */
  readonly rxQueueFrames?: number;
  /** Milliseconds since the epoch for pcap records (default `Date.now`). */
  readonly now?: () => number;
  readonly logger?: Logger;
}

/** Counters of a {@link NetBackend}. */
export interface NetBackendStats {
  /** Frames the card sent, passed to the link. */
  txFrames: number;
  txBytes: number;
  /** Frames the card sent that were dropped: malformed header, GSO, too large, checksum offsets outside the frame. */
  txDropped: number;
  /** Partial checksums completed for the card. */
  txChecksums: number;
  /** Frames delivered to the card. */
  rxFrames: number;
  rxBytes: number;
  /** Frames from the link dropped because too many waited for receive buffers. */
  rxQueueFull: number;
  /** Frames from the link larger than any receive buffer the card offered, dropped. */
  rxTooBig: number;
}

/** Parses `aa:bb:cc:dd:ee:ff` (or takes 6 bytes) and checks it is a unicast MAC. */
export function parseMac(mac: string | Uint8Array): Uint8Array {
  let bytes: Uint8Array;
  if (typeof mac === 'string') {
    if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) {
      throw new MicError('EINVAL', `MAC address ${JSON.stringify(mac)} is not six hex bytes with colons`);
    }
    bytes = Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
  } else {
    if (!(mac instanceof Uint8Array) || mac.length !== 6)
      throw new MicError('EINVAL', 'a MAC address has 6 bytes');
    bytes = mac.slice();
  }
  if (bytes[0]! & 1)
    throw new MicError('EINVAL', `MAC address ${formatMac(bytes)} is a group address, not a unicast one`);
  return bytes;
}

/** `aa:bb:cc:dd:ee:ff`. */
export function formatMac(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Ones' complement sum of `b[from..)`, folded to 16 bits (RFC 1071). */
function csum16(b: Uint8Array, from: number): number {
  let sum = 0;
  let i = from;
  for (; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < b.length) sum += b[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * Completes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the sum of `frame[start..]`, which
 * includes the pseudo-header sum the card left at `start + offset`, inverted and stored there
 * (as Linux `skb_checksum_help`). @returns false when the offsets are outside the frame
 */
export function completeChecksum(frame: Uint8Array, start: number, offset: number): boolean {
  const at = start + offset;
  if (start >= frame.length || at + 2 > frame.length) return false;
  const c = ~csum16(frame, start) & 0xffff;
  const v = c === 0 ? 0xffff : c;
  frame[at] = v >> 8;
  frame[at + 1] = v & 0xff;
  return true;
}

/**
 * The host end of a card NIC.
 *
 * @example
 * const net = await NetBackend.open({ pcapPath: '/tmp/mic0.pcap' }); // on a new switch
 * const host = net.switch!.port('host'); // send and receive frames from host code
 * const t = await VopBackendTransport.add(vop.control(0)!.open(), net.description);
 * await net.serve(t, { signal });
 */
export class NetBackend implements VirtioBackend {
  readonly description: VirtioDeviceDescription;
  /** What the NIC is connected to. */
  readonly link: FrameLink;
  /** The switch when the link is a switch port, else null. */
  readonly switch: VirtualSwitch | null;
  /** The MAC offered in the config (VIRTIO_NET_F_MAC), or null. */
  readonly mac: Uint8Array | null;
  readonly #ownsLink: boolean;
  readonly #pcap: PcapWriter | null;
  readonly #log: Logger;
  readonly #loop: ServiceLoop;
  readonly #rxLimit: number;
  readonly #rxQueue: Uint8Array[] = [];
  /** Receive chains fetched and not used yet (kept across pumps). */
  #rxChains: BackendChain[] = [];
  /**
   * The header and frame of the receive in progress, reused from frame to frame (grown to the
   * largest frame seen): the transport may hold it only until the chains complete, which happens
   * before the next frame.
   */
  #rxPacket = new Uint8Array(VIRTIO_NET_HDR_MRG_RXBUF_SIZE + 1514);
  /** Where transmitted frames are copied to. */
  readonly #frames = new ChunkArena();
  #negotiated = 0n;
  #linkUp = true;
  #transport: BackendTransport | null = null;
  #closed = false;
  readonly #stats: NetBackendStats = {
    txFrames: 0,
    txBytes: 0,
    txDropped: 0,
    txChecksums: 0,
    rxFrames: 0,
    rxBytes: 0,
    rxQueueFull: 0,
    rxTooBig: 0,
  };

  private constructor(init: {
    description: VirtioDeviceDescription;
    link: FrameLink;
    ownsLink: boolean;
    sw: VirtualSwitch | null;
    mac: Uint8Array | null;
    pcap: PcapWriter | null;
    rxLimit: number;
    log: Logger;
  }) {
    this.description = init.description;
    this.link = init.link;
    this.#ownsLink = init.ownsLink;
    this.switch = init.sw;
    this.mac = init.mac;
    this.#pcap = init.pcap;
    this.#rxLimit = init.rxLimit;
    this.#log = init.log;
    this.#loop = new ServiceLoop('virtio-net', init.log);
    this.link.setReceiver((frame) => this.#fromLink(frame));
  }

  /**
   * Makes the link (switch port, QEMU stream socket or TAP) and the pcap file, and describes the
   * device. One MicError per bad option: EINVAL (a bad MAC, queue size or limit), the link's
   * errors (EEXIST a TAP name that exists, EACCES not root, EADDRINUSE a socket path in use, ...),
   * the pcap file's (ENOENT, EISDIR, EACCES). What was made is closed again on failure.
   */
  static async open(options: NetBackendOptions = {}): Promise<NetBackend> {
    const queueSize = options.queueSize ?? MIC_VRING_ENTRIES;
    checkQueueSize(queueSize);
    const rxLimit = options.rxQueueFrames ?? NET_DEFAULT_RX_QUEUE;
    if (!Number.isSafeInteger(rxLimit) || rxLimit < 1) {
      throw new MicError('EINVAL', `rxQueueFrames ${String(rxLimit)} is not a positive integer`);
    }
    const mac = options.mac === undefined ? null : parseMac(options.mac);
    let features =
      featureBit(VIRTIO_NET_F.CSUM) | featureBit(VIRTIO_NET_F.GUEST_CSUM) | featureBit(VIRTIO_NET_F.STATUS);
    if (mac) features |= featureBit(VIRTIO_NET_F.MAC);
    if (options.version1) features |= featureBit(VIRTIO_F.VERSION_1);
    if (options.mergeableRxBuffers) features |= featureBit(VIRTIO_NET_F.MRG_RXBUF);
    if (options.anyLayout ?? true) features |= featureBit(VIRTIO_F.ANY_LAYOUT);
    if (options.eventIdx ?? false) features |= featureBit(VIRTIO_F.RING_EVENT_IDX);
    const config = encodeNetConfig({
      mac: mac ?? new Uint8Array(6),
      status: VIRTIO_NET_S.LINK_UP,
      maxVirtqueuePairs: 1,
      mtu: 0,
      speed: 0,
      duplex: 0,
    });
    const spec = options.link ?? { kind: 'switch' };
    let link: FrameLink;
    let sw: VirtualSwitch | null = null;
    let ownsLink = true;
    if ('send' in spec) {
      link = spec;
      ownsLink = false;
    } else if (spec.kind === 'switch') {
      sw = spec.switch ?? new VirtualSwitch();
      link = sw.port('card NIC');
    } else if (spec.kind === 'tap') {
      link = await TapLink.open({ ...spec, ...(options.logger ? { logger: options.logger } : {}) });
    } else if (spec.kind === 'qemu-stream') {
      link = await QemuStreamLink.open({ ...spec, ...(options.logger ? { logger: options.logger } : {}) });
    } else {
      throw new MicError(
        'EINVAL',
        `net link kind ${JSON.stringify((spec as { kind: unknown }).kind)} is not switch, tap or qemu-stream`,
      );
    }
    let pcap: PcapWriter | null = null;
    try {
      if (options.pcapPath !== undefined) {
        pcap = await PcapWriter.open(options.pcapPath, {
          ...(options.now ? { now: options.now } : {}),
          ...(options.logger ? { logger: options.logger } : {}),
        });
      }
    } catch (err) {
      if (ownsLink) await link.close();
      throw err;
    }
    return new NetBackend({
      description: Object.freeze({
        deviceType: VIRTIO_ID.NET,
        features,
        config,
        queueSizes: Object.freeze([queueSize, queueSize]),
        cpuCopyBytes: NET_CPU_COPY_BYTES,
      }),
      link,
      ownsLink,
      sw,
      mac,
      pcap,
      rxLimit,
      log: options.logger ?? nullLogger,
    });
  }

  /** A copy of the counters. */
  stats(): NetBackendStats {
    return { ...this.#stats };
  }

  /** The pcap writer, or null (its `flush()` makes the file complete so far). */
  get pcap(): PcapWriter | null {
    return this.#pcap;
  }

  /**
   * Sets the link status the card sees (VIRTIO_NET_S_LINK_UP, a config change while serving).
   */
  async setLinkUp(up: boolean): Promise<void> {
    this.#linkUp = up;
    const t = this.#transport;
    if (t === null) return;
    const config = t.config();
    config[6] = up ? VIRTIO_NET_S.LINK_UP : 0;
    config[7] = 0;
    await t.configChange(config);
  }

  /** True unless {@link setLinkUp} took the link down. */
  get linkUp(): boolean {
    return this.#linkUp;
  }

  async serve(transport: BackendTransport, options: ServeOptions = {}): Promise<void> {
    if (this.#closed) throw new MicError('EBADF', 'the net backend is closed');
    this.#transport = transport;
    try {
      await this.#loop.run(transport, (t) => this.#pump(t), options.signal);
    } finally {
      this.#transport = null;
      this.#rxChains = [];
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.link.setReceiver(null);
    if (this.#ownsLink) await this.link.close();
    await this.#pcap?.close();
  }

  /** The `virtio_net_hdr` size the driver negotiated (virtio 1.2 §5.1.6). */
  #hdrSize(): 10 | 12 {
    const f = this.#negotiated;
    return hasFeature(f, VIRTIO_F.VERSION_1) || hasFeature(f, VIRTIO_NET_F.MRG_RXBUF)
      ? VIRTIO_NET_HDR_MRG_RXBUF_SIZE
      : VIRTIO_NET_HDR_SIZE;
  }

  #fromLink(frame: Uint8Array): void {
    if (this.#closed) return;
    if (this.#rxQueue.length >= this.#rxLimit) {
      this.#stats.rxQueueFull++;
      return;
    }
    this.#rxQueue.push(frame);
    this.#loop.poke();
  }

  async #pump(t: BackendTransport): Promise<void> {
    this.#negotiated = t.negotiatedFeatures();
    await this.#transmit(t);
    await this.#receive(t);
  }

  /**
   * Card → link: every chain of the transmit queue. Each frame is copied out and the chain
   * completed at once, without waiting for the completion before taking the next chain (the
   * transport keeps completions in order); the completions are awaited together.
   */
  async #transmit(t: BackendTransport): Promise<void> {
    const hdrSize = this.#hdrSize();
    const completing: Promise<void>[] = [];
    // Chains whose completion is pending still count as open for the transport.
    const pendingMax = Math.min(TX_COMPLETIONS_AWAITED, t.maxInFlight(NET_TRANSMITQ) - 1);
    try {
      for (;;) {
        if (completing.length > 0 && completing.length >= pendingMax) {
          await Promise.all(completing);
          completing.length = 0;
        }
        const chain = await t.nextChain(NET_TRANSMITQ);
        if (chain === null) return;
        let frame: Uint8Array | null;
        try {
          frame = chain.mapReadable
            ? this.#txFrameMapped(chain, hdrSize)
            : await this.#txFrame(chain, hdrSize);
        } finally {
          const done = chain.complete();
          done.catch(() => {}); // reported by the Promise.all below
          completing.push(done);
        }
        if (frame === null) {
          this.#stats.txDropped++;
          this.#log.debug('virtio-net: dropped a frame the card sent', {
            head: chain.head,
            length: chain.readable,
          });
          continue;
        }
        this.#stats.txFrames++;
        this.#stats.txBytes += frame.length;
        this.#pcap?.write(frame);
        this.link.send(frame);
      }
    } finally {
      await Promise.all(completing);
    }
  }

  /**
   * The reused packet buffer with `virtio_net_hdr` (virtio 1.2 §5.1.6: flags, no GSO, num_buffers
   * in the 12-byte form) and `frame` after it.
   */
  #rxHeaderAndFrame(
    frame: Uint8Array,
    hdrSize: 10 | 12,
    flags: number,
    buffers: number,
    need: number,
  ): Uint8Array {
    if (this.#rxPacket.length < need) this.#rxPacket = new Uint8Array(need);
    const packet = this.#rxPacket;
    packet.fill(0, 0, hdrSize);
    packet[0] = flags;
    if (hdrSize === VIRTIO_NET_HDR_MRG_RXBUF_SIZE) {
      packet[10] = buffers & 0xff;
      packet[11] = buffers >>> 8;
    }
    packet.set(frame, hdrSize);
    return packet;
  }

  /**
   * Reads one transmitted frame through {@link BackendChain.read} and finishes its checksum;
   * null when it must be dropped.
   */
  async #txFrame(chain: BackendChain, hdrSize: 10 | 12): Promise<Uint8Array | null> {
    const len = chain.readable;
    if (len < hdrSize + ETH_HLEN || len > hdrSize + NET_MAX_FRAME) return null;
    const buf = this.#frames.take(len);
    if ((await chain.read(buf)) !== len) return null;
    return this.#txFinish(buf, hdrSize);
  }

  /**
   * As {@link #txFrame} with the chain's mapped views: one copy out of the card's buffer (the
   * link keeps the frame), no transport round trip.
   */
  #txFrameMapped(chain: BackendChain, hdrSize: 10 | 12): Uint8Array | null {
    const len = chain.readable;
    if (len < hdrSize + ETH_HLEN || len > hdrSize + NET_MAX_FRAME) return null;
    const buf = this.#frames.take(len);
    let at = 0;
    for (const v of chain.mapReadable!(len)) {
      if (at + v.length > len) return null;
      buf.set(v, at);
      at += v.length;
    }
    if (at !== len) return null;
    return this.#txFinish(buf, hdrSize);
  }

  /**
   * The frame behind the header in `buf` (the copy: read once), its partial checksum completed;
   * null for a GSO frame or a checksum that was not negotiated or lies outside the frame.
   */
  #txFinish(buf: Uint8Array, hdrSize: 10 | 12): Uint8Array | null {
    const flags = buf[0]!;
    const gsoType = buf[1]!;
    if ((gsoType & ~VIRTIO_NET_HDR_GSO.ECN) !== VIRTIO_NET_HDR_GSO.NONE) return null;
    const frame = buf.subarray(hdrSize);
    if (flags & VIRTIO_NET_HDR_F.NEEDS_CSUM) {
      if (!hasFeature(this.#negotiated, VIRTIO_NET_F.CSUM)) return null;
      // csum_start and csum_offset, little-endian as decodeNetHdr reads them.
      const start = buf[6]! | (buf[7]! << 8);
      const offset = buf[8]! | (buf[9]! << 8);
      if (!completeChecksum(frame, start, offset)) return null;
      this.#stats.txChecksums++;
    }
    return frame;
  }

  /** Link → card: queued frames into receive buffers (several when MRG_RXBUF allows). */
  async #receive(t: BackendTransport): Promise<void> {
    const hdrSize = this.#hdrSize();
    const merge = hasFeature(this.#negotiated, VIRTIO_NET_F.MRG_RXBUF);
    const maxChains = merge ? t.maxInFlight(NET_RECEIVEQ) : 1;
    const flags = hasFeature(this.#negotiated, VIRTIO_NET_F.GUEST_CSUM) ? VIRTIO_NET_HDR_F.DATA_VALID : 0;
    // Completions of mapped chains, awaited together: their bytes are in place already, and the
    // transport keeps completions in order, so the next frame need not wait for the last one's.
    const completing: Promise<void>[] = [];
    try {
      await this.#receiveFrames(t, hdrSize, maxChains, flags, completing);
    } finally {
      await Promise.all(completing);
    }
  }

  async #receiveFrames(
    t: BackendTransport,
    hdrSize: 10 | 12,
    maxChains: number,
    flags: number,
    completing: Promise<void>[],
  ): Promise<void> {
    while (this.#rxQueue.length > 0) {
      if (this.#rxChains.some((c) => c.done)) this.#rxChains = this.#rxChains.filter((c) => !c.done);
      const frame = this.#rxQueue[0]!;
      const need = hdrSize + frame.length;
      let have = 0;
      for (const c of this.#rxChains) have += c.writable;
      while (have < need && this.#rxChains.length < maxChains) {
        const c = await t.nextChain(NET_RECEIVEQ);
        if (c === null) return; // wait for the card to post buffers
        this.#rxChains.push(c);
        have += c.writable;
      }
      this.#rxQueue.shift();
      if (have < need) {
        this.#stats.rxTooBig++;
        continue;
      }
      // The fewest chains that hold the frame.
      let k = 0;
      for (let sum = 0; sum < need; k++) sum += this.#rxChains[k]!.writable;
      const used = this.#rxChains.splice(0, k);
      const only = used.length === 1 ? used[0]! : null;
      if (only?.mapWritable) {
        // One chain: header and frame straight into the card's buffer, one copy of the frame.
        const views = only.mapWritable(need);
        // Straight in when the frame has the alignment its place in the buffer has; else by way
        // of the packet buffer (a copy into shared memory at another alignment than its
        // source's goes byte by byte, several times slower than the extra aligned copy).
        if (views.length === 1 && ((views[0]!.byteOffset + hdrSize - frame.byteOffset) & 7) === 0) {
          const v = views[0]!;
          v.fill(0, 0, hdrSize);
          v[0] = flags;
          if (hdrSize === VIRTIO_NET_HDR_MRG_RXBUF_SIZE) v[10] = 1;
          v.set(frame, hdrSize);
        } else {
          const packet = this.#rxHeaderAndFrame(frame, hdrSize, flags, 1, need);
          let at = 0;
          for (const w of views) {
            w.set(packet.subarray(at, at + w.length));
            at += w.length;
          }
        }
        completing.push(only.complete());
        this.#stats.rxFrames++;
        this.#stats.rxBytes += frame.length;
        this.#pcap?.write(frame);
        continue;
      }
      const packet = this.#rxHeaderAndFrame(frame, hdrSize, flags, k, need);
      let at = 0;
      for (const c of used) {
        const n = Math.min(c.writable, need - at);
        if (c.mapWritable) {
          for (const v of c.mapWritable(n)) {
            v.set(packet.subarray(at, at + v.length));
            at += v.length;
          }
        } else {
          at += await c.write(packet.subarray(at, at + n));
        }
        await c.complete();
      }
      this.#stats.rxFrames++;
      this.#stats.rxBytes += frame.length;
      this.#pcap?.write(frame);
    }
  }
}
