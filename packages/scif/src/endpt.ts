/**
 * SCIF endpoints (`struct scif_endpt`): the state machine, ports, the connection protocol
 * (`CNCT_REQ` → `CNCT_GNT` → `CNCT_GNTACK`), close by state, messaging over the endpoint queue
 * pair (`send`/`recv` with `CLIENT_SENT`/`CLIENT_RCVD`), poll masks, and what a lost node does
 * to its endpoints.
 *
 * @see drivers/misc/mic/scif/scif_api.c, scif_epd.c, scif_epd.h
 */
import { MicError, isMicError, toMicError } from '@mic/errors';
import {
  ASYNC_CONN,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  SCIFEP,
  SCIF_ACCEPT_SYNC,
  SCIF_ADMIN_PORT_END,
  SCIF_EP_STATE_NAMES,
  SCIF_MSG,
  SCIF_RECV_BLOCK,
  SCIF_SEND_BLOCK,
  type ScifEpState,
} from './constants.js';
import type { ScifCore, ScifDev } from './core.js';
import { ScifMsg, type ScifPortId } from './msg.js';
import { SENT } from './nodeqp.js';
import { ScifQp } from './qp.js';
import { EpRma } from './rma-state.js';
import { BusyPoller, CallLock, WaitQueue, interrupted, waitWhileAlive } from './wait.js';

/** Options of the blocking calls. */
export interface ScifCallOptions {
  /** Aborting it interrupts the call (`EINTR`, the kernel's signal). */
  readonly signal?: AbortSignal;
}

function err(
  code: ConstructorParameters<typeof MicError>[0],
  msg: string,
  details?: Record<string, unknown>,
): MicError {
  return new MicError(code, msg, details ? { details } : {});
}

/** One endpoint. */
export class Endpt {
  readonly core: ScifCore;
  /** The opaque handle the peer names this endpoint by. */
  readonly handle: number;
  readonly privileged: boolean;
  state: ScifEpState = SCIFEP.UNBOUND;
  port: ScifPortId = { node: 0, port: 0 };
  peer: ScifPortId = { node: 0, port: 0 };
  connPort: ScifPortId | undefined;
  remoteDev: ScifDev | undefined;
  remoteEp = 0;
  qp: ScifQp | undefined;
  gntPld = 0;
  backlog = 0;
  readonly conlist: ScifMsg[] = [];
  connAsyncState: number = ASYNC_CONN.BLOCKING;
  connErr: MicError | undefined;
  connTask: Promise<void> | undefined;
  /** Set once `DISCNT_ACK` arrived for our `DISCNCT`. */
  disconDone = false;
  /** True once the user closed it (every call after that is `EBADF`). */
  closed = false;
  readonly pollwq = new WaitQueue();
  readonly sendwq = new WaitQueue(this.pollwq);
  readonly recvwq = new WaitQueue(this.pollwq);
  readonly conwq = new WaitQueue(this.pollwq);
  readonly connPendWq = new WaitQueue(this.pollwq);
  readonly disconWq = new WaitQueue();
  /** Woken by every RMA and fence response for this endpoint. */
  readonly rmawq = new WaitQueue();
  /** Blocking sends and receives hold these (`sendlock`, `recvlock`). */
  readonly sendLock = new CallLock();
  readonly recvLock = new CallLock();
  /** Busy polls of blocking sends and receives (`ScifTunables.busyPollUs`), one per direction. */
  readonly sendPoll = new BusyPoller();
  readonly recvPoll = new BusyPoller();
  /** The notification message this endpoint's sends and receives reuse. */
  readonly note = new ScifMsg();
  readonly rma: EpRma;

  constructor(core: ScifCore, privileged: boolean) {
    this.core = core;
    this.privileged = privileged;
    this.handle = core.handles.add(this);
    this.rma = new EpRma(this);
    core.endpoints.add(this);
  }

  get conreqcnt(): number {
    return this.conlist.length;
  }

  /** The kernel's debug name of the state. */
  get stateName(): string {
    return SCIF_EP_STATE_NAMES[this.state];
  }

  /** True while the node this endpoint talks to is online. */
  get peerAlive(): boolean {
    return this.remoteDev !== undefined && this.core.alive(this.remoteDev.node);
  }

  /** Wakes every waiter of this endpoint (a state change, a lost node). */
  wakeAll(): void {
    this.sendwq.wake();
    this.recvwq.wake();
    this.conwq.wake();
    this.connPendWq.wake();
    this.disconWq.wake();
    this.rmawq.wake();
  }

  /** `EBADF` once closed (the user-level "not an endpoint"). */
  checkOpen(what: string): void {
    if (this.closed) throw err('EBADF', `scif ${what} on a closed endpoint`);
  }
}

// ---------------------------------------------------------------------------------------------
// bind / listen

/**
 * `scif_bind`: port `pn`, or a new one from 1089 when 0. Returns the port.
 * @throws MicError EACCES (below 1024 without privilege), EINVAL (already bound, or `pn` taken),
 * EISCONN (neither unbound nor bound), ENOSPC
 */
