// The block backend on the in-process adapter against a driver double: data both ways (sha256 of
// the image), FLUSH reaching fsync, GET_ID, DISCARD / WRITE_ZEROES, read-only, several requests
// in flight, the partial last sector, and malformed requests that must never touch a byte
// outside the image.
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  VIRTIO_BLK_F,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VIRTIO_F,
  decodeBlkConfig,
  encodeBlkOutHdr,
  hasFeature,
} from '@mic/virtio';
import {
  BlockBackend,
  type BlockBackendOptions,
  type BlockFile,
  type OpenBlockFile,
  openBlockFile,
} from '../src/index.js';
import { type Rig, concat, rig, errorCode } from './driver-double.js';

const ALL_FEATURES = [
  VIRTIO_BLK_F.SEG_MAX,
  VIRTIO_BLK_F.RO,
  VIRTIO_BLK_F.FLUSH,
  VIRTIO_BLK_F.BLK_SIZE,
  VIRTIO_BLK_F.DISCARD,
  VIRTIO_BLK_F.WRITE_ZEROES,
];

/** Whether the in-process transport offers mapped views (each suite runs both ways). */
let useMapping = true;

const dirs: string[] = [];
const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'blk-'));
  dirs.push(d);
  return d;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

async function start(
  image: Uint8Array,
  options: Partial<BlockBackendOptions> = {},
): Promise<{ r: Rig; blk: BlockBackend; path: string }> {
  const path = join(tmp(), 'disk.img');
  writeFileSync(path, image);
  const blk = await BlockBackend.open({ path, ...options });
  const r = await rig(blk, ALL_FEATURES, undefined, { mapping: useMapping });
  rigs.push(r);
  return { r, blk, path };
}

/** `openBlockFile` with hooks told of each read (before it), write and fsync (after them). */
function watchedFile(hooks: {
  read?: (buf: Uint8Array, at: number) => void;
  write?: (buf: Uint8Array, at: number) => void;
  sync?: () => void;
}): OpenBlockFile {
  return async (p, ro): Promise<BlockFile> => {
    const f = await openBlockFile(p, ro);
    return {
      size: f.size,
      read: (b, at) => {
        hooks.read?.(b, at);
        return f.read(b, at);
      },
      write: async (b, at) => {
        await f.write(b, at);
        hooks.write?.(b, at);
      },
      sync: async () => {
        await f.sync();
        hooks.sync?.();
      },
      zero: (at, n, d) => f.zero(at, n, d),
      close: () => f.close(),
    };
  };
}

/**
 * `openBlockFile` counting its `kind` calls, one each (`read`/`readv` or `write`/`writev`): a
 * merged vectored call counts once.
 */
function countingFile(kind: 'read' | 'write'): { open: OpenBlockFile; calls: () => number } {
  let calls = 0;
  const open: OpenBlockFile = async (p, ro) => {
    const f = await openBlockFile(p, ro);
    const counted = { ...f, size: f.size, close: () => f.close() };
    if (kind === 'read') {
      counted.read = (b, at) => (calls++, f.read(b, at));
      counted.readv = (bs, at) => (calls++, f.readv!(bs, at));
    } else {
      counted.write = (b, at) => (calls++, f.write(b, at));
      counted.writev = (bs, at) => (calls++, f.writev!(bs, at));
    }
    return counted;
  };
  return { open, calls: () => calls };
}

const hdr = (type: number, sector: bigint): Uint8Array => encodeBlkOutHdr({ type, ioprio: 0, sector });

/** Splits `data` into `parts` descriptors (multi-segment requests). */
function segments(data: Uint8Array, parts: number): Uint8Array[] {
  const size = Math.ceil(data.length / parts);
  const out: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += size) out.push(data.subarray(at, at + size));
  return out;
}

async function write(r: Rig, sector: bigint, data: Uint8Array, parts = 1): Promise<number> {
  const u = await r.driver.post(0, [hdr(VIRTIO_BLK_T.OUT, sector), ...segments(data, parts)], [1]);
  expect(u.len).toBe(1);
  return u.written[0]![0]!;
}

