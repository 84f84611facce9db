/**
 * The virtio block driver, like Linux `drivers/block/virtio_blk.c`: binds virtio devices of type
 * 2, negotiates the features it implements, and gives a card program a disk ({@link VirtioBlk})
 * with promise-based read, write, flush, get-id, discard and write-zeroes.
 *
 * Requests (virtio 1.2 §5.2.6): a 16-byte device-readable header `{ le32 type; le32 ioprio;
 * le64 sector }` in its own descriptor, the data in one or more descriptors (device-writable for
 * reads and GET_ID, device-readable otherwise), and a 1-byte device-writable status in its own
 * descriptor (the framing legacy devices without ANY_LAYOUT require, §5.2.6.3). Data goes through
 * DMA buffers the driver owns (bounce buffers: a card program's arrays are not device memory),
 * except in buffers of {@link VirtioBlk.allocBuffer}, which are DMA memory: the device moves the
 * data there directly, as Linux hands the device the pages of a request.
 *
 * The device is not trusted: the status byte is set to 0xFF before a request is posted and read
 * once when it comes back, so a device that never wrote it gives `EIO` naming the byte; a used
 * length of 0 (a chain the device refused, as `vringh` completes a bad chain) is `EIO`; used
 * lengths are clamped by the ring; with VERSION_1 a read that reports fewer bytes than it asked
 * for is `EIO` (legacy devices are known to report wrong lengths, and virtio 1.2 §5.2.6.4 says to
 * ignore them there). Every request is checked before it reaches the device: the range within
 * `capacity` (`EINVAL`), writes on a read-only device (`EROFS`), commands the device did not offer
 * (`EOPNOTSUPP`).
 *
 * @see drivers/block/virtio_blk.c
 * @see include/uapi/linux/virtio_blk.h
 * @see virtio 1.2 §5.2
 */
import { EventEmitter } from 'node:events';
import { MicError, checkInt } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { BufferMemory } from '@mic/memory';
import {
  VIRTIO_BLK_CONFIG,
  VIRTIO_BLK_F,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_OUTHDR_SIZE,
  VIRTIO_BLK_S,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T,
  VIRTIO_CONFIG_S,
  VIRTIO_DEV_ANY_ID,
  VIRTIO_F,
  VIRTIO_ID,
  type VirtioDevice,
  type VirtioDmaBuffer,
  type VirtioDriver,
  type VirtioQueue,
} from '@mic/virtio';
import {
  DeferredKick,
  DmaSlab,
  RoomQueue,
  VirtioDriverBase,
  descriptorsFor,
  drainUsed,
  safeEmit,
  tryAdd,
} from './common.js';

/** Bytes of one `struct virtio_blk_discard_write_zeroes` segment. */
export const VIRTIO_BLK_DISCARD_SEGMENT_SIZE = 16;

/**
 * Default largest data descriptor: the block layer's `BLK_MAX_SEGMENT_SIZE` (64 KiB). A device's
 * `size_max` lowers it.
 */
export const VIRTIO_BLK_DEFAULT_SEGMENT_SIZE = 65536;

/** Discard segments per request when the device leaves `max_discard_seg` 0 (`MAX_DISCARD_SEGMENTS`). */
const MAX_DISCARD_SEGMENTS = 256;

/** Bytes of free data buffers a disk keeps for reuse. */
const DATA_CACHE_BYTES = 4 << 20;

/**
 * Where the data starts in its DMA buffer: one cache line in, not at the (page-aligned) start.
 * The host reads the image into these buffers from its page cache, whose pages are page-aligned;
 * a destination at the same page offset as the source runs the kernel's copy 2-3x slower on the
 * x86 VMs this runs on (4K aliasing: measured 1.2-1.5 GB/s page-aligned against 2.6-3.3 GB/s 64
 * bytes in, for 128 KiB `fs.read`s at depth 8 into a SharedArrayBuffer; writes do not care).
 * Linux needs no such skew: there the device's DMA engine does the copy.
 */
const VIRTIO_BLK_DATA_SKEW = 64;

/** The status byte before the device writes it: not a status the spec defines. */
const STATUS_UNSET = 0xff;

/** Slot of one request header: the outhdr at 0, the status byte at 16. */
const HDR_SLOT = 32;
const STATUS_AT = VIRTIO_BLK_OUTHDR_SIZE;

/** Feature bits the driver implements (virtio 1.2 §5.2.3). */
const BLK_FEATURES: readonly number[] = [
  VIRTIO_BLK_F.SIZE_MAX,
  VIRTIO_BLK_F.SEG_MAX,
  VIRTIO_BLK_F.RO,
  VIRTIO_BLK_F.BLK_SIZE,
  VIRTIO_BLK_F.FLUSH,
  VIRTIO_BLK_F.DISCARD,
  VIRTIO_BLK_F.WRITE_ZEROES,
];