export function bind(ep: Endpt, pn: number): number {
  ep.checkOpen('bind');
  if (!Number.isInteger(pn) || pn < 0 || pn > 0xffff)
    throw err('EINVAL', `scif port ${String(pn)} is not a u16`);
  if (pn !== 0 && pn < SCIF_ADMIN_PORT_END && !ep.privileged) {
    throw err(
      'EACCES',
      `scif port ${pn} is below ${SCIF_ADMIN_PORT_END} and the endpoint is not privileged`,
      { pn },
    );
  }
  if (ep.state === SCIFEP.BOUND)
    throw err('EINVAL', `scif endpoint is already bound to port ${ep.port.port}`);
  if (ep.state !== SCIFEP.UNBOUND) throw err('EISCONN', `scif bind in state ${ep.stateName}`);
  const core = ep.core;
  if (pn !== 0) {
    try {
      core.ports.reserve(pn);
    } catch (e) {
      throw err('EINVAL', `scif port ${pn} is in use`, { pn, cause: String(e) });
    }
  } else {
    pn = core.ports.getNew();
  }
  ep.state = SCIFEP.BOUND;
  ep.port = { node: Math.max(core.nodeid, 0), port: pn };
  ep.connAsyncState = ASYNC_CONN.IDLE;
  return pn;
}

/**
 * `scif_listen`: BOUND → LISTENING with `backlog` (a backlog of 0 refuses every request, as the
 * kernel's `backlog <= conreqcnt`).
 * @throws MicError EINVAL (zombie, closing, close-listening, unbound, disconnected), EISCONN
 * (listening, connected, connecting, mapping)
 */
export function listen(ep: Endpt, backlog: number): void {
  ep.checkOpen('listen');
  if (!Number.isInteger(backlog)) throw err('EINVAL', `scif backlog ${String(backlog)} is not an integer`);
  switch (ep.state) {
    case SCIFEP.ZOMBIE:
    case SCIFEP.CLOSING:
    case SCIFEP.CLLISTEN:
    case SCIFEP.UNBOUND:
    case SCIFEP.DISCONNECTED:
      throw err('EINVAL', `scif listen in state ${ep.stateName}`);
    case SCIFEP.LISTENING:
    case SCIFEP.CONNECTED:
    case SCIFEP.CONNECTING:
    case SCIFEP.MAPPING:
      throw err('EISCONN', `scif listen in state ${ep.stateName}`);
  }
  ep.state = SCIFEP.LISTENING;
  ep.backlog = backlog;
  ep.conlist.length = 0;
  // A listener has no queue pair.
  ep.qp?.free();
  ep.qp = undefined;
  ep.core.listen.push(ep);
}

/**
 * `__scif_flush`: LISTENING → CLLISTEN; a blocked accept returns `EINTR`.
 */
export function flush(ep: Endpt): void {
  if (ep.state === SCIFEP.LISTENING) {
    ep.state = SCIFEP.CLLISTEN;
    ep.conwq.wake();
  }
}

// ---------------------------------------------------------------------------------------------
// connect

/** `scif_reserve_dma_chan` happens in `rma-state.ts` (`EpRma.reserveDmaChan`). */

/**
 * `__scif_connect`. Blocking: resolves once CONNECTED. Non-blocking: rejects with `EINPROGRESS`
 * and connects in the background (poll reports `EPOLLOUT`); a later call collects the result.
 * @throws MicError ENODEV (no such node, or offline), EINVAL (zombie, closing, disconnected with
 * no connect to collect), EOPNOTSUPP (listening), EINPROGRESS, EISCONN, ENOSPC, ECONNREFUSED
 * (refused or no answer in time), EINTR (signal), and what mapping the peer's queue pair threw
 */
export async function connect(
  ep: Endpt,
  dst: ScifPortId,
  nonBlock: boolean,
  signal?: AbortSignal,
): Promise<void> {
  ep.checkOpen('connect');
  const core = ep.core;
  if (
    typeof dst !== 'object' ||
    dst === null ||
    !Number.isInteger(dst.node) ||
    !Number.isInteger(dst.port) ||
    dst.port < 0 ||
    dst.port > 0xffff
  ) {
    throw err('EINVAL', 'scif connect needs a { node, port } destination');
  }
  if (core.nodeid < 0 || dst.node < 0 || dst.node > core.maxid) {
    throw err('ENODEV', `scif node ${dst.node} is beyond the highest node ${core.maxid}`, { node: dst.node });
  }
  if (!core.alive(dst.node)) throw err('ENODEV', `scif node ${dst.node} is not online`, { node: dst.node });
  let e: MicError | undefined;
  switch (ep.state) {
    case SCIFEP.ZOMBIE:
    case SCIFEP.CLOSING:
      e = err('EINVAL', `scif connect in state ${ep.stateName}`);
      break;
    case SCIFEP.DISCONNECTED:
      if (ep.connAsyncState === ASYNC_CONN.INPROGRESS) ep.connAsyncState = ASYNC_CONN.FLUSH_WORK;
      else e = err('EINVAL', 'scif connect on a disconnected endpoint');
      break;
    case SCIFEP.LISTENING:
    case SCIFEP.CLLISTEN:
      e = err('EOPNOTSUPP', 'scif connect on a listening endpoint');
      break;
    case SCIFEP.CONNECTING:
    case SCIFEP.MAPPING:
      e =
        ep.connAsyncState === ASYNC_CONN.INPROGRESS
          ? err('EINPROGRESS', 'scif connect is in progress')
          : err('EISCONN', `scif connect in state ${ep.stateName}`);
      break;
    case SCIFEP.CONNECTED:
      if (ep.connAsyncState === ASYNC_CONN.INPROGRESS) ep.connAsyncState = ASYNC_CONN.FLUSH_WORK;
      else e = err('EISCONN', 'scif endpoint is already connected');
      break;
    case SCIFEP.UNBOUND:
    case SCIFEP.BOUND:
      if (ep.state === SCIFEP.UNBOUND) {
        const pn = core.ports.getNew();
        ep.port = { node: core.nodeid, port: pn };
        ep.connAsyncState = ASYNC_CONN.IDLE;
      }
      if (ep.connAsyncState === ASYNC_CONN.INPROGRESS) {
        ep.connAsyncState = ASYNC_CONN.FLUSH_WORK;
      } else if (ep.connAsyncState === ASYNC_CONN.FLUSH_WORK) {
        e = err('EINPROGRESS', 'another caller is collecting the connect result');
      } else {
        ep.connPort = { node: dst.node, port: dst.port };
        ep.connAsyncState = nonBlock ? ASYNC_CONN.INPROGRESS : ASYNC_CONN.BLOCKING;
      }
      break;
  }
  if (e) throw e;
  if (ep.connAsyncState === ASYNC_CONN.FLUSH_WORK) {
    await ep.connTask;
    const result = ep.connErr;
    ep.connErr = undefined;
    ep.connAsyncState = ASYNC_CONN.IDLE;
    if (result) throw result;
    return;
  }
  ep.state = SCIFEP.CONNECTING;
  ep.remoteDev = core.dev(dst.node);
  if (ep.connAsyncState === ASYNC_CONN.INPROGRESS) {
    ep.connErr = undefined;
    ep.connTask = core.spawn('non-blocking connect', async () => {
      ep.connErr = await connFunc(ep);
      ep.connPendWq.wake();
    });
    throw err('EINPROGRESS', `scif connect to ${dst.node}:${dst.port} is in progress`);
  }
  const r = await connFunc(ep, signal);
  if (r) throw r;
}

