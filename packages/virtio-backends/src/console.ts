/**
 * The virtio-console backend: the host end of the card's console, mpssd's `virtio_console` thread
 * (reference §7.8), done properly. What the card prints (its transmit queue, vring 1) goes to a
 * log file (always), to a PTY whose slave path is reported (like mpssd's `/dev/pts/N`, open it
 * with `screen` or `picocom`), to the clients of a Unix socket, and to listeners in host code;
 * what any of those types goes to the card (its receive queue, vring 0), never more than the
 * receive buffer holds, the rest kept for the next buffer (mpssd aborts in `verify_out_len`).
 *
 * Flow control instead of loss on input: while more than `inputLimit` bytes wait for card
 * buffers, the PTY and the sockets are paused. Output is never held up by a viewer: a PTY nobody
 * reads, or a slow socket client, loses output past `outputLimit` (counted), the log keeps it all.
 *
 * @see virtio 1.2 §5.3 (console device; one port, no MULTIPORT, as mpssd)
 * @see samples/mic/mpssd/mpssd.c `virtio_console`, `pty_read`
 */
import { promises as fsp } from 'node:fs';
import type net from 'node:net';
import { MicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { MIC_VRING_ENTRIES } from '@mic/mic-common';
import { VIRTIO_CONSOLE_F, VIRTIO_ID, checkQueueSize, encodeConsoleConfig, featureBit } from '@mic/virtio';
import { fsError } from './block-file.js';
import { type Pty, openPty } from './pty.js';
import { type ServeOptions, ServiceLoop, type VirtioBackend } from './service.js';
import type { BackendTransport, VirtioDeviceDescription } from './transport.js';
import { closeUnix, listenUnix } from './unix-socket.js';

/** Queue indices of port 0 (virtio 1.2 §5.3.2; mpssd's "tx" vring 0 and "rx" vring 1). */
export const CONSOLE_RECEIVEQ = 0;
export const CONSOLE_TRANSMITQ = 1;
/** Bytes of card output read at a time. */
const OUTPUT_CHUNK = 64 << 10;

/** Options of {@link ConsoleBackend.open}. */
export interface ConsoleBackendOptions {
  /** Every byte the card prints is appended here (the file is created if missing). */
  readonly logPath: string;
  /** Open a PTY; its slave path is {@link ConsoleBackend.ptyPath}. */
  readonly pty?: boolean;
  /** Listen on this Unix socket; clients that connect see the output and type into the console. */
  readonly socketPath?: string;
  /** Offer VIRTIO_CONSOLE_F_SIZE with this size; {@link ConsoleBackend.resize} changes it. */
  readonly size?: { readonly cols: number; readonly rows: number };
  /** Entries of each queue (default 128). */
  readonly queueSize?: number;
  /** Bytes of input held for the card at most before the PTY and sockets are paused (default 64 KiB). */
  readonly inputLimit?: number;
  /** Bytes of output queued for one viewer (the PTY, a socket client) before its output is dropped (default 1 MiB). */
  readonly outputLimit?: number;
  readonly logger?: Logger;
}

/** Counters of a {@link ConsoleBackend}. */
export interface ConsoleBackendStats {
  /** Bytes the card printed (all in the log). */
  outputBytes: number;
  /** Bytes delivered to the card. */
  inputBytes: number;
  /** Output bytes a viewer lost because it did not read (PTY with nobody attached, slow client). */
  outputDropped: number;
  /** Socket clients that connected. */
  clients: number;
}

/**
 * The host end of a card console.
 *
 * @example
 * const con = await ConsoleBackend.open({ logPath: '/var/log/mic0-console.log', pty: true });
 * console.log(`mic0 console message goes to ${con.ptyPath}`);
 * const t = await VopBackendTransport.add(vop.control(0)!.open(), con.description);
 * await con.serve(t, { signal });
 */
export class ConsoleBackend implements VirtioBackend {
  readonly description: VirtioDeviceDescription;
  readonly logPath: string;
  /** The PTY slave path users open, or null without a PTY. */
  readonly ptyPath: string | null;
  /** The Unix socket path, or null. */
  readonly socketPath: string | null;
  readonly #log: Logger;
  readonly #logFile: fsp.FileHandle;
  readonly #pty: Pty | null;
  #server: net.Server | null = null;
  readonly #clients = new Set<net.Socket>();
  readonly #listeners = new Set<(data: Uint8Array) => void>();
  readonly #loop: ServiceLoop;
  readonly #inputLimit: number;
  readonly #outputLimit: number;
  readonly #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #paused = false;
  #transport: BackendTransport | null = null;
  #closed = false;
  /** The output drain running beside the pumps (see `#pump`), or null. */
  #output: Promise<void> | null = null;
  /** A pump found the output drain running: it must look at the transmit queue once more. */
  #outputMissed = false;
  /** What the last output drain threw, rethrown by the next pump (the serving loop handles it). */
  #outputError: unknown = null;
  readonly #stats: ConsoleBackendStats = { outputBytes: 0, inputBytes: 0, outputDropped: 0, clients: 0 };

  private constructor(init: {
    description: VirtioDeviceDescription;
    logPath: string;
    logFile: fsp.FileHandle;
    pty: Pty | null;
    socketPath: string | null;
    log: Logger;
    inputLimit: number;
    outputLimit: number;
  }) {
    this.description = init.description;
    this.logPath = init.logPath;
    this.#logFile = init.logFile;
    this.#pty = init.pty;
    this.ptyPath = init.pty?.path ?? null;
    this.socketPath = init.socketPath;
    this.#log = init.log;
    this.#inputLimit = init.inputLimit;
    this.#outputLimit = init.outputLimit;
    this.#loop = new ServiceLoop('virtio-console', init.log);
    if (this.#pty) this.#attachInput(this.#pty.master);
  }

  /**
   * Opens the log (append), the PTY and the socket. Each bad option is one MicError: ENOENT (the
   * log's or the socket's directory does not exist), EISDIR (the log path is a directory),
   * EADDRINUSE (a server listens on the socket path), EEXIST (the socket path is another kind of
   * file), EINVAL (a bad size or limit); ENOSYS when a PTY cannot be made on this platform.
   * Whatever was opened is closed again on failure.
   */
  static async open(options: ConsoleBackendOptions): Promise<ConsoleBackend> {
    const queueSize = options.queueSize ?? MIC_VRING_ENTRIES;
    checkQueueSize(queueSize);
    const inputLimit = options.inputLimit ?? 64 << 10;
    const outputLimit = options.outputLimit ?? 1 << 20;
    for (const [name, v] of [
      ['inputLimit', inputLimit],
      ['outputLimit', outputLimit],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 1)
        throw new MicError('EINVAL', `console ${name} ${String(v)} is not a positive integer`);
    }
    let features = 0n;
    let config = encodeConsoleConfig({ cols: 0, rows: 0, maxNrPorts: 0, emergWr: 0 });
    if (options.size) {
      checkSize(options.size.cols, options.size.rows);
      features |= featureBit(VIRTIO_CONSOLE_F.SIZE);
      config = encodeConsoleConfig({
        cols: options.size.cols,
        rows: options.size.rows,
        maxNrPorts: 0,
        emergWr: 0,
      });
    }
    if (typeof options.logPath !== 'string' || options.logPath === '') {
      throw new MicError('EINVAL', 'a console needs a log path (logPath): the log is always on');
    }
    let logFile: fsp.FileHandle;
    try {
      logFile = await fsp.open(options.logPath, 'a');
    } catch (err) {
      throw fsError(err, `console log ${options.logPath}`);
    }
    let pty: Pty | null = null;
    try {
      if (options.pty) pty = await openPty(outputLimit);
      const backend = new ConsoleBackend({
        description: Object.freeze({
          deviceType: VIRTIO_ID.CONSOLE,
          features,
          config,
          queueSizes: Object.freeze([queueSize, queueSize]),
        }),
        logPath: options.logPath,
        logFile,
        pty,
        socketPath: options.socketPath ?? null,
        log: options.logger ?? nullLogger,
        inputLimit,
        outputLimit,
      });
      if (options.socketPath !== undefined) {
        backend.#server = await listenUnix(options.socketPath, 'console socket', (s) => backend.#accept(s));
      }
      return backend;
    } catch (err) {
      pty?.close();
      await logFile.close();
      throw err;
    }
  }

  /** A copy of the counters. */
  stats(): ConsoleBackendStats {
    return { ...this.#stats };
  }

  /**
   * Host code types into the console: `data` goes to the card like PTY input (kept until the
   * card posts buffers).
   */
  write(data: Uint8Array | string): void {
    if (this.#closed) throw new MicError('EBADF', 'the console backend is closed');
    this.#input(typeof data === 'string' ? new TextEncoder().encode(data) : data.slice());
  }

  /** Host code listens to what the card prints. @returns a function that stops it */
  onOutput(listener: (data: Uint8Array) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Tells the card a new console size (VIRTIO_CONSOLE_F_SIZE, a config change); only while
   * serving, and only when a size was offered.
   * @throws MicError EINVAL without F_SIZE or a bad size, ENODEV when not serving
   */
  async resize(cols: number, rows: number): Promise<void> {
    checkSize(cols, rows);
    if ((this.description.features & featureBit(VIRTIO_CONSOLE_F.SIZE)) === 0n) {
      throw new MicError(
        'EINVAL',
        'the console was opened without a size (VIRTIO_CONSOLE_F_SIZE is not offered)',
      );
    }
    const t = this.#transport;
    if (t === null) throw new MicError('ENODEV', 'the console is not serving a device');
    await t.configChange(encodeConsoleConfig({ cols, rows, maxNrPorts: 0, emergWr: 0 }));
  }

  async serve(transport: BackendTransport, options: ServeOptions = {}): Promise<void> {
    if (this.#closed) throw new MicError('EBADF', 'the console backend is closed');
    this.#transport = transport;
    try {
      await this.#loop.run(transport, (t) => this.#pump(t), options.signal);
    } finally {
      await this.#output;
      this.#outputError = null;
      this.#transport = null;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#clients) c.destroy();
    this.#clients.clear();
    if (this.#server && this.socketPath) await closeUnix(this.#server, this.socketPath);
    this.#pty?.close();
    await this.#output;
    await this.#logFile.close();
  }

  #accept(s: net.Socket): void {
    if (this.#closed) {
      s.destroy();
      return;
    }
    this.#stats.clients++;
    this.#clients.add(s);
    s.on('error', () => s.destroy());
    s.on('close', () => this.#clients.delete(s));
    this.#attachInput(s);
    if (this.#paused) s.pause();
  }

  #attachInput(stream: NodeJS.ReadableStream & { on(e: 'data', l: (d: Buffer) => void): unknown }): void {
    stream.on('data', (d: Buffer) => this.#input(new Uint8Array(d.buffer, d.byteOffset, d.length)));
    stream.on('error', (err: unknown) => this.#log.debug('virtio-console: input stream error', { err }));
  }

  #input(data: Uint8Array): void {
    if (data.length === 0) return;
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    if (!this.#paused && this.#pendingBytes > this.#inputLimit) this.#setPaused(true);
    this.#loop.poke();
  }

  #setPaused(paused: boolean): void {
    this.#paused = paused;
    const streams: NodeJS.ReadableStream[] = [...this.#clients];
    if (this.#pty) streams.push(this.#pty.master);
    for (const s of streams) {
      if (paused) s.pause();
      else s.resume();
    }
  }

  /**
   * Input does not wait for output: the transmit queue is drained by a task of its own (one at a
   * time, in order), whose log writes (`fsync`-free appends, but a thread-pool round trip each)
   * would otherwise hold up every keystroke behind the card's last output. The drain's failure
   * is thrown by the next pump, where the serving loop handles it (EIO parks the device).
   */
  async #pump(t: BackendTransport): Promise<void> {
    if (this.#outputError !== null) {
      const err = this.#outputError;
      this.#outputError = null;
      throw err;
    }
    if (this.#output === null) {
      this.#outputMissed = false;
      this.#output = this.#drainOutput(t).then(
        () => this.#outputDone(null),
        (err: unknown) => this.#outputDone(err),
      );
    } else {
      this.#outputMissed = true;
    }
    await this.#deliverInput(t);
  }

  #outputDone(err: unknown): void {
    this.#output = null;
    if (err !== null) this.#outputError = err;
    if (err !== null || this.#outputMissed) this.#loop.poke();
  }

  /** Card → host: every chain of the transmit queue, in order, to the log and the viewers. */
  async #drainOutput(t: BackendTransport): Promise<void> {
    for (;;) {
      const chain = await t.nextChain(CONSOLE_TRANSMITQ);
      if (chain === null) return;
      try {
        // In pieces: the driver decides the buffer size, the host bounds its memory.
        for (let left = chain.readable; left > 0;) {
          const data = new Uint8Array(Math.min(left, OUTPUT_CHUNK));
          const n = await chain.read(data);
          if (n === 0) break;
          await this.#emit(data.subarray(0, n));
          left -= n;
        }
      } finally {
        await chain.complete();
      }
    }
  }

  async #emit(data: Uint8Array): Promise<void> {
    this.#stats.outputBytes += data.length;
    for (const l of this.#listeners) {
      try {
        l(data);
      } catch (err) {
        this.#log.warn('virtio-console: an output listener failed', { err });
      }
    }
    if (this.#pty && !this.#pty.write(data)) this.#stats.outputDropped += data.length;
    for (const c of this.#clients) this.#toViewer(c, data);
    // The log has everything: the card's buffer is returned once its bytes are in the file.
    let done = 0;
    while (done < data.length) done += (await this.#logFile.write(data, done)).bytesWritten;
  }

  #toViewer(
    s: NodeJS.WritableStream & { writableLength: number; destroyed: boolean },
    data: Uint8Array,
  ): void {
    if (s.destroyed) return;
    if (s.writableLength + data.length > this.#outputLimit) {
      this.#stats.outputDropped += data.length;
      return;
    }
    s.write(data);
  }

  /** Host → card: pending input into receive buffers, each filled at most to its size. */
  async #deliverInput(t: BackendTransport): Promise<void> {
    while (this.#pendingBytes > 0) {
      const chain = await t.nextChain(CONSOLE_RECEIVEQ);
      if (chain === null) return;
      try {
        const n = Math.min(chain.writable, this.#pendingBytes);
        const buf = this.#take(n);
        const wrote = await chain.write(buf);
        if (wrote < n) this.#unshift(buf.subarray(wrote));
        this.#stats.inputBytes += wrote;
      } finally {
        await chain.complete();
      }
      if (this.#paused && this.#pendingBytes <= this.#inputLimit / 2) this.#setPaused(false);
    }
  }

  /** Takes the first `n` pending bytes (n ≤ pending) as one buffer. */
  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const head = this.#pending[0]!;
      const k = Math.min(head.length, n - at);
      out.set(head.subarray(0, k), at);
      at += k;
      if (k === head.length) this.#pending.shift();
      else this.#pending[0] = head.subarray(k);
    }
    this.#pendingBytes -= n;
    return out;
  }

  #unshift(rest: Uint8Array): void {
    if (rest.length === 0) return;
    this.#pending.unshift(rest);
    this.#pendingBytes += rest.length;
  }
}

function checkSize(cols: number, rows: number): void {
  if (
    !Number.isInteger(cols) ||
    !Number.isInteger(rows) ||
    cols < 0 ||
    rows < 0 ||
    cols > 0xffff ||
    rows > 0xffff
  ) {
    throw new MicError('EINVAL', `console size ${String(cols)}x${String(rows)} is not two u16 values`);
  }
}