/** The config field each feature needs: offset and size in `struct virtio_blk_config`. */
const BLK_FEATURE_FIELDS: readonly (readonly [bit: number, end: number])[] = [
  [VIRTIO_BLK_F.SIZE_MAX, VIRTIO_BLK_CONFIG.SIZE_MAX + 4],
  [VIRTIO_BLK_F.SEG_MAX, VIRTIO_BLK_CONFIG.SEG_MAX + 4],
  [VIRTIO_BLK_F.BLK_SIZE, VIRTIO_BLK_CONFIG.BLK_SIZE + 4],
  [VIRTIO_BLK_F.DISCARD, VIRTIO_BLK_CONFIG.DISCARD_SECTOR_ALIGNMENT + 4],
  [VIRTIO_BLK_F.WRITE_ZEROES, VIRTIO_BLK_CONFIG.WRITE_ZEROES_MAY_UNMAP + 1],
];

/** Options of a {@link VirtioBlkDriver}. */
export interface VirtioBlkDriverOptions {
  readonly logger?: Logger;
  /**
   * Most bytes in one data descriptor (default {@link VIRTIO_BLK_DEFAULT_SEGMENT_SIZE}); the
   * device's `size_max` (VIRTIO_BLK_F_SIZE_MAX) lowers it.
   */
  readonly maxSegmentSize?: number;
}

/** Options of one request. */
export interface BlkRequestOptions {
  /**
   * Cancels the request with `ECANCELED`: while it waits for ring room it is never posted; once
   * posted, the promise rejects at once and the device still completes the request (virtio has
   * no way to take a request back), after which its buffers are freed.
   */
  readonly signal?: AbortSignal;
}

/** Options of {@link VirtioBlk.writeZeroes}. */
export interface BlkWriteZeroesOptions extends BlkRequestOptions {
  /** Let the device deallocate the range (the `unmap` flag); reads return zeroes either way. */
  readonly unmap?: boolean;
}

/** Limits of one request, from the config space and the queue size. */
export interface VirtioBlkLimits {
  /** Data descriptors per request: `seg_max` (1 without VIRTIO_BLK_F_SEG_MAX), at most queue size − 2. */
  readonly segMax: number;
  /** Bytes per data descriptor. */
  readonly maxSegmentSize: number;
  /** Sectors of one read or write request; longer transfers are split into several requests. */
  readonly maxRequestSectors: number;
  /** Sectors of one discard segment (`max_discard_sectors`, 0 read as 2^32 − 1). */
  readonly maxDiscardSectors: number;
  /** Segments of one discard request (`max_discard_seg`, 0 read as 256). */
  readonly maxDiscardSeg: number;
  /** Sectors of one write-zeroes segment (`max_write_zeroes_sectors`, 0 read as 2^32 − 1). */
  readonly maxWriteZeroesSectors: number;
  /** Segments of one write-zeroes request (`max_write_zeroes_seg`, 0 read as 1). */
  readonly maxWriteZeroesSeg: number;
}

/** What a disk did, for tools and benchmarks. */
export interface VirtioBlkCounters {
  /** Requests completed with status OK. */
  completed: number;
  /** Requests that failed (status, device error, removal or a broken queue). */
  failed: number;
  bytesRead: number;
  bytesWritten: number;
}

/** Events of a {@link VirtioBlk}. */
export type VirtioBlkEvents = {
  /** The capacity in config space changed (config-change interrupt). */
  capacity: [sectors: bigint];
  /** The request queue broke or the device asked for a reset: every request fails with `error`. */
  broken: [error: MicError];
  /** The device was removed; every request fails with `ENODEV`. */
  remove: [];
};

interface BlkRequest {
  readonly what: string;
  readonly type: number;
  readonly sector: bigint;
  /** Bytes to write (device-readable data), or null. */
  readonly out: Uint8Array | null;
  /** Where device-written data goes, or null. */
  readonly dest: Uint8Array | null;
  readonly dataLen: number;
  readonly segments: number;
  /** The disk's own buffer `dest` or `out` lies in (no bounce buffer), or null. */
  readonly own: OwnBuffer | null;
  slot: number;
  data: VirtioDmaBuffer | null;
  settled: boolean;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** A buffer from {@link VirtioBlk.allocBuffer}: DMA memory the program reads and writes in place. */
interface OwnBuffer {
  readonly dma: VirtioDmaBuffer;
  /** The program's view: `dma` from `VIRTIO_BLK_DATA_SKEW` on. */
  readonly bytes: Uint8Array;
  /** Requests posted with it and not yet returned by the device. */
  busy: number;
}

/**
 * One disk bound by {@link VirtioBlkDriver} (`struct virtio_blk`). Requests are promises; many may
 * be in flight at once (up to what the ring holds); a request that finds no room waits in order.
 *
 * @example
 * const disk = await blkDriver.waitForDevice({ signal });
 * await disk.write(0, new Uint8Array(4096).fill(0xab));
 * await disk.flush();
 * const back = await disk.read(0, 8); // 8 sectors
 */
export class VirtioBlk extends EventEmitter<VirtioBlkEvents> {
  readonly vdev: VirtioDevice;
  /** VIRTIO_BLK_F_RO: writes, discards and write-zeroes fail with `EROFS`. */
  readonly readOnly: boolean;
  /** VIRTIO_BLK_F_FLUSH: {@link flush} sends a FLUSH request (else the cache is write-through). */
  readonly canFlush: boolean;
  /** VIRTIO_BLK_F_DISCARD. */
  readonly canDiscard: boolean;
  /** VIRTIO_BLK_F_WRITE_ZEROES. */
  readonly canWriteZeroes: boolean;
  /** `blk_size` with VIRTIO_BLK_F_BLK_SIZE, else 512: the optimal I/O unit (sectors stay 512 bytes). */
  readonly blockSize: number;
  readonly counters: VirtioBlkCounters = { completed: 0, failed: 0, bytesRead: 0, bytesWritten: 0 };

