/**
 * The virtio console driver, like Linux `drivers/char/virtio_console.c` for a device without
 * VIRTIO_CONSOLE_F_MULTIPORT: port 0 only, as a Node `Duplex` byte stream
 * ({@link VirtioConsole}).
 *
 * Queues (virtio 1.2 §5.3.2): 0 is `receiveq` (host → card: buffers the driver posts for the
 * device to fill, mpssd's vring 0), 1 is `transmitq` (card → host, mpssd's vring 1).
 *
 * - Receive: buffers of a page (4096 bytes, as Linux posts them, and as mpssd relies on:
 *   mic-vop.md §7.8) fill the receive queue; each one that comes back is copied into the readable
 *   side and posted again. When the reader falls behind (`push` returns false) buffers are kept
 *   back until it reads again, so the host sees a full queue: backpressure reaches the host
 *   instead of memory growing here.
 * - Transmit: writes become chains of at most one page each (mpssd copies each into a 4096-byte
 *   buffer) from a fixed set of transmit buffers; a write's callback runs once its chains are
 *   posted, so with all buffers in flight writes wait and `write()` returns false.
 * - Size (VIRTIO_CONSOLE_F_SIZE): `cols` and `rows` from config space, read again on a config
 *   change, with a `resize` event.
 *
 * The device is not trusted: used lengths are clamped by the ring to the buffer posted.
 *
 * @see drivers/char/virtio_console.c
 * @see include/uapi/linux/virtio_console.h
 * @see virtio 1.2 §5.3
 */
import { Duplex } from 'node:stream';
import { MicError, checkInt, errorMessage } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import {
  VIRTIO_CONFIG_S,
  VIRTIO_CONSOLE_F,
  VIRTIO_DEV_ANY_ID,
  VIRTIO_ID,
  type VirtioDevice,
  type VirtioDriver,
  type VirtioQueue,
} from '@mic/virtio';
import { DmaSlab, RoomQueue, VirtioDriverBase, drainUsed, safeEmit, tryAdd } from './common.js';

/** Bytes of a receive buffer and of the largest transmit chain by default (`PAGE_SIZE`). */
export const VIRTIO_CONSOLE_BUF_SIZE = 4096;

/** Options of a {@link VirtioConsoleDriver}. */
export interface VirtioConsoleDriverOptions {
  readonly logger?: Logger;
  /** Receive buffers kept posted (default: as many as the queue holds, like Linux's `fill_queue`). */
  readonly rxBuffers?: number;
  /** Bytes of each receive buffer (default {@link VIRTIO_CONSOLE_BUF_SIZE}). */
  readonly rxBufferSize?: number;
  /** Transmit chains in flight at most (default: the queue size, at most 32). */
  readonly txBuffers?: number;
  /** Bytes of the largest transmit chain (default {@link VIRTIO_CONSOLE_BUF_SIZE}). */
  readonly txChunkSize?: number;
  /** `highWaterMark` of the readable and writable sides, in bytes (Node's default otherwise). */
  readonly highWaterMark?: number;
}

/** The console size (VIRTIO_CONSOLE_F_SIZE). */
export interface ConsoleSize {
  readonly cols: number;
  readonly rows: number;
}

/** What a console moved. */
export interface VirtioConsoleCounters {
  /** Bytes received and pushed to the readable side. */
  rxBytes: number;
  /** Bytes received after the stream was destroyed, and dropped. */
  rxDropped: number;
  /** Bytes the device took from transmit buffers. */
  txBytes: number;
}

/**
 * Port 0 of a console bound by {@link VirtioConsoleDriver}, as a byte stream: what the card
 * writes goes to the host, what the host sends is read here.
 *
 * Besides the stream events: `resize` (a {@link ConsoleSize}) when the device changes its size,
 * and `remove` when the device goes away. On remove the readable side ends (after what was
 * received) and writes fail with `ENODEV`; a broken queue destroys the stream with `EIO`. Ending
 * the writable side (`end()`) finishes once the host took every byte; destroying the stream
 * leaves the device bound, drops what arrives later (counted) and keeps the host from blocking.
 *
 * @example
 * const con = await consoleDriver.waitForDevice();
 * con.write('card up\n');
 * con.on('data', (b: Buffer) => handle(b));
 */
