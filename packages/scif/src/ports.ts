/**
 * SCIF ports (`scif_ports.c`): reference-counted port numbers 1..65535. `reserve(p)` takes exactly
 * `p`; `getNew()` the lowest free port from 1089; an accepted endpoint shares its listener's port
 * (`get`), and a port is free again when its last user `put`s it. Port 0 is never used.
 *
 * @see drivers/misc/mic/scif/scif_ports.c
 */
import { MicError } from '@mic/errors';
import { SCIF_FIRST_AUTO_PORT, SCIF_PORT_COUNT } from './constants.js';

/** The port table of one node. */
export class ScifPorts {
  readonly #refs = new Map<number, number>();
  #hint = SCIF_FIRST_AUTO_PORT;

  /** Ports in use. */
  get inUse(): number {
    return this.#refs.size;
  }

  /** References to `port` (0 when free). */
  refs(port: number): number {
    return this.#refs.get(port) ?? 0;
  }

  /** `scif_rsrv_port`: takes exactly `port`. @throws MicError ENOSPC when it is taken */
  reserve(port: number): number {
    if (!Number.isInteger(port) || port < 1 || port >= SCIF_PORT_COUNT) {
      throw new MicError('EINVAL', `scif port ${String(port)} is not in [1, ${SCIF_PORT_COUNT - 1}]`);
    }
    if (this.#refs.has(port))
      throw new MicError('ENOSPC', `scif port ${port} is in use`, { details: { port } });
    this.#refs.set(port, 1);
    return port;
  }

  /** `scif_get_new_port`: the lowest free port from 1089. @throws MicError ENOSPC when none is free */
  getNew(): number {
    // Everything below the hint is taken (the hint only moves up past taken ports, or down on put).
    for (let p = this.#hint; p < SCIF_PORT_COUNT; p++) {
      if (!this.#refs.has(p)) {
        this.#refs.set(p, 1);
        this.#hint = p + 1;
        return p;
      }
    }
    throw new MicError('ENOSPC', 'no free scif port from 1089 up');
  }

  /** `scif_get_port`: one more user of `port` (no-op for 0 or a free port). */
  get(port: number): void {
    const n = this.#refs.get(port);
    if (port !== 0 && n !== undefined) this.#refs.set(port, n + 1);
  }

  /** `scif_put_port`: one user fewer; the last frees it (no-op for 0 or a free port). */
  put(port: number): void {
    const n = this.#refs.get(port);
    if (port === 0 || n === undefined) return;
    if (n > 1) {
      this.#refs.set(port, n - 1);
      return;
    }
    this.#refs.delete(port);
    if (port >= SCIF_FIRST_AUTO_PORT && port < this.#hint) this.#hint = port;
  }
}

/**
 * Opaque 64-bit handles for objects named in messages (the kernel sends endpoint, window and
 * request pointers). A handle from the peer is only a key: every use checks the object's kind and
 * that it belongs to the node the message came from.
 */
export class HandleTable {
  readonly #objs = new Map<number, object>();
  #next: number;

  constructor() {
    // Start somewhere unpredictable in [2^32, 2^44), step by 16: handles look like pointers.
    this.#next = 2 ** 32 + Math.floor(Math.random() * 2 ** 40) * 16;
  }

  /** Live handles. */
  get size(): number {
    return this.#objs.size;
  }

  add(obj: object): number {
    const h = this.#next;
    this.#next += 16;
    this.#objs.set(h, obj);
    return h;
  }

  /** The object of handle `h` if it is an instance of `kind`. */
  get<T>(h: number, kind: abstract new (...args: never[]) => T): T | undefined {
    const o = this.#objs.get(h);
    return o instanceof kind ? o : undefined;
  }

  /** Points an existing handle at another object (a registration becoming a window). */
  replace(h: number, obj: object): void {
    if (this.#objs.has(h)) this.#objs.set(h, obj);
  }

  remove(h: number): void {
    this.#objs.delete(h);
  }
}