/** `scif_conn_func`: the connector's half of the connection flow. Returns the error, if any. */
async function connFunc(ep: Endpt, signal?: AbortSignal): Promise<MicError | undefined> {
  const core = ep.core;
  const dev = ep.remoteDev!;
  ep.rma.reserveDmaChan();
  let qp: ScifQp;
  try {
    qp = ScifQp.setupConnect(dev.ops!, core.t.endpointQpSize, { doubleWrite: core.t.doubleWrite });
  } catch (e) {
    ep.state = SCIFEP.BOUND;
    return toMicError(e, 'ENOMEM', 'scif endpoint queue pair setup failed');
  }
  ep.qp = qp;
  const fail = (e: MicError): MicError => {
    qp.cleanup();
    return e;
  };
  if (!core.alive(dev.node)) {
    ep.state = SCIFEP.BOUND;
    return fail(err('ENODEV', `scif node ${dev.node} went offline`));
  }
  const req = core.msg(SCIF_MSG.CNCT_REQ, ep.port.port);
  req.dstPort = ep.connPort!.port;
  req.payload[0] = ep.handle;
  req.payload[1] = qp.qpOffset;
  try {
    await core.sendRaw(dev, req);
  } catch (e) {
    ep.state = SCIFEP.BOUND;
    return fail(toMicError(e, 'ENODEV', 'scif connect request not sent'));
  }
  let ok: boolean;
  try {
    ok = await ep.conwq.wait(
      core.clock,
      () => ep.state !== SCIFEP.CONNECTING || !core.alive(dev.node),
      'scif connect',
      {
        timeoutMs: core.t.nodeAliveTimeoutMs,
        signal,
      },
    );
  } catch (e) {
    ep.state = SCIFEP.BOUND;
    return fail(toMicError(e, 'EINTR', 'scif connect interrupted'));
  }
  if (!ok && ep.state === SCIFEP.CONNECTING) ep.state = SCIFEP.BOUND;
  if (!core.alive(dev.node)) {
    if (ep.state !== SCIFEP.CONNECTED) ep.state = SCIFEP.BOUND;
    return fail(err('ENODEV', `scif node ${dev.node} went offline during connect`));
  }
  if (ep.state === SCIFEP.MAPPING) {
    const reply = core.msg(SCIF_MSG.CNCT_GNTACK, ep.port.port);
    reply.payload[0] = ep.remoteEp;
    try {
      qp.connectResponse(ep.gntPld);
    } catch (e) {
      reply.uop = SCIF_MSG.CNCT_GNTNACK;
      core.post(dev, reply, false);
      ep.state = SCIFEP.BOUND;
      return fail(toMicError(e, 'ENODEV', 'scif connect could not map the peer queue pair'));
    }
    try {
      await core.sendRaw(dev, reply);
    } catch (e) {
      ep.state = SCIFEP.BOUND;
      return fail(toMicError(e, 'ENODEV', 'scif grant acknowledgement not sent'));
    }
    ep.state = SCIFEP.CONNECTED;
    core.connected.add(ep);
    ep.wakeAll();
    return undefined;
  }
  if (ep.state === SCIFEP.BOUND) {
    return fail(err('ECONNREFUSED', `scif connection to ${ep.connPort!.node}:${ep.connPort!.port} refused`));
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// accept

/**
 * `scif_accept`: takes the first pending request and returns the new endpoint, on the listener's
 * port, CONNECTED.
 * @throws MicError EINVAL (flags other than SYNC, not listening), EAGAIN (nothing pending without
 * SYNC, or the connector gave up), EINTR (signal, or the listener left LISTENING), ENODEV (the
 * peer died), ENOMEM / EIO (mapping the connector's queue pair)
 */
export async function accept(
  lep: Endpt,
  flags: number,
  signal?: AbortSignal,
): Promise<{ ep: Endpt; peer: ScifPortId }> {
  lep.checkOpen('accept');
  const core = lep.core;
  if (!Number.isInteger(flags) || (flags & ~SCIF_ACCEPT_SYNC) !== 0) {
    throw err('EINVAL', `scif accept flags 0x${Number(flags).toString(16)} are not 0 or SCIF_ACCEPT_SYNC`);
  }
  if (lep.state !== SCIFEP.LISTENING) throw err('EINVAL', `scif accept in state ${lep.stateName}`);
  if (lep.conreqcnt === 0 && !(flags & SCIF_ACCEPT_SYNC))
    throw err('EAGAIN', 'no scif connection request is pending');
  for (;;) {
    await lep.conwq.wait(
      core.clock,
      () => lep.conreqcnt > 0 || lep.state !== SCIFEP.LISTENING,
      'scif accept',
      {
        signal,
      },
    );
    if (lep.state !== SCIFEP.LISTENING) throw err('EINTR', 'scif listener stopped listening during accept');
    const conreq = lep.conlist.shift();
    if (!conreq) continue;
    const peer: ScifPortId = { node: conreq.srcNode, port: conreq.srcPort };
    const dev = core.dev(peer.node);
    const cep = new Endpt(core, lep.privileged);
    cep.state = SCIFEP.CONNECTING;
    cep.remoteDev = dev;
    cep.remoteEp = conreq.payload[0];
    const reject = (e: MicError): MicError => {
      teardown(cep);
      freeEndpt(cep);
      const rej = core.msg(SCIF_MSG.CNCT_REJ);
      rej.dstPort = conreq.srcPort;
      rej.payload[0] = conreq.payload[0];
      rej.payload[1] = conreq.payload[1];
      core.post(dev, rej);
      return e;
    };
    if (!core.alive(peer.node) || !dev.ops)
      throw reject(err('ENODEV', `scif node ${peer.node} is not online`));
    cep.rma.reserveDmaChan();
    try {
      cep.qp = ScifQp.setupAccept(dev.ops, conreq.payload[1], core.t.endpointQpSize, {
        doubleWrite: core.t.doubleWrite,
      });
    } catch (e) {
      throw reject(toMicError(e, 'EIO', 'scif accept could not map the connector queue pair'));
    }
    cep.port = { node: lep.port.node, port: lep.port.port };
    cep.peer = peer;
    const gnt = core.msg(SCIF_MSG.CNCT_GNT, cep.port.port);
    gnt.payload[0] = cep.remoteEp;
    gnt.payload[1] = cep.qp.qpOffset;
    gnt.payload[2] = cep.handle;
    try {
      await core.sendRaw(dev, gnt);
    } catch (e) {
      throw reject(toMicError(e, 'ENODEV', 'scif grant not sent'));
    }
    // Wait for GNTACK/GNTNACK in 3 s slices while the peer lives, and no longer than the
    // handshake timeout in all: a connector that never answers cannot hold the accept forever.
    const deadline = core.clock.now() + core.t.nodeAliveTimeoutMs;
    let answered = false;
    try {
      answered = await waitWhileAlive(
        cep.conwq,
        core.clock,
        () => cep.state !== SCIFEP.CONNECTING || core.clock.now() >= deadline,
        () => core.alive(peer.node),
        core.t.acceptTimeoutMs,
        'scif accept',
        signal,
      );
    } catch (e) {
      throw reject(toMicError(e, 'EINTR', 'scif accept interrupted'));
    }
    if (!answered || !core.alive(peer.node)) {
      if ((cep.state as ScifEpState) !== SCIFEP.CONNECTED)
        throw reject(err('ENODEV', `scif node ${peer.node} died during accept`));
    }
    if (cep.state === SCIFEP.CONNECTING || cep.state === SCIFEP.CLOSING) {
      // NACKed (or never answered): nothing references the new endpoint.
      teardown(cep);
      freeEndpt(cep);
      if (flags & SCIF_ACCEPT_SYNC) {
        if (lep.state !== SCIFEP.LISTENING)
          throw err('EINTR', 'scif listener stopped listening during accept');
        continue;
      }
      throw err('EAGAIN', 'the scif connector could not complete the connection');
    }
    core.ports.get(cep.port.port);
    return { ep: cep, peer };
  }
}

// ---------------------------------------------------------------------------------------------
// close

/** `scif_teardown_ep`: frees the endpoint's queue pair. */
export function teardown(ep: Endpt): void {
  ep.qp?.free();
  ep.qp = undefined;
}

/** Forgets an endpoint that never reached the user (a failed accept). */
function freeEndpt(ep: Endpt): void {
  ep.state = SCIFEP.ZOMBIE;
  ep.closed = true;
  ep.core.handles.remove(ep.handle);
  ep.core.endpoints.delete(ep);
}

/** `scif_disconnect_ep`: wakes send/recv, sends `DISCNCT` and waits for `DISCNT_ACK`. */
async function disconnectEp(ep: Endpt): Promise<void> {
  const core = ep.core;
  ep.sendwq.wake();
  ep.recvwq.wake();
  await ep.sendLock.idle();
  await ep.recvLock.idle();
  if (!core.connected.delete(ep)) {
    core.disconnected.delete(ep);
    return;
  }
  const dev = ep.remoteDev!;
  const m = core.msg(SCIF_MSG.DISCNCT, ep.port.port);
  m.dstPort = ep.peer.port;
  m.payload[0] = ep.handle;
  m.payload[1] = ep.remoteEp;
  ep.disconDone = false;
  try {
    await core.send(dev, m);
  } catch {
    return;
  }
  await ep.disconWq.wait(core.clock, () => ep.disconDone || !core.alive(dev.node), 'scif close', {
    timeoutMs: core.t.nodeAliveTimeoutMs,
  });
}

/**
 * `scif_close`, by the old state (see the README's table); the endpoint becomes a zombie, freed
 * once its RMA state is released.
 */
export async function close(ep: Endpt): Promise<void> {
  ep.checkOpen('close');
  const core = ep.core;
  ep.closed = true;
  if (ep.connAsyncState === ASYNC_CONN.INPROGRESS) await ep.connTask;
  const old = ep.state;
  ep.state = SCIFEP.CLOSING;
  switch (old) {
    case SCIFEP.ZOMBIE:
    case SCIFEP.DISCONNECTED:
      if (old === SCIFEP.ZOMBIE) core.log.error('scif close of a zombie endpoint');
      await ep.rma.unregisterAll();
      core.disconnected.delete(ep);
      break;
    case SCIFEP.UNBOUND:
    case SCIFEP.BOUND:
    case SCIFEP.CONNECTING:
      break;
    case SCIFEP.MAPPING:
    case SCIFEP.CONNECTED:
    case SCIFEP.CLOSING:
      await ep.rma.unregisterAll();
      await disconnectEp(ep);
      break;
    case SCIFEP.LISTENING:
    case SCIFEP.CLLISTEN: {
      const at = core.listen.indexOf(ep);
      if (at >= 0) core.listen.splice(at, 1);
      for (const conreq of ep.conlist.splice(0)) {
        const rej = core.msg(SCIF_MSG.CNCT_REJ);
        rej.dstPort = conreq.srcPort;
        rej.payload[0] = conreq.payload[0];
        rej.payload[1] = conreq.payload[1];
        core.post(core.dev(conreq.srcNode), rej);
      }
      ep.conwq.wake();
      break;
    }
  }
  core.ports.put(ep.port.port);
  teardown(ep);
  ep.state = SCIFEP.ZOMBIE;
  core.zombies.add(ep);
  ep.wakeAll();
  reapZombies(core);
}

/** `scif_cleanup_zombie_epd`: frees zombies whose RMA state is gone (`scif_rma_ep_can_uninit`). */
export function reapZombies(core: ScifCore): void {
  for (const ep of [...core.zombies]) {
    if (!ep.rma.canUninit()) continue;
    core.zombies.delete(ep);
    ep.rma.uninit();
    core.handles.remove(ep.handle);
    core.endpoints.delete(ep);
  }
}

// ---------------------------------------------------------------------------------------------
// send / recv

function checkMsgArgs(what: string, buf: Uint8Array, flags: number, block: number): void {
  if (!(buf instanceof Uint8Array)) throw err('EINVAL', `scif ${what} needs a Uint8Array`);
  if (!Number.isInteger(flags) || (flags !== 0 && !(flags & block)) || (flags & ~block) !== 0) {
    throw err('EINVAL', `scif ${what} flags 0x${Number(flags).toString(16)} are not 0 or the block flag`);
  }
}

/**
 * `scif_send`: copies as much of `buf` as fits into the peer's ring, chunk by chunk, each
 * followed by `CLIENT_SENT`. With `SCIF_SEND_BLOCK` it waits for room until every byte is sent.
 * Resolves with the bytes sent (fewer than asked only without the block flag, or when the
 * connection dropped after some bytes).
 * @throws MicError EINVAL (bad flags), ENOTCONN (never connected, or not connected and nothing
 * sent), ECONNRESET (disconnected and nothing sent), EINTR (signal, nothing sent), ENODEV
 */
export function send(ep: Endpt, buf: Uint8Array, flags: number, signal?: AbortSignal): Promise<number> {
  try {
    ep.checkOpen('send');
    checkMsgArgs('send', buf, flags, SCIF_SEND_BLOCK);
    if (buf.length === 0) return Promise.resolve(0);
    if (!ep.remoteDev) throw err('ENOTCONN', 'scif send on an endpoint that never connected');
  } catch (e) {
    return Promise.reject(e);
  }
  return msgCall(ep, buf, (flags & SCIF_SEND_BLOCK) !== 0, signal, SEND);
}

/**
 * `scif_recv`: copies what is readable, up to `buf.length`; drains a DISCONNECTED endpoint too.
 * The read pointer and `CLIENT_RCVD` go to the peer only while CONNECTED. With
 * `SCIF_RECV_BLOCK` it waits until `buf` is full or the connection ends. Resolves with the bytes
 * received.
 * @throws MicError EINVAL, ENOTCONN, ECONNRESET (disconnected and nothing left), EINTR
 */
export function recv(ep: Endpt, buf: Uint8Array, flags: number, signal?: AbortSignal): Promise<number> {
  try {
    ep.checkOpen('recv');
    checkMsgArgs('recv', buf, flags, SCIF_RECV_BLOCK);
    if (buf.length === 0) return Promise.resolve(0);
  } catch (e) {
    return Promise.reject(e);
  }
  return msgCall(ep, buf, (flags & SCIF_RECV_BLOCK) !== 0, signal, RECV);
}

/** What differs between `scif_send` and `scif_recv` in {@link msgCall}. */
interface MsgDir {
  readonly what: 'send' | 'recv';
  readonly lock: (ep: Endpt) => CallLock;
  readonly wq: (ep: Endpt) => WaitQueue;
  readonly poller: (ep: Endpt) => BusyPoller;
  /** States the call moves bytes in. */
  readonly moves: (ep: Endpt) => boolean;
  /** Moves all of `part` (no more than {@link ready} said) and returns its length. */
  readonly move: (ep: Endpt, part: Uint8Array) => number;
  /** Bytes that can move now, at most `wanted` (refreshing the peer's pointer when short). */
  readonly ready: (ep: Endpt, wanted: number) => number;
  /** The ring's size (the wait asks for at most `size - 1` bytes). */
  readonly size: (ep: Endpt) => number;
  /** True when the moved bytes are announced to the peer (`uop`). */
  readonly notifies: (ep: Endpt) => boolean;
  readonly uop: number;
  readonly result: (ep: Endpt) => MicError;
}

const SEND: MsgDir = {
  what: 'send',
  lock: (ep) => ep.sendLock,
  wq: (ep) => ep.sendwq,
  poller: (ep) => ep.sendPoll,
  moves: (ep) => ep.state === SCIFEP.CONNECTED && ep.qp?.outbound !== undefined,
  ready: (ep) => ep.qp?.outbound?.space() ?? 0,
  move: (ep, part) => {
    const out = ep.qp!.outbound!;
    out.write(part);
    out.commit();
    return part.length;
  },
  size: (ep) => ep.qp?.outbound?.size ?? 2,
  notifies: () => true,
  uop: SCIF_MSG.CLIENT_SENT,
  result: (ep) =>
    ep.state === SCIFEP.DISCONNECTED
      ? err('ECONNRESET', 'scif peer closed the connection')
      : err('ENOTCONN', `scif send in state ${ep.stateName}`),
};

const RECV: MsgDir = {
  what: 'recv',
  lock: (ep) => ep.recvLock,
  wq: (ep) => ep.recvwq,
  poller: (ep) => ep.recvPoll,
  moves: (ep) => (ep.state === SCIFEP.CONNECTED || ep.state === SCIFEP.DISCONNECTED) && ep.qp !== undefined,
  ready: (ep, wanted) => ep.qp?.inbound.count(wanted) ?? 0,
  move: (ep, part) => {
    const inb = ep.qp!.inbound;
    inb.getNext(part);
    if (ep.state === SCIFEP.CONNECTED) inb.updateReadPtr();
    return part.length;
  },
  size: (ep) => ep.qp?.inbound.size ?? 2,
  notifies: (ep) => ep.state === SCIFEP.CONNECTED,
  uop: SCIF_MSG.CLIENT_RCVD,
  result: (ep) =>
    ep.state === SCIFEP.DISCONNECTED
      ? err('ECONNRESET', 'scif peer closed the connection and no data is left')
      : err('ENOTCONN', `scif recv in state ${ep.stateName}`),
};

/**
 * The loop of `_scif_send` / `_scif_recv`, run as a step function: each step moves what can move,
 * chunk by chunk, each chunk followed by its notification (`CLIENT_SENT` / `CLIENT_RCVD`). A
 * blocking call that cannot go on waits on the send or receive queue for
 * `min(remaining, size - 1)` bytes or a state change, and its steps then run inside the wake-up
 * (the interrupt handler of the peer's notification), which also settles the caller's promise:
 * nothing between the doorbell and the caller's code costs a timer or an extra promise turn.
 * A notification that could not go into the node ring at once (the ring full) pauses the loop
 * until it is sent, as the kernel's `_scif_nodeqp_send` blocks; its failure ends the call.
 */
function msgCall(
  ep: Endpt,
  buf: Uint8Array,
  block: boolean,
  signal: AbortSignal | undefined,
  dir: MsgDir,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const len = buf.length;
    const lock = dir.lock(ep);
    const wq = dir.wq(ep);
    let done = 0;
    let need = 0;
    let failure: MicError | undefined;
    let paused = false;
    let finished = false;
    const finish = (): true => {
      finished = true;
      if (block) lock.release();
      if (done > 0) resolve(done);
      else if (failure) reject(failure);
      else if (ep.state !== SCIFEP.CONNECTED) reject(dir.result(ep));
      else resolve(0);
      return true;
    };
    const resume = (): void => {
      paused = false;
      if (finished) return;
      if (block) wq.wake();
      else if (!step()) finish();
    };
    const fail = (e: unknown): void => {
      paused = false;
      if (finished) return;
      failure = toMicError(e, 'ENODEV', `scif ${dir.what} notification failed`);
      finish();
    };
    /** Moves what can move; true once the call is over (the promise settled). */
    const step = (): boolean => {
      if (finished) return true;
      if (paused) return false;
      try {
        return moveAll();
      } catch (e) {
        // A ring that refused a write or read (its peer moved a pointer under us): the call ends.
        failure = toMicError(e, 'EIO', `scif ${dir.what} failed`);
        return finish();
      }
    };
    const moveAll = (): boolean => {
      while (done !== len && dir.moves(ep)) {
        const avail = dir.ready(ep, need > 0 ? need : len - done);
        if (need > 0) {
          // Waiting for room or data: as the kernel, go on once `need` bytes are there.
          if (avail < need && ep.state === SCIFEP.CONNECTED) return false;
          need = 0;
        }
        if (avail > 0) {
          const n = Math.min(len - done, avail);
          done += dir.move(ep, n === len ? buf : buf.subarray(done, done + n));
          if (dir.notifies(ep)) {
            const sent = notify(ep, dir.uop);
            if (sent !== SENT) {
              paused = true;
              sent.then(resume, fail);
              return false;
            }
          }
          continue;
        }
        if (!block || ep.state !== SCIFEP.CONNECTED) break;
        need = Math.min(len - done, dir.size(ep) - 1);
        return false;
      }
      return finish();
    };
    const start = (): void => {
      if (step()) return;
      if (!block) {
        // Only a paused notification keeps a non-blocking call open.
        return;
      }
      // SO_BUSY_POLL: watch the ring's pointer a bounded time before sleeping on the queue.
      if (!paused && dir.poller(ep).poll(ep.core.t.busyPollUs, () => step() || paused) && finished) return;
      wq.wait(ep.core.clock, step, `scif ${dir.what}`, { signal }).then(undefined, (e: unknown) => {
        if (finished) return;
        failure = toMicError(e, 'EINTR', `scif ${dir.what} interrupted`);
        finish();
      });
    };
    if (block) lock.enter(start);
    else start();
  });
}

