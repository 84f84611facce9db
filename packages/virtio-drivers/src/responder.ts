/**
 * A minimal IPv4 responder for a card NIC: answers ARP requests for one address (RFC 826) and
 * ICMP echo requests to it (RFC 792), so that a host's `ping` reaches the card over TAP or a
 * virtual switch without a network stack on the card. Everything else is ignored (counted).
 *
 * It checks what it answers: the IPv4 header checksum and the ICMP checksum (RFC 1071) must be
 * right, the packet must not be a fragment, lengths must agree with the frame. Replies carry
 * fresh checksums and are padded to the Ethernet minimum of 60 bytes.
 */
import { MicError, errorMessage } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { ETH_HLEN, type NetFrameInfo, type VirtioNet } from './net.js';

/** EtherTypes. */
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
/** `ETH_ZLEN`: the shortest Ethernet frame without FCS. */
export const ETH_ZLEN = 60;

const ARP_REQUEST = 1;
const ARP_REPLY = 2;
const ARP_LEN = 28;
const IPPROTO_ICMP = 1;
const ICMP_ECHOREPLY = 0;
const ICMP_ECHO = 8;

/** The RFC 1071 Internet checksum of `bytes` (the ones' complement of the ones' complement sum). */
export function inetChecksum(bytes: Uint8Array): number {
  let sum = 0;
  const n = bytes.length;
  for (let i = 0; i + 1 < n; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (n % 2 === 1) sum += bytes[n - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The 4 bytes of a dotted-quad IPv4 address. Throws `EINVAL` for anything else. */
export function parseIpv4(addr: string): Uint8Array {
  const parts = addr.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255)) {
    throw new MicError('EINVAL', `IPv4 address ${JSON.stringify(addr)} is not a dotted quad`);
  }
  return Uint8Array.from(parts, Number);
}

/** What a {@link NetResponder} did. */
export interface NetResponderCounters {
  arpReplies: number;
  echoReplies: number;
  /** Frames not for this responder (other addresses, protocols, fragments). */
  ignored: number;
  /** IPv4 or ICMP checksums that did not verify. */
  badChecksums: number;
  /** Replies the NIC refused (it broke or went away). */
  sendErrors: number;
}

/** Options of a {@link NetResponder}. */
export interface NetResponderOptions {
  /** The card's IPv4 address, e.g. `172.31.1.1` (mpssd's card address for mic0). */
  readonly ipv4: string;
  readonly logger?: Logger;
}

/**
 * The reply to one received frame for a NIC with `mac` at `ip`, or null when the frame is not an
 * ARP request for `ip` or a valid ICMP echo request to it. Counts what it saw into `counters`.
 */
export function respond(
  frame: Uint8Array,
  mac: Uint8Array,
  ip: Uint8Array,
  counters?: NetResponderCounters,
): Uint8Array | null {
  const ignore = (): null => {
    if (counters) counters.ignored++;
    return null;
  };
  if (frame.length < ETH_HLEN) return ignore();
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.length);
  const type = dv.getUint16(12);
  if (type === ETH_P_ARP) {
    const arp = arpReply(frame, dv, mac, ip);
    if (!arp) return ignore();
    if (counters) counters.arpReplies++;
    return arp;
  }
  if (type !== ETH_P_IP) return ignore();
  const res = echoReply(frame, dv, mac, ip);
  if (res === 'bad-checksum') {
    if (counters) counters.badChecksums++;
    return null;
  }
  if (!res) return ignore();
  if (counters) counters.echoReplies++;
  return res;
}

function arpReply(frame: Uint8Array, dv: DataView, mac: Uint8Array, ip: Uint8Array): Uint8Array | null {
  const a = ETH_HLEN;
  if (frame.length < a + ARP_LEN) return null;
  if (
    dv.getUint16(a) !== 1 || // Ethernet
    dv.getUint16(a + 2) !== ETH_P_IP ||
    frame[a + 4] !== 6 ||
    frame[a + 5] !== 4 ||
    dv.getUint16(a + 6) !== ARP_REQUEST ||
    !equal(frame.subarray(a + 24, a + 28), ip)
  ) {
    return null;
  }
  const out = new Uint8Array(ETH_ZLEN);
  const senderMac = frame.subarray(a + 8, a + 14);
  const senderIp = frame.subarray(a + 14, a + 18);
  out.set(senderMac, 0);
  out.set(mac, 6);
  const o = new DataView(out.buffer);
  o.setUint16(12, ETH_P_ARP);
  o.setUint16(a, 1);
  o.setUint16(a + 2, ETH_P_IP);
  out[a + 4] = 6;
  out[a + 5] = 4;
  o.setUint16(a + 6, ARP_REPLY);
  out.set(mac, a + 8);
  out.set(ip, a + 14);
  out.set(senderMac, a + 18);
  out.set(senderIp, a + 24);
  return out;
}