  #capacity: bigint;
  #limits: VirtioBlkLimits;
  #vq!: VirtioQueue<BlkRequest>;
  #hdrs!: DmaSlab;
  #room!: RoomQueue;
  readonly #inFlight = new Set<BlkRequest>();
  readonly #cache = new Map<number, VirtioDmaBuffer[]>();
  /** Buffers of {@link allocBuffer}, by their view. */
  readonly #own = new Map<Uint8Array, OwnBuffer>();
  #cachedBytes = 0;
  #broken: MicError | null = null;
  #removed = false;
  readonly #modern: boolean;
  readonly #log: Logger;

  /** @internal built by {@link VirtioBlkDriver} */
  constructor(vdev: VirtioDevice, options: VirtioBlkDriverOptions, log: Logger) {
    super();
    this.vdev = vdev;
    this.#log = log;
    this.#modern = vdev.hasFeature(VIRTIO_F.VERSION_1);
    if (vdev.config.configSize < 8) {
      throw new MicError(
        'EINVAL',
        `virtio-blk ${vdev.name}: config space of ${vdev.config.configSize} bytes has no capacity`,
      );
    }
    this.#capacity = vdev.readConfigU64(VIRTIO_BLK_CONFIG.CAPACITY);
    this.readOnly = vdev.hasFeature(VIRTIO_BLK_F.RO);
    this.canFlush = vdev.hasFeature(VIRTIO_BLK_F.FLUSH);
    this.canDiscard = vdev.hasFeature(VIRTIO_BLK_F.DISCARD);
    this.canWriteZeroes = vdev.hasFeature(VIRTIO_BLK_F.WRITE_ZEROES);
    const blkSize = vdev.hasFeature(VIRTIO_BLK_F.BLK_SIZE)
      ? vdev.readConfigU32(VIRTIO_BLK_CONFIG.BLK_SIZE)
      : 0;
    // A power of two from 512 to 64 KiB, else the sector size (a device's odd value is ignored).
    this.blockSize =
      blkSize >= 512 && blkSize <= 65536 && (blkSize & (blkSize - 1)) === 0
        ? blkSize
        : VIRTIO_BLK_SECTOR_SIZE;
    const segSize = options.maxSegmentSize ?? VIRTIO_BLK_DEFAULT_SEGMENT_SIZE;
    checkInt('virtio-blk max segment size', segSize, VIRTIO_BLK_SECTOR_SIZE, 2 ** 31);
    const sizeMax = vdev.hasFeature(VIRTIO_BLK_F.SIZE_MAX)
      ? vdev.readConfigU32(VIRTIO_BLK_CONFIG.SIZE_MAX)
      : 0;
    const segMax = vdev.hasFeature(VIRTIO_BLK_F.SEG_MAX) ? vdev.readConfigU32(VIRTIO_BLK_CONFIG.SEG_MAX) : 0;
    const u32 = (off: number, ifZero: number): number => vdev.readConfigU32(off) || ifZero;
    this.#limits = {
      // segMax and maxRequestSectors are final once the queue size is known (init).
      segMax: Math.max(1, segMax),
      maxSegmentSize: sizeMax > 0 ? Math.min(segSize, sizeMax) : segSize,
      maxRequestSectors: 1,
      maxDiscardSectors: this.canDiscard ? u32(VIRTIO_BLK_CONFIG.MAX_DISCARD_SECTORS, 0xffffffff) : 0,
      maxDiscardSeg: this.canDiscard
        ? Math.min(u32(VIRTIO_BLK_CONFIG.MAX_DISCARD_SEG, MAX_DISCARD_SEGMENTS), MAX_DISCARD_SEGMENTS)
        : 0,
      maxWriteZeroesSectors: this.canWriteZeroes
        ? u32(VIRTIO_BLK_CONFIG.MAX_WRITE_ZEROES_SECTORS, 0xffffffff)
        : 0,
      maxWriteZeroesSeg: this.canWriteZeroes
        ? Math.min(u32(VIRTIO_BLK_CONFIG.MAX_WRITE_ZEROES_SEG, 1), MAX_DISCARD_SEGMENTS)
        : 0,
    };
  }