export class VirtioConsole extends Duplex {
  readonly vdev: VirtioDevice;
  readonly counters: VirtioConsoleCounters = { rxBytes: 0, rxDropped: 0, txBytes: 0 };
  #rx!: VirtioQueue<number>;
  #tx!: VirtioQueue<number>;
  #rxSlab!: DmaSlab;
  #txSlab!: DmaSlab;
  #room!: RoomQueue;
  /** Receive slots taken back and not posted again (the reader is behind, or not posted yet). */
  readonly #parked: number[] = [];
  readonly #txLen = new Map<number, number>();
  #rxPaused = false;
  #finalCb: ((err?: Error | null) => void) | null = null;
  #size: ConsoleSize | null = null;
  #removed = false;
  readonly #opts: Required<Omit<VirtioConsoleDriverOptions, 'logger' | 'highWaterMark'>>;
  readonly #log: Logger;

  /** @internal built by {@link VirtioConsoleDriver} */
  constructor(vdev: VirtioDevice, options: VirtioConsoleDriverOptions, log: Logger) {
    super({
      allowHalfOpen: true,
      ...(options.highWaterMark === undefined
        ? {}
        : { readableHighWaterMark: options.highWaterMark, writableHighWaterMark: options.highWaterMark }),
    });
    this.vdev = vdev;
    this.#log = log;
    this.#opts = {
      rxBuffers: options.rxBuffers ?? 0,
      rxBufferSize: options.rxBufferSize ?? VIRTIO_CONSOLE_BUF_SIZE,
      txBuffers: options.txBuffers ?? 0,
      txChunkSize: options.txChunkSize ?? VIRTIO_CONSOLE_BUF_SIZE,
    };
  }

  /** The size from config space (VIRTIO_CONSOLE_F_SIZE), or null when the device has none. */
  get size(): ConsoleSize | null {
    return this.#size;
  }

  /** Receive buffers posted to the device now. */
  get rxPosted(): number {
    return this.#rxSlab.count - this.#parked.length;
  }

  /** Transmit chains the device holds now. */
  get txInFlight(): number {
    return this.#txLen.size;
  }

  /** `init_vqs` and `fill_queue`: sets up both queues and posts the receive buffers (no kick yet). */
  async init(): Promise<void> {
    const vdev = this.vdev;
    const [rx, tx] = await vdev.findVqs<number>([
      { name: 'input', callback: () => this.#onRx() },
      { name: 'output', callback: () => this.#onTx() },
    ]);
    if (!rx || !tx)
      throw new MicError('ENOENT', `virtio-console ${vdev.name}: needs a receive and a transmit queue`);
    this.#rx = rx;
    this.#tx = tx;
    const o = this.#opts;
    const rxCount = Math.min(o.rxBuffers || rx.num, rx.num);
    const txCount = Math.min(o.txBuffers || Math.min(tx.num, 32), tx.num);
    this.#rxSlab = new DmaSlab(vdev.dma, rxCount, o.rxBufferSize);
    this.#txSlab = new DmaSlab(vdev.dma, txCount, o.txChunkSize);
    this.#room = new RoomQueue({
      what: `virtio-console ${vdev.name} write`,
      fits: () => this.#txSlab.free > 0 && tx.numFree > 0,
      kick: () => this.#kick(tx),
    });
    for (let s = this.#rxSlab.take(); s >= 0; s = this.#rxSlab.take()) this.#parked.push(s);
    this.#readSize();
  }

  /** Posts the receive buffers and notifies the device: after DRIVER_OK (virtio 1.2 §3.1.1). */
  start(): void {
    this.#refill();
  }

  #kick(vq: VirtioQueue<number>): void {
    if (!vq.kick())
      this.#fail(new MicError('EIO', `virtio-console ${this.vdev.name}: the device cannot be notified`));
  }

  /** Posts parked receive buffers while the ring has room, and kicks once. */
  #refill(): void {
    if (this.#removed) return;
    const rx = this.#rx;
    let posted = 0;
    while (this.#parked.length > 0 && rx.numFree > 0 && !rx.broken) {
      const slot = this.#parked[this.#parked.length - 1]!;
      const buf = { addr: this.#rxSlab.addr(slot), len: this.#rxSlab.slotSize };
      if (!tryAdd(rx, [], [buf], slot)) break;
      this.#parked.pop();
      posted++;
    }
    if (posted > 0) this.#kick(rx);
  }

  /** `in_intr`: copies what came back into the readable side. */
  #onRx(): void {
    const rx = this.#rx;
    const slab = this.#rxSlab;
    drainUsed(rx, (slot, len) => {
      if (len > 0) {
        if (this.destroyed || this.readableEnded || this.#removed) {
          this.counters.rxDropped += len;
        } else {
          const bytes = Buffer.allocUnsafe(len);
          slab.va.read(slab.offset(slot), bytes);
          this.counters.rxBytes += len;
          if (!this.push(bytes)) this.#rxPaused = true;
        }
      }
      this.#parked.push(slot);
    });
    if (rx.broken) {
      this.#fail(
        rx.ring.broken ?? new MicError('EIO', `virtio-console ${this.vdev.name}: the receive queue broke`),
      );
      return;
    }
    // A destroyed stream keeps the buffers going: the host must not block on a closed console.
    if (!this.#rxPaused || this.destroyed) this.#refill();
  }

  /** The reader wants more: post the buffers kept back. */
  override _read(): void {
    this.#rxPaused = false;
    if (this.#rx) this.#refill();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#send(chunk).then(() => cb(), cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const all = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.#send(all).then(() => cb(), cb);
  }

  /** Posts `data` in chains of at most `txChunkSize` bytes, waiting for room in order. */
  async #send(data: Uint8Array): Promise<void> {
    if (this.#removed) throw this.#gone();
    const max = this.#txSlab.slotSize;
    for (let off = 0; off < data.length; off += max) {
      const piece = data.subarray(off, Math.min(data.length, off + max));
      await this.#room.run(1, () => this.#postTx(piece));
    }
  }

  #postTx(piece: Uint8Array): boolean {
    const slab = this.#txSlab;
    const slot = slab.take();
    if (slot < 0) return false;
    slab.va.write(slab.offset(slot), piece);
    if (!tryAdd(this.#tx, [{ addr: slab.addr(slot), len: piece.length }], [], slot)) {
      slab.put(slot);
      return false;
    }
    this.#txLen.set(slot, piece.length);
    return true;
  }

  /** `out_intr`: frees transmitted buffers and lets waiting writes in. */
  #onTx(): void {
    const tx = this.#tx;
    drainUsed(tx, (slot) => {
      this.counters.txBytes += this.#txLen.get(slot) ?? 0;
      this.#txLen.delete(slot);
      this.#txSlab.put(slot);
    });
    if (tx.broken) {
      this.#fail(
        tx.ring.broken ?? new MicError('EIO', `virtio-console ${this.vdev.name}: the transmit queue broke`),
      );
      return;
    }
    this.#room.pump();
    this.#maybeFinish();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#finalCb = cb;
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    const cb = this.#finalCb;
    if (!cb || (this.#txLen.size > 0 && !this.#removed)) return;
    this.#finalCb = null;
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#room?.fail(new MicError('ECANCELED', `virtio-console ${this.vdev.name}: the stream was destroyed`));
    this.#finalCb = null;
    // Buffers held back for a reader that is gone go to the device again.
    if (this.#rx && !this.#rx.broken) this.#refill();
    cb(err);
  }

  #gone(): MicError {
    return new MicError('ENODEV', `virtio-console ${this.vdev.name} was removed`);
  }

  /** A broken queue or a device that needs a reset: the stream errors with `err`. */
  #fail(err: MicError): void {
    this.#log.error(`virtio-console ${this.vdev.name}: ${err.message}`);
    this.#room.fail(err);
    if (!this.destroyed) this.destroy(err);
  }

  #readSize(): void {
    if (!this.vdev.hasFeature(VIRTIO_CONSOLE_F.SIZE)) return;
    const cols = this.vdev.readConfigU16(0);
    const rows = this.vdev.readConfigU16(2);
    if (this.#size && this.#size.cols === cols && this.#size.rows === rows) return;
    const first = this.#size === null;
    this.#size = Object.freeze({ cols, rows });
    if (!first) safeEmit(this.#log, this, 'resize', this.#size);
  }

  /** @internal `config_intr`: the size, and NEEDS_RESET. */
  configChanged(): void {
    if ((this.vdev.getStatus() & VIRTIO_CONFIG_S.NEEDS_RESET) !== 0) {
      this.#fail(new MicError('EIO', `virtio-console ${this.vdev.name}: the device needs a reset`));
      return;
    }
    this.#readSize();
  }

  /**
   * @internal `virtcons_remove`: resets the device, deletes the queues, frees every buffer; the
   * readable side ends and writes fail with `ENODEV`.
   */
  async shutdown(): Promise<void> {
    this.#removed = true;
    this.#room?.fail(this.#gone());
    try {
      await this.vdev.reset();
    } finally {
      await this.vdev.delVqs();
      this.#rxSlab?.release(this.vdev.dma);
      this.#txSlab?.release(this.vdev.dma);
      this.#txLen.clear();
      this.#parked.length = 0;
      this.#maybeFinish();
      if (!this.destroyed && !this.readableEnded) this.push(null);
      safeEmit(this.#log, this, 'remove');
    }
  }
}

/**
 * The virtio-console driver (`virtio_console`, port 0 only): every console device it binds
 * becomes a {@link VirtioConsole} stream (`add` event, {@link devices}, {@link waitForDevice}).
 *
 * Features: SIZE. Not MULTIPORT (no control queue, no ports beyond 0; a device that offers it
 * gets a single-port driver, which virtio 1.2 §5.3.3 allows) and not EMERG_WRITE.
 *
 * @example
 * const consoles = new VirtioConsoleDriver();
 * await virtioBus.registerDriver(consoles);
 * const con = await consoles.waitForDevice();
 * con.end('bye\n');
 */
export class VirtioConsoleDriver extends VirtioDriverBase<VirtioConsole> implements VirtioDriver {
  readonly name = 'virtio_console';
  readonly idTable = [
    { device: VIRTIO_ID.CONSOLE, vendor: VIRTIO_DEV_ANY_ID },
    { device: 0, vendor: 0 },
  ];
  readonly featureTable: readonly number[] = [VIRTIO_CONSOLE_F.SIZE];
  readonly #options: VirtioConsoleDriverOptions;

  constructor(options: VirtioConsoleDriverOptions = {}) {
    super(options.logger ?? nullLogger);
    if (options.rxBuffers !== undefined)
      checkInt('virtio-console receive buffers', options.rxBuffers, 1, 1 << 15);
    if (options.txBuffers !== undefined)
      checkInt('virtio-console transmit buffers', options.txBuffers, 1, 1 << 15);
    if (options.rxBufferSize !== undefined) {
      checkInt('virtio-console receive buffer size', options.rxBufferSize, 1, 1 << 20);
    }
    if (options.txChunkSize !== undefined) {
      checkInt('virtio-console transmit chunk size', options.txChunkSize, 1, 1 << 20);
    }
    this.#options = options;
  }

  /** Drops SIZE when the config space cannot hold `cols` and `rows`. */
  validate(vdev: VirtioDevice): void {
    if (vdev.hasFeature(VIRTIO_CONSOLE_F.SIZE) && vdev.config.configSize < 4) {
      this.log.warn(
        `virtio-console ${vdev.name}: config space of ${vdev.config.configSize} bytes has no size`,
      );
      vdev.clearFeature(VIRTIO_CONSOLE_F.SIZE);
    }
  }

  /** `virtcons_probe`: queues, receive buffers, DRIVER_OK, then the first kick. */
  async probe(vdev: VirtioDevice): Promise<void> {
    const con = new VirtioConsole(vdev, this.#options, this.log);
    try {
      await con.init();
    } catch (err) {
      await con.shutdown().catch((e: unknown) =>
        this.log.warn(`virtio-console ${vdev.name}: cleanup after a failed probe failed`, {
          error: errorMessage(e),
        }),
      );
      throw err;
    }
    vdev.ready();
    con.start();
    this.bind(vdev, con);
  }

  /** `virtcons_remove`. */
  async remove(vdev: VirtioDevice): Promise<void> {
    const con = this.unbind(vdev);
    if (!con) {
      await vdev.reset();
      return;
    }
    try {
      await con.shutdown();
    } finally {
      safeEmit(this.log, this, 'remove', con);
    }
  }

  /** `config_intr`. */
  configChanged(vdev: VirtioDevice): void {
    this.deviceOf(vdev)?.configChanged();
  }
}
