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
import { MicError, checkInt } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import {
  VIRTIO_CONFIG_S,
  VIRTIO_CONSOLE_F,
  VIRTIO_DEV_ANY_ID,
  VIRTIO_ID,
  type VirtioDevice,
  type VirtioDriver,
} from '@mic/virtio';
import { QueuePair, VirtioDriverBase, safeEmit } from './common.js';

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
  #q: QueuePair | null = null;
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
    return this.#q?.rxPosted ?? 0;
  }

  /** Transmit chains the device holds now. */
  get txInFlight(): number {
    return this.#txLen.size;
  }

  /** @internal `init_vqs` and `fill_queue`: both queues and their buffers (nothing posted yet). */
  async init(): Promise<void> {
    const o = this.#opts;
    this.#q = await QueuePair.open(this.vdev, {
      what: 'virtio-console',
      names: ['input', 'output'],
      rxSlots: (rx) => ({ count: Math.min(o.rxBuffers || rx.num, rx.num), size: o.rxBufferSize }),
      txSlots: (tx) => ({
        count: Math.min(o.txBuffers || Math.min(tx.num, 32), tx.num),
        size: o.txChunkSize,
      }),
      onRx: (slot, len) => this.#receive(slot, len),
      // A destroyed stream keeps the buffers going: the host must not block on a closed console.
      afterRx: () => {
        if (!this.#rxPaused || this.destroyed) this.#refill();
      },
      onTxDone: (slot) => {
        this.counters.txBytes += this.#txLen.get(slot) ?? 0;
        this.#txLen.delete(slot);
      },
      afterTx: () => this.#maybeFinish(),
      onBroken: (err) => this.#fail(err),
    });
    this.#readSize();
  }

  /** @internal Posts the receive buffers and notifies the device: after DRIVER_OK (virtio 1.2 §3.1.1). */
  start(): void {
    this.#refill();
  }

  /** Posts parked receive buffers while the ring has room, and kicks once. */
  #refill(): void {
    const q = this.#q;
    if (!q || this.#removed) return;
    q.refill((slot) => [{ addr: q.rxSlab.addr(slot), len: q.rxSlab.slotSize }]);
  }

  /** `in_intr`: copies what came back into the readable side. */
  #receive(slot: number, len: number): void {
    if (len === 0) return;
    if (this.destroyed || this.readableEnded || this.#removed) {
      this.counters.rxDropped += len;
      return;
    }
    const slab = this.#q!.rxSlab;
    const bytes = Buffer.allocUnsafe(len);
    slab.va.read(slab.offset(slot), bytes);
    this.counters.rxBytes += len;
    if (!this.push(bytes)) this.#rxPaused = true;
  }

  /** The reader wants more: post the buffers kept back. */
  override _read(): void {
    this.#rxPaused = false;
    this.#refill();
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
    const q = this.#q;
    if (this.#removed || !q) throw this.#gone();
    const slab = q.txSlab;
    for (let off = 0; off < data.length; off += slab.slotSize) {
      const piece = data.subarray(off, Math.min(data.length, off + slab.slotSize));
      await q.room.run(1, () => {
        const slot = q.postTx((s) => {
          slab.va.write(slab.offset(s), piece);
          return [{ addr: slab.addr(s), len: piece.length }];
        });
        if (slot < 0) return false;
        this.#txLen.set(slot, piece.length);
        return true;
      });
    }
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
    this.#q?.room.fail(
      new MicError('ECANCELED', `virtio-console ${this.vdev.name}: the stream was destroyed`),
    );
    this.#finalCb = null;
    // Buffers held back for a reader that is gone go to the device again.
    this.#refill();
    cb(err);
  }

  #gone(): MicError {
    return new MicError('ENODEV', `virtio-console ${this.vdev.name} was removed`);
  }

  /** A broken queue or a device that needs a reset: the stream errors with `err`. */
  #fail(err: MicError): void {
    this.#log.error(`virtio-console ${this.vdev.name}: ${err.message}`);
    this.#q?.room.fail(err);
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
    this.#q?.room.fail(this.#gone());
    try {
      await this.vdev.reset();
    } finally {
      await this.vdev.delVqs();
      this.#q?.release();
      this.#txLen.clear();
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

  protected readonly configFields = [[VIRTIO_CONSOLE_F.SIZE, 4]] as const;

  /** `virtcons_probe` (the base sets it up, sets DRIVER_OK, posts the receive buffers). */
  protected create(vdev: VirtioDevice): VirtioConsole {
    return new VirtioConsole(vdev, this.#options, this.log);
  }

  protected describe(con: VirtioConsole): string {
    return con.size ? `${con.size.cols}x${con.size.rows}` : 'no size';
  }
}