  /** @internal Sets up the request queue and its header slab (`init_vq`). */
  async init(): Promise<void> {
    const vdev = this.vdev;
    const [vq] = await vdev.findVqs<BlkRequest>([{ name: 'req.0', callback: () => this.#onDone() }]);
    if (!vq) throw new MicError('ENOENT', `virtio-blk ${vdev.name}: no request queue`);
    this.#vq = vq;
    if (vq.num < 4) {
      throw new MicError('EINVAL', `virtio-blk ${vdev.name}: a queue of ${vq.num} descriptors is too small`);
    }
    // Header, data segments and status must fit in the ring (no indirect tables on VOP).
    const segMax = Math.min(this.#limits.segMax, vq.num - 2);
    const maxBytes = Math.min(segMax * this.#limits.maxSegmentSize, 2 ** 31);
    const maxRequestSectors = Math.max(1, Math.floor(maxBytes / VIRTIO_BLK_SECTOR_SIZE));
    this.#limits = Object.freeze({ ...this.#limits, segMax, maxRequestSectors });
    this.#hdrs = new DmaSlab(vdev.dma, vq.num, HDR_SLOT);
    // Requests posted in one turn (lanes that each resubmit after an interrupt) kick once.
    const kick = new DeferredKick(() => {
      if (this.#removed || this.#broken) return;
      if (!vq.kick())
        this.#break(new MicError('EIO', `virtio-blk ${vdev.name}: the device cannot be notified`));
    });
    this.#room = new RoomQueue({
      what: `virtio-blk ${vdev.name} request`,
      fits: (need) => this.#hdrs.free > 0 && vq.numFree >= descriptorsFor(vdev, need),
      kick: () => kick.request(),
    });
  }

  /** Limits of one request, from the config space and the queue size. */
  get limits(): VirtioBlkLimits {
    return this.#limits;
  }

  /** @internal Nothing to post before the first request. */
  start(): void {}

  /** Capacity in 512-byte sectors (it changes on a config change). */
  get capacity(): bigint {
    return this.#capacity;
  }

  /** The queue size. */
  get queueSize(): number {
    return this.#vq.num;
  }

  /** Requests posted and not completed. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Requests waiting for ring room. */
  get waiting(): number {
    return this.#room.waiting;
  }

  /** Why the disk stopped working (a broken queue or a reset request), or null. */
  get broken(): MicError | null {
    return this.#broken;
  }

  /** Reads `count` sectors from `sector` (`VIRTIO_BLK_T_IN`). */
  async read(sector: number | bigint, count: number, options: BlkRequestOptions = {}): Promise<Uint8Array> {
    checkInt('virtio-blk read sector count', count, 1, 2 ** 31 / VIRTIO_BLK_SECTOR_SIZE);
    const dest = new Uint8Array(count * VIRTIO_BLK_SECTOR_SIZE);
    await this.readInto(sector, dest, options);
    return dest;
  }

  /** Reads `dest.length` bytes (a multiple of 512) from `sector` into `dest`. */
  async readInto(sector: number | bigint, dest: Uint8Array, options: BlkRequestOptions = {}): Promise<void> {
    const count = this.#sectorsOf('read', dest.length);
    const start = this.#checkRange('read', sector, count);
    await this.#split(start, count, (s, off, n) =>
      this.#submit(
        {
          what: `read of ${n} sectors at ${s}`,
          type: VIRTIO_BLK_T.IN,
          sector: s,
          out: null,
          dest: dest.subarray(off, off + n * VIRTIO_BLK_SECTOR_SIZE),
        },
        options.signal,
      ),
    );
  }

  /** Writes `data` (a multiple of 512 bytes) at `sector` (`VIRTIO_BLK_T_OUT`). */
  async write(sector: number | bigint, data: Uint8Array, options: BlkRequestOptions = {}): Promise<void> {
    const count = this.#sectorsOf('write', data.length);
    this.#checkWritable('write');
    const start = this.#checkRange('write', sector, count);
    await this.#split(start, count, (s, off, n) =>
      this.#submit(
        {
          what: `write of ${n} sectors at ${s}`,
          type: VIRTIO_BLK_T.OUT,
          sector: s,
          out: data.subarray(off, off + n * VIRTIO_BLK_SECTOR_SIZE),
          dest: null,
        },
        options.signal,
      ),
    );
  }

  /**
   * A buffer of `bytes` bytes in memory the device reaches (`bytes` at least 1), zeroed, for
   * {@link readInto} and {@link write} without a bounce buffer: a read whose destination lies in
   * it (the buffer or a subarray) has the device write the data there, a write whose data lies in
   * it has the device read it from there, as Linux's block layer hands the device the pages of
   * the request (no copy on the card). Otherwise it is an ordinary `Uint8Array`.
   *
   * What differs from a program's own array: a read that fails or is cancelled may leave any
   * bytes of its range changed (the device may have written some, and a cancelled request is
   * still completed by the device later), and the data of a write must not change until its
   * promise settles. Give it back with {@link freeBuffer}, also after the disk was removed (the
   * removal leaves it to the program, which may still hold the array). Where the card's DMA
   * memory has no byte view, this is a plain array and requests on it copy as usual.
   */
  allocBuffer(bytes: number): Uint8Array {
    checkInt('virtio-blk buffer size', bytes, 1, 2 ** 31 - VIRTIO_BLK_DATA_SKEW);
    this.#checkUsable();
    const dma = this.vdev.dma.alloc(bytes + VIRTIO_BLK_DATA_SKEW);
    if (!(dma.va instanceof BufferMemory)) {
      this.vdev.dma.free(dma);
      return new Uint8Array(bytes);
    }
    const view = dma.va.bytes(VIRTIO_BLK_DATA_SKEW, bytes);
    this.#own.set(view, { dma, bytes: view, busy: 0 });
    return view;
  }

