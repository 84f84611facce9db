/**
 * The virtio-blk backend on a raw image file: mpssd's `virtio_block` thread (reference §7.9),
 * done properly. Capacity is the file size in 512-byte sectors (rounded up), requests are IN,
 * OUT, FLUSH (fsync), GET_ID (the configured serial), DISCARD and WRITE_ZEROES, several at once
 * (fs.promises, not one blocking call at a time), each with a status byte that says what happened.
 *
 * Every request is checked before a byte moves: the header must be 16 readable bytes, the status
 * byte must be there, the data length a multiple of 512, and `sector * 512 + length` inside the
 * image (in 64-bit arithmetic: sector 2^64 − 1 is out of range, not a wrap-around). Reads past
 * the end of the file inside the last, partial sector return zeros; writes there are cut at the
 * end of the file. Nothing outside the image is ever read or written.
 *
 * @see virtio 1.2 §5.2 (block device)
 * @see samples/mic/mpssd/mpssd.c `virtio_block`, `open_backend`, `header_error_check`
 */
import { MicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { MIC_VRING_ENTRIES } from '@mic/mic-common';
import {
  VIRTIO_BLK_F,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_OUTHDR_SIZE,
  VIRTIO_BLK_S,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T,
  VIRTIO_F,
  VIRTIO_ID,
  checkQueueSize,
  decodeBlkOutHdr,
  encodeBlkConfig,
  encodeBlkSerial,
  featureBit,
  hasFeature,
} from '@mic/virtio';
import { type BlockFile, type OpenBlockFile, openBlockFile } from './block-file.js';
import { type ServeOptions, ServiceLoop, type VirtioBackend } from './service.js';
import type { BackendChain, BackendTransport, VirtioDeviceDescription } from './transport.js';

/** Bytes of one `struct virtio_blk_discard_write_zeroes` segment (virtio 1.2 §5.2.6). */
export const VIRTIO_BLK_DISCARD_SEGMENT_SIZE = 16;
/** `virtio_blk_discard_write_zeroes.flags` bit 0: the device may deallocate (WRITE_ZEROES only). */
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;
/** Most segments in one DISCARD or WRITE_ZEROES request offered (`max_discard_seg`, `max_write_zeroes_seg`). */
export const BLOCK_MAX_DISCARD_SEGMENTS = 16;
/** Most sectors in one DISCARD or WRITE_ZEROES segment offered (2 GiB). */
export const BLOCK_MAX_DISCARD_SECTORS = 1 << 22;
/** Requests in flight at most by default (the queue allows up to its size). */
export const BLOCK_DEFAULT_QUEUE_DEPTH = 32;

/** Most buffers in one merged `preadv` (below Linux's `IOV_MAX` of 1024). */
const MERGE_MAX_SEGMENTS = 1024;
/** Most bytes in one merged `preadv`. */
const MERGE_MAX_BYTES = 1 << 20;

/** A mapped read or write waiting to be merged with its neighbours. */
interface PendingIo {
  readonly views: readonly Uint8Array[];
  readonly at: number;
  readonly length: number;
  readonly resolve: (got: number) => void;
  readonly reject: (err: unknown) => void;
}

/** Bytes moved per file operation of one request (bounds the memory one request takes). */
const CHUNK = 1 << 20;
/** What {@link BlockBackend} `#read` returns when the status byte went out with the data. */
const STATUS_SENT = -1;
const ZEROS = new Uint8Array(64 << 10);
const SECTOR = BigInt(VIRTIO_BLK_SECTOR_SIZE);

/** The data buffer one request took from the pool (returned once the request completed). */
interface RequestBuffer {
  buf: Uint8Array | null;
}

/** Options of {@link BlockBackend.open}. */
export interface BlockBackendOptions {
  /** The raw image file (a regular file; its size fixes the capacity). */
  readonly path: string;
  /** Open the image read-only and offer VIRTIO_BLK_F_RO: every write fails with IOERR. */
  readonly readOnly?: boolean;
  /** What GET_ID returns: printable ASCII, at most 20 characters (default: empty, 20 NULs). */
  readonly serial?: string;
  /** Entries of the request queue (default 128, `MIC_VRING_ENTRIES`). */
  readonly queueSize?: number;
  /** `seg_max` offered (VIRTIO_BLK_F_SEG_MAX): data segments per request (default queue size − 2, 126 as mpssd). */
  readonly segMax?: number;
  /** Offer VIRTIO_BLK_F_BLK_SIZE with this logical block size (a power of two, 512 to 65536). */
  readonly blkSize?: number;
  /** Offer VIRTIO_BLK_F_FLUSH (default true); FLUSH requests run `fsync` either way. */
  readonly flush?: boolean;
  /** Offer VIRTIO_BLK_F_DISCARD (default: unless read-only). */
  readonly discard?: boolean;
  /** Offer VIRTIO_BLK_F_WRITE_ZEROES (default: unless read-only). */
  readonly writeZeroes?: boolean;
  /** Most requests in flight at once (default 32; the transport may allow fewer: VOP allows its queue size). */
  readonly queueDepth?: number;
  /**
   * Offer VIRTIO_RING_F_EVENT_IDX (default false, as mpssd; the card's virtio ring implements it,
   * and `@mic/demo` turns it on): with it the driver says, in
   * `used_event`, after which completion it wants its next interrupt, so a burst of completions
   * rings its doorbell once instead of once each (each ring may wake a sleeping thread), and the
   * device says in `avail_event` when it wants the next kick.
   */
  readonly eventIdx?: boolean;
  /** Opens the image (default {@link openBlockFile}); a wrapper can watch the file operations. */
  readonly openFile?: OpenBlockFile;
  readonly logger?: Logger;
}

/** Counters of a {@link BlockBackend}. */
export interface BlockBackendStats {
  requests: number;
  reads: number;
  writes: number;
  flushes: number;
  getIds: number;
  discards: number;
  writeZeroes: number;
  /** Bytes read from the image for the driver. */
  bytesRead: number;
  /** Bytes written to the image from the driver. */
  bytesWritten: number;
  /** Requests answered IOERR (out of range, read-only, I/O failure, malformed). */
  ioErrors: number;
  /** Requests answered UNSUPP. */
  unsupported: number;
  /** Requests without a status byte (returned with used length 0, not executed). */
  noStatus: number;
  /** Most requests that were in flight at once. */
  maxInFlight: number;
}

/**
 * A block device on an image file.
 *
 * @example
 * const blk = await BlockBackend.open({ path: '/var/mpss/mic0.img', serial: 'mic0-disk' });
 * const t = await VopBackendTransport.add(vop.control(0)!.open(), blk.description);
 * await blk.serve(t, { signal });
 */
export class BlockBackend implements VirtioBackend {
  readonly description: VirtioDeviceDescription;
  /** The image path. */
  readonly path: string;
  readonly readOnly: boolean;
  /** Sectors of 512 bytes: ceil(file size / 512). */
  readonly capacity: bigint;
  readonly #file: BlockFile;
  readonly #serial: Uint8Array;
  readonly #depth: number;
  readonly #log: Logger;
  readonly #loop: ServiceLoop;
  readonly #handlers = new Set<Promise<void>>();
  /**
   * Data buffers of finished requests, reused by the next ones (at most one per request in
   * flight): no allocation, no zero-filling per request on the data path.
   */
  readonly #buffers: Uint8Array[] = [];
  /** Mapped reads waiting for the pump to stop fetching, to be merged (see {@link #queueRead}). */
  #reads: PendingIo[] = [];
  /** Mapped writes, likewise (see {@link #queueWrite}). */
  #writes: PendingIo[] = [];
  #ioQueued = false;
  readonly #stats: BlockBackendStats = {
    requests: 0,
    reads: 0,
    writes: 0,
    flushes: 0,
    getIds: 0,
    discards: 0,
    writeZeroes: 0,
    bytesRead: 0,
    bytesWritten: 0,
    ioErrors: 0,
    unsupported: 0,
    noStatus: 0,
    maxInFlight: 0,
  };
  #negotiated = 0n;
  #closed = false;
  /** The last pump stopped because the depth was reached (see `#pump`). */
  #atDepth = false;

  private constructor(
    path: string,
    file: BlockFile,
    description: VirtioDeviceDescription,
    opts: { readOnly: boolean; serial: Uint8Array; depth: number; log: Logger },
  ) {
    this.path = path;
    this.#file = file;
    this.description = description;
    this.readOnly = opts.readOnly;
    this.capacity = (BigInt(file.size) + SECTOR - 1n) / SECTOR;
    this.#serial = opts.serial;
    this.#depth = opts.depth;
    this.#log = opts.log;
    this.#loop = new ServiceLoop(`virtio-blk ${path}`, opts.log);
  }

  /**
   * Opens the image and describes the device (features and config). Every bad option is one
   * MicError naming it: ENOENT (no such image), EISDIR (a directory), EACCES (no permission),
   * EINVAL (not a regular file, a serial that is not printable ASCII or longer than 20, a bad
   * queue size, seg_max, block size or queue depth).
   */
  static async open(options: BlockBackendOptions): Promise<BlockBackend> {
    const readOnly = options.readOnly ?? false;
    const queueSize = options.queueSize ?? MIC_VRING_ENTRIES;
    checkQueueSize(queueSize);
    if (queueSize < 4)
      throw new MicError(
        'EINVAL',
        `block queue size ${queueSize} leaves no room for a header, data and status`,
      );
    const segMax = options.segMax ?? queueSize - 2;
    if (!Number.isInteger(segMax) || segMax < 1 || segMax > queueSize - 2) {
      throw new MicError(
        'EINVAL',
        `seg_max ${String(segMax)} is not in [1, ${queueSize - 2}] (the queue size less the header and status descriptors)`,
      );
    }
    const blkSize = options.blkSize;
    if (
      blkSize !== undefined &&
      (!Number.isInteger(blkSize) || blkSize < 512 || blkSize > 65536 || (blkSize & (blkSize - 1)) !== 0)
    ) {
      throw new MicError('EINVAL', `block size ${String(blkSize)} is not a power of two in [512, 65536]`);
    }
    const serialText = options.serial ?? '';
    if (typeof serialText !== 'string' || serialText.length > VIRTIO_BLK_ID_BYTES) {
      throw new MicError(
        'EINVAL',
        `serial ${JSON.stringify(serialText)} is longer than ${VIRTIO_BLK_ID_BYTES} characters`,
      );
    }
    const serial = encodeBlkSerial(serialText);
    const depth = options.queueDepth ?? BLOCK_DEFAULT_QUEUE_DEPTH;
    if (!Number.isInteger(depth) || depth < 1 || depth > queueSize) {
      throw new MicError('EINVAL', `queue depth ${String(depth)} is not in [1, ${queueSize}]`);
    }
    const discard = options.discard ?? !readOnly;
    const writeZeroes = options.writeZeroes ?? !readOnly;
    if (readOnly && (options.discard || options.writeZeroes)) {
      throw new MicError('EINVAL', 'a read-only image offers neither DISCARD nor WRITE_ZEROES');
    }
    const file = await (options.openFile ?? openBlockFile)(options.path, readOnly);
    const capacity = (BigInt(file.size) + SECTOR - 1n) / SECTOR;
    let features = featureBit(VIRTIO_BLK_F.SEG_MAX);
    if (options.eventIdx ?? false) features |= featureBit(VIRTIO_F.RING_EVENT_IDX);
    if (readOnly) features |= featureBit(VIRTIO_BLK_F.RO);
    if (options.flush ?? true) features |= featureBit(VIRTIO_BLK_F.FLUSH);
    if (blkSize !== undefined) features |= featureBit(VIRTIO_BLK_F.BLK_SIZE);
    if (discard) features |= featureBit(VIRTIO_BLK_F.DISCARD);
    if (writeZeroes) features |= featureBit(VIRTIO_BLK_F.WRITE_ZEROES);
    const config = encodeBlkConfig({
      capacity,
      segMax,
      ...(blkSize === undefined ? {} : { blkSize }),
      ...(discard
        ? {
            maxDiscardSectors: BLOCK_MAX_DISCARD_SECTORS,
            maxDiscardSeg: BLOCK_MAX_DISCARD_SEGMENTS,
            discardSectorAlignment: 1,
          }
        : {}),
      ...(writeZeroes
        ? {
            maxWriteZeroesSectors: BLOCK_MAX_DISCARD_SECTORS,
            maxWriteZeroesSeg: BLOCK_MAX_DISCARD_SEGMENTS,
            writeZeroesMayUnmap: 1,
          }
        : {}),
    });
    const description: VirtioDeviceDescription = Object.freeze({
      deviceType: VIRTIO_ID.BLOCK,
      features,
      config,
      queueSizes: Object.freeze([queueSize]),
    });
    return new BlockBackend(options.path, file, description, {
      readOnly,
      serial,
      depth,
      log: options.logger ?? nullLogger,
    });
  }

  /** A copy of the counters. */
  stats(): BlockBackendStats {
    return { ...this.#stats };
  }

  async serve(transport: BackendTransport, options: ServeOptions = {}): Promise<void> {
    if (this.#closed) throw new MicError('EBADF', `block backend ${this.path} is closed`);
    try {
      await this.#loop.run(transport, (t) => this.#pump(t), options.signal);
    } finally {
      await Promise.all([...this.#handlers]);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#handlers]);
    await this.#file.close();
  }

  /**
   * Fetches every available request while fewer than the depth are in flight; each runs on its
   * own. A finished request asks for another pump only when this one stopped at the depth: when
   * it stopped at an empty ring, the driver's next notification brings the next pump (no fetch
   * that finds nothing after every completion). When it stops, the mapped reads and writes its
   * requests queued run, adjacent ones merged (see {@link #queueRead}, {@link #queueWrite}).
   */
  async #pump(t: BackendTransport): Promise<void> {
    this.#negotiated = t.negotiatedFeatures();
    const depth = Math.min(this.#depth, t.maxInFlight(0));
    this.#atDepth = false;
    try {
      await this.#fetch(t, depth);
    } finally {
      this.#runQueued();
    }
  }

  async #fetch(t: BackendTransport, depth: number): Promise<void> {
    while (this.#handlers.size < depth) {
      const chain = await t.nextChain(0);
      if (chain === null) return;
      const h: Promise<void> = this.#handle(chain).finally(() => {
        this.#handlers.delete(h);
        if (this.#atDepth) {
          this.#atDepth = false;
          this.#loop.poke();
        }
      });
      this.#handlers.add(h);
      if (this.#handlers.size > this.#stats.maxInFlight) this.#stats.maxInFlight = this.#handlers.size;
    }
    this.#atDepth = true;
  }

  async #handle(chain: BackendChain): Promise<void> {
    this.#stats.requests++;
    const io: RequestBuffer = { buf: null };
    let status: number | null;
    try {
      status = await this.#execute(chain, io);
    } catch (err) {
      this.#log.warn('virtio-blk: request failed', { path: this.path, head: chain.head, err });
      status = VIRTIO_BLK_S.IOERR;
    }
    try {
      if (status === null) {
        this.#stats.noStatus++;
      } else if (status !== STATUS_SENT) {
        if (status === VIRTIO_BLK_S.IOERR) this.#stats.ioErrors++;
        if (status === VIRTIO_BLK_S.UNSUPP) this.#stats.unsupported++;
        await this.#writeStatus(chain, status);
      }
      await chain.complete();
    } catch (err) {
      this.#log.warn('virtio-blk: completing a request failed', { path: this.path, head: chain.head, err });
    }
    // The transport may hold the written bytes until the completion: only now is the buffer free.
    if (io.buf !== null) this.#giveBuffer(io.buf);
  }

  /** A buffer of `n` bytes (a view of a pooled one when one is large enough), unzeroed. */
  #takeBuffer(io: RequestBuffer, n: number): Uint8Array {
    let buf = io.buf;
    if (buf === null || buf.length < n) {
      if (buf !== null) this.#giveBuffer(buf);
      const i = this.#buffers.findIndex((b) => b.length >= n);
      buf = i >= 0 ? this.#buffers.splice(i, 1)[0]! : new Uint8Array(n);
      io.buf = buf;
    }
    return buf.length === n ? buf : buf.subarray(0, n);
  }

  #giveBuffer(buf: Uint8Array): void {
    if (this.#buffers.length < this.#depth) this.#buffers.push(buf);
  }

  /** Pads the writable part to its last byte and writes the status there (virtio 1.2 §5.2.6). */
  async #writeStatus(chain: BackendChain, status: number): Promise<void> {
    let pad = chain.writable - chain.bytesWritten - 1;
    while (pad > 0) {
      const n = Math.min(pad, ZEROS.length);
      if ((await chain.write(n === ZEROS.length ? ZEROS : ZEROS.subarray(0, n))) !== n) return;
      pad -= n;
    }
    await chain.write(Uint8Array.of(status));
  }

  /** Runs one request; @returns its status, or null when it has no status byte (not executed) */
  async #execute(chain: BackendChain, io: RequestBuffer): Promise<number | null> {
    if (chain.writable < 1) {
      this.#log.warn('virtio-blk: request without a status byte, not executed', { head: chain.head });
      return null;
    }
    if (chain.readable < VIRTIO_BLK_OUTHDR_SIZE) {
      this.#log.warn('virtio-blk: request header is not 16 readable bytes', {
        head: chain.head,
        readable: chain.readable,
      });
      return VIRTIO_BLK_S.IOERR;
    }
    const raw = new Uint8Array(VIRTIO_BLK_OUTHDR_SIZE);
    if (chain.mapReadable) {
      // Copied out of the views at once: the driver may change its buffer, the copy is what counts.
      let at = 0;
      for (const v of chain.mapReadable(raw.length)) {
        raw.set(v, at);
        at += v.length;
      }
      if (at !== raw.length) return VIRTIO_BLK_S.IOERR;
    } else if ((await chain.read(raw)) !== raw.length) {
      return VIRTIO_BLK_S.IOERR;
    }
    const hdr = decodeBlkOutHdr(raw);
    switch (hdr.type) {
      case VIRTIO_BLK_T.IN:
        return this.#read(chain, hdr.sector, io);
      case VIRTIO_BLK_T.OUT:
        return this.#write(chain, hdr.sector, io);
      case VIRTIO_BLK_T.FLUSH:
        this.#stats.flushes++;
        await this.#file.sync();
        return VIRTIO_BLK_S.OK;
      case VIRTIO_BLK_T.GET_ID: {
        this.#stats.getIds++;
        if (chain.writable - 1 < VIRTIO_BLK_ID_BYTES) return VIRTIO_BLK_S.IOERR;
        await chain.write(this.#serial.slice());
        return VIRTIO_BLK_S.OK;
      }
      case VIRTIO_BLK_T.DISCARD:
      case VIRTIO_BLK_T.WRITE_ZEROES:
        return this.#zeroes(chain, hdr.type);
      default:
        this.#log.debug('virtio-blk: request type not supported', { type: hdr.type });
        return VIRTIO_BLK_S.UNSUPP;
    }
  }

  /**
   * The byte range `[sector * 512, + length)` when it is inside the image, else null. `length`
   * must be a multiple of 512 (virtio 1.2 §5.2.6.1).
   */
  #range(sector: bigint, length: number): number | null {
    if (length % VIRTIO_BLK_SECTOR_SIZE !== 0) return null;
    const end = sector * SECTOR + BigInt(length);
    if (end > this.capacity * SECTOR) return null;
    return Number(sector * SECTOR);
  }

  /**
   * IN: the data, then the status byte in the same write (the writable part is the data and the
   * status, so the last chunk carries both). @returns {@link STATUS_SENT}, or IOERR before that
   */
  async #read(chain: BackendChain, sector: bigint, io: RequestBuffer): Promise<number> {
    this.#stats.reads++;
    const length = chain.writable - 1;
    const at = this.#range(sector, length);
    if (at === null) return VIRTIO_BLK_S.IOERR;
    if (chain.mapWritable) return this.#readMapped(chain, chain.mapWritable(length + 1), at, length);
    for (let done = 0; ;) {
      const n = Math.min(CHUNK, length - done);
      const last = done + n === length;
      const buf = this.#takeBuffer(io, last ? n + 1 : n);
      const data = last ? buf.subarray(0, n) : buf;
      const got = await this.#file.read(data, at + done);
      // Bytes past the end of the file (the partial last sector) read as zeros.
      if (got < n) data.fill(0, got);
      if (last) buf[n] = VIRTIO_BLK_S.OK;
      if ((await chain.write(buf)) !== buf.length) return VIRTIO_BLK_S.IOERR;
      done += n;
      this.#stats.bytesRead += n;
      if (last) return STATUS_SENT;
    }
  }

  /**
   * IN on a chain with direct access: the file is read straight into the driver's buffers (`views`
   * of the whole writable part: the data, then the status byte), one vectored read for the whole
   * request, and the status byte set in place. Bytes past the end of the file read as zeros; a
   * failed read zeroes the data (a failed read returns zeros, never other bytes) and answers
   * IOERR. @returns {@link STATUS_SENT}, or IOERR when the chain died meanwhile
   */
  async #readMapped(
    chain: BackendChain,
    views: readonly Uint8Array[],
    at: number,
    length: number,
  ): Promise<number> {
    const last = views.at(-1);
    if (last === undefined || totalLength(views) !== length + 1) return VIRTIO_BLK_S.IOERR;
    const status = last.subarray(last.length - 1);
    const data = views.slice(0, -1);
    if (last.length > 1) data.push(last.subarray(0, last.length - 1));
    try {
      const got = await this.#queueRead(data, at, length);
      if (got < length) fillViews(data, got);
      status[0] = VIRTIO_BLK_S.OK;
      this.#stats.bytesRead += length;
    } catch (err) {
      if (chain.done) return VIRTIO_BLK_S.IOERR;
      this.#log.warn('virtio-blk: request failed', { path: this.path, head: chain.head, err });
      fillViews(data, 0);
      status[0] = VIRTIO_BLK_S.IOERR;
      this.#stats.ioErrors++;
    }
    return STATUS_SENT;
  }

  /**
   * Queues a mapped read of `length` bytes at `at` into `views`; the reads queued while the pump
   * fetches run together, adjacent ones merged into one `preadv` (sorted by offset, at most
   * {@link MERGE_MAX_SEGMENTS} segments and {@link MERGE_MAX_BYTES} bytes each), as QEMU's
   * virtio-blk merges sequential requests (`virtio_blk_submit_multireq`, hw/block/virtio-blk.c).
   * A driver's sequential requests in flight then cost one file call between them, not one each:
   * each call is a hand-off to libuv's thread pool and back. The pump runs the queued reads as
   * soon as it stopped fetching (with direct access a request reaches its read without waiting:
   * every request of the pump is queued by then); the end of the turn catches any other.
   * @returns bytes read into `views` (fewer only at the end of the file)
   */
  #queueRead(views: readonly Uint8Array[], at: number, length: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#reads.push({ views, at, length, resolve, reject });
      this.#queueTurn();
    });
  }

  /**
   * Queues a mapped write of `views` (`length` bytes) at `at`, merged with the adjacent writes
   * queued with it into one `pwritev` as {@link #queueRead} merges reads (virtio gives requests in
   * flight no order among themselves, and a FLUSH covers only writes completed before it).
   * Resolves once the bytes are in the file; a failed merged write fails every request in it.
   */
  #queueWrite(views: readonly Uint8Array[], at: number, length: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#writes.push({ views, at, length, resolve: () => resolve(), reject });
      this.#queueTurn();
    });
  }

  /** Runs the queued reads and writes at the end of this turn unless the pump does it first. */
  #queueTurn(): void {
    if (this.#ioQueued) return;
    this.#ioQueued = true;
    setImmediate(() => {
      this.#ioQueued = false;
      this.#runQueued();
    });
  }

  #runQueued(): void {
    if (this.#reads.length > 0) {
      const reads = this.#reads;
      this.#reads = [];
      this.#runMerged(reads, (views, at) => this.#readv(views, at));
    }
    if (this.#writes.length > 0) {
      const writes = this.#writes;
      this.#writes = [];
      this.#runMerged(writes, async (views, at) => {
        await this.#writev(views, at);
        return totalLength(views);
      });
    }
  }

  /** Sorts `ios` by offset and runs each run of adjacent ones as one vectored call of `io`. */
  #runMerged(ios: PendingIo[], io: (views: readonly Uint8Array[], at: number) => Promise<number>): void {
    ios.sort((a, b) => a.at - b.at);
    for (let i = 0; i < ios.length;) {
      const group = [ios[i]!];
      let segments = ios[i]!.views.length;
      let bytes = ios[i]!.length;
      for (i++; i < ios.length; i++) {
        const r = ios[i]!;
        const prev = group[group.length - 1]!;
        if (
          r.at !== prev.at + prev.length ||
          segments + r.views.length > MERGE_MAX_SEGMENTS ||
          bytes + r.length > MERGE_MAX_BYTES
        ) {
          break;
        }
        group.push(r);
        segments += r.views.length;
        bytes += r.length;
      }
      const views = group.length === 1 ? group[0]!.views : group.flatMap((r) => r.views);
      io(views, group[0]!.at).then(
        (got) => {
          for (const r of group) r.resolve(Math.max(0, Math.min(r.length, got - (r.at - group[0]!.at))));
        },
        (err: unknown) => {
          for (const r of group) r.reject(err);
        },
      );
    }
  }

  /** Reads into `bufs` in order from `at` (one `preadv` when the file has it). @returns bytes read */
  async #readv(bufs: readonly Uint8Array[], at: number): Promise<number> {
    if (this.#file.readv) return this.#file.readv(bufs, at);
    let done = 0;
    for (const b of bufs) {
      const n = await this.#file.read(b, at + done);
      done += n;
      if (n < b.length) break;
    }
    return done;
  }

  async #write(chain: BackendChain, sector: bigint, io: RequestBuffer): Promise<number> {
    this.#stats.writes++;
    // virtio 1.2 §5.2.6.2: with VIRTIO_BLK_F_RO a write is IOERR and writes no data.
    if (this.readOnly) return VIRTIO_BLK_S.IOERR;
    const length = chain.readable - VIRTIO_BLK_OUTHDR_SIZE;
    const at = this.#range(sector, length);
    if (at === null) return VIRTIO_BLK_S.IOERR;
    const size = this.#file.size;
    if (chain.mapReadable) {
      // Straight from the driver's buffers, cut at the end of the file, in one vectored write.
      const views = chain.mapReadable(length);
      if (totalLength(views) !== length) return VIRTIO_BLK_S.IOERR;
      const keep = Math.max(0, Math.min(length, size - at));
      if (keep > 0) await this.#queueWrite(keep === length ? views : cutViews(views, keep), at, keep);
      this.#stats.bytesWritten += length;
      return VIRTIO_BLK_S.OK;
    }
    for (let done = 0; done < length;) {
      const n = Math.min(CHUNK, length - done);
      const buf = this.#takeBuffer(io, n);
      if ((await chain.read(buf)) !== n) return VIRTIO_BLK_S.IOERR;
      // Cut at the end of the file: the partial last sector never grows the image.
      const keep = Math.max(0, Math.min(n, size - (at + done)));
      if (keep > 0) await this.#file.write(keep === n ? buf : buf.subarray(0, keep), at + done);
      done += n;
      this.#stats.bytesWritten += n;
    }
    return VIRTIO_BLK_S.OK;
  }

  /** Writes `bufs` in order at `at` (one `pwritev` when the file has it). */
  async #writev(bufs: readonly Uint8Array[], at: number): Promise<void> {
    if (this.#file.writev) return this.#file.writev(bufs, at);
    let done = 0;
    for (const b of bufs) {
      await this.#file.write(b, at + done);
      done += b.length;
    }
  }

  /** DISCARD and WRITE_ZEROES: a list of `{le64 sector, le32 num_sectors, le32 flags}` segments. */
  async #zeroes(chain: BackendChain, type: number): Promise<number> {
    const discard = type === VIRTIO_BLK_T.DISCARD;
    if (discard) this.#stats.discards++;
    else this.#stats.writeZeroes++;
    const feature = discard ? VIRTIO_BLK_F.DISCARD : VIRTIO_BLK_F.WRITE_ZEROES;
    if (!hasFeature(this.#negotiated, feature) || this.readOnly) return VIRTIO_BLK_S.UNSUPP;
    const length = chain.readable - VIRTIO_BLK_OUTHDR_SIZE;
    if (
      length === 0 ||
      length % VIRTIO_BLK_DISCARD_SEGMENT_SIZE !== 0 ||
      length > BLOCK_MAX_DISCARD_SEGMENTS * VIRTIO_BLK_DISCARD_SEGMENT_SIZE
    ) {
      return VIRTIO_BLK_S.IOERR;
    }
    const raw = new Uint8Array(length);
    if ((await chain.read(raw)) !== length) return VIRTIO_BLK_S.IOERR;
    const dv = new DataView(raw.buffer);
    const ranges: { at: number; length: number; unmap: boolean }[] = [];
    for (let off = 0; off < length; off += VIRTIO_BLK_DISCARD_SEGMENT_SIZE) {
      const sector = dv.getBigUint64(off, true);
      const count = dv.getUint32(off + 8, true);
      const flags = dv.getUint32(off + 12, true);
      // §5.2.6.2: unknown flags, and UNMAP on a discard, are UNSUPP.
      if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP || (discard && flags !== 0)) return VIRTIO_BLK_S.UNSUPP;
      if (count > BLOCK_MAX_DISCARD_SECTORS) return VIRTIO_BLK_S.IOERR;
      const at = this.#range(sector, count * VIRTIO_BLK_SECTOR_SIZE);
      if (at === null) return VIRTIO_BLK_S.IOERR;
      ranges.push({ at, length: count * VIRTIO_BLK_SECTOR_SIZE, unmap: discard || flags !== 0 });
    }
    const size = this.#file.size;
    for (const r of ranges) {
      const keep = Math.max(0, Math.min(r.length, size - r.at));
      if (keep > 0) await this.#file.zero(r.at, keep, r.unmap);
    }
    return VIRTIO_BLK_S.OK;
  }
}

function totalLength(views: readonly Uint8Array[]): number {
  let n = 0;
  for (const v of views) n += v.length;
  return n;
}

/** Zeroes `views` from byte `from` of their concatenation. */
function fillViews(views: readonly Uint8Array[], from: number): void {
  let skip = from;
  for (const v of views) {
    if (skip >= v.length) {
      skip -= v.length;
      continue;
    }
    v.fill(0, skip);
    skip = 0;
  }
}

/** The first `n` bytes of `views`. */
function cutViews(views: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let left = n;
  for (const v of views) {
    if (left === 0) break;
    out.push(v.length <= left ? v : v.subarray(0, left));
    left -= Math.min(left, v.length);
  }
  return out;
}
