import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  VIRTIO_BLK_CONFIG,
  VIRTIO_BLK_CONFIG_SIZE,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_OUTHDR_SIZE,
  VIRTIO_BLK_T,
  VIRTIO_CONSOLE_CONFIG_SIZE,
  VIRTIO_CONSOLE_CONTROL_SIZE,
  VIRTIO_CONSOLE_EVENT,
  VIRTIO_NET_CONFIG_SIZE,
  VIRTIO_NET_HDR_F,
  VIRTIO_NET_HDR_GSO,
  VIRTIO_NET_HDR_MRG_RXBUF_SIZE,
  VIRTIO_NET_HDR_SIZE,
  decodeBlkConfig,
  decodeBlkOutHdr,
  decodeConsoleConfig,
  decodeConsoleControl,
  decodeNetConfig,
  decodeNetHdr,
  encodeBlkConfig,
  encodeBlkOutHdr,
  encodeBlkSerial,
  encodeConsoleConfig,
  encodeConsoleControl,
  encodeNetConfig,
  encodeNetHdr,
  type VirtioBlkConfig,
  type VirtioNetHdr,
} from '../src/index.js';

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: 0xffffffffffffffffn });

/** Copies `bytes` to a larger buffer at an odd offset, so decoders must honour byteOffset. */
function atOddOffset(bytes: Uint8Array): Uint8Array {
  const big = new Uint8Array(bytes.length + 7).fill(0xa5);
  big.set(bytes, 3);
  return big.subarray(3, 3 + bytes.length);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('virtio_net_hdr', () => {
  const hdr: VirtioNetHdr = {
    flags: VIRTIO_NET_HDR_F.NEEDS_CSUM,
    gsoType: VIRTIO_NET_HDR_GSO.TCPV6,
    hdrLen: 0x1234,
    gsoSize: 0x5678,
    csumStart: 0x9abc,
    csumOffset: 0xdef0,
  };

  it('is 10 bytes: flags, gso_type, then four little-endian u16', () => {
    expect(VIRTIO_NET_HDR_SIZE).toBe(10);
    expect(hex(encodeNetHdr(hdr))).toBe('01' + '04' + '3412' + '7856' + 'bc9a' + 'f0de');
  });

  it('is 12 bytes with num_buffers last when buffers are merged', () => {
    expect(VIRTIO_NET_HDR_MRG_RXBUF_SIZE).toBe(12);
    const b = encodeNetHdr({ ...hdr, numBuffers: 0x0203 }, 12);
    expect(b.length).toBe(12);
    expect(hex(b)).toBe('01' + '04' + '3412' + '7856' + 'bc9a' + 'f0de' + '0302');
  });

  it('defaults num_buffers to 1 in the 12-byte form', () => {
    expect([...encodeNetHdr(hdr, 12).subarray(10)]).toEqual([1, 0]);
  });

  it('decodes a 10-byte header without num_buffers', () => {
    expect(decodeNetHdr(encodeNetHdr(hdr))).toEqual(hdr);
    expect(decodeNetHdr(encodeNetHdr(hdr)).numBuffers).toBeUndefined();
  });

  it('round-trips any header of either size, at any byte offset', () => {
    fc.assert(
      fc.property(u8, u8, u16, u16, u16, u16, u16, fc.constantFrom(10 as const, 12 as const), (...v) => {
        const [flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset, numBuffers, size] = v;
        const h: VirtioNetHdr = { flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset };
        if (size === 12) h.numBuffers = numBuffers;
        const bytes = encodeNetHdr(h, size);
        expect(bytes.length).toBe(size);
        expect(decodeNetHdr(atOddOffset(bytes), size)).toEqual(h);
      }),
    );
  });

  it('rejects sizes other than 10 and 12, and short input, with EINVAL', () => {
    expect(() => encodeNetHdr(hdr, 11 as 10)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('size 11') }),
    );
    expect(() => decodeNetHdr(new Uint8Array(9))).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('got 9') }),
    );
    expect(() => decodeNetHdr(new Uint8Array(10), 12)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});

