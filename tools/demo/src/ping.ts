/**
 * `ping` from a switch endpoint: an ARP request for the card's address, then ICMP echo requests
 * to the MAC that answered, each reply checked (addresses, identifier, sequence, payload and the
 * IPv4 and ICMP checksums). What the card's `NetResponder` answers, and what `ping(8)` does over
 * a TAP device.
 */
import { MicError } from '@mic/errors';
import { type SwitchPort, formatMac, parseMac } from '@mic/virtio-backends';
import { ETH_P_ARP, ETH_P_IP, inetChecksum, parseIpv4 } from '@mic/virtio-drivers';

/** Options of {@link ping}. */
export interface PingOptions {
  /** The endpoint's MAC and IPv4 address (the host side of the card's subnet). */
  readonly srcMac: string;
  readonly srcIp: string;
  /** The card's address. */
  readonly dstIp: string;
  /** Echo requests (default 3). */
  readonly count?: number;
  /** ICMP payload bytes (default 56, as ping(8)). */
  readonly payload?: number;
  /** Per reply (default 5000 ms). */
  readonly timeoutMs?: number;
}

/** What {@link ping} saw. */
export interface PingResult {
  /** The MAC that answered the ARP request. */
  readonly mac: string;
  readonly arpMs: number;
  /** Round-trip times of the echo requests, in order (ms). */
  readonly rttMs: readonly number[];
}

const ICMP_ID = 0x4d49; // "MI"

function arpRequest(src: Uint8Array, srcIp: Uint8Array, dstIp: Uint8Array): Uint8Array {
  const f = new Uint8Array(60);
  const dv = new DataView(f.buffer);
  f.fill(0xff, 0, 6);
  f.set(src, 6);
  dv.setUint16(12, ETH_P_ARP);
  dv.setUint16(14, 1); // Ethernet
  dv.setUint16(16, ETH_P_IP);
  f[18] = 6;
  f[19] = 4;
  dv.setUint16(20, 1); // request
  f.set(src, 22);
  f.set(srcIp, 28);
  f.set(dstIp, 38);
  return f;
}

function echoRequest(
  src: Uint8Array,
  dst: Uint8Array,
  srcIp: Uint8Array,
  dstIp: Uint8Array,
  seq: number,
  data: Uint8Array,
): Uint8Array {
  const ipLen = 20 + 8 + data.length;
  const f = new Uint8Array(Math.max(60, 14 + ipLen));
  const dv = new DataView(f.buffer);
  f.set(dst, 0);
  f.set(src, 6);
  dv.setUint16(12, ETH_P_IP);
  f[14] = 0x45;
  dv.setUint16(16, ipLen);
  dv.setUint16(18, seq);
  dv.setUint16(20, 0x4000); // DF
  f[22] = 64;
  f[23] = 1; // ICMP
  f.set(srcIp, 26);
  f.set(dstIp, 30);
  dv.setUint16(24, inetChecksum(f.subarray(14, 34)));
  f[34] = 8; // echo request
  dv.setUint16(38, ICMP_ID);
  dv.setUint16(40, seq);
  f.set(data, 42);
  dv.setUint16(36, inetChecksum(f.subarray(34, 14 + ipLen)));
  return f;
}

const same = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Whether `f` is the echo reply to request `seq` carrying `data`, with valid checksums. */
function isReply(
  f: Uint8Array,
  me: Uint8Array,
  myIp: Uint8Array,
  peerIp: Uint8Array,
  seq: number,
  data: Uint8Array,
) {
  if (f.length < 42 || !same(f.subarray(0, 6), me)) return false;
  const dv = new DataView(f.buffer, f.byteOffset, f.length);
  if (dv.getUint16(12) !== ETH_P_IP || f[14] !== 0x45 || f[23] !== 1) return false;
  const ipLen = dv.getUint16(16);
  if (ipLen !== 28 + data.length || 14 + ipLen > f.length) return false;
  if (!same(f.subarray(26, 30), peerIp) || !same(f.subarray(30, 34), myIp)) return false;
  if (inetChecksum(f.subarray(14, 34)) !== 0 || inetChecksum(f.subarray(34, 14 + ipLen)) !== 0) return false;
  return (
    f[34] === 0 &&
    dv.getUint16(38) === ICMP_ID &&
    dv.getUint16(40) === seq &&
    same(f.subarray(42, 42 + data.length), data)
  );
}

/** Where {@link ping} sends from: a switch endpoint, or anything that sends and receives frames alike. */
export type PingPort = Pick<SwitchPort, 'send' | 'receive'>;

/**
 * Pings `dstIp` from `port`: ARP, then `count` echo requests one after another.
 * @throws MicError ETIMEDOUT when the ARP reply or an echo reply does not come
 */
export async function ping(port: PingPort, options: PingOptions): Promise<PingResult> {
  const me = parseMac(options.srcMac);
  const myIp = parseIpv4(options.srcIp);
  const peerIp = parseIpv4(options.dstIp);
  const timeoutMs = options.timeoutMs ?? 5000;
  const count = options.count ?? 3;
  const wait = async (
    what: string,
    match: (f: Uint8Array) => boolean,
    send: () => void,
  ): Promise<Uint8Array> => {
    const signal = AbortSignal.timeout(timeoutMs);
    const got = port.receive(match, signal);
    send();
    try {
      return await got;
    } catch (err) {
      throw new MicError('ETIMEDOUT', `ping ${options.dstIp}: no ${what} within ${timeoutMs} ms`, {
        cause: err,
      });
    }
  };
  let t0 = performance.now();
  const arp = await wait(
    'ARP reply',
    (f) =>
      f.length >= 42 &&
      same(f.subarray(0, 6), me) &&
      new DataView(f.buffer, f.byteOffset).getUint16(12) === ETH_P_ARP &&
      new DataView(f.buffer, f.byteOffset).getUint16(20) === 2 &&
      same(f.subarray(28, 32), peerIp) &&
      same(f.subarray(38, 42), myIp),
    () => port.send(arpRequest(me, myIp, peerIp)),
  );
  const arpMs = performance.now() - t0;
  const peer = arp.slice(22, 28);
  const rttMs: number[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const data = Uint8Array.from({ length: options.payload ?? 56 }, (_, i) => (i + seq) & 0xff);
    t0 = performance.now();
    await wait(
      `echo reply ${seq}`,
      (f) => isReply(f, me, myIp, peerIp, seq, data),
      () => port.send(echoRequest(me, peer, myIp, peerIp, seq, data)),
    );
    rttMs.push(performance.now() - t0);
  }
  return { mac: formatMac(peer), arpMs, rttMs };
}