async function read(
  r: Rig,
  sector: bigint,
  length: number,
  parts = 1,
): Promise<{ status: number; data: Uint8Array }> {
  const lens = segments(new Uint8Array(length), parts).map((s) => s.length);
  const u = await r.driver.post(0, [hdr(VIRTIO_BLK_T.IN, sector)], [...lens, 1]);
  return { status: u.written.at(-1)![0]!, data: concat(u.written.slice(0, -1)) };
}

for (const mapping of [true, false]) {
  const how = mapping ? 'mapped views' : 'copies';

  describe(`BlockBackend on the in-process transport (${how})`, () => {
    beforeAll(() => {
      useMapping = mapping;
    });

    it('describes the device: capacity ceil(size/512), seg_max 126, FLUSH, DISCARD, WRITE_ZEROES', async () => {
      const { r, blk } = await start(new Uint8Array((1 << 20) | 100), { serial: 'x' });
      expect(blk.capacity).toBe(2049n);
      const cfg = decodeBlkConfig(r.transport.config());
      expect(cfg.capacity).toBe(2049n);
      expect(cfg.segMax).toBe(126);
      expect(cfg.maxDiscardSeg).toBeGreaterThan(0);
      const f = r.transport.negotiatedFeatures();
      for (const bit of [
        VIRTIO_BLK_F.SEG_MAX,
        VIRTIO_BLK_F.FLUSH,
        VIRTIO_BLK_F.DISCARD,
        VIRTIO_BLK_F.WRITE_ZEROES,
      ]) {
        expect(hasFeature(f, bit)).toBe(true);
      }
      expect(hasFeature(f, VIRTIO_BLK_F.RO)).toBe(false);
    });

    it('writes a pattern the driver sends into the image (sha256), multi-segment and many requests in flight', async () => {
      const size = 4 << 20;
      const { r, blk, path } = await start(new Uint8Array(size));
      const data = pattern(size, 7);
      const chunk = 128 << 10;
      const statuses = await Promise.all(
        Array.from({ length: size / chunk }, (_, i) =>
          write(r, BigInt((i * chunk) / 512), data.subarray(i * chunk, (i + 1) * chunk), 1 + (i % 8)),
        ),
      );
      expect(statuses.every((s) => s === VIRTIO_BLK_S.OK)).toBe(true);
      expect(sha(readFileSync(path))).toBe(sha(data));
      expect(blk.stats().maxInFlight).toBeGreaterThan(1);
      expect(blk.stats().bytesWritten).toBe(size);
    });

    it('merges adjacent reads in flight into fewer file reads, up to the end of the file', async () => {
      const path = join(tmp(), 'disk.img');
      const image = pattern((256 << 10) + 1000, 31);
      writeFileSync(path, image);
      const file = countingFile('read');
      const blk = await BlockBackend.open({ path, openFile: file.open });
      const r = await rig(blk, ALL_FEATURES, undefined, { mapping: useMapping });
      rigs.push(r);
      // 33 requests of 8 KiB in two segments each, all in flight; the last covers the partial sector.
      const chunk = 8192;
      const n = Math.ceil(image.length / chunk);
      const parts = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          read(r, BigInt((i * chunk) / 512), i === n - 1 ? 1024 : chunk, 2),
        ),
      );
      expect(parts.every((p) => p.status === VIRTIO_BLK_S.OK)).toBe(true);
      const back = concat(parts.map((p) => p.data));
      expect(sha(back.subarray(0, image.length))).toBe(sha(image));
      expect(back.subarray(image.length).every((b) => b === 0)).toBe(true);
      if (mapping) expect(file.calls()).toBeLessThan(n);
      else expect(file.calls()).toBe(n);
    });

    it('merges adjacent writes in flight into fewer file writes, cut at the end of the file', async () => {
      const path = join(tmp(), 'disk.img');
      const size = (256 << 10) + 1000;
      writeFileSync(path, new Uint8Array(size));
      const file = countingFile('write');
      const blk = await BlockBackend.open({ path, openFile: file.open });
      const r = await rig(blk, ALL_FEATURES, undefined, { mapping: useMapping });
      rigs.push(r);
      // 33 writes of 8 KiB in two segments each, all in flight; the last one's partial sector is cut.
      const chunk = 8192;
      const n = Math.ceil(size / chunk);
      const data = pattern(n * chunk, 41);
      const statuses = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          write(
            r,
            BigInt((i * chunk) / 512),
            data.subarray(i * chunk, i === n - 1 ? i * chunk + 1024 : (i + 1) * chunk),
            2,
          ),
        ),
      );
      expect(statuses.every((st) => st === VIRTIO_BLK_S.OK)).toBe(true);
      const back = readFileSync(path);
      expect(back.length).toBe(size);
      expect(sha(back)).toBe(sha(data.subarray(0, size)));
      if (mapping) expect(file.calls()).toBeLessThan(n);
      else expect(file.calls()).toBe(n);
    });

    it('reads back what the host wrote into the image, several reads at once', async () => {
      const size = 2 << 20;
      const image = pattern(size, 99);
      const { r, blk } = await start(image);
      const chunk = 64 << 10;
      const parts = await Promise.all(
        Array.from({ length: size / chunk }, (_, i) =>
          read(r, BigInt((i * chunk) / 512), chunk, 1 + (i % 5)),
        ),
      );
      expect(parts.every((p) => p.status === VIRTIO_BLK_S.OK)).toBe(true);
      expect(sha(concat(parts.map((p) => p.data)))).toBe(sha(image));
      expect(blk.stats().maxInFlight).toBeGreaterThan(1);
    });

    it('runs fsync for FLUSH, after the writes completed before it', async () => {
      const path = join(tmp(), 'disk.img');
      writeFileSync(path, new Uint8Array(64 << 10));
      const log: string[] = [];
      const blk = await BlockBackend.open({
        path,
        openFile: watchedFile({
          write: (_, at) => log.push(`write ${at}`),
          sync: () => log.push('fsync'),
        }),
      });
      const r = await rig(blk, ALL_FEATURES, undefined, { mapping: useMapping });
      rigs.push(r);
      expect(await write(r, 8n, pattern(4096, 1))).toBe(VIRTIO_BLK_S.OK);
      const u = await r.driver.post(0, [hdr(VIRTIO_BLK_T.FLUSH, 0n)], [1]);
      expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.OK);
      expect(log).toEqual(['write 4096', 'fsync']);
      expect(blk.stats().flushes).toBe(1);
    });

    it('answers GET_ID with the configured serial, NUL-padded to 20 bytes', async () => {
      const { r } = await start(new Uint8Array(4096), { serial: 'mic0-disk' });
      const u = await r.driver.post(0, [hdr(VIRTIO_BLK_T.GET_ID, 0n)], [20, 1]);
      expect(u.written[1]![0]).toBe(VIRTIO_BLK_S.OK);
      expect(new TextDecoder().decode(u.written[0]!)).toBe('mic0-disk'.padEnd(20, '\0'));
    });

    it('fails reads and writes past the end with IOERR and changes nothing', async () => {
      const image = pattern(64 << 10, 3);
      const { r, path } = await start(image);
      const last = 128n; // one past the last sector
      const rd = await read(r, last - 1n, 1024); // straddles the end
      expect(rd.status).toBe(VIRTIO_BLK_S.IOERR);
      expect(rd.data.every((b) => b === 0)).toBe(true); // zeros, never bytes of anything else
      expect(await write(r, last, pattern(512, 5))).toBe(VIRTIO_BLK_S.IOERR);
      expect(await write(r, last - 1n, pattern(1024, 5))).toBe(VIRTIO_BLK_S.IOERR);
      expect(sha(readFileSync(path))).toBe(sha(image));
      expect(statSync(path).size).toBe(image.length);
    });

    it('refuses writes on a read-only image (VIRTIO_BLK_F_RO) with IOERR, and still reads', async () => {
      const image = pattern(16 << 10, 11);
      const { r, path } = await start(image, { readOnly: true });
      expect(hasFeature(r.transport.negotiatedFeatures(), VIRTIO_BLK_F.RO)).toBe(true);
      expect(hasFeature(r.transport.negotiatedFeatures(), VIRTIO_BLK_F.DISCARD)).toBe(false);
      expect(await write(r, 0n, pattern(512, 1))).toBe(VIRTIO_BLK_S.IOERR);
      const seg = new Uint8Array(16);
      new DataView(seg.buffer).setUint32(8, 1, true);
      const z = await r.driver.post(0, [hdr(VIRTIO_BLK_T.WRITE_ZEROES, 0n), seg], [1]);
      expect(z.written[0]![0]).toBe(VIRTIO_BLK_S.UNSUPP);
      const rd = await read(r, 0n, 512);
      expect(rd.status).toBe(VIRTIO_BLK_S.OK);
      expect(sha(rd.data)).toBe(sha(image.subarray(0, 512)));
      expect(sha(readFileSync(path))).toBe(sha(image));
    });

    it('zeroes ranges for WRITE_ZEROES and DISCARD, and refuses bad segments', async () => {
      const image = pattern(64 << 10, 21);
      const { r, path } = await start(image);
      const seg = (sector: bigint, count: number, flags = 0): Uint8Array => {
        const b = new Uint8Array(16);
        const dv = new DataView(b.buffer);
        dv.setBigUint64(0, sector, true);
        dv.setUint32(8, count, true);
        dv.setUint32(12, flags, true);
        return b;
      };
      const status = async (type: number, ...segs: Uint8Array[]): Promise<number> =>
        (await r.driver.post(0, [hdr(type, 0n), ...segs], [1])).written[0]![0]!;
      expect(await status(VIRTIO_BLK_T.WRITE_ZEROES, seg(2n, 2), seg(20n, 1, 1))).toBe(VIRTIO_BLK_S.OK);
      expect(await status(VIRTIO_BLK_T.DISCARD, seg(40n, 8))).toBe(VIRTIO_BLK_S.OK);
      const expected = image.slice();
      expected.fill(0, 1024, 2048);
      expected.fill(0, 20 * 512, 21 * 512);
      expected.fill(0, 40 * 512, 48 * 512);
      expect(sha(readFileSync(path))).toBe(sha(expected));
      expect(await status(VIRTIO_BLK_T.DISCARD, seg(0n, 1, 1))).toBe(VIRTIO_BLK_S.UNSUPP); // UNMAP on a discard
      expect(await status(VIRTIO_BLK_T.WRITE_ZEROES, seg(0n, 1, 2))).toBe(VIRTIO_BLK_S.UNSUPP); // unknown flag
      expect(await status(VIRTIO_BLK_T.WRITE_ZEROES, seg(127n, 2))).toBe(VIRTIO_BLK_S.IOERR); // past the end
      expect(await status(VIRTIO_BLK_T.WRITE_ZEROES, seg(2n ** 64n - 1n, 1))).toBe(VIRTIO_BLK_S.IOERR);
      expect(sha(readFileSync(path))).toBe(sha(expected));
    });

    it('reads zeros past the end of the file in the partial last sector and never grows the file', async () => {
      const image = pattern(1000, 4);
      const { r, path } = await start(image);
      const rd = await read(r, 1n, 512);
      expect(rd.status).toBe(VIRTIO_BLK_S.OK);
      expect([...rd.data.subarray(0, 488)]).toEqual([...image.subarray(512)]);
      expect(rd.data.subarray(488).every((b) => b === 0)).toBe(true);
      const data = pattern(512, 8);
      expect(await write(r, 1n, data)).toBe(VIRTIO_BLK_S.OK);
      const after = readFileSync(path);
      expect(after.length).toBe(1000);
      expect(sha(after.subarray(512))).toBe(sha(data.subarray(0, 488)));
    });

    it('reuses its data buffers (none allocated per request); a reused buffer still reads zeros past the end', async () => {
      const path = join(tmp(), 'disk.img');
      const image = pattern(4096 + 1000, 6);
      writeFileSync(path, image);
      const seen: ArrayBufferLike[] = [];
      const blk = await BlockBackend.open({
        path,
        openFile: watchedFile({ read: (b) => seen.push(b.buffer) }),
      });
      const r = await rig(blk, ALL_FEATURES, undefined, { mapping: useMapping });
      rigs.push(r);
      for (let sector = 0n; sector < 8n; sector++) {
        const rd = await read(r, sector, 512);
        expect(rd.status).toBe(VIRTIO_BLK_S.OK);
        expect(sha(rd.data)).toBe(sha(image.subarray(Number(sector) * 512, Number(sector + 1n) * 512)));
      }
      // The last, partial sector through the same (now dirty) buffer: 488 bytes of file, then zeros.
      const rd = await read(r, 9n, 512);
      expect(rd.status).toBe(VIRTIO_BLK_S.OK);
      expect(sha(rd.data.subarray(0, 488))).toBe(sha(image.subarray(9 * 512)));
      expect(rd.data.subarray(488).every((b) => b === 0)).toBe(true);
      expect(seen.length).toBe(9);
      expect(new Set(seen).size).toBe(1);
    });

    it('answers UNSUPP for unknown request types', async () => {
      const { r } = await start(new Uint8Array(4096));
      for (const type of [2, 3, 0x80000000, 0xffffffff]) {
        const u = await r.driver.post(0, [hdr(type, 0n)], [1]);
        expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.UNSUPP);
      }
    });
  });

  describe(`BlockBackend against malformed requests (${how}): IOERR or UNSUPP, never a byte outside the image`, () => {
    beforeAll(() => {
      useMapping = mapping;
    });
    const image = pattern(32 << 10, 77);
    const cases: {
      name: string;
      readable: () => Uint8Array[];
      writable: number[];
      expect: (u: { len: number; written: Uint8Array[] }) => void;
    }[] = [
      {
        name: 'a short header (8 bytes)',
        readable: () => [hdr(VIRTIO_BLK_T.OUT, 0n).subarray(0, 8)],
        writable: [1],
        expect: (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR),
      },
      {
        name: 'a missing status byte (nothing writable): not executed, used length 0',
        readable: () => [hdr(VIRTIO_BLK_T.OUT, 0n), pattern(512, 1)],
        writable: [],
        expect: (u) => expect(u.len).toBe(0),
      },
      {
        name: 'a writable header (the header in device-writable memory)',
        readable: () => [],
        writable: [16, 512, 1],
        expect: (u) => {
          expect(u.written[2]![0]).toBe(VIRTIO_BLK_S.IOERR);
          expect(u.written[1]!.every((b) => b === 0)).toBe(true);
        },
      },
      {
        name: 'a sector past the end',
        readable: () => [hdr(VIRTIO_BLK_T.OUT, 64n), pattern(512, 1)],
        writable: [1],
        expect: (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR),
      },
      {
        name: 'sector 2^64 - 1 (a write that would wrap around)',
        readable: () => [hdr(VIRTIO_BLK_T.OUT, 2n ** 64n - 1n), pattern(1024, 1)],
        writable: [1],
        expect: (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR),
      },
      {
        name: 'a read at sector 2^55 (sector * 512 overflows 64 bits)',
        readable: () => [hdr(VIRTIO_BLK_T.IN, 2n ** 55n)],
        writable: [512, 1],
        expect: (u) => {
          expect(u.written[1]![0]).toBe(VIRTIO_BLK_S.IOERR);
          expect(u.written[0]!.every((b) => b === 0)).toBe(true);
        },
      },
      {
        name: 'a data length that is not a multiple of 512',
        readable: () => [hdr(VIRTIO_BLK_T.OUT, 0n), pattern(100, 1)],
        writable: [1],
        expect: (u) => expect(u.written[0]![0]).toBe(VIRTIO_BLK_S.IOERR),
      },
      {
        name: 'GET_ID with a buffer shorter than 20 bytes',
        readable: () => [hdr(VIRTIO_BLK_T.GET_ID, 0n)],
        writable: [8, 1],
        expect: (u) => expect(u.written[1]![0]).toBe(VIRTIO_BLK_S.IOERR),
      },
    ];

    it.each(cases)('$name', async (c) => {
      const { r, path, blk } = await start(image);
      const u = await r.driver.post(0, c.readable(), c.writable);
      c.expect(u);
      expect(sha(readFileSync(path))).toBe(sha(image));
      expect(statSync(path).size).toBe(image.length);
      // The device goes on serving.
      const rd = await read(r, 0n, 512);
      expect(rd.status).toBe(VIRTIO_BLK_S.OK);
      expect(sha(rd.data)).toBe(sha(image.subarray(0, 512)));
      expect(blk.stats().requests).toBe(2);
    });
  });

  describe(`BlockBackend on a failing image (${how})`, () => {
    beforeAll(() => {
      useMapping = mapping;
    });

    it('answers IOERR and zeros for a read the file fails, and IOERR for a failed write', async () => {
      const path = join(tmp(), 'disk.img');
      const image = pattern(64 << 10, 9);
      writeFileSync(path, image);
      let failing = false;
      const blk = await BlockBackend.open({
        path,
        openFile: async (p, ro) => {
          const f = await openBlockFile(p, ro);
          const fail = (): Promise<never> => Promise.reject(new Error('injected I/O error'));
          return {
            size: f.size,
            read: (b, at) => (failing ? fail() : f.read(b, at)),
            write: (b, at) => (failing ? fail() : f.write(b, at)),
            readv: (bs, at) => (failing ? fail() : f.readv!(bs, at)),
            writev: (bs, at) => (failing ? fail() : f.writev!(bs, at)),
            sync: () => f.sync(),
            zero: (at, n, d) => f.zero(at, n, d),
            close: () => f.close(),
          };
        },
      });
      const r = await rig(blk, ALL_FEATURES, undefined, { mapping: useMapping });
      rigs.push(r);
      // A multi-segment read that works (through readv), then the same one failing.
      const ok = await read(r, 2n, 8192, 3);
      expect(ok.status).toBe(VIRTIO_BLK_S.OK);
      expect(sha(ok.data)).toBe(sha(image.subarray(1024, 1024 + 8192)));
      failing = true;
      const bad = await read(r, 2n, 8192, 3);
      expect(bad.status).toBe(VIRTIO_BLK_S.IOERR);
      expect(bad.data.every((b) => b === 0)).toBe(true);
      expect(await write(r, 0n, pattern(4096, 3), 2)).toBe(VIRTIO_BLK_S.IOERR);
      failing = false;
      expect(sha(readFileSync(path))).toBe(sha(image));
      expect(blk.stats().ioErrors).toBe(2);
    });
  });
}

