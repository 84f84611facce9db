// Ethernet, ARP, IPv4, UDP and ICMP frames for the net tests, and a card-side responder that
// answers ARP and ICMP echo for one IP (what the lead's e2e does with the real card driver).

export const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;

export function eth(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

export function ip4(s: string): Uint8Array {
  return Uint8Array.from(s.split('.').map(Number));
}

/** RFC 1071 checksum of `b` (folded, inverted). */
export function inetChecksum(b: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ipv4Packet(src: Uint8Array, dst: Uint8Array, proto: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  p[8] = 64;
  p[9] = proto;
  p.set(src, 12);
  p.set(dst, 16);
  dv.setUint16(10, inetChecksum(p.subarray(0, 20)));
  p.set(payload, 20);
  return p;
}

/** The pseudo-header sum of UDP/TCP (not inverted), as a stack leaves it for checksum offload. */
export function pseudoSum(src: Uint8Array, dst: Uint8Array, proto: number, length: number): number {
  let sum = 0;
  for (const b of [src, dst]) sum += ((b[0]! << 8) | b[1]!) + ((b[2]! << 8) | b[3]!);
  sum += proto + length;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** A UDP datagram in an IPv4 packet; `partial` leaves the checksum as offload does (pseudo-header sum only). */
export function udpFrame(
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  src: Uint8Array,
  dst: Uint8Array,
  data: Uint8Array,
  partial: boolean,
): Uint8Array {
  const udp = new Uint8Array(8 + data.length);
  const dv = new DataView(udp.buffer);
  dv.setUint16(0, 4000);
  dv.setUint16(2, 5000);
  dv.setUint16(4, udp.length);
  udp.set(data, 8);
  const ps = pseudoSum(src, dst, 17, udp.length);
  if (partial) dv.setUint16(6, ps);
  else {
    const c = inetChecksum(udp, ps);
    dv.setUint16(6, c === 0 ? 0xffff : c);
  }
  return eth(dstMac, srcMac, ETHERTYPE_IPV4, ipv4Packet(src, dst, 17, udp));
}

/** True when the UDP checksum of an Ethernet/IPv4/UDP frame verifies. */
export function udpChecksumOk(frame: Uint8Array): boolean {
  const ip = frame.subarray(14);
  const udp = ip.subarray(20);
  return inetChecksum(udp, pseudoSum(ip.subarray(12, 16), ip.subarray(16, 20), 17, udp.length)) === 0;
}

/**
 * A card double's brain: answers ARP requests for `ip` and ICMP echo requests to it. @returns the
 * reply frame, or null for anything else
 */
export function respond(frame: Uint8Array, mac: Uint8Array, ip: Uint8Array): Uint8Array | null {
  if (frame.length < 14) return null;
  const type = (frame[12]! << 8) | frame[13]!;
  const src = frame.subarray(6, 12);
  if (type === ETHERTYPE_ARP && frame.length >= 42) {
    const a = frame.subarray(14);
    const op = (a[6]! << 8) | a[7]!;
    if (op !== 1 || !equal(a.subarray(24, 28), ip)) return null;
    const r = new Uint8Array(28);
    r.set(a.subarray(0, 6), 0); // htype, ptype, hlen, plen
    r[7] = 2; // reply
    r.set(mac, 8);
    r.set(ip, 14);
    r.set(a.subarray(8, 14), 18);
    r.set(a.subarray(14, 18), 24);
    return eth(src, mac, ETHERTYPE_ARP, r);
  }
  if (type === ETHERTYPE_IPV4 && frame.length >= 34) {
    const p = frame.subarray(14);
    const ihl = (p[0]! & 0xf) * 4;
    if (p[9] !== 1 || !equal(p.subarray(16, 20), ip)) return null;
    const total = (p[2]! << 8) | p[3]!;
    const icmp = p.slice(ihl, total);
    if (icmp[0] !== 8) return null;
    icmp[0] = 0;
    icmp[2] = 0;
    icmp[3] = 0;
    const c = inetChecksum(icmp);
    icmp[2] = c >> 8;
    icmp[3] = c & 0xff;
    return eth(src, mac, ETHERTYPE_IPV4, ipv4Packet(ip, p.subarray(12, 16), 1, icmp));
  }
  return null;
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