describe('virtio_net_config', () => {
  const config = {
    mac: Uint8Array.of(0x02, 0x11, 0x22, 0x33, 0x44, 0x55),
    status: 1,
    maxVirtqueuePairs: 0x0102,
    mtu: 1500,
    speed: 0x0a0b0c0d,
    duplex: 1,
  };

  it('is 17 bytes: mac[6], status, max_virtqueue_pairs, mtu, speed, duplex', () => {
    expect(VIRTIO_NET_CONFIG_SIZE).toBe(17);
    const b = encodeNetConfig(config);
    expect(b.length).toBe(17);
    expect(hex(b)).toBe('021122334455' + '0100' + '0201' + 'dc05' + '0d0c0b0a' + '01');
  });

  it('round-trips any config', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), u16, u16, u16, u32, u8, (...v) => {
        const [mac, status, maxVirtqueuePairs, mtu, speed, duplex] = v;
        const c = { mac, status, maxVirtqueuePairs, mtu, speed, duplex };
        expect(decodeNetConfig(atOddOffset(encodeNetConfig(c)))).toEqual(c);
      }),
    );
  });

  it('rejects a MAC that is not 6 bytes and a short config with EINVAL', () => {
    expect(() => encodeNetConfig({ ...config, mac: new Uint8Array(5) })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('5 bytes') }),
    );
    expect(() => decodeNetConfig(new Uint8Array(16))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('returns a MAC copy that does not alias the input', () => {
    const bytes = encodeNetConfig(config);
    const c = decodeNetConfig(bytes);
    bytes[0] = 0xff;
    expect(c.mac[0]).toBe(0x02);
  });
});

describe('virtio_blk_outhdr', () => {
  it('is 16 bytes: type, ioprio, then a 64-bit sector, little-endian', () => {
    expect(VIRTIO_BLK_OUTHDR_SIZE).toBe(16);
    const b = encodeBlkOutHdr({ type: VIRTIO_BLK_T.OUT, ioprio: 0x01020304, sector: 0x1122334455667788n });
    expect(hex(b)).toBe('01000000' + '04030201' + '8877665544332211');
  });

  it('round-trips any header', () => {
    fc.assert(
      fc.property(u32, u32, u64, (type, ioprio, sector) => {
        const h = { type, ioprio, sector };
        expect(decodeBlkOutHdr(atOddOffset(encodeBlkOutHdr(h)))).toEqual(h);
      }),
    );
  });

  it('rejects fewer than 16 bytes with EINVAL', () => {
    expect(() => decodeBlkOutHdr(new Uint8Array(15))).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('got 15') }),
    );
  });
});

describe('virtio_blk_config', () => {
  const full: Required<VirtioBlkConfig> = {
    capacity: 0x0102030405060708n,
    sizeMax: 0x11111111,
    segMax: 126,
    geometry: { cylinders: 0x2233, heads: 0x44, sectors: 0x55 },
    blkSize: 4096,
    topology: { physicalBlockExp: 3, alignmentOffset: 1, minIoSize: 0x6677, optIoSize: 0x8899aabb },
    writeback: 1,
    numQueues: 0x0c0d,
    maxDiscardSectors: 0x21,
    maxDiscardSeg: 0x22,
    discardSectorAlignment: 0x23,
    maxWriteZeroesSectors: 0x24,
    maxWriteZeroesSeg: 0x25,
    writeZeroesMayUnmap: 1,
  };

  it('is 60 bytes with the fields at the offsets of Linux 5.9 virtio_blk.h', () => {
    expect(VIRTIO_BLK_CONFIG_SIZE).toBe(60);
    expect(VIRTIO_BLK_CONFIG).toMatchObject({
      CAPACITY: 0,
      SIZE_MAX: 8,
      SEG_MAX: 12,
      CYLINDERS: 16,
      HEADS: 18,
      SECTORS: 19,
      BLK_SIZE: 20,
      PHYSICAL_BLOCK_EXP: 24,
      ALIGNMENT_OFFSET: 25,
      MIN_IO_SIZE: 26,
      OPT_IO_SIZE: 28,
      WRITEBACK: 32,
      NUM_QUEUES: 34,
      MAX_DISCARD_SECTORS: 36,
      MAX_DISCARD_SEG: 40,
      DISCARD_SECTOR_ALIGNMENT: 44,
      MAX_WRITE_ZEROES_SECTORS: 48,
      MAX_WRITE_ZEROES_SEG: 52,
      WRITE_ZEROES_MAY_UNMAP: 56,
    });
  });

  it('encodes every field at its byte offset, little-endian', () => {
    const b = encodeBlkConfig(full);
    expect(b.length).toBe(60);
    const dv = new DataView(b.buffer);
    expect(dv.getBigUint64(0, true)).toBe(0x0102030405060708n);
    expect(dv.getUint32(8, true)).toBe(0x11111111);
    expect(dv.getUint32(12, true)).toBe(126);
    expect(dv.getUint16(16, true)).toBe(0x2233);
    expect(b[18]).toBe(0x44);
    expect(b[19]).toBe(0x55);
    expect(dv.getUint32(20, true)).toBe(4096);
    expect(b[24]).toBe(3);
    expect(b[25]).toBe(1);
    expect(dv.getUint16(26, true)).toBe(0x6677);
    expect(dv.getUint32(28, true)).toBe(0x8899aabb);
    expect(b[32]).toBe(1);
    expect(b[33]).toBe(0); // padding
    expect(dv.getUint16(34, true)).toBe(0x0c0d);
    expect([36, 40, 44, 48, 52].map((o) => dv.getUint32(o, true))).toEqual([0x21, 0x22, 0x23, 0x24, 0x25]);
    expect(b[56]).toBe(1);
    expect([...b.subarray(57)]).toEqual([0, 0, 0]); // padding
    expect(hex(b.subarray(0, 8))).toBe('0807060504030201');
  });

  it('encodes absent optional fields as zero', () => {
    const b = encodeBlkConfig({ capacity: 2048n });
    expect(hex(b.subarray(0, 8))).toBe('0008000000000000');
    expect(b.subarray(8).every((x) => x === 0)).toBe(true);
  });

  it('round-trips a full config', () => {
    expect(decodeBlkConfig(atOddOffset(encodeBlkConfig(full)))).toEqual(full);
  });

  it('round-trips any config', () => {
    const arb = fc.record({
      capacity: u64,
      sizeMax: u32,
      segMax: u32,
      geometry: fc.record({ cylinders: u16, heads: u8, sectors: u8 }),
      blkSize: u32,
      topology: fc.record({ physicalBlockExp: u8, alignmentOffset: u8, minIoSize: u16, optIoSize: u32 }),
      writeback: u8,
      numQueues: u16,
      maxDiscardSectors: u32,
      maxDiscardSeg: u32,
      discardSectorAlignment: u32,
      maxWriteZeroesSectors: u32,
      maxWriteZeroesSeg: u32,
      writeZeroesMayUnmap: u8,
    });
    fc.assert(
      fc.property(arb, (c) => {
        expect(decodeBlkConfig(encodeBlkConfig(c))).toEqual(c);
      }),
    );
  });

  it('rejects fewer than 60 bytes with EINVAL', () => {
    expect(() => decodeBlkConfig(new Uint8Array(59))).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('got 59') }),
    );
  });
});

