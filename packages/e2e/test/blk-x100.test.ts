// virtio-blk end to end on both x100 platforms: the card program of @mic/demo (the stock
// virtio-blk driver of @mic/virtio-drivers on vop-card, in the card's worker thread on `worker`)
// and the host's BlockBackend on a real image file, served over VOP by @mic/demo's rig (vop-host
// with the X100 DMA channel). The card writes and the host checks the image bytes, the host
// writes and the card reads, FLUSH reaches fsync, the stock driver refuses what the spec forbids,
// and a hot swap while idle re-adds a new image into the freed slot. Requests the stock driver
// never sends (past the end, writes to a read-only image, malformed chains) come from a raw card
// driver (fixtures/raw-blk-os.mjs): IOERR or UNSUPP, never a byte outside the image or outside
// the card's buffers.
import { openSync, readFileSync, readSync, closeSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { type CardDeviceSummary, ServedDevice, serveCard } from '@mic/demo';
import { VIRTIO_BLK_S, VIRTIO_BLK_T, encodeBlkOutHdr } from '@mic/virtio';
import { BlockBackend, type BlockFile, openBlockFile } from '@mic/virtio-backends';
import { type RawUsed, cardMain as rawCardMain } from './fixtures/raw-blk-os.mjs';
import { PLATFORMS, bootCard, pattern, rejection, sha256, tmp, track } from './x100-rig.js';

const RAW_CARD_OS = new URL('./fixtures/raw-blk-os.mjs', import.meta.url);
const MIB = 1 << 20;

/** `len` bytes of `path` at `at`. */
function fileBytes(path: string, at: number, len: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const b = new Uint8Array(len);
    readSync(fd, b, 0, len, at);
    return b;
  } finally {
    closeSync(fd);
  }
}

const hdr = (type: number, sector: bigint): Uint8Array => encodeBlkOutHdr({ type, ioprio: 0, sector });

