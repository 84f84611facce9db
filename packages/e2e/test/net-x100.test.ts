// virtio-net end to end on both x100 platforms: the card program of @mic/demo (the stock
// virtio-net driver of @mic/virtio-drivers with its ARP/ICMP responder for 172.31.1.1) and the
// host's NetBackend served over VOP by @mic/demo's rig. Frames between the card and a switch
// endpoint arrive intact both ways; a pcap written by the backend is read back by `tcpdump -r`
// (installed with apt-get when missing, as root); the Linux kernel's own `ping` reaches the card
// over a TAP device inside a network namespace the test makes and removes (root only); a peer
// speaking QEMU's `-netdev stream` protocol on a Unix socket pings the card and gets its frames.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CARD_DEFAULT_IPV4,
  type CardDeviceSummary,
  ETH_P_BURST,
  HOST_PORT,
  type PingPort,
  ping,
  serveCard,
} from '@mic/demo';
import { MicError } from '@mic/errors';
import { StreamFramer, encodeStreamFrame, micTapAddresses, parseMac } from '@mic/virtio-backends';
import {
  PLATFORMS,
  bootCard,
  cleanup,
  ensureTool,
  isRoot,
  pattern,
  sha256,
  tmp,
  track,
  until,
} from './x100-rig.js';

const run = promisify(execFile);

/** A frame of `size` bytes from `src` to `dst` (EtherType ETH_P_BURST: the responder ignores it). */
function frame(dst: Uint8Array, src: Uint8Array, size: number, seed: number): Uint8Array {
  const f = pattern(size, seed);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = ETH_P_BURST >> 8;
  f[13] = ETH_P_BURST & 0xff;
  return f;
}

const SIZES = [60, 61, 128, 777, 1000, 1513, 1514];

describe.each(PLATFORMS)('virtio-net over VOP on the %s platform', (platform) => {
  it('frames between the card and a switch endpoint arrive intact, in order, both ways; the endpoint pings the card', async () => {
    const rig = await bootCard(platform);
    const devices = track(await serveCard(rig.control, { net: {} }));
    const nic = devices.net!;
    await nic.waitDriverOk();
    const card = await rig.call<CardDeviceSummary>('waitDevices', ['net']);
    const cardMac = parseMac(card.net!.mac);
    const portMac = parseMac(HOST_PORT.mac);
    const port = nic.backend.switch!.port('host');
    // The endpoint's MAC is learnt by the switch from its first frame: ping first.
    const pinged = await ping(port, {
      srcMac: HOST_PORT.mac,
      srcIp: HOST_PORT.ipv4,
      dstIp: CARD_DEFAULT_IPV4,
      count: 2,
    });
    expect(pinged.mac).toBe(card.net!.mac);
    expect(pinged.rttMs).toHaveLength(2);
    // Card -> endpoint.
    const got: Uint8Array[] = [];
    port.setReceiver((f) => got.push(f));
    const out = SIZES.flatMap((n, i) => [frame(portMac, cardMac, n, i), frame(portMac, cardMac, n, 100 + i)]);
    expect(await rig.call('netSend', out)).toBe(out.length);
    await until(() => got.length >= out.length, 'the card frames at the endpoint');
    expect(got.map(sha256)).toEqual(out.map(sha256));
    // Endpoint -> card (unicast and broadcast).
    await rig.call('netCapture', true);
    const inbound = [
      ...SIZES.map((n, i) => frame(cardMac, portMac, n, 200 + i)),
      frame(new Uint8Array(6).fill(0xff), portMac, 300, 7),
    ];
    for (const f of inbound) port.send(f);
    const captured = await rig.call<Uint8Array[]>('netTake', inbound.length);
    expect(captured.map(sha256)).toEqual(inbound.map(sha256));
    expect(nic.backend.stats()).toMatchObject({ txDropped: 0, rxQueueFull: 0, rxTooBig: 0 });
  });

  it('a QEMU-stream peer on a Unix socket (4-byte big-endian lengths) pings the card and receives its frames', async () => {
    const rig = await bootCard(platform);
    const path = join(tmp(), 'n0.sock');
    const devices = track(await serveCard(rig.control, { net: { link: { kind: 'qemu-stream', path } } }));
    await devices.net!.waitDriverOk();
    const card = await rig.call<CardDeviceSummary>('waitDevices', ['net']);
    // The peer connects, as QEMU does with `-netdev stream,server=off,addr.type=unix`.
    const s = net.connect(path);
    cleanup(() => void s.destroy());
    await new Promise((res) => s.once('connect', res));
    const waiting = new Set<{ match: (f: Uint8Array) => boolean; resolve: (f: Uint8Array) => void }>();
    const frames: Uint8Array[] = [];
    const framer = new StreamFramer((f) => {
      frames.push(f);
      for (const w of waiting) {
        if (w.match(f)) {
          waiting.delete(w);
          w.resolve(f);
        }
      }
    });
    s.on('data', (d: Buffer) => framer.push(new Uint8Array(d.buffer, d.byteOffset, d.length)));
    const peer: PingPort = {
      send: (f) => void s.write(encodeStreamFrame(f)),
      receive: (match = () => true, signal) =>
        new Promise((resolve, reject) => {
          const w = { match, resolve };
          waiting.add(w);
          signal?.addEventListener('abort', () => {
            waiting.delete(w);
            reject(new MicError('ECANCELED', 'no frame at the stream peer'));
          });
        }),
    };
    const pinged = await ping(peer, {
      srcMac: '02:00:00:00:00:fe',
      srcIp: '172.31.1.254',
      dstIp: CARD_DEFAULT_IPV4,
      count: 3,
    });
    expect(pinged.mac).toBe(card.net!.mac);
    expect(pinged.rttMs).toHaveLength(3);
    const peerMac = parseMac('02:00:00:00:00:fe');
    const cardMac = parseMac(card.net!.mac);
    const before = frames.length;
    const out = SIZES.map((n, i) => frame(peerMac, cardMac, n, 50 + i));
    await rig.call('netSend', out);
    await until(() => frames.length >= before + out.length, 'the card frames at the peer');
    expect(frames.slice(before).map(sha256)).toEqual(out.map(sha256));
    await rig.call('netCapture', true);
    const inbound = frame(cardMac, peerMac, 1514, 9);
    s.write(encodeStreamFrame(inbound));
    expect((await rig.call<Uint8Array[]>('netTake', 1)).map(sha256)).toEqual([sha256(inbound)]);
  });
});

