// The TAP link, as root only: the test makes its own network namespace, the backend creates the
// TAP and moves it there (host 172.31.1.254/24 as mpssd), and the Linux kernel's own `ping` in the
// namespace reaches a card double that answers ARP and ICMP echo through the virtio-net backend.
// Nothing leaves the namespace; the namespace and the TAP are removed whatever happens.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isMicError } from '@mic/errors';
import { VIRTIO_NET_F } from '@mic/virtio';
import { NET_RECEIVEQ, NET_TRANSMITQ, NetBackend, TapLink, micTapAddresses } from '../src/index.js';
import { type Rig, rig } from './driver-double.js';
import { ip4, respond } from './frames.js';
import { ensureTool, isRoot } from './tools.js';

const run = promisify(execFile);
const NS = `mic-vb-${process.pid}`;
const IFNAME = `mict${process.pid % 100000}`;
const CARD_MAC = Uint8Array.of(0x02, 0x4d, 0x49, 0x43, 0, 1);

let skip: string | null = null;
beforeAll(() => {
  if (!isRoot) {
    skip = 'not root: TAP devices and network namespaces need CAP_NET_ADMIN';
    return;
  }
  skip = ensureTool('ping', 'iputils-ping');
  if (!skip) execFileSync('ip', ['netns', 'add', NS]);
}, 600_000);

afterAll(() => {
  if (isRoot && existsSync(`/run/netns/${NS}`)) execFileSync('ip', ['netns', 'del', NS]);
});

describe('NetBackend on a TAP device (root)', () => {
  it('answers the kernel ping of a network namespace through the card double', async () => {
    if (skip) {
      console.warn(`skipped: ${skip}`);
      return;
    }
    const addrs = micTapAddresses(0);
    const nic = await NetBackend.open({
      link: { kind: 'tap', name: IFNAME, cardId: 0, netns: NS },
      mac: CARD_MAC,
    });
    let r: Rig | null = null;
    try {
      r = await rig(nic, [VIRTIO_NET_F.MAC, VIRTIO_NET_F.CSUM, VIRTIO_NET_F.GUEST_CSUM]);
      const card = r;
      const { stdout: shown } = await run('ip', ['-n', NS, 'addr', 'show', 'dev', IFNAME]);
      expect(shown).toContain(`inet ${addrs.host}/24`);
      expect(existsSync(`/sys/class/net/${IFNAME}`)).toBe(false); // it lives in the namespace only
      // The card double: keeps receive buffers posted, answers ARP and ICMP echo for 172.31.1.1.
      let replies = 0;
      const post = (): void => {
        void card.driver.post(NET_RECEIVEQ, [], [1526]).then(async (u) => {
          post();
          const frame = u.written[0]!.subarray(10, u.len);
          const reply = respond(frame, CARD_MAC, ip4(addrs.card));
          if (reply) {
            replies++;
            await card.driver.post(NET_TRANSMITQ, [new Uint8Array(10), reply], []);
          }
        });
      };
      for (let i = 0; i < 16; i++) post();
      const { stdout } = await run(
        'ip',
        ['netns', 'exec', NS, 'ping', '-c', '3', '-i', '0.2', '-W', '10', addrs.card],
        {
          timeout: 60_000,
        },
      );
      expect(stdout).toMatch(/3 packets transmitted, 3 received/);
      expect(replies).toBeGreaterThanOrEqual(4); // an ARP reply and three echo replies
      expect(nic.link.stats().received).toBeGreaterThanOrEqual(4);
      // A second TAP of the same name in that namespace is refused with one clear error.
      const again = await TapLink.open({ name: IFNAME, netns: NS }).then(
        () => 'resolved',
        (err: unknown) => (isMicError(err) ? err.code : 'other'),
      );
      expect(again).toBe('EEXIST');
    } finally {
      if (r) await r.stop();
      else await nic.close();
    }
    // Closing the backend deleted the TAP.
    await expect(run('ip', ['-n', NS, 'link', 'show', 'dev', IFNAME])).rejects.toThrow();
  });
});