/**
 * Sends `CLIENT_SENT` or `CLIENT_RCVD` for `ep` to its peer: {@link SENT} when it is in the node
 * ring already, else the queued send's promise. One message object per endpoint serves every
 * notification (the link encodes it within the call).
 */
function notify(ep: Endpt, uop: number): Promise<void> {
  const m = ep.note;
  m.uop = uop;
  m.srcNode = Math.max(ep.core.nodeid, 0);
  m.srcPort = ep.port.port;
  m.payload[0] = ep.remoteEp;
  // CLIENT_RCVD only wakes a sender waiting for room: its doorbell rides on the next message's
  // (a send that follows the recv) or rings at the end of this turn, which saves the peer a
  // wake-up for nothing on a request/response exchange. CLIENT_SENT rings at once.
  return ep.core.sendRaw(ep.remoteDev!, m, uop === SCIF_MSG.CLIENT_RCVD);
}

// ---------------------------------------------------------------------------------------------
// poll

/** `__scif_pollfd`: the events an endpoint has now. */
export function pollMask(ep: Endpt): number {
  if (ep.connAsyncState === ASYNC_CONN.INPROGRESS) {
    return ep.state === SCIFEP.CONNECTED || ep.state === SCIFEP.DISCONNECTED || ep.connErr ? EPOLLOUT : 0;
  }
  if (ep.state === SCIFEP.LISTENING) return ep.conreqcnt > 0 ? EPOLLIN : 0;
  if (ep.state === SCIFEP.CONNECTED || ep.state === SCIFEP.DISCONNECTED) {
    let mask = 0;
    if (ep.qp && ep.qp.inbound.count(1) > 0) mask |= EPOLLIN;
    if (ep.qp?.outbound && ep.qp.outbound.space() > 0) mask |= EPOLLOUT;
    if (ep.state === SCIFEP.DISCONNECTED) mask |= EPOLLHUP;
    return mask;
  }
  return EPOLLERR;
}

