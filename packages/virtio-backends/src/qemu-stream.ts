/**
 * QEMU's `-netdev stream` protocol on a Unix socket, so a card shares an Ethernet with a QEMU VM:
 * each frame on the byte stream is a 4-byte big-endian length and that many bytes (QEMU
 * `net/stream.c`, the framing of `-netdev socket` too). Written by hand: it is a few lines over
 * `node:net`, and no package on npm speaks it.
 *
 * `listen` (the default) waits for QEMU started with
 * `-netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH`; `connect` dials a QEMU started
 * with `server=on`. One peer at a time: a second connection is closed at once; frames sent while
 * no peer is there are dropped (counted).
 */
import type { Socket, Server } from 'node:net';
import net from 'node:net';
import { MicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import type { FrameLink, FrameLinkStats } from './link.js';
import { closeUnix, listenUnix } from './unix-socket.js';

/** Largest frame accepted on the stream (64 KiB plus an Ethernet header and VLAN tags). */
export const QEMU_STREAM_MAX_FRAME = 65536 + 22;
/** Bytes of the length prefix. */
export const QEMU_STREAM_PREFIX = 4;
/** Bytes queued to a peer that does not read before frames to it are dropped. */
const WRITE_LIMIT = 4 << 20;

/** Options of {@link QemuStreamLink.open}. */
export interface QemuStreamOptions {
  /** The Unix socket path. */
  readonly path: string;
  /** `listen` (QEMU connects: `server=off`, the default) or `connect` (QEMU listens: `server=on`). */
  readonly mode?: 'listen' | 'connect';
  readonly logger?: Logger;
}

/** Encodes one frame as it goes on the stream (length prefix + frame). */
export function encodeStreamFrame(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(QEMU_STREAM_PREFIX + frame.length);
  new DataView(out.buffer).setUint32(0, frame.length, false);
  out.set(frame, QEMU_STREAM_PREFIX);
  return out;
}

/**
 * Splits a byte stream into frames: feed it chunks, it calls `onFrame` per complete frame.
 * @throws MicError EPROTO for a length over {@link QEMU_STREAM_MAX_FRAME} (the stream is lost)
 */
export class StreamFramer {
  #buf = new Uint8Array(0);
  readonly #onFrame: (frame: Uint8Array) => void;

  constructor(onFrame: (frame: Uint8Array) => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.#buf.length > 0) {
      buf = new Uint8Array(this.#buf.length + chunk.length);
      buf.set(this.#buf);
      buf.set(chunk, this.#buf.length);
    }
    let at = 0;
    while (buf.length - at >= QEMU_STREAM_PREFIX) {
      const len = new DataView(buf.buffer, buf.byteOffset + at, 4).getUint32(0, false);
      if (len > QEMU_STREAM_MAX_FRAME) {
        this.#buf = new Uint8Array(0);
        throw new MicError('EPROTO', `stream frame length ${len} exceeds ${QEMU_STREAM_MAX_FRAME}`, {
          details: { length: len },
        });
      }
      if (buf.length - at - QEMU_STREAM_PREFIX < len) break;
      this.#onFrame(buf.slice(at + QEMU_STREAM_PREFIX, at + QEMU_STREAM_PREFIX + len));
      at += QEMU_STREAM_PREFIX + len;
    }
    this.#buf = buf.slice(at);
  }
}

/** A {@link FrameLink} over a QEMU stream socket. */
export class QemuStreamLink implements FrameLink {
  readonly name: string;
  readonly path: string;
  readonly #server: Server | null;
  readonly #log: Logger;
  #peer: Socket | null = null;
  #receiver: ((frame: Uint8Array) => void) | null = null;
  readonly #stats: FrameLinkStats = { sent: 0, received: 0, dropped: 0 };
  #closed = false;
  #onPeer: (() => void) | null = null;

  private constructor(path: string, server: Server | null, log: Logger) {
    this.path = path;
    this.name = `qemu stream ${path}`;
    this.#server = server;
    this.#log = log;
  }

  /**
   * Listens on (or connects to) `path`. @throws MicError EADDRINUSE / EEXIST / ENOENT (listen:
   * see the console socket), ECONNREFUSED / ENOENT (connect: nobody listens there)
   */
  static async open(options: QemuStreamOptions): Promise<QemuStreamLink> {
    const log = options.logger ?? nullLogger;
    const mode = options.mode ?? 'listen';
    if (mode === 'listen') {
      let link: QemuStreamLink | null = null;
      const server = await listenUnix(options.path, 'QEMU stream socket', (s) => {
        if (link) link.#attach(s);
        else s.destroy();
      });
      link = new QemuStreamLink(options.path, server, log);
      return link;
    }
    if (mode !== 'connect')
      throw new MicError('EINVAL', `QEMU stream mode ${String(mode)} is neither listen nor connect`);
    const link = new QemuStreamLink(options.path, null, log);
    const s = net.connect(options.path);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', (err: NodeJS.ErrnoException) => {
        const code = err.code === 'ENOENT' ? 'ENOENT' : 'ECONNREFUSED';
        reject(
          new MicError(
            code,
            `QEMU stream socket ${options.path}: nobody listens there (${err.code ?? err.message})`,
            { cause: err },
          ),
        );
      });
    });
    link.#attach(s);
    return link;
  }

  /** True while a peer is connected. */
  get connected(): boolean {
    return this.#peer !== null;
  }

  /** Resolves once a peer is connected (at once if one is). */
  whenConnected(): Promise<void> {
    if (this.#peer) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onPeer = resolve;
    });
  }

  #attach(s: Socket): void {
    if (this.#closed || this.#peer !== null) {
      this.#log.warn('virtio-net: a second QEMU stream peer was refused', { path: this.path });
      s.destroy();
      return;
    }
    this.#peer = s;
    s.setNoDelay?.(true);
    const framer = new StreamFramer((frame) => {
      this.#stats.received++;
      this.#receiver?.(frame);
    });
    s.on('data', (d: Buffer) => {
      try {
        framer.push(new Uint8Array(d.buffer, d.byteOffset, d.length));
      } catch (err) {
        this.#log.warn('virtio-net: QEMU stream protocol error, dropping the peer', { path: this.path, err });
        s.destroy();
      }
    });
    s.on('error', () => s.destroy());
    s.on('close', () => {
      if (this.#peer === s) this.#peer = null;
    });
    const w = this.#onPeer;
    this.#onPeer = null;
    w?.();
  }

  send(frame: Uint8Array): void {
    const s = this.#peer;
    if (s === null || s.destroyed || s.writableLength > WRITE_LIMIT) {
      this.#stats.dropped++;
      return;
    }
    this.#stats.sent++;
    s.write(encodeStreamFrame(frame));
  }

  setReceiver(receiver: ((frame: Uint8Array) => void) | null): void {
    this.#receiver = receiver;
  }

  stats(): FrameLinkStats {
    return { ...this.#stats };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#peer?.destroy();
    this.#peer = null;
    if (this.#server) await closeUnix(this.#server, this.path);
  }
}
