import { describe, expect, it } from '@jest/globals';
import { VIRTIO_ID } from '@mic/virtio';
import {
  NetResponder,
  type NetResponderCounters,
  VirtioNetDriver,
  inetChecksum,
  parseIpv4,
  respond,
} from '../src/index.js';
import { netDevice } from './net-device.js';
import { rig, until } from './harness.js';

const CARD_MAC = Uint8Array.of(0x02, 0x11, 0x22, 0x33, 0x44, 0x55);
const HOST_MAC = Uint8Array.of(0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee);
const CARD_IP = Uint8Array.of(172, 31, 1, 1);
const HOST_IP = Uint8Array.of(172, 31, 1, 254);

/** Sum of 16-bit big-endian words with end-around carry: 0xffff for a correct checksum. */
function onesSum(b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += i + 1 < b.length ? dv.getUint16(i) : b[i]! << 8;
  return s % 0xffff || (s === 0 ? 0 : 0xffff);
}

function counters(): NetResponderCounters {
  return { arpReplies: 0, echoReplies: 0, ignored: 0, badChecksums: 0, sendErrors: 0 };
}

function arpRequest(target: Uint8Array, op = 1): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set(HOST_MAC, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, op], 12);
  f.set(HOST_MAC, 22);
  f.set(HOST_IP, 28);
  f.set(target, 38);
  return f;
}

/** An ICMP echo request as Linux's ping sends it, optionally with IP options and padding. */
function echoRequest(
  o: { dst?: Uint8Array; payload?: number; options?: number; pad?: number } = {},
): Uint8Array {
  const ihl = 20 + (o.options ?? 0);
  const icmpLen = 8 + (o.payload ?? 56);
  const f = new Uint8Array(14 + ihl + icmpLen + (o.pad ?? 0));
  const dv = new DataView(f.buffer);
  f.set(CARD_MAC, 0);
  f.set(HOST_MAC, 6);
  dv.setUint16(12, 0x0800);
  f[14] = 0x40 | (ihl / 4);
  dv.setUint16(16, ihl + icmpLen);
  dv.setUint16(18, 0x1234);
  dv.setUint16(20, 0x4000); // DF
  f[22] = 64;
  f[23] = 1;
  f.set(HOST_IP, 26);
  f.set(o.dst ?? CARD_IP, 30);
  for (let i = 0; i < (o.options ?? 0); i++) f[34 + i] = 1; // NOP options
  const ipSum = 0xffff - onesSum(f.subarray(14, 14 + ihl));
  dv.setUint16(24, ipSum);
  const icmp = 14 + ihl;
  f[icmp] = 8;
  dv.setUint16(icmp + 4, 0x0042); // id
  dv.setUint16(icmp + 6, 7); // seq
  for (let i = 8; i < icmpLen; i++) f[icmp + i] = i & 0xff;
  dv.setUint16(icmp + 2, 0xffff - onesSum(f.subarray(icmp, icmp + icmpLen)));
  return f;
}

describe('responder: checksums and addresses', () => {
  it('computes the RFC 1071 checksum, odd lengths included', () => {
    expect(inetChecksum(Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7))).toBe(0x220d);
    expect(inetChecksum(Uint8Array.of(0xff))).toBe(0x00ff);
    expect(inetChecksum(new Uint8Array(0))).toBe(0xffff);
  });

  it('parses dotted quads and refuses anything else', () => {
    expect([...parseIpv4('172.31.1.1')]).toEqual([172, 31, 1, 1]);
    for (const bad of ['172.31.1', '1.2.3.256', '01.2.3.4', 'a.b.c.d', ''])
      expect(() => parseIpv4(bad)).toThrow();
  });
});

