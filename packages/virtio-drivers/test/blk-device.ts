// A virtio-blk device for the driver's tests: serves the request queue of an in-process
// transport over a Uint8Array image, the way a host backend does (virtio 1.2 §5.2.6), and can
// be told to misbehave.
import type { InProcessTransport } from '@mic/virtio';
import {
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_OUTHDR_SIZE,
  VIRTIO_BLK_S,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T,
  encodeBlkSerial,
} from '@mic/virtio';
import { type Chain, type Served, serveQueue } from './harness.js';

/** One request as the device saw it. */
export interface SeenRequest {
  readonly type: number;
  readonly sector: bigint;
  /** Data descriptors (all but the header and the status). */
  readonly dataSegments: number;
  readonly dataLen: number;
}

export interface BlkDeviceOptions {
  readonly serial?: string;
  readonly readOnly?: boolean;
  /** Completes every request later (see `served.release`). */
  readonly hold?: boolean;
  /** Overrides the status byte written for a request. */
  readonly status?: (req: SeenRequest) => number | undefined;
  /** Overrides the used length (given the honest one). */
  readonly usedLen?: (honest: number, req: SeenRequest) => number;
  /** Does not write the status byte at all. */
  readonly skipStatus?: boolean;
}

export interface BlkDevice {
  readonly image: Uint8Array;
  readonly seen: SeenRequest[];
  readonly served: Served;
  flushes: number;
}

export function blkDevice(
  t: InProcessTransport,
  image: Uint8Array,
  options: BlkDeviceOptions = {},
): BlkDevice {
  const dev: BlkDevice = {
    image,
    seen: [],
    flushes: 0,
    served: serveQueue(t, 0, (chain) => {
      const len = serve(dev, chain, options);
      return options.hold ? { len, hold: true } : len;
    }),
  };
  return dev;
}

function serve(dev: BlkDevice, c: Chain, o: BlkDeviceOptions): number {
  const hdr = c.pull(VIRTIO_BLK_OUTHDR_SIZE);
  const dv = new DataView(hdr.buffer);
  const type = hdr.length === 16 ? dv.getUint32(0, true) : -1;
  const sector = hdr.length === 16 ? dv.getBigUint64(8, true) : 0n;
  const deviceWrites = type === VIRTIO_BLK_T.IN || type === VIRTIO_BLK_T.GET_ID;
  const dataLen = deviceWrites ? c.writableTotal - 1 : c.readableTotal - VIRTIO_BLK_OUTHDR_SIZE;
  const dataSegments = deviceWrites ? c.writable.length - 1 : c.readable.length - 1;
  const req: SeenRequest = { type, sector, dataSegments, dataLen };
  dev.seen.push(req);
  const cap = BigInt(dev.image.length / VIRTIO_BLK_SECTOR_SIZE);
  const inRange = (s: bigint, n: number): boolean => s + BigInt(Math.ceil(n / 512)) <= cap;
  let status: number = VIRTIO_BLK_S.OK;
  let written = 0;
  switch (type) {
    case VIRTIO_BLK_T.IN:
      if (!inRange(sector, dataLen)) {
        status = VIRTIO_BLK_S.IOERR;
        break;
      }
      written = c.push(dev.image.subarray(Number(sector) * 512, Number(sector) * 512 + dataLen));
      break;
    case VIRTIO_BLK_T.OUT: {
      const data = c.pull(dataLen);
      if (o.readOnly || !inRange(sector, dataLen)) status = VIRTIO_BLK_S.IOERR;
      else dev.image.set(data, Number(sector) * 512);
      break;
    }
    case VIRTIO_BLK_T.FLUSH:
      dev.flushes++;
      break;
    case VIRTIO_BLK_T.GET_ID:
      if (o.serial === undefined) status = VIRTIO_BLK_S.UNSUPP;
      else written = c.push(encodeBlkSerial(o.serial).subarray(0, Math.min(VIRTIO_BLK_ID_BYTES, dataLen)));
      break;
    case VIRTIO_BLK_T.DISCARD:
    case VIRTIO_BLK_T.WRITE_ZEROES: {
      const segs = c.pull(dataLen);
      const sv = new DataView(segs.buffer);
      for (let k = 0; k + 16 <= segs.length; k += 16) {
        const s = sv.getBigUint64(k, true);
        const n = sv.getUint32(k + 8, true);
        if (o.readOnly || !inRange(s, n * 512)) {
          status = VIRTIO_BLK_S.IOERR;
          break;
        }
        // Discarded sectors read back as 0xdd here, zeroed ones as 0.
        dev.image.fill(type === VIRTIO_BLK_T.DISCARD ? 0xdd : 0, Number(s) * 512, (Number(s) + n) * 512);
      }
      break;
    }
    default:
      status = VIRTIO_BLK_S.UNSUPP;
  }
  status = o.status?.(req) ?? status;
  // The status byte is the last writable byte.
  c.skipWritable(c.writableTotal - 1 - written);
  if (!o.skipStatus) c.push(Uint8Array.of(status));
  const honest = deviceWrites && status === VIRTIO_BLK_S.OK ? dataLen + 1 : 1;
  return o.usedLen ? o.usedLen(honest, req) : honest;
}