describe.each(PLATFORMS)('virtio-blk over VOP on the %s platform (stock card driver)', (platform) => {
  it('the card writes a pattern: the image has it (sha256); the host writes the image: the card reads it back', async () => {
    const rig = await bootCard(platform);
    const path = join(tmp(), 'disk.img');
    writeFileSync(path, new Uint8Array(8 * MIB));
    const devices = track(await serveCard(rig.control, { block: { path, serial: 'e2e-x100' } }));
    await devices.block!.waitDriverOk();
    const card = await rig.call<CardDeviceSummary>('waitDevices', ['block']);
    expect(card.block).toMatchObject({ capacity: String((8 * MIB) / 512), readOnly: false, canFlush: true });
    expect(await rig.call('blkGetId')).toBe('e2e-x100');
    // 1 MiB in one request (split into segments by the driver), and 64 KiB pieces in flight.
    const one = await rig.call<string>('blkWritePattern', 2048, MIB, 1);
    expect(sha256(fileBytes(path, 2048 * 512, MIB))).toBe(one);
    const pieces = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        rig.call<string>('blkWritePattern', 8192 + i * 128, 64 << 10, 10 + i),
      ),
    );
    pieces.forEach((s, i) => expect(sha256(fileBytes(path, (8192 + i * 128) * 512, 64 << 10))).toBe(s));
    expect(sha256(fileBytes(path, 0, 512))).toBe(sha256(new Uint8Array(512))); // untouched
    // The host writes the image file while the device is served (idle); the card reads it.
    const hostData = pattern(3 * MIB, 42);
    const fd = openSync(path, 'r+');
    writeFileSync(fd, hostData);
    closeSync(fd);
    expect(await rig.call('blkSha', 0, 3 * MIB)).toBe(sha256(hostData));
    const back = await rig.call<Uint8Array>('blkRead', 4000, 3);
    expect(sha256(back)).toBe(sha256(hostData.subarray(4000 * 512, 4003 * 512)));
    expect(devices.block!.backend.stats()).toMatchObject({ ioErrors: 0 });
  });

  it('FLUSH reaches fsync, after the writes before it; the stock driver refuses reads past the end (EINVAL) before sending', async () => {
    const rig = await bootCard(platform);
    const path = join(tmp(), 'disk.img');
    writeFileSync(path, new Uint8Array(MIB));
    const log: string[] = [];
    const openFile = async (p: string, ro: boolean): Promise<BlockFile> => {
      const f = await openBlockFile(p, ro);
      return {
        size: f.size,
        read: (b, at) => f.read(b, at),
        write: async (b, at) => {
          await f.write(b, at);
          log.push(`write ${at}`);
        },
        sync: async () => {
          await f.sync();
          log.push('fsync');
        },
        zero: (at, n, d) => f.zero(at, n, d),
        close: () => f.close(),
      };
    };
    const devices = track(await serveCard(rig.control, { block: { path, openFile } }));
    await devices.block!.waitDriverOk();
    await rig.call('waitDevices', ['block']);
    await rig.call('blkWrite', 16, pattern(4096, 3));
    expect(await rig.call('blkFlush')).toBe(true);
    expect(log).toEqual(['write 8192', 'fsync']);
    expect(devices.block!.backend.stats().flushes).toBe(1);
    const before = sha256(readFileSync(path));
    expect(await rejection(rig.call('blkRead', 2048, 1))).toBe('EINVAL');
    expect(await rejection(rig.call('blkWrite', 2047, pattern(1024, 1)))).toBe('EINVAL');
    expect(sha256(readFileSync(path))).toBe(before);
    expect(devices.block!.backend.stats().requests).toBe(2); // the write and the flush only
  });

  it('a read-only image: the stock driver refuses writes (EROFS) and reads', async () => {
    const rig = await bootCard(platform);
    const path = join(tmp(), 'ro.img');
    const image = pattern(256 << 10, 5);
    writeFileSync(path, image);
    const devices = track(await serveCard(rig.control, { block: { path, readOnly: true } }));
    await devices.block!.waitDriverOk();
    const card = await rig.call<CardDeviceSummary>('waitDevices', ['block']);
    expect(card.block!.readOnly).toBe(true);
    expect(await rejection(rig.call('blkWrite', 0, pattern(512, 1)))).toBe('EROFS');
    expect(await rig.call('blkSha', 8, 4096)).toBe(sha256(image.subarray(4096, 8192)));
    expect(sha256(readFileSync(path))).toBe(sha256(image));
  });

  it('hot swap while idle: the device removed, a new image added into the freed slot, the card reads the new one', async () => {
    const rig = await bootCard(platform);
    const dir = tmp();
    const a = join(dir, 'a.img');
    const b = join(dir, 'b.img');
    writeFileSync(a, pattern(MIB, 1));
    writeFileSync(b, pattern(2 * MIB, 2));
    const first = await ServedDevice.add(rig.control, await BlockBackend.open({ path: a }));
    track(first);
    await first.waitDriverOk();
    expect((await rig.call<CardDeviceSummary>('waitDevices', ['block'])).block!.capacity).toBe('2048');
    expect(await rig.call('blkSha', 0, 4096)).toBe(sha256(pattern(MIB, 1).subarray(0, 4096)));
    const offset = first.offset;
    await first.stop(); // hot-unplug: the card's driver unbinds
    await rig.call('waitGone', 'block');
    const second = track(await ServedDevice.add(rig.control, await BlockBackend.open({ path: b })));
    expect(second.offset).toBe(offset);
    await second.waitDriverOk();
    expect((await rig.call<CardDeviceSummary>('waitDevices', ['block'])).block!.capacity).toBe('4096');
    expect(await rig.call('blkSha', 3000, 8192)).toBe(
      sha256(pattern(2 * MIB, 2).subarray(3000 * 512, 3016 * 512)),
    );
    expect(sha256(readFileSync(a))).toBe(sha256(pattern(MIB, 1)));
  });
});

