/**
 * The SCIF driver of one node and its endpoint API (`include/linux/scif.h`, Promise-based, with
 * `AbortSignal`s for the kernel's signals).
 *
 * @see drivers/misc/mic/scif/scif_main.c, scif_api.c
 */
import { type Clock, realClock } from '@mic/clock';
import { MicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import type { Memory } from '@mic/memory';
import {
  MIC_SCIF_DEV,
  SCIF_DEV_ANY_ID,
  type ScifClient,
  type ScifDriver,
  type ScifHwDev,
  ScifPeerBus,
} from '@mic/scif-bus';
import {
  EPOLLERR,
  EPOLLHUP,
  SCIF_BUSY_POLL_US,
  SCIF_ENDPT_QP_SIZE,
  SCIF_EP_STATE_NAMES,
  SCIF_NODEQP_SEND_TO_MS,
  SCIF_NODE_ACCEPT_TIMEOUT_MS,
  SCIF_NODE_ALIVE_TIMEOUT_MS,
  SCIF_QP_POLL_MS,
  type ScifEpState,
} from './constants.js';
import { ScifCore, type ScifTunables } from './core.js';
import * as E from './endpt.js';
import { installFenceHandlers } from './fence.js';
import * as F from './fence.js';
import type { ScifMsg, ScifPortId } from './msg.js';
import { getNodeIds, installNodeHandlers, probe, remove } from './node.js';
import * as C from './rma-copy.js';
import * as P from './pages.js';
import type { ScifRange } from './pages.js';
import { attachRma, installRmaHandlers, register, unregister } from './rma.js';

export type { ScifTunables } from './core.js';
export type { ScifPortId } from './msg.js';

/** Options of {@link Scif}. */
export interface ScifOptions {
  /** Time for every timeout (default: the wall clock). */
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** The peer bus clients attach to (default: a new one). */
  readonly peerBus?: ScifPeerBus;
  /** The kernel's timeouts and sizes, as options (defaults: the kernel's). */
  readonly tunables?: Partial<ScifTunables>;
  /**
   * Called with every node-queue-pair message this node receives (`node` is the link it came
   * from), before it is handled; for tracing and learning. It must not change the message.
   */
  readonly onMessage?: (node: number, msg: ScifMsg) => void;
}

/** Options of a blocking call. */
export interface ScifCallOptions {
  /** Aborting it interrupts the call with `EINTR` (the kernel's signal). */
  readonly signal?: AbortSignal;
}

/** Options of {@link ScifEndpoint.connect}. */
export interface ScifConnectOptions extends ScifCallOptions {
  /** Connect in the background (`O_NONBLOCK`): rejects with `EINPROGRESS`; poll for `EPOLLOUT`. */
  readonly nonBlock?: boolean;
}

/** One entry of {@link Scif.poll} (`struct scif_pollepd`). */
export interface ScifPollEntry {
  readonly ep: ScifEndpoint;
  /** `EPOLLIN` / `EPOLLOUT` wanted; `EPOLLERR | EPOLLHUP` are always added. */
  readonly events: number;
  /** Filled by {@link Scif.poll}. */
  revents: number;
}

/** The default tunables (the kernel's values). */
export const SCIF_DEFAULT_TUNABLES: ScifTunables = Object.freeze({
  nodeAliveTimeoutMs: SCIF_NODE_ALIVE_TIMEOUT_MS,
  acceptTimeoutMs: SCIF_NODE_ACCEPT_TIMEOUT_MS,
  sendTimeoutMs: SCIF_NODEQP_SEND_TO_MS,
  qpPollMs: SCIF_QP_POLL_MS,
  endpointQpSize: SCIF_ENDPT_QP_SIZE,
  p2pEnable: false,
  doubleWrite: false,
  busyPollUs: SCIF_BUSY_POLL_US,
});

/** Largest `busyPollUs` accepted: 10 ms (a longer spin only starves the thread's other work). */
const MAX_BUSY_POLL_US = 10_000;

const facades = new WeakMap<E.Endpt, ScifEndpoint>();
const endpts = new WeakMap<ScifEndpoint, E.Endpt>();

/** The user-facing object of an endpoint. */
function facade(ep: E.Endpt): ScifEndpoint {
  let f = facades.get(ep);
  if (!f) {
    f = new ScifEndpoint(ep);
    facades.set(ep, f);
    endpts.set(f, ep);
  }
  return f;
}

/** The endpoint behind a facade. */
function endptOf(ep: ScifEndpoint): E.Endpt {
  const e = endpts.get(ep);
  if (!e) throw new MicError('EINVAL', 'not a scif endpoint');
  return e;
}

/**
 * An endpoint (`scif_epd_t`). Made by {@link Scif.open} or returned by {@link accept}. Every method
 * throws (or rejects with) a `MicError` whose code is the kernel's errno for that misuse; once
 * {@link close}d, every call is `EBADF`.
 */
export class ScifEndpoint {
  readonly #ep: E.Endpt;

  /** @internal Use {@link Scif.open}. */
  constructor(ep: E.Endpt) {
    this.#ep = ep;
    attachRma(ep);
  }

  /** The state (`SCIFEP.*`). */
  get state(): ScifEpState {
    return this.#ep.state;
  }

  /** The kernel's name of the state, e.g. `Connected`. */
  get stateName(): string {
    return SCIF_EP_STATE_NAMES[this.#ep.state];
  }

  /** This endpoint's port (`{ node, port }`; port 0 until bound). */
  get port(): ScifPortId {
    return this.#ep.port;
  }

  /** The peer's port once connected. */
  get peer(): ScifPortId {
    return this.#ep.peer;
  }

  /**
   * `scif_bind`: port `pn`, or the lowest free one from 1089 when 0. Returns the port.
   * @throws MicError EACCES (below 1024 without the privilege), EINVAL (already bound, or the port
   * is taken), EISCONN (neither unbound nor bound), ENOSPC (no free port)
   */
  bind(pn = 0): number {
    return E.bind(this.#ep, pn);
  }

  /**
   * `scif_listen`: BOUND → LISTENING. A `backlog` of 0 refuses every request (as Linux).
   * @throws MicError EINVAL (unbound, closing, disconnected, zombie), EISCONN (listening, connected,
   * connecting, mapping)
   */
  listen(backlog: number): void {
    E.listen(this.#ep, backlog);
  }

  /**
   * `__scif_connect` to `dst`. Blocking: resolves once CONNECTED. Non-blocking: rejects with
   * `EINPROGRESS`; poll reports `EPOLLOUT`; a second call collects the result.
   * @throws MicError ENODEV (node beyond maxid, or offline), EINVAL, EOPNOTSUPP (listening),
   * EINPROGRESS, EISCONN, ECONNREFUSED (refused, or no answer in 30 s), EINTR
   */
  connect(dst: ScifPortId, options: ScifConnectOptions = {}): Promise<void> {
    return E.connect(this.#ep, dst, options.nonBlock ?? false, options.signal);
  }

  /**
   * `scif_accept`: the first pending request becomes a new endpoint on this port, CONNECTED.
   * `flags` is 0 or `SCIF_ACCEPT_SYNC` (wait for a request).
   * @throws MicError EINVAL (flags, not listening), EAGAIN (nothing pending without SYNC, or the
   * connector failed), EINTR (signal, or the listener was flushed), ENODEV (peer lost), EIO
   */
  async accept(
    flags: number,
    options: ScifCallOptions = {},
  ): Promise<{ ep: ScifEndpoint; peer: ScifPortId }> {
    const r = await E.accept(this.#ep, flags, options.signal);
    return { ep: facade(r.ep), peer: r.peer };
  }

  /** `__scif_flush`: LISTENING → CLLISTEN; a blocked accept returns `EINTR`. */
  flush(): void {
    E.flush(this.#ep);
  }

  /**
   * `scif_close`, by state: connected endpoints unregister their windows and send `DISCNCT`
   * (waiting ≤ 30 s for the acknowledgement); listeners refuse their queued requests.
   * @throws MicError EBADF when already closed
   */
  close(): Promise<void> {
    return E.close(this.#ep);
  }

  /**
   * `scif_send`: resolves with the bytes sent. `flags` 0 sends what fits now; `SCIF_SEND_BLOCK`
   * waits for room until every byte is sent.
   * @throws MicError EINVAL, ENOTCONN, ECONNRESET (peer closed, nothing sent), EINTR, ENODEV
   */
  send(buf: Uint8Array, flags = 0, options: ScifCallOptions = {}): Promise<number> {
    return E.send(this.#ep, buf, flags, options.signal);
  }

  /**
   * `scif_recv`: resolves with the bytes received; data left after the peer closed can still be
   * drained. `SCIF_RECV_BLOCK` waits until `buf` is full or the connection ends.
   * @throws MicError EINVAL, ENOTCONN, ECONNRESET (peer closed and nothing left), EINTR
   */
  recv(buf: Uint8Array, flags = 0, options: ScifCallOptions = {}): Promise<number> {
    return E.recv(this.#ep, buf, flags, options.signal);
  }

  /** The poll events this endpoint has now (`__scif_pollfd`). */
  pollEvents(): number {
    return E.pollMask(this.#ep);
  }

  /**
   * Resolves at the next state or data change of this endpoint (what a `poll` sleeps on), or when
   * `signal` aborts. With `events` (`EPOLLIN`, `EPOLLOUT`), only a change after which the endpoint
   * has one of them (or `EPOLLERR`/`EPOLLHUP`) resolves it, as `poll` goes back to sleep on the
   * others: a reader is not woken by the peer's `CLIENT_RCVD`. It resolves inside the wake-up, so
   * the caller runs in the next promise turn. For loops that read with non-blocking `recv`: take
   * it BEFORE the non-blocking call and await it only when that call found nothing, as the
   * kernel's `poll_wait` comes before the mask check. Taken after the call, a change that lands in
   * between (interrupts are handled between any two microtasks) wakes nobody:
   * ```ts
   * const changed = ep.changed(undefined, EPOLLIN);
   * const n = await ep.recv(buf, 0);
   * if (n === 0) await changed;
   * ```
   */
  changed(signal?: AbortSignal, events = 0): Promise<void> {
    const ep = this.#ep;
    const want = events === 0 ? 0 : events | EPOLLERR | EPOLLHUP;
    return new Promise<void>((resolve) => {
      let cancel: () => void;
      const onAbort = (): void => {
        cancel();
        resolve();
      };
      const arm = (): void => {
        cancel = ep.pollwq.once(() => {
          if (want !== 0 && (E.pollMask(ep) & want) === 0) {
            arm();
            return;
          }
          signal?.removeEventListener('abort', onAbort);
          resolve();
        });
      };
      arm();
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * `scif_register`: opens a window of `mem` (a page-aligned memory, or several, each a multiple
   * of 4 KiB) in this endpoint's registered address space. `mapFlags` `SCIF_MAP_FIXED` places it
   * at `offset`; otherwise the offset is chosen (from the top, the hint ignored). Resolves with it.
   * @throws MicError EINVAL, EADDRINUSE (fixed, overlapping), ENOMEM (peer refused), EFAULT,
   * ECONNRESET / ENOTCONN / ENODEV (`scif_verify_epd`)
   */
  register(mem: Memory | readonly Memory[], offset: number, prot: number, mapFlags = 0): Promise<number> {
    return register(this.#ep, mem, offset, prot, mapFlags);
  }

  /**
   * `scif_unregister`: closes the windows that exactly make up `[offset, offset + len)`.
   * @throws MicError EINVAL, ENXIO (not whole windows, or being unregistered), verify_epd errors
   */
  unregister(offset: number, len: number): Promise<void> {
    return unregister(this.#ep, offset, len);
  }

  /**
   * `scif_readfrom`: copies `len` bytes of the peer's window at `roffset` into ours at `loffset`.
   * @throws MicError EINVAL (flags, lengths), ENXIO (not registered), EPERM (protection),
   * verify_epd errors, EIO (DMA)
   */
  readfrom(loffset: number, len: number, roffset: number, flags = 0): Promise<void> {
    return C.rmaCopy(this.#ep, { kind: 'ras', offset: loffset }, len, roffset, flags, false);
  }

  /** `scif_writeto`: copies our window at `loffset` into the peer's at `roffset`. Errors as {@link readfrom}. */
  writeto(loffset: number, len: number, roffset: number, flags = 0): Promise<void> {
    return C.rmaCopy(this.#ep, { kind: 'ras', offset: loffset }, len, roffset, flags, true);
  }

  /** `scif_vreadfrom`: copies the peer's window at `roffset` into `buf`. Errors as {@link readfrom}. */
  vreadfrom(buf: Uint8Array, roffset: number, flags = 0): Promise<void> {
    return C.rmaCopy(this.#ep, { kind: 'buf', buf }, buf?.length, roffset, flags, false);
  }

  /** `scif_vwriteto`: copies `buf` into the peer's window at `roffset`. Errors as {@link readfrom}. */
  vwriteto(buf: Uint8Array, roffset: number, flags = 0): Promise<void> {
    return C.rmaCopy(this.#ep, { kind: 'buf', buf }, buf?.length, roffset, flags, true);
  }

  /**
   * `scif_fence_mark`: marks the RMAs issued so far by this side (`SCIF_FENCE_INIT_SELF`) or by
   * the peer (`SCIF_FENCE_INIT_PEER`; the mark has bit 31 set). Resolves with the mark.
   * @throws MicError EINVAL (not exactly one flag), verify_epd errors, ENOMEM (peer refused)
   */
  fenceMark(flags: number): Promise<number> {
    return F.fenceMark(this.#ep, flags);
  }

  /**
   * `scif_fence_wait`: waits until the RMAs of `mark` are complete.
   * @throws MicError ETIMEDOUT (30 s), ENODEV, ENOMEM (peer refused), EINVAL (bad mark), verify_epd errors
   */
  fenceWait(mark: number): Promise<void> {
    return F.fenceWait(this.#ep, mark);
  }

  /**
   * `scif_fence_signal`: once the RMAs issued so far (by this side with `SCIF_FENCE_INIT_SELF`, by
   * the peer with `SCIF_FENCE_INIT_PEER`) are complete, writes the 64-bit `lval` at `loff` of our
   * window (`SCIF_SIGNAL_LOCAL`) and `rval` at `roff` of the peer's (`SCIF_SIGNAL_REMOTE`). Follows
   * the documented semantics (see the README on Linux's argument swap).
   * @throws MicError EINVAL (flags, offsets not 4-byte aligned), ENXIO / EPERM (windows), verify_epd errors
   */
  fenceSignal(loff: number, lval: bigint, roff: number, rval: bigint, flags: number): Promise<void> {
    return F.fenceSignal(this.#ep, loff, lval, roff, rval, flags);
  }

  /**
   * The peer's registered window at `roffset` as live memory (the `mmap` of `/dev/scif`): reads
   * and writes reach the peer's pages. It must lie in one contiguous chunk of one window. Every
   * access throws `ENODEV` once {@link ScifMapping.unmap}ped, or when the node is lost.
   * @throws MicError EINVAL, ENXIO, EPERM, verify_epd errors
   */
  mmap(roffset: number, len: number, prot: number): ScifMapping {
    return C.mmap(this.#ep, roffset, len, prot);
  }

  /**
   * `scif_get_pages`: the addresses (and, on the host for a card's window, the memory) of the
   * peer's registered pages `[offset, offset + len)`, which must lie in one window. The window
   * stays referenced until {@link putPages}: the peer's `unregister` meanwhile gets
   * `UNREGISTER_NACK` (its window is freed with the last reference, `SCIF_MUNMAP`).
   * @throws MicError EINVAL (not page-aligned, zero, wraps), ENXIO (not in one window),
   *   ECONNRESET / ENOTCONN / ENODEV (`scif_verify_epd`)
   */
  getPages(offset: number, len: number): ScifRange {
    return P.getPages(this.#ep, offset, len);
  }

  /**
   * `scif_put_pages`: gives back a range from {@link getPages}.
   * @throws MicError EINVAL (not this endpoint's range, or put already), ENOTCONN (the endpoint
   *   is neither connected nor disconnected)
   */
  putPages(range: ScifRange): void {
    P.putPages(this.#ep, range);
  }
}

/** A live view of a peer window from {@link ScifEndpoint.mmap}. */
export interface ScifMapping {
  /** The peer's bytes; throws `ENODEV` after {@link unmap} or node loss. */
  readonly mem: Memory;
  /** False once unmapped or invalidated by node loss. */
  readonly valid: boolean;
  /** Drops the mapping (the last reference to a window the peer unregistered sends `SCIF_MUNMAP`). */
  unmap(): void;
}

/**
 * The SCIF driver of one node (the kernel's `scif_info` and `scif_dev[]`). Register
 * {@link driver} on the node's `ScifBus`; the first device probed sets the node id (host: 0). Then
 * {@link open} endpoints.
 *
 * @example
 * const scif = new Scif();
 * await scifBus.registerDriver(scif.driver);
 * const ep = scif.open();
 * ep.bind(2000);
 */
export class Scif {
  readonly #core: ScifCore;
  /** The SCIF hardware driver (`{ MIC_SCIF_DEV, ANY }`) to register on a `ScifBus`. */
  readonly driver: ScifDriver;
  /** The peer bus: one device per online node, self included; clients attach here. */
  readonly peerBus: ScifPeerBus;

  constructor(options: ScifOptions = {}) {
    const log = (options.logger ?? nullLogger).child('scif');
    this.peerBus = options.peerBus ?? new ScifPeerBus({ logger: log });
    const t: ScifTunables = { ...SCIF_DEFAULT_TUNABLES, ...options.tunables };
    const size = t.endpointQpSize;
    if (!Number.isInteger(size) || size < 64 || (size & (size - 1)) !== 0 || size > 1 << 24) {
      throw new MicError(
        'EINVAL',
        `scif endpoint ring size ${String(size)} is not a power of two in [64, 16 MiB]`,
      );
    }
    const bp = t.busyPollUs;
    if (typeof bp !== 'number' || !Number.isInteger(bp) || bp < 0 || bp > MAX_BUSY_POLL_US) {
      throw new MicError(
        'EINVAL',
        `scif tunables.busyPollUs ${String(bp)} is not an integer in [0, ${MAX_BUSY_POLL_US}]`,
      );
    }
    const core = new ScifCore(options.clock ?? realClock, log, this.peerBus, t);
    core.trace = options.onMessage;
    this.#core = core;
    installNodeHandlers(core);
    E.installEndpointHandlers(core);
    installRmaHandlers(core);
    installFenceHandlers(core);
    this.driver = {
      name: 'scif',
      idTable: [
        { device: MIC_SCIF_DEV, vendor: SCIF_DEV_ANY_ID },
        { device: 0, vendor: 0 },
      ],
      probe: (sdev: ScifHwDev) => probe(core, sdev),
      remove: (sdev: ScifHwDev) => remove(core, sdev),
    };
  }

  /** This node's id (`scif_info.nodeid`); -1 before the first device is probed. */
  get nodeId(): number {
    return this.#core.nodeid;
  }

  /** The highest node id known (`maxid`). */
  get maxId(): number {
    return this.#core.maxid;
  }

  /** True while `node` is online (`_scifdev_alive`: it has a peer device). */
  isAlive(node: number): boolean {
    return this.#core.alive(node);
  }

  /** Endpoints not freed yet (closed ones linger while RMA state is released). */
  get endpointCount(): number {
    return this.#core.endpoints.size;
  }

  /**
   * `scif_open`: a new UNBOUND endpoint. `privileged` lets it bind ports below 1024
   * (`CAP_SYS_ADMIN`).
   */
  open(options: { readonly privileged?: boolean } = {}): ScifEndpoint {
    return facade(new E.Endpt(this.#core, options.privileged ?? false));
  }

  /**
   * `scif_poll`: fills each entry's `revents` and resolves with how many have events; 0 after
   * `timeoutMs` (< 0: forever; 0: do not wait).
   * @throws MicError EINTR when `signal` aborts
   */
  async poll(entries: ScifPollEntry[], timeoutMs: number, options: ScifCallOptions = {}): Promise<number> {
    const inner: E.PollEntry[] = entries.map((e) => ({ ep: endptOf(e.ep), events: e.events, revents: 0 }));
    const n = await E.poll(this.#core, inner, timeoutMs, options.signal);
    inner.forEach((e, i) => (entries[i]!.revents = e.revents));
    return n;
  }

  /**
   * `scif_get_node_ids`: the online nodes (self included) and this node's id. A card asks the
   * management node first (`SCIF_GET_NODE_INFO`).
   */
  getNodeIds(): Promise<{ nodes: number[]; self: number }> {
    return getNodeIds(this.#core);
  }

  /**
   * `scif_client_register`: `client.probe` runs for every online node (self included) now and
   * later, `client.remove` when a node goes.
   */
  clientRegister(client: ScifClient): Promise<void> {
    return this.peerBus.registerClient(client);
  }

  /** `scif_client_unregister`. */
  clientUnregister(client: ScifClient): Promise<void> {
    return this.peerBus.unregisterClient(client);
  }

  /** Resolves once no background work (polls, handshakes, teardown) is left. */
  async idle(): Promise<void> {
    await this.#core.idle();
    await this.peerBus.idle();
  }
}