describe('responder: ARP', () => {
  it('answers a request for its address with its MAC', () => {
    const c = counters();
    const reply = respond(arpRequest(CARD_IP), CARD_MAC, CARD_IP, c)!;
    expect(reply.length).toBe(60);
    expect(reply.subarray(0, 6)).toEqual(HOST_MAC);
    expect(reply.subarray(6, 12)).toEqual(CARD_MAC);
    expect([...reply.subarray(12, 22)]).toEqual([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    expect(reply.subarray(22, 28)).toEqual(CARD_MAC);
    expect(reply.subarray(28, 32)).toEqual(CARD_IP);
    expect(reply.subarray(32, 38)).toEqual(HOST_MAC);
    expect(reply.subarray(38, 42)).toEqual(HOST_IP);
    expect(c.arpReplies).toBe(1);
  });

  it('ignores requests for other addresses, replies, and truncated packets', () => {
    const c = counters();
    expect(respond(arpRequest(Uint8Array.of(172, 31, 1, 2)), CARD_MAC, CARD_IP, c)).toBeNull();
    expect(respond(arpRequest(CARD_IP, 2), CARD_MAC, CARD_IP, c)).toBeNull();
    expect(respond(arpRequest(CARD_IP).subarray(0, 40), CARD_MAC, CARD_IP, c)).toBeNull();
    expect(respond(new Uint8Array(10), CARD_MAC, CARD_IP, c)).toBeNull();
    expect(c).toMatchObject({ ignored: 4, arpReplies: 0 });
  });
});

describe('responder: ICMP echo', () => {
  it('answers an echo request with an echo reply whose checksums verify', () => {
    for (const o of [
      {},
      { options: 4, pad: 0 },
      { payload: 0, pad: 18 },
      { payload: 1 },
      { payload: 1472 },
    ]) {
      const req = echoRequest(o);
      const reply = respond(req, CARD_MAC, CARD_IP)!;
      expect(reply).not.toBeNull();
      const dv = new DataView(reply.buffer);
      expect(reply.subarray(0, 6)).toEqual(HOST_MAC);
      expect(reply.subarray(6, 12)).toEqual(CARD_MAC);
      expect(dv.getUint16(12)).toBe(0x0800);
      expect(reply[14]).toBe(0x45);
      expect(onesSum(reply.subarray(14, 34))).toBe(0xffff);
      expect(reply.subarray(26, 30)).toEqual(CARD_IP);
      expect(reply.subarray(30, 34)).toEqual(HOST_IP);
      expect(reply[22]).toBe(64);
      const icmpLen = 8 + ((o as { payload?: number }).payload ?? 56);
      expect(dv.getUint16(16)).toBe(20 + icmpLen);
      const icmp = reply.subarray(34, 34 + icmpLen);
      expect(icmp[0]).toBe(0);
      expect(onesSum(icmp)).toBe(0xffff);
      const reqIcmp = req.subarray(14 + 20 + ((o as { options?: number }).options ?? 0));
      expect(icmp.subarray(4)).toEqual(reqIcmp.subarray(4, icmpLen));
      expect(reply.length).toBe(Math.max(60, 34 + icmpLen));
    }
  });

  it('drops bad checksums and ignores what is not an unfragmented echo request to it', () => {
    const c = counters();
    const badIp = echoRequest();
    badIp[24]! ^= 1;
    const badIcmp = echoRequest();
    badIcmp[60]! ^= 0x80;
    expect(respond(badIp, CARD_MAC, CARD_IP, c)).toBeNull();
    expect(respond(badIcmp, CARD_MAC, CARD_IP, c)).toBeNull();
    expect(c.badChecksums).toBe(2);
    const fragment = echoRequest();
    new DataView(fragment.buffer).setUint16(20, 0x2000); // MF
    const other = echoRequest({ dst: Uint8Array.of(172, 31, 1, 9) });
    const reply = echoRequest();
    reply[34] = 0;
    const truncated = echoRequest().subarray(0, 60);
    const udp = echoRequest();
    udp[23] = 17;
    for (const f of [fragment, other, reply, truncated, udp])
      expect(respond(f, CARD_MAC, CARD_IP, c)).toBeNull();
    expect(c).toMatchObject({ ignored: 5, echoReplies: 0 });
  });
});

describe('responder on a virtio-net NIC', () => {
  it('answers a host ARP and ping through the rings, and stops when told', async () => {
    const drv = new VirtioNetDriver({ mac: CARD_MAC });
    const r = await rig(drv, {
      deviceId: VIRTIO_ID.NET,
      features: 0x3c1n,
      config: new Uint8Array(17),
      queueSizes: [128, 128],
    });
    const nic = await drv.waitForDevice();
    const dev = netDevice(r.t, nic.hdrSize);
    const responder = new NetResponder(nic, { ipv4: '172.31.1.1' });
    responder.start();
    dev.send(arpRequest(CARD_IP));
    await until(r.t, () => dev.sent.length === 1);
    expect(dev.sent[0]!.frame.subarray(22, 28)).toEqual(CARD_MAC);
    dev.send(echoRequest());
    await until(r.t, () => dev.sent.length === 2);
    const icmp = dev.sent[1]!.frame.subarray(34, 98);
    expect(icmp[0]).toBe(0);
    expect(onesSum(icmp)).toBe(0xffff);
    expect(responder.counters).toMatchObject({ arpReplies: 1, echoReplies: 1 });
    responder.stop();
    dev.send(echoRequest());
    await until(r.t, () => nic.counters.rxPackets === 3);
    for (let i = 0; i < 5; i++) await r.t.flush();
    expect(dev.sent).toHaveLength(2);
  });
});
