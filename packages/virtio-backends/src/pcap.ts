/**
 * A pcap capture file (the classic libpcap format, LINKTYPE_ETHERNET), readable by `tcpdump -r`
 * and Wireshark. Written by hand: the format is a 24-byte file header and a 16-byte header per
 * frame, and the npm pcap packages read captures or need libpcap to write them.
 *
 * Writes never hold up the frames: records queue in memory and go to the file in order; past
 * `maxPendingBytes` records are dropped (counted) until the file catches up.
 *
 * @see https://wiki.wireshark.org/Development/LibpcapFileFormat (format 2.4)
 */
import { promises as fsp } from 'node:fs';
import { type Logger, nullLogger } from '@mic/logger';
import { fsError } from './block-file.js';

/** `magic_number` of a microsecond-resolution capture. */
export const PCAP_MAGIC = 0xa1b2c3d4;
/** `network`: Ethernet. */
export const LINKTYPE_ETHERNET = 1;
/** `snaplen` written in the header (frames are never cut). */
export const PCAP_SNAPLEN = 262144;

/** Options of {@link PcapWriter.open}. */
export interface PcapWriterOptions {
  /** Milliseconds since the epoch for each record (default `Date.now`). */
  readonly now?: () => number;
  /** Bytes of records queued at most before records are dropped (default 16 MiB). */
  readonly maxPendingBytes?: number;
  readonly logger?: Logger;
}

/** The 24-byte file header. */
export function pcapFileHeader(): Uint8Array {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, PCAP_MAGIC, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setInt32(8, 0, true);
  dv.setUint32(12, 0, true);
  dv.setUint32(16, PCAP_SNAPLEN, true);
  dv.setUint32(20, LINKTYPE_ETHERNET, true);
  return b;
}

/** One record: the 16-byte header (seconds, microseconds, lengths) and the frame. */
export function pcapRecord(frame: Uint8Array, timeMs: number): Uint8Array {
  const b = new Uint8Array(16 + frame.length);
  const dv = new DataView(b.buffer);
  const us = Math.round(timeMs * 1000);
  dv.setUint32(0, Math.floor(us / 1e6) >>> 0, true);
  dv.setUint32(4, us % 1e6, true);
  dv.setUint32(8, frame.length, true);
  dv.setUint32(12, frame.length, true);
  b.set(frame, 16);
  return b;
}

/** Appends frames to a capture file. */
export class PcapWriter {
  readonly path: string;
  readonly #fh: fsp.FileHandle;
  readonly #now: () => number;
  readonly #max: number;
  readonly #log: Logger;
  #queue: Uint8Array[] = [];
  #pending = 0;
  #flushing: Promise<void> | null = null;
  #closed = false;
  /** Frames written, and dropped because the file fell behind. */
  readonly counts = { frames: 0, dropped: 0 };

  private constructor(path: string, fh: fsp.FileHandle, options: PcapWriterOptions) {
    this.path = path;
    this.#fh = fh;
    this.#now = options.now ?? Date.now;
    this.#max = options.maxPendingBytes ?? 16 << 20;
    this.#log = options.logger ?? nullLogger;
  }

  /** Creates (truncates) `path` and writes the file header. @throws MicError ENOENT, EISDIR, EACCES */
  static async open(path: string, options: PcapWriterOptions = {}): Promise<PcapWriter> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, 'w');
    } catch (err) {
      throw fsError(err, `pcap file ${path}`);
    }
    await fh.write(pcapFileHeader());
    return new PcapWriter(path, fh, options);
  }

  /** Queues one frame (a copy is taken). */
  write(frame: Uint8Array): void {
    if (this.#closed) return;
    if (this.#pending + frame.length + 16 > this.#max) {
      this.counts.dropped++;
      return;
    }
    const rec = pcapRecord(frame, this.#now());
    this.#queue.push(rec);
    this.#pending += rec.length;
    this.counts.frames++;
    this.#flushing ??= this.#flush();
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        const bytes = Buffer.concat(batch);
        await this.#fh.write(bytes);
        this.#pending -= bytes.length;
      }
    } catch (err) {
      this.#log.warn('pcap write failed; the capture stops', { path: this.path, err });
      this.#closed = true;
    } finally {
      this.#flushing = null;
    }
  }

  /** Resolves once every queued record is in the file. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /** Writes what is queued and closes the file. Idempotent. */
  async close(): Promise<void> {
    await this.flush();
    if (this.#closed && this.#fh.fd === -1) return;
    this.#closed = true;
    await this.#fh.close().catch(() => {});
  }
}