describe('virtio-net pcap on the worker platform', () => {
  let skip: string | null = null;
  beforeAll(() => {
    skip = ensureTool('tcpdump', 'tcpdump');
  }, 600_000);

  it('the capture of both directions is read back by tcpdump -r: ARP, the echo requests and replies, the card frames', async () => {
    if (skip) {
      console.warn(`skipped: ${skip}`);
      return;
    }
    const rig = await bootCard('worker');
    const pcapPath = join(tmp(), 'mic0.pcap');
    const devices = track(await serveCard(rig.control, { net: { pcapPath } }));
    await devices.net!.waitDriverOk();
    const card = await rig.call<CardDeviceSummary>('waitDevices', ['net']);
    const port = devices.net!.backend.switch!.port('host');
    await ping(port, { srcMac: HOST_PORT.mac, srcIp: HOST_PORT.ipv4, dstIp: CARD_DEFAULT_IPV4, count: 2 });
    const got: Uint8Array[] = [];
    port.setReceiver((f) => got.push(f));
    await rig.call('netSend', [frame(parseMac(HOST_PORT.mac), parseMac(card.net!.mac), 1514, 1)]);
    await until(() => got.length >= 1, 'the card frame at the endpoint');
    await devices.stop(); // closes the pcap file
    const { stdout } = await run('tcpdump', ['-nn', '-e', '-r', pcapPath], { timeout: 60_000 });
    const lines = stdout.split('\n').filter((l) => /^\d/.test(l)); // not the hex dump of the unknown EtherType
    expect(lines).toHaveLength(7); // ARP request and reply, 2 x (echo request, reply), 1 card frame
    expect(lines[0]).toMatch(/ethertype ARP .*Request who-has 172\.31\.1\.1 tell 172\.31\.1\.254/);
    expect(lines[1]).toMatch(new RegExp(`ethertype ARP .*Reply 172\\.31\\.1\\.1 is-at ${card.net!.mac}`));
    expect(lines.filter((l) => /ICMP echo request/.test(l))).toHaveLength(2);
    expect(lines.filter((l) => /ICMP echo reply/.test(l))).toHaveLength(2);
    expect(lines[6]).toMatch(/ethertype Unknown \(0x88b5\).*length 1514/);
  });
});

const NS = `mic-e2e-${process.pid}`;
const IFNAME = `mice${process.pid % 100000}`;

describe.each(PLATFORMS)('virtio-net on a TAP device on the %s platform (root)', (platform) => {
  let skip: string | null = null;
  beforeAll(() => {
    if (!isRoot) {
      skip = 'not root: TAP devices and network namespaces need CAP_NET_ADMIN';
      return;
    }
    skip = ensureTool('ping', 'iputils-ping');
    if (!skip) execFileSync('ip', ['netns', 'add', `${NS}-${platform}`]);
  }, 600_000);
  afterAll(() => {
    if (isRoot && existsSync(`/run/netns/${NS}-${platform}`))
      execFileSync('ip', ['netns', 'del', `${NS}-${platform}`]);
  });

  it("the Linux kernel's ping in a network namespace reaches the card (ARP and ICMP echo over TAP and VOP)", async () => {
    if (skip) {
      console.warn(`skipped: ${skip}`);
      return;
    }
    const netns = `${NS}-${platform}`;
    const addrs = micTapAddresses(0);
    const rig = await bootCard(platform);
    const devices = track(
      await serveCard(rig.control, { net: { link: { kind: 'tap', name: IFNAME, cardId: 0, netns } } }),
    );
    await devices.net!.waitDriverOk();
    await rig.call('waitDevices', ['net']);
    const { stdout: shown } = await run('ip', ['-n', netns, 'addr', 'show', 'dev', IFNAME]);
    expect(shown).toContain(`inet ${addrs.host}/24`);
    const { stdout } = await run(
      'ip',
      ['netns', 'exec', netns, 'ping', '-c', '3', '-i', '0.2', '-W', '10', addrs.card],
      {
        timeout: 60_000,
      },
    );
    expect(stdout).toMatch(/3 packets transmitted, 3 received/);
    const info = await rig.call<{ responder: { arpReplies: number; echoReplies: number } }>('netInfo');
    expect(info.responder.arpReplies).toBeGreaterThanOrEqual(1);
    expect(info.responder.echoReplies).toBe(3);
    await devices.stop(); // closing the backend deletes the TAP
    await expect(run('ip', ['-n', netns, 'link', 'show', 'dev', IFNAME])).rejects.toThrow();
  });
});