describe('BlockBackend options', () => {
  const code = errorCode;

  it('offers VIRTIO_RING_F_EVENT_IDX only when asked (mpssd does not)', async () => {
    const file = join(tmp(), 'ev.img');
    writeFileSync(file, new Uint8Array(4096));
    const plain = await BlockBackend.open({ path: file });
    const ev = await BlockBackend.open({ path: file, eventIdx: true });
    try {
      expect(hasFeature(plain.description.features, VIRTIO_F.RING_EVENT_IDX)).toBe(false);
      expect(hasFeature(ev.description.features, VIRTIO_F.RING_EVENT_IDX)).toBe(true);
      // Nothing else changes.
      expect(ev.description.features & ~(1n << BigInt(VIRTIO_F.RING_EVENT_IDX))).toBe(
        plain.description.features,
      );
    } finally {
      await plain.close();
      await ev.close();
    }
  });

  it('gives one clear error per bad option', async () => {
    const dir = tmp();
    const file = join(dir, 'ok.img');
    writeFileSync(file, new Uint8Array(4096));
    mkdirSync(join(dir, 'sub'));
    expect(await code(BlockBackend.open({ path: join(dir, 'missing.img') }))).toBe('ENOENT');
    expect(await code(BlockBackend.open({ path: join(dir, 'sub') }))).toBe('EISDIR');
    expect(await code(BlockBackend.open({ path: '/dev/null' }))).toBe('EINVAL');
    expect(await code(BlockBackend.open({ path: file, serial: 'é' }))).toBe('EINVAL');
    expect(await code(BlockBackend.open({ path: file, serial: 'x'.repeat(21) }))).toBe('EINVAL');
    expect(await code(BlockBackend.open({ path: file, segMax: 127 }))).toBe('EINVAL');
    expect(await code(BlockBackend.open({ path: file, blkSize: 1000 }))).toBe('EINVAL');
    expect(await code(BlockBackend.open({ path: file, queueSize: 100 }))).toBe('EINVAL');
    expect(await code(BlockBackend.open({ path: file, readOnly: true, discard: true }))).toBe('EINVAL');
    await expect(BlockBackend.open({ path: join(dir, 'missing.img') })).rejects.toThrow(
      /missing\.img does not exist/,
    );
    const ok = await BlockBackend.open({ path: file, blkSize: 4096 });
    expect(hasFeature(ok.description.features, VIRTIO_BLK_F.BLK_SIZE)).toBe(true);
    expect(decodeBlkConfig(ok.description.config).blkSize).toBe(4096);
    await ok.close();
  });
});