function echoReply(
  frame: Uint8Array,
  dv: DataView,
  mac: Uint8Array,
  ip: Uint8Array,
): Uint8Array | 'bad-checksum' | null {
  const h = ETH_HLEN;
  if (frame.length < h + 20) return null;
  const verIhl = frame[h]!;
  const ihl = (verIhl & 0x0f) * 4;
  const total = dv.getUint16(h + 2);
  // Version 4, a header of 20 to 60 bytes inside the packet, the packet inside the frame (the
  // frame may carry padding after it).
  if (verIhl >> 4 !== 4 || ihl < 20 || total < ihl + 8 || h + total > frame.length) return null;
  if (!equal(frame.subarray(h + 16, h + 20), ip)) return null;
  if ((dv.getUint16(h + 6) & 0x3fff) !== 0) return null; // MF or a fragment offset
  if (frame[h + 9] !== IPPROTO_ICMP) return null;
  if (inetChecksum(frame.subarray(h, h + ihl)) !== 0) return 'bad-checksum';
  const icmp = frame.subarray(h + ihl, h + total);
  if (icmp[0] !== ICMP_ECHO || icmp[1] !== 0) return null;
  if (inetChecksum(icmp) !== 0) return 'bad-checksum';
  const icmpLen = icmp.length;
  const out = new Uint8Array(Math.max(ETH_ZLEN, h + 20 + icmpLen));
  const o = new DataView(out.buffer);
  out.set(frame.subarray(6, 12), 0);
  out.set(mac, 6);
  o.setUint16(12, ETH_P_IP);
  out[h] = 0x45;
  out[h + 1] = frame[h + 1]!; // TOS
  o.setUint16(h + 2, 20 + icmpLen);
  o.setUint16(h + 4, dv.getUint16(h + 4)); // identification
  o.setUint16(h + 6, 0);
  out[h + 8] = 64; // TTL
  out[h + 9] = IPPROTO_ICMP;
  out.set(ip, h + 12);
  out.set(frame.subarray(h + 12, h + 16), h + 16);
  o.setUint16(h + 10, inetChecksum(out.subarray(h, h + 20)));
  const r = h + 20;
  out.set(icmp, r);
  out[r] = ICMP_ECHOREPLY;
  o.setUint16(r + 2, 0);
  o.setUint16(r + 2, inetChecksum(out.subarray(r, r + icmpLen)));
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Answers ARP and ICMP echo for `ipv4` on `nic` while started.
 *
 * @example
 * const responder = new NetResponder(nic, { ipv4: '172.31.1.1' });
 * responder.start(); // `ping 172.31.1.1` on the host now gets answers
 */
export class NetResponder {
  readonly nic: VirtioNet;
  readonly ipv4: string;
  readonly counters: NetResponderCounters = {
    arpReplies: 0,
    echoReplies: 0,
    ignored: 0,
    badChecksums: 0,
    sendErrors: 0,
  };
  readonly #ip: Uint8Array;
  readonly #log: Logger;
  #started = false;

  constructor(nic: VirtioNet, options: NetResponderOptions) {
    this.nic = nic;
    this.ipv4 = options.ipv4;
    this.#ip = parseIpv4(options.ipv4);
    this.#log = options.logger ?? nullLogger;
  }

  /** Starts answering. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.nic.on('frame', this.#onFrame);
  }

  /** Stops answering. */
  stop(): void {
    if (!this.#started) return;
    this.#started = false;
    this.nic.off('frame', this.#onFrame);
  }

  readonly #onFrame = (frame: Uint8Array, _info: NetFrameInfo): void => {
    const reply = respond(frame, this.nic.mac, this.#ip, this.counters);
    if (!reply) return;
    this.nic.send(reply).catch((err: unknown) => {
      this.counters.sendErrors++;
      this.#log.warn(`responder ${this.ipv4}: reply not sent`, { error: errorMessage(err) });
    });
  };
}
