/**
 * A Node.js `Duplex` over a connected SCIF endpoint, so data can be `pipeline()`d through SCIF.
 * Writes are blocking `scif_send`s (a full ring holds the write callback back: backpressure);
 * reads are non-blocking `scif_recv`s, pushed while the readable side wants more, and resumed when
 * the endpoint changes. The peer closing ends the readable side once its data is drained.
 *
 * SCIF has no half-close: ending the writable side closes the endpoint (after every byte was
 * sent), which the peer reads as end of stream once it drained the ring.
 */
import { Duplex } from 'node:stream';
import { MicError, isMicError } from '@mic/errors';
import { EPOLLIN, SCIFEP, SCIF_SEND_BLOCK } from './constants.js';
import type { ScifEndpoint } from './scif.js';

/** Options of {@link ScifStream}. */
export interface ScifStreamOptions {
  /** Bytes buffered on each side before backpressure (default 64 KiB). */
  readonly highWaterMark?: number;
  /** Largest single read (default 16 KiB). */
  readonly readChunk?: number;
}

/**
 * A `Duplex` over a CONNECTED endpoint; `destroy()` (and the end of the writable side) close it.
 *
 * @example
 * const stream = new ScifStream(ep);
 * await pipeline(Readable.from([Buffer.from('hello')]), stream);
 */
export class ScifStream extends Duplex {
  readonly endpoint: ScifEndpoint;
  readonly #abort = new AbortController();
  readonly #chunk: number;
  #reading = false;
  #closed = false;

  /** @throws MicError ENOTCONN when `ep` is not connected */
  constructor(ep: ScifEndpoint, options: ScifStreamOptions = {}) {
    const hwm = options.highWaterMark ?? 64 * 1024;
    super({ readableHighWaterMark: hwm, writableHighWaterMark: hwm });
    if (ep.state !== SCIFEP.CONNECTED) {
      throw new MicError('ENOTCONN', `a scif stream needs a connected endpoint, not ${ep.stateName}`);
    }
    this.endpoint = ep;
    this.#chunk = options.readChunk ?? 16 * 1024;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.endpoint.send(chunk, SCIF_SEND_BLOCK, { signal: this.#abort.signal }).then(
      (n) =>
        cb(
          n === chunk.length
            ? null
            : new MicError('ECONNRESET', `scif stream sent ${n} of ${chunk.length} bytes`),
        ),
      (err: unknown) => cb(err as Error),
    );
  }

  /**
   * Several buffered writes at once: their blocking sends are issued together, so they run one
   * after the other within this call while the ring has room (the endpoint's send lock keeps
   * them in order), and the callback comes once.
   */
  override _writev(
    chunks: readonly { chunk: Buffer; encoding: BufferEncoding }[],
    cb: (err?: Error | null) => void,
  ): void {
    const signal = this.#abort.signal;
    let total = 0;
    const sends: Promise<number>[] = [];
    for (const { chunk } of chunks) {
      total += chunk.length;
      sends.push(this.endpoint.send(chunk, SCIF_SEND_BLOCK, { signal }));
    }
    Promise.all(sends).then(
      (ns) => {
        let n = 0;
        for (const k of ns) n += k;
        cb(n === total ? null : new MicError('ECONNRESET', `scif stream sent ${n} of ${total} bytes`));
      },
      (err: unknown) => cb(err as Error),
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#close().then(
      () => cb(),
      (err: unknown) => cb(err as Error),
    );
  }

  override _read(): void {
    if (this.#reading) return;
    this.#reading = true;
    void this.#pump().finally(() => {
      this.#reading = false;
    });
  }

  async #pump(): Promise<void> {
    const signal = this.#abort.signal;
    for (;;) {
      if (signal.aborted || this.#closed) {
        this.push(null);
        return;
      }
      const changed = this.endpoint.changed(signal, EPOLLIN);
      const buf = Buffer.allocUnsafe(this.#chunk);
      let n: number;
      try {
        n = await this.endpoint.recv(buf, 0);
      } catch (err) {
        if (isMicError(err, 'ECONNRESET') || isMicError(err, 'EBADF') || isMicError(err, 'ENOTCONN'))
          this.push(null);
        else this.destroy(err as Error);
        return;
      }
      if (n > 0) {
        if (!this.push(buf.subarray(0, n))) return;
        continue;
      }
      await changed;
    }
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.endpoint.close();
    } catch (err) {
      if (!isMicError(err, 'EBADF')) throw err;
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#abort.abort();
    this.#close().then(
      () => cb(err),
      () => cb(err),
    );
  }
}