describe('virtio-blk serial (GET_ID)', () => {
  it('is 20 bytes of ASCII padded with NUL', () => {
    expect(VIRTIO_BLK_ID_BYTES).toBe(20);
    const b = encodeBlkSerial('mic0-disk');
    expect(b.length).toBe(20);
    expect(Buffer.from(b.subarray(0, 9)).toString('ascii')).toBe('mic0-disk');
    expect([...b.subarray(9)]).toEqual(new Array(11).fill(0));
  });

  it('is not NUL-terminated when the serial is exactly 20 bytes, and cuts longer ones', () => {
    expect(Buffer.from(encodeBlkSerial('ABCDEFGHIJKLMNOPQRST')).toString('ascii')).toBe(
      'ABCDEFGHIJKLMNOPQRST',
    );
    expect(Buffer.from(encodeBlkSerial('ABCDEFGHIJKLMNOPQRSTUVWXYZ')).toString('ascii')).toBe(
      'ABCDEFGHIJKLMNOPQRST',
    );
  });

  it('rejects characters that are not printable ASCII with EINVAL', () => {
    expect(() => encodeBlkSerial('disk\u0000')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => encodeBlkSerial('dïsk')).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('"dïsk"') }),
    );
  });
});

describe('virtio_console_config and virtio_console_control', () => {
  it('encode the 12-byte config as cols, rows, max_nr_ports, emerg_wr', () => {
    expect(VIRTIO_CONSOLE_CONFIG_SIZE).toBe(12);
    const b = encodeConsoleConfig({ cols: 80, rows: 25, maxNrPorts: 0x01020304, emergWr: 0x41 });
    expect(hex(b)).toBe('5000' + '1900' + '04030201' + '41000000');
  });

  it('encode the 8-byte control message as id, event, value', () => {
    expect(VIRTIO_CONSOLE_CONTROL_SIZE).toBe(8);
    const b = encodeConsoleControl({ id: 0x0a0b0c0d, event: VIRTIO_CONSOLE_EVENT.PORT_OPEN, value: 1 });
    expect(hex(b)).toBe('0d0c0b0a' + '0600' + '0100');
  });

  it('round-trip any config and any control message', () => {
    fc.assert(
      fc.property(u16, u16, u32, u32, u32, u16, u16, (cols, rows, maxNrPorts, emergWr, id, event, value) => {
        const c = { cols, rows, maxNrPorts, emergWr };
        expect(decodeConsoleConfig(atOddOffset(encodeConsoleConfig(c)))).toEqual(c);
        const m = { id, event, value };
        expect(decodeConsoleControl(atOddOffset(encodeConsoleControl(m)))).toEqual(m);
      }),
    );
  });

  it('reject short input with EINVAL', () => {
    expect(() => decodeConsoleConfig(new Uint8Array(11))).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => decodeConsoleControl(new Uint8Array(7))).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});