describe.each(PLATFORMS)(
  'virtio-blk over VOP on the %s platform (a raw, hostile card driver)',
  (platform) => {
    const boot = () =>
      bootCard(platform, platform === 'worker' ? { cardModule: RAW_CARD_OS } : { cardMain: rawCardMain });
    const post = (rig: Awaited<ReturnType<typeof boot>>, readable: Uint8Array[], writable: number[]) =>
      rig.call<RawUsed>('post', readable, writable);

    it('malformed requests get IOERR or UNSUPP; no byte outside the image or the card buffers changes; the device goes on', async () => {
      const rig = await boot();
      const path = join(tmp(), 'disk.img');
      const image = pattern(256 << 10, 77); // 512 sectors
      writeFileSync(path, image);
      const served = track(await ServedDevice.add(rig.control, await BlockBackend.open({ path })));
      await served.waitDriverOk();
      expect(await rig.call('info')).toEqual({ capacity: '512', readOnly: false });
      const cases: [string, Uint8Array[], number[], (u: RawUsed) => void][] = [
        [
          'short header',
          [hdr(VIRTIO_BLK_T.OUT, 0n).subarray(0, 8), pattern(512, 1)],
          [1],
          (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR),
        ],
        [
          'missing status byte',
          [hdr(VIRTIO_BLK_T.OUT, 0n), pattern(512, 1)],
          [],
          (u) => expect(u.len).toBe(0),
        ],
        [
          'writable header',
          [],
          [16, 512, 1],
          (u) => {
            expect(u.written[2]![0]).toBe(VIRTIO_BLK_S.IOERR);
            expect(u.written[1]!.every((x) => x === 0)).toBe(true);
          },
        ],
        [
          'write past the end',
          [hdr(VIRTIO_BLK_T.OUT, 512n), pattern(512, 1)],
          [1],
          (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR),
        ],
        [
          'write straddling the end',
          [hdr(VIRTIO_BLK_T.OUT, 511n), pattern(1024, 1)],
          [1],
          (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR),
        ],
        [
          'read past the end',
          [hdr(VIRTIO_BLK_T.IN, 511n)],
          [1024, 1],
          (u) => {
            expect(u.written[1]![0]).toBe(VIRTIO_BLK_S.IOERR);
            expect(u.written[0]!.every((x) => x === 0)).toBe(true);
          },
        ],
        [
          'sector 2^64 - 1',
          [hdr(VIRTIO_BLK_T.OUT, 2n ** 64n - 1n), pattern(1024, 1)],
          [1],
          (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR),
        ],
        [
          'sector 2^55 (sector * 512 = 2^64)',
          [hdr(VIRTIO_BLK_T.OUT, 2n ** 55n), pattern(512, 1)],
          [1],
          (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR),
        ],
        [
          'read at sector 2^55',
          [hdr(VIRTIO_BLK_T.IN, 2n ** 55n)],
          [512, 1],
          (u) => {
            expect(u.written[1]![0]).toBe(VIRTIO_BLK_S.IOERR);
            expect(u.written[0]!.every((x) => x === 0)).toBe(true);
          },
        ],
        [
          'unknown request type',
          [hdr(0x7fff, 0n)],
          [1],
          (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.UNSUPP),
        ],
        [
          'data not a multiple of 512',
          [hdr(VIRTIO_BLK_T.OUT, 0n), pattern(100, 1)],
          [1],
          (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR),
        ],
        [
          'GET_ID into 8 bytes',
          [hdr(VIRTIO_BLK_T.GET_ID, 0n)],
          [8, 1],
          (u) => expect(u.written[1]![0]).toBe(VIRTIO_BLK_S.IOERR),
        ],
      ];
      for (const [name, readable, writable, check] of cases) {
        const u = await post(rig, readable, writable);
        try {
          check(u);
          expect(u.guardsIntact).toBe(true);
        } catch (err) {
          throw new Error(`${name}: ${(err as Error).message}`);
        }
      }
      // All of them again at once, in flight together.
      const all = await rig.call<RawUsed[]>(
        'postAll',
        cases.map(([, readable, writable]) => ({ readable, writable })),
      );
      all.forEach((u, i) => {
        cases[i]![3](u);
        expect(u.guardsIntact).toBe(true);
      });
      expect(sha256(readFileSync(path))).toBe(sha256(image));
      expect(statSync(path).size).toBe(image.length);
      // The device goes on serving well-formed requests.
      const ok = await post(rig, [hdr(VIRTIO_BLK_T.IN, 100n)], [4096, 1]);
      expect(ok.written[1]![0]).toBe(VIRTIO_BLK_S.OK);
      expect(ok.len).toBe(4097);
      expect(sha256(ok.written[0]!)).toBe(sha256(image.subarray(100 * 512, 108 * 512)));
      expect(ok.guardsIntact).toBe(true);
    });

    it('a read-only image refuses writes with IOERR (and write-zeroes with UNSUPP) and changes nothing; reads still work', async () => {
      const rig = await boot();
      const path = join(tmp(), 'ro.img');
      const image = pattern(64 << 10, 9);
      writeFileSync(path, image);
      const served = track(
        await ServedDevice.add(rig.control, await BlockBackend.open({ path, readOnly: true })),
      );
      await served.waitDriverOk();
      expect(await rig.call('info')).toEqual({ capacity: '128', readOnly: true });
      const w = await post(rig, [hdr(VIRTIO_BLK_T.OUT, 0n), pattern(4096, 1)], [1]);
      expect(w.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR);
      const seg = new Uint8Array(16);
      new DataView(seg.buffer).setUint32(8, 4, true);
      const z = await post(rig, [hdr(VIRTIO_BLK_T.WRITE_ZEROES, 0n), seg], [1]);
      expect(z.written[0]![0]).toBe(VIRTIO_BLK_S.UNSUPP);
      const r = await post(rig, [hdr(VIRTIO_BLK_T.IN, 0n)], [4096, 1]);
      expect(r.written[1]![0]).toBe(VIRTIO_BLK_S.OK);
      expect(sha256(r.written[0]!)).toBe(sha256(image.subarray(0, 4096)));
      expect([w, z, r].every((u) => u.guardsIntact)).toBe(true);
      expect(sha256(readFileSync(path))).toBe(sha256(image));
    });
  },
);