/** True when an entry of {@link poll} has one of its events (or `EPOLLERR` / `EPOLLHUP`). */
function anyEvents(entries: readonly PollEntry[]): boolean {
  for (const e of entries) if ((pollMask(e.ep) & (e.events | EPOLLERR | EPOLLHUP)) !== 0) return true;
  return false;
}

/** One entry of {@link poll} (`struct scif_pollepd`). */
export interface PollEntry {
  readonly ep: Endpt;
  readonly events: number;
  revents: number;
}

/**
 * `scif_poll`: fills `revents` (always including `EPOLLERR`/`EPOLLHUP`); resolves with how many
 * entries have events, 0 on timeout. `timeoutMs < 0` waits forever, 0 does not wait.
 * @throws MicError EINTR when `signal` aborts
 */
export async function poll(
  core: ScifCore,
  entries: PollEntry[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<number> {
  const deadline = timeoutMs < 0 ? Infinity : core.clock.now() + timeoutMs;
  for (;;) {
    let count = 0;
    for (const e of entries) {
      const want = e.events | EPOLLERR | EPOLLHUP;
      e.revents = pollMask(e.ep) & want;
      if (e.revents) count++;
    }
    if (count > 0 || timeoutMs === 0) return count;
    if (signal?.aborted) throw interrupted('scif poll', signal);
    const left = deadline - core.clock.now();
    if (left <= 0) return 0;
    // SO_BUSY_POLL for poll (net.core.busy_poll): a bounded spin on the masks before sleeping.
    if (core.pollPoller.poll(Math.min(core.t.busyPollUs, left * 1000), () => anyEvents(entries))) continue;
    await new Promise<void>((resolve, reject) => {
      const cancels: (() => void)[] = [];
      // Only a finite wait has a timer to cancel (an abort costs a DOMException, ~10 µs).
      const timer = Number.isFinite(left) ? new AbortController() : undefined;
      const done = (): void => {
        for (const c of cancels) c();
        timer?.abort();
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        done();
        reject(interrupted('scif poll', signal!));
      };
      for (const e of entries) cancels.push(e.ep.pollwq.once(() => (done(), resolve())));
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timer) {
        core.clock.sleep(left, timer.signal).then(
          () => (done(), resolve()),
          () => undefined,
        );
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// message handlers

/** The endpoint named by `h` in a message from `dev`, if it talks to `dev`. */
function epOf(core: ScifCore, dev: ScifDev, h: number): Endpt | undefined {
  const ep = core.handles.get(h, Endpt);
  return ep && ep.remoteDev === dev ? ep : undefined;
}

/** Installs the connection and messaging handlers (`scif_cnctreq` .. `scif_clientrcvd`). */
export function installEndpointHandlers(core: ScifCore): void {
  core.reaper = reapZombies;
  core.on(SCIF_MSG.CNCT_REQ, (dev, msg) => {
    const lep = core.listen.find((e) => e.port.port === msg.dstPort);
    if (!lep || lep.backlog <= lep.conreqcnt) {
      const rej = msg.clone();
      rej.uop = SCIF_MSG.CNCT_REJ;
      rej.dstPort = msg.srcPort;
      rej.srcNode = core.nodeid;
      core.post(dev, rej);
      return;
    }
    const req = msg.clone();
    req.srcNode = dev.node;
    lep.conlist.push(req);
    lep.conwq.wake();
  });
  core.on(SCIF_MSG.CNCT_GNT, (dev, msg) => {
    const ep = epOf(core, dev, msg.payload[0]);
    if (ep && ep.state === SCIFEP.CONNECTING) {
      ep.peer = { node: dev.node, port: msg.srcPort };
      ep.gntPld = msg.payload[1];
      ep.remoteEp = msg.payload[2];
      ep.state = SCIFEP.MAPPING;
      ep.conwq.wake();
      return;
    }
    // Nobody waits for this grant (the connect gave up): tell the acceptor at once.
    const nack = core.msg(SCIF_MSG.CNCT_GNTNACK);
    nack.payload[0] = msg.payload[2];
    core.post(dev, nack, false);
  });
  core.on(SCIF_MSG.CNCT_GNTACK, (dev, msg) => {
    const ep = epOf(core, dev, msg.payload[0]);
    if (!ep || ep.state !== SCIFEP.CONNECTING) return;
    ep.state = SCIFEP.CONNECTED;
    core.connected.add(ep);
    ep.conwq.wake();
  });
  core.on(SCIF_MSG.CNCT_GNTNACK, (dev, msg) => {
    const ep = epOf(core, dev, msg.payload[0]);
    if (!ep || ep.state !== SCIFEP.CONNECTING) return;
    ep.state = SCIFEP.CLOSING;
    ep.conwq.wake();
  });
  core.on(SCIF_MSG.CNCT_REJ, (dev, msg) => {
    const ep = epOf(core, dev, msg.payload[0]);
    if (ep && ep.state === SCIFEP.CONNECTING) {
      ep.state = SCIFEP.BOUND;
      ep.conwq.wake();
    }
  });
  core.on(SCIF_MSG.DISCNCT, (dev, msg) => {
    const ep = epOf(core, dev, msg.payload[1]);
    if (ep && ep.remoteEp === msg.payload[0] && core.connected.delete(ep)) {
      ep.state = SCIFEP.DISCONNECTED;
      core.disconnected.add(ep);
      ep.sendwq.wake();
      ep.recvwq.wake();
    }
    const ack = msg.clone();
    ack.uop = SCIF_MSG.DISCNT_ACK;
    ack.srcNode = core.nodeid;
    core.post(dev, ack);
  });
  core.on(SCIF_MSG.DISCNT_ACK, (dev, msg) => {
    const ep = epOf(core, dev, msg.payload[0]);
    if (!ep) return;
    ep.state = SCIFEP.DISCONNECTED;
    ep.disconDone = true;
    ep.disconWq.wake();
  });
  core.on(SCIF_MSG.CLIENT_SENT, (dev, msg) => {
    const ep = epOf(core, dev, msg.payload[0]);
    if (ep && ep.state === SCIFEP.CONNECTED) ep.recvwq.wake();
  });
  core.on(SCIF_MSG.CLIENT_RCVD, (dev, msg) => {
    const ep = epOf(core, dev, msg.payload[0]);
    if (ep && ep.state === SCIFEP.CONNECTED) ep.sendwq.wake();
  });
}

/**
 * `scif_invalidate_ep`: every endpoint of `node` that was connected is DISCONNECTED, its queue
 * pair unmapped and its waiters woken; those already disconnected lose their queue pair too.
 * Endpoints in a handshake with the node are woken (their waits see the node gone).
 */
export function invalidateEndpoints(core: ScifCore, node: number): void {
  for (const ep of [...core.disconnected]) {
    if (ep.remoteDev?.node !== node) continue;
    ep.qp?.cleanup();
    ep.rma.dropRemoteWindows();
  }
  for (const ep of [...core.connected]) {
    if (ep.remoteDev?.node !== node) continue;
    core.connected.delete(ep);
    ep.state = SCIFEP.DISCONNECTED;
    core.disconnected.add(ep);
    ep.qp?.cleanup();
    ep.rma.dropRemoteWindows();
  }
  for (const ep of core.endpoints) if (ep.remoteDev?.node === node) ep.wakeAll();
}

/** True for an error of the kind a lost connection gives. */
export function isConnError(e: unknown): boolean {
  return isMicError(e, 'ECONNRESET') || isMicError(e, 'ENOTCONN') || isMicError(e, 'ENODEV');
}