  /**
   * Frees a buffer of {@link allocBuffer} (a no-op for any other array, or one freed already). The
   * array must not be used after this: its memory goes back to the card's DMA allocator.
   * @throws MicError EBUSY while a request posted with it is still with the device
   */
  freeBuffer(buf: Uint8Array): void {
    const own = this.#own.get(buf);
    if (!own) return;
    if (own.busy > 0) {
      throw new MicError(
        'EBUSY',
        `virtio-blk ${this.vdev.name}: a buffer with ${own.busy} requests at the device cannot be freed`,
      );
    }
    this.#own.delete(buf);
    this.vdev.dma.free(own.dma);
  }

  /** The {@link allocBuffer} buffer `a` lies in, or null. */
  #ownOf(a: Uint8Array | null): OwnBuffer | null {
    if (a === null || this.#own.size === 0) return null;
    const exact = this.#own.get(a);
    if (exact) return exact;
    for (const own of this.#own.values()) {
      const b = own.bytes;
      if (
        a.buffer === b.buffer &&
        a.byteOffset >= b.byteOffset &&
        a.byteOffset + a.length <= b.byteOffset + b.length
      ) {
        return own;
      }
    }
    return null;
  }

  /**
   * Makes completed writes stable (`VIRTIO_BLK_T_FLUSH`). Without VIRTIO_BLK_F_FLUSH the device
   * has a write-through cache (virtio 1.2 §5.2.5.1) and this resolves at once, as Linux drops
   * the flush of a queue without a write cache.
   */
  async flush(options: BlkRequestOptions = {}): Promise<void> {
    if (!this.canFlush) {
      this.#checkUsable();
      return;
    }
    await this.#submit(
      { what: 'flush', type: VIRTIO_BLK_T.FLUSH, sector: 0n, out: null, dest: null },
      options.signal,
    );
  }

  /**
   * The device id string (`VIRTIO_BLK_T_GET_ID`, 20 bytes): the ASCII serial up to its first
   * NUL. A device without one answers UNSUPP (`EOPNOTSUPP`).
   */
  async getId(options: BlkRequestOptions = {}): Promise<string> {
    const dest = new Uint8Array(VIRTIO_BLK_ID_BYTES);
    await this.#submit(
      { what: 'get-id', type: VIRTIO_BLK_T.GET_ID, sector: 0n, out: null, dest },
      options.signal,
    );
    const end = dest.indexOf(0);
    return String.fromCharCode(...dest.subarray(0, end < 0 ? dest.length : end));
  }

  /**
   * Discards `count` sectors from `sector` (`VIRTIO_BLK_T_DISCARD`, VIRTIO_BLK_F_DISCARD): the
   * range is cut into segments of `maxDiscardSectors`, `maxDiscardSeg` per request.
   */
  async discard(sector: number | bigint, count: number, options: BlkRequestOptions = {}): Promise<void> {
    if (!this.canDiscard) throw this.#unsupported('discard', 'VIRTIO_BLK_F_DISCARD');
    await this.#ranges(
      'discard',
      VIRTIO_BLK_T.DISCARD,
      sector,
      count,
      this.limits.maxDiscardSectors,
      this.limits.maxDiscardSeg,
      0,
      options.signal,
    );
  }

  /**
   * Zeroes `count` sectors from `sector` (`VIRTIO_BLK_T_WRITE_ZEROES`,
   * VIRTIO_BLK_F_WRITE_ZEROES): later reads of the range return zeroes.
   */
  async writeZeroes(
    sector: number | bigint,
    count: number,
    options: BlkWriteZeroesOptions = {},
  ): Promise<void> {
    if (!this.canWriteZeroes) throw this.#unsupported('write-zeroes', 'VIRTIO_BLK_F_WRITE_ZEROES');
    await this.#ranges(
      'write-zeroes',
      VIRTIO_BLK_T.WRITE_ZEROES,
      sector,
      count,
      this.limits.maxWriteZeroesSectors,
      this.limits.maxWriteZeroesSeg,
      options.unmap ? 1 : 0,
      options.signal,
    );
  }

  #unsupported(op: string, feature: string): MicError {
    return new MicError('EOPNOTSUPP', `virtio-blk ${this.vdev.name}: ${op} needs ${feature}, not negotiated`);
  }

  async #ranges(
    op: string,
    type: number,
    sector: number | bigint,
    count: number,
    perSegment: number,
    perRequest: number,
    flags: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    checkInt(`virtio-blk ${op} sector count`, count, 1, Number.MAX_SAFE_INTEGER);
    this.#checkWritable(op);
    const start = this.#checkRange(op, sector, count);
    // The segments, then requests of up to perRequest segments each.
    const segs: [bigint, number][] = [];
    for (let done = 0; done < count;) {
      const n = Math.min(perSegment, count - done);
      segs.push([start + BigInt(done), n]);
      done += n;
    }
    const requests: Promise<void>[] = [];
    for (let i = 0; i < segs.length; i += perRequest) {
      const group = segs.slice(i, i + perRequest);
      const out = new Uint8Array(group.length * VIRTIO_BLK_DISCARD_SEGMENT_SIZE);
      const dv = new DataView(out.buffer);
      group.forEach(([s, n], k) => {
        dv.setBigUint64(k * 16, s, true);
        dv.setUint32(k * 16 + 8, n, true);
        dv.setUint32(k * 16 + 12, flags, true);
      });
      const first = group[0]!;
      requests.push(
        this.#submit(
          { what: `${op} of ${group.length} ranges from ${first[0]}`, type, sector: 0n, out, dest: null },
          signal,
        ),
      );
    }
    await settleAll(requests);
  }

  /** Splits a transfer of `count` sectors into requests of `maxRequestSectors`, all in flight. */
  async #split(
    start: bigint,
    count: number,
    one: (sector: bigint, byteOffset: number, sectors: number) => Promise<void>,
  ): Promise<void> {
    const max = this.limits.maxRequestSectors;
    if (count <= max) return one(start, 0, count);
    const parts: Promise<void>[] = [];
    for (let done = 0; done < count; done += max) {
      parts.push(one(start + BigInt(done), done * VIRTIO_BLK_SECTOR_SIZE, Math.min(max, count - done)));
    }
    await settleAll(parts);
  }

  #sectorsOf(op: string, bytes: number): number {
    if (bytes === 0 || bytes % VIRTIO_BLK_SECTOR_SIZE !== 0) {
      throw new MicError(
        'EINVAL',
        `virtio-blk ${op} of ${bytes} bytes: the length must be a positive multiple of ${VIRTIO_BLK_SECTOR_SIZE}`,
        { details: { bytes } },
      );
    }
    return bytes / VIRTIO_BLK_SECTOR_SIZE;
  }

  #checkWritable(op: string): void {
    if (this.readOnly) {
      throw new MicError('EROFS', `virtio-blk ${this.vdev.name}: ${op} refused, the device is read-only`);
    }
  }

  /** The start as a bigint, checked: virtio 1.2 §5.2.6.2, no request beyond `capacity`. */
  #checkRange(op: string, sector: number | bigint, count: number): bigint {
    let s: bigint;
    if (typeof sector === 'bigint') {
      s = sector;
    } else if (Number.isSafeInteger(sector)) {
      s = BigInt(sector);
    } else {
      throw new MicError('EINVAL', `virtio-blk ${op}: sector ${String(sector)} is not an integer`);
    }
    const cap = this.#capacity;
    if (s < 0n || s + BigInt(count) > cap) {
      throw new MicError(
        'EINVAL',
        `virtio-blk ${this.vdev.name}: ${op} of ${count} sectors at ${s} is outside the ${cap}-sector disk`,
        { details: { sector: s, count, capacity: cap } },
      );
    }
    return s;
  }

  #checkUsable(): void {
    if (this.#removed) throw new MicError('ENODEV', `virtio-blk ${this.vdev.name} was removed`);
    if (this.#broken) throw this.#broken;
  }

  /** Queues one request and resolves when the device completed it. */
  #submit(
    r: Pick<BlkRequest, 'what' | 'type' | 'sector' | 'out' | 'dest'>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    this.#checkUsable();
    const dataLen = r.out?.length ?? r.dest?.length ?? 0;
    const segments = dataLen === 0 ? 0 : Math.ceil(dataLen / this.limits.maxSegmentSize);
    const own = this.#ownOf(r.dest ?? r.out);
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const req: BlkRequest = {
      what: r.what,
      type: r.type,
      sector: r.sector,
      out: r.out,
      dest: r.dest,
      dataLen,
      segments,
      own,
      slot: -1,
      data: null,
      settled: false,
      resolve,
      reject,
    };
    const posted = this.#room.run(segments + 2, () => this.#post(req), signal);
    posted.catch((err: unknown) => this.#settle(req, err));
    if (signal) {
      const onAbort = (): void => {
        this.#settle(
          req,
          new MicError('ECANCELED', `virtio-blk ${r.what} was cancelled`, { cause: signal.reason }),
        );
      };
      signal.addEventListener('abort', onAbort, { once: true });
      void done.then(
        () => signal.removeEventListener('abort', onAbort),
        () => signal.removeEventListener('abort', onAbort),
      );
    }
    return done;
  }

  /** Builds the chain of `req` in its header slot and data buffer, and adds it. */
  #post(req: BlkRequest): boolean {
    if (req.settled) return true; // cancelled meanwhile: nothing to post
    const slot = this.#hdrs.take();
    if (slot < 0) return false;
    let data: VirtioDmaBuffer | null = null;
    try {
      let dataAddr = 0;
      const own = req.own;
      if (own) {
        const view = (req.dest ?? req.out)!;
        dataAddr = own.dma.addr + VIRTIO_BLK_DATA_SKEW + (view.byteOffset - own.bytes.byteOffset);
      } else if (req.dataLen > 0) {
        data = this.#allocData(req.dataLen);
        if (req.out) data.va.write(VIRTIO_BLK_DATA_SKEW, req.out);
        dataAddr = data.addr + VIRTIO_BLK_DATA_SKEW;
      }
      const va = this.#hdrs.va;
      const at = this.#hdrs.offset(slot);
      va.writeU32(at, req.type);
      va.writeU32(at + 4, 0);
      va.writeBigU64(at + 8, req.sector);
      va.writeU8(at + STATUS_AT, STATUS_UNSET);
      const hdr = { addr: this.#hdrs.addr(slot), len: VIRTIO_BLK_OUTHDR_SIZE };
      const status = { addr: this.#hdrs.addr(slot, STATUS_AT), len: 1 };
      const segs = req.dataLen > 0 ? segmentsOf(dataAddr, req.dataLen, this.limits.maxSegmentSize) : [];
      const deviceWrites = req.dest !== null;
      req.slot = slot;
      req.data = data;
      const ok = tryAdd(
        this.#vq,
        deviceWrites ? [hdr] : [hdr, ...segs],
        deviceWrites ? [...segs, status] : [status],
        req,
      );
      if (!ok) {
        req.slot = -1;
        req.data = null;
        this.#hdrs.put(slot);
        if (data) this.#freeData(data);
        return false;
      }
      if (own) own.busy++;
      this.#inFlight.add(req);
      return true;
    } catch (err) {
      if (req.slot < 0) {
        this.#hdrs.put(slot);
        if (data) this.#freeData(data);
      }
      req.slot = -1;
      req.data = null;
      throw err;
    }
  }

  /** `virtblk_done`: completes every used request, then lets waiting requests in. */
  #onDone(): void {
    const vq = this.#vq;
    drainUsed(vq, (req, len) => this.#complete(req, len));
    if (vq.broken && !this.#broken) {
      this.#break(
        vq.ring.broken ?? new MicError('EIO', `virtio-blk ${this.vdev.name}: the request queue broke`),
      );
    }
    if (!this.#broken) this.#room.pump();
  }

  #complete(req: BlkRequest, len: number): void {
    this.#inFlight.delete(req);
    // Read once: the device may still write it.
    const status = this.#hdrs.va.readU8(this.#hdrs.offset(req.slot) + STATUS_AT);
    let err: MicError | null = null;
    if (len === 0) {
      err = new MicError(
        'EIO',
        `virtio-blk ${this.vdev.name}: ${req.what}: the device returned it unprocessed (used length 0)`,
      );
    } else if (this.#modern && req.dest && len < req.dataLen + 1) {
      err = new MicError(
        'EIO',
        `virtio-blk ${this.vdev.name}: ${req.what}: the device wrote ${len} bytes, ${req.dataLen + 1} expected`,
        { details: { len, expected: req.dataLen + 1 } },
      );
    } else if (status !== VIRTIO_BLK_S.OK) {
      err = statusError(this.vdev.name, req.what, status);
    }
    if (!err && req.dest && req.data && !req.settled && !req.own)
      req.data.va.read(VIRTIO_BLK_DATA_SKEW, req.dest);
    this.#release(req);
    if (err) {
      this.counters.failed++;
    } else {
      this.counters.completed++;
      if (req.type === VIRTIO_BLK_T.IN) this.counters.bytesRead += req.dataLen;
      if (req.type === VIRTIO_BLK_T.OUT) this.counters.bytesWritten += req.dataLen;
    }
    this.#settle(req, err);
  }

  /** Returns the header slot and data buffer of a request the device no longer holds. */
  #release(req: BlkRequest): void {
    if (req.slot >= 0) {
      this.#hdrs.put(req.slot);
      if (req.own) req.own.busy--;
    }
    if (req.data) this.#freeData(req.data);
    req.slot = -1;
    req.data = null;
  }

  #settle(req: BlkRequest, err: unknown): void {
    if (req.settled) return;
    req.settled = true;
    if (err === null || err === undefined) req.resolve();
    else req.reject(err);
  }

  /**
   * The disk cannot go on (a broken ring, a device that needs a reset): every request fails.
   * Buffers stay with the requests until remove resets the device (it may still write them).
   */
  #break(err: MicError): void {
    if (this.#broken) return;
    this.#broken = err;
    this.#log.error(`virtio-blk ${this.vdev.name}: ${err.message}`);
    this.#room.fail(err);
    for (const req of this.#inFlight) this.#settle(req, err);
    safeEmit(this.#log, this, 'broken', err);
  }

  /** @internal `virtblk_config_changed`: capacity, and NEEDS_RESET. */
  configChanged(): void {
    if ((this.vdev.getStatus() & VIRTIO_CONFIG_S.NEEDS_RESET) !== 0) {
      this.#break(new MicError('EIO', `virtio-blk ${this.vdev.name}: the device needs a reset`));
      return;
    }
    const cap = this.vdev.readConfigU64(VIRTIO_BLK_CONFIG.CAPACITY);
    if (cap === this.#capacity) return;
    this.#log.info(`virtio-blk ${this.vdev.name}: capacity ${this.#capacity} -> ${cap} sectors`);
    this.#capacity = cap;
    safeEmit(this.#log, this, 'capacity', cap);
  }

  /**
   * @internal `virtblk_remove`: resets the device (it stops touching our buffers), fails what is
   * left with `ENODEV`, deletes the queue and frees every buffer.
   */
  async shutdown(): Promise<void> {
    this.#removed = true;
    const gone = new MicError('ENODEV', `virtio-blk ${this.vdev.name} was removed`);
    this.#room?.fail(gone);
    try {
      await this.vdev.reset();
    } finally {
      if (this.#vq) {
        for (const req of this.#vq.detachUnused()) {
          this.#inFlight.delete(req);
          this.#release(req);
          this.#settle(req, gone);
        }
      }
      for (const req of this.#inFlight) {
        this.#release(req);
        this.#settle(req, gone);
      }
      this.#inFlight.clear();
      await this.vdev.delVqs();
      for (const list of this.#cache.values()) for (const b of list) this.vdev.dma.free(b);
      this.#cache.clear();
      this.#cachedBytes = 0;
      this.#hdrs?.release(this.vdev.dma);
      safeEmit(this.#log, this, 'remove');
    }
  }

  /**
   * A data buffer for `len` bytes from `VIRTIO_BLK_DATA_SKEW` on: a cached one of the same
   * size class, or a new one.
   */
  #allocData(len: number): VirtioDmaBuffer {
    const size = sizeClass(len) + VIRTIO_BLK_DATA_SKEW;
    const b = this.#cache.get(size)?.pop();
    if (b) {
      this.#cachedBytes -= b.size;
      return b;
    }
    return this.vdev.dma.alloc(size);
  }

  #freeData(b: VirtioDmaBuffer): void {
    if (this.#removed || this.#cachedBytes + b.size > DATA_CACHE_BYTES) {
      this.vdev.dma.free(b);
      return;
    }
    let list = this.#cache.get(b.size);
    if (!list) this.#cache.set(b.size, (list = []));
    list.push(b);
    this.#cachedBytes += b.size;
  }
}

/** The size class of a data buffer: a power of two of at least 64 bytes. */
function sizeClass(len: number): number {
  let s = 64;
  while (s < len) s *= 2;
  return s;
}

/** Descriptors for `len` bytes at `addr`, each at most `max` bytes. */
function segmentsOf(addr: number, len: number, max: number): { addr: number; len: number }[] {
  const segs: { addr: number; len: number }[] = [];
  for (let off = 0; off < len; off += max) segs.push({ addr: addr + off, len: Math.min(max, len - off) });
  return segs;
}

function statusError(dev: string, what: string, status: number): MicError {
  const details = { status };
  if (status === VIRTIO_BLK_S.IOERR) {
    return new MicError('EIO', `virtio-blk ${dev}: ${what} failed: the device reported VIRTIO_BLK_S_IOERR`, {
      details,
    });
  }
  if (status === VIRTIO_BLK_S.UNSUPP) {
    return new MicError('EOPNOTSUPP', `virtio-blk ${dev}: ${what}: the device reported VIRTIO_BLK_S_UNSUPP`, {
      details,
    });
  }
  return new MicError(
    'EIO',
    `virtio-blk ${dev}: ${what}: status byte 0x${status.toString(16).padStart(2, '0')} is not a virtio-blk status${status === STATUS_UNSET ? ' (the device did not write it)' : ''}`,
    { details },
  );
}

/** Waits for every promise, then rejects with the first failure (all requests are accounted for). */
async function settleAll(parts: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(parts);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

/**
 * The virtio-blk driver (`virtio_blk`): register it on the card's virtio bus; every block device
 * it binds becomes a {@link VirtioBlk} (`add` event, {@link devices}, {@link waitForDevice}).
 *
 * Features: SIZE_MAX, SEG_MAX, RO, BLK_SIZE, FLUSH, DISCARD, WRITE_ZEROES (each dropped in
 * `validate` when the device's config space is too short for its field). Not: GEOMETRY,
 * TOPOLOGY, CONFIG_WCE, MQ (one request queue), the legacy BARRIER and SCSI.
 *
 * @example
 * const blk = new VirtioBlkDriver();
 * await virtioBus.registerDriver(blk);
 * const disk = await blk.waitForDevice({ signal: AbortSignal.timeout(10_000) });
 */
export class VirtioBlkDriver extends VirtioDriverBase<VirtioBlk> implements VirtioDriver {
  readonly name = 'virtio_blk';
  readonly idTable = [
    { device: VIRTIO_ID.BLOCK, vendor: VIRTIO_DEV_ANY_ID },
    { device: 0, vendor: 0 },
  ];
  readonly featureTable = BLK_FEATURES;
  readonly featureTableLegacy = BLK_FEATURES;
  readonly #options: VirtioBlkDriverOptions;

  constructor(options: VirtioBlkDriverOptions = {}) {
    super(options.logger ?? nullLogger);
    if (options.maxSegmentSize !== undefined) {
      checkInt('virtio-blk max segment size', options.maxSegmentSize, VIRTIO_BLK_SECTOR_SIZE, 2 ** 31);
    }
    this.#options = options;
  }

  protected readonly configFields = BLK_FEATURE_FIELDS;

  /** `virtblk_probe` (the base sets it up, sets DRIVER_OK, emits `add`). */
  protected create(vdev: VirtioDevice): VirtioBlk {
    return new VirtioBlk(vdev, this.#options, this.log);
  }

  protected describe(disk: VirtioBlk): string {
    return `${disk.capacity} sectors${disk.readOnly ? ', read-only' : ''}`;
  }
}
