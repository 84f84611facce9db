// The README's example, compiled and run on in-process devices (a disk, a console that echoes,
// a NIC whose host side pings the card).
import { once } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import {
  InProcessTransport,
  VIRTIO_BLK_F,
  VIRTIO_ID,
  VirtioBus,
  encodeBlkConfig,
  features,
} from '@mic/virtio';
import { NetResponder, VirtioBlkDriver, VirtioConsoleDriver, VirtioNetDriver } from '../src/index.js';
import { blkDevice } from './blk-device.js';
import { consoleDevice } from './console-device.js';
import { netDevice } from './net-device.js';

// --- README example, start ---
/** A card program: binds the stock drivers on the card's virtio bus and uses each device. */
async function cardProgram(virtioBus: VirtioBus, signal: AbortSignal): Promise<string> {
  const blk = new VirtioBlkDriver();
  const consoles = new VirtioConsoleDriver();
  const net = new VirtioNetDriver();
  await virtioBus.registerDriver(blk);
  await virtioBus.registerDriver(consoles);
  await virtioBus.registerDriver(net);

  // Block: a sector written, flushed (when the device has a write cache) and read back.
  const disk = await blk.waitForDevice({ signal });
  const sector = new Uint8Array(512).fill(0xab);
  await disk.write(0, sector, { signal });
  await disk.flush({ signal });
  const back = await disk.read(0, 1, { signal });
  const serial = await disk.getId({ signal }).catch(() => '(no serial)');

  // Console: port 0 is a Duplex; what the card writes reaches the host, and back.
  const con = await consoles.waitForDevice({ signal });
  con.on('error', () => undefined); // the stream errors if the device breaks
  con.write(`disk ${serial}: ${disk.capacity} sectors, ${back[0] === 0xab ? 'ok' : 'bad'}\n`);
  const [line] = (await once(con, 'data', { signal })) as [Buffer];

  // Net: answer ARP and ping for the card's address (mpssd's scheme: 172.31.<id+1>.1).
  const nic = await net.waitForDevice({ signal });
  new NetResponder(nic, { ipv4: '172.31.1.1' }).start();
  return `${nic.macString} ${line.toString().trim()}`;
}
// --- README example, end ---

describe('the README example', () => {
  it('runs against a disk, an echoing console and a NIC', async () => {
    const bus = new VirtioBus();
    const disk = new InProcessTransport({
      deviceId: VIRTIO_ID.BLOCK,
      features: features(VIRTIO_BLK_F.SEG_MAX),
      config: encodeBlkConfig({ capacity: 128n, segMax: 126 }),
      queueSizes: [128],
    });
    const con = new InProcessTransport({ deviceId: VIRTIO_ID.CONSOLE, features: 0n, queueSizes: [128, 128] });
    const nic = new InProcessTransport({
      deviceId: VIRTIO_ID.NET,
      features: 0x3c1n,
      config: new Uint8Array(17),
      queueSizes: [128, 128],
    });
    const image = new Uint8Array(128 * 512);
    const running = cardProgram(bus, AbortSignal.timeout(60_000));
    await bus.registerDevice(disk.params());
    blkDevice(disk, image, { serial: 'mic0' });
    await bus.registerDevice(con.params());
    consoleDevice(con, { echo: true });
    await bus.registerDevice(nic.params());
    netDevice(nic, 10);
    const out = await running;
    expect(out).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2} disk mic0: 128 sectors, ok$/);
    expect(image[0]).toBe(0xab);
  });
});
