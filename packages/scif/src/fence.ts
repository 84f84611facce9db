/**
 * Fences (`scif_fence.c`): marks over the RMAs issued so far, waits on them, and 64-bit signals
 * written once they are complete, on this side (`SCIF_FENCE_INIT_SELF`) or asked of the peer
 * (`SCIF_FENCE_INIT_PEER`: `SCIF_MARK`/`WAIT`/`SIG_LOCAL`/`SIG_REMOTE` and their acks).
 *
 * A mark remembers the endpoint's last DMA cookie and its background copies at the time; waiting
 * on it waits for that cookie (`dma_sync_wait`, 30 s → `ETIMEDOUT`) and those copies. CPU copies
 * are complete when their call returns, so a mark with neither is complete at once. A management
 * node talking to itself gets the mark `0xdead` (`SCIF_LOOPB_MAGIC_MARK`).
 *
 * Signals follow the documented semantics: `SCIF_SIGNAL_LOCAL` writes `lval` at `loff` of the
 * initiator's window, `SCIF_SIGNAL_REMOTE` writes `rval` at `roff` of the peer's. On the wire,
 * `SIG_LOCAL{p1 = off, p2 = val}` asks the receiver to write in its own window and `SIG_REMOTE`
 * in its copy of the sender's, as in Linux (whose PEER path sends the other flag's pair, so a single
 * flag writes the other value there; see the README).
 *
 * @see drivers/misc/mic/scif/scif_fence.c
 */
import { MicError } from '@mic/errors';
import { asBufferMemory } from '@mic/memory';
import {
  OP,
  type OpState,
  SCIFEP,
  SCIF_FENCE_INIT_PEER,
  SCIF_FENCE_INIT_SELF,
  SCIF_LOOPB_MAGIC_MARK,
  SCIF_MSG,
  SCIF_PROT_WRITE,
  SCIF_REMOTE_FENCE,
  SCIF_SIGNAL_LOCAL,
  SCIF_SIGNAL_REMOTE,
} from './constants.js';
import type { ScifCore, ScifDev } from './core.js';
import { Endpt } from './endpt.js';
import type { ScifMsg } from './msg.js';
import { runs } from './rma-copy.js';
import { verifyEpd } from './rma.js';
import { SCIF_WINDOW, type Window, queryWindows } from './rma-state.js';
import { waitWhileAlive } from './wait.js';

/** A fence request sent to the peer, named by its handle in the reply. */
class FenceReq {
  readonly ep: Endpt;
  state: OpState = OP.IN_PROGRESS;
  mark = 0;

  constructor(ep: Endpt) {
    this.ep = ep;
  }
}

/** What a local mark waits for. */
interface MarkState {
  readonly cookie: number;
  readonly inflight: readonly Promise<void>[];
}

const marks = new WeakMap<Endpt, { next: number; live: Map<number, MarkState> }>();

function markTable(ep: Endpt): { next: number; live: Map<number, MarkState> } {
  let t = marks.get(ep);
  if (!t) {
    t = { next: 1, live: new Map() };
    marks.set(ep, t);
  }
  return t;
}

/** True for the management node talking to itself (its fences are shortcuts). */
function mgmtLoopback(ep: Endpt): boolean {
  return ep.core.isMgmt && ep.remoteDev !== undefined && ep.core.isSelf(ep.remoteDev);
}

/** `_scif_fence_mark`: a mark over everything this endpoint issued so far. */
function markSelf(ep: Endpt): number {
  const t = markTable(ep);
  const mark = t.next;
  t.next = t.next >= SCIF_REMOTE_FENCE - 1 ? 1 : t.next + 1;
  t.live.set(mark, { cookie: ep.rma.dmaChan ? ep.rma.lastCookie : 0, inflight: [...ep.rma.inflight] });
  return mark;
}

/** `_scif_fence_wait`: waits for a local mark. */
async function waitSelf(ep: Endpt, mark: number): Promise<void> {
  const t = markTable(ep);
  if (!Number.isInteger(mark) || mark < 1 || mark >= SCIF_REMOTE_FENCE) {
    throw new MicError('EINVAL', `scif fence mark ${String(mark)} is not a local mark`);
  }
  const st = t.live.get(mark);
  if (!st) {
    // Waited for already (complete), or never made here.
    if (mark < t.next) return;
    throw new MicError('EINVAL', `scif fence mark ${mark} was not made by this endpoint`);
  }
  ep.rma.fenceRefcount++;
  try {
    await Promise.all(st.inflight);
    const ch = ep.rma.dmaChan;
    if (ch && st.cookie !== 0) {
      const r = await ch.syncWait(st.cookie, { timeoutMs: ep.core.t.nodeAliveTimeoutMs });
      if (r === 'in-progress')
        throw new MicError('ETIMEDOUT', `scif fence mark ${mark} did not complete in time`);
      if (r !== 'complete') throw new MicError('EIO', `scif fence mark ${mark}: DMA ended ${r}`);
    }
    t.live.delete(mark);
  } finally {
    ep.rma.fenceRefcount--;
    ep.core.scheduleReap();
  }
}

function checkInitFlag(flags: number, what: string): number {
  const init = flags & (SCIF_FENCE_INIT_SELF | SCIF_FENCE_INIT_PEER);
  if (init !== SCIF_FENCE_INIT_SELF && init !== SCIF_FENCE_INIT_PEER) {
    throw new MicError(
      'EINVAL',
      `scif ${what} flags 0x${Number(flags).toString(16)} need exactly one of INIT_SELF, INIT_PEER`,
    );
  }
  return init;
}

/** Sends a fence request and waits for its reply (in handshake slices while the peer lives). */
async function request(ep: Endpt, uop: number, fill: (m: ScifMsg, h: number) => void): Promise<FenceReq> {
  const core = ep.core;
  const req = new FenceReq(ep);
  const h = core.handles.add(req);
  try {
    const m = core.msg(uop, ep.port.port);
    fill(m, h);
    ep.rma.fenceRefcount++;
    try {
      await core.send(ep.remoteDev!, m);
      const ok = await waitWhileAlive(
        ep.rmawq,
        core.clock,
        () => req.state !== OP.IN_PROGRESS,
        () => ep.peerAlive,
        core.t.nodeAliveTimeoutMs,
        'scif fence',
      );
      if (!ok) throw new MicError('ENODEV', `scif node ${ep.remoteDev?.node} was lost during a fence`);
    } finally {
      ep.rma.fenceRefcount--;
      ep.core.scheduleReap();
    }
    return req;
  } finally {
    core.handles.remove(h);
  }
}

/**
 * `scif_fence_mark`.
 * @throws MicError EINVAL, ECONNRESET / ENOTCONN / ENODEV, ENOMEM (the peer refused)
 */
export async function fenceMark(ep: Endpt, flags: number): Promise<number> {
  ep.checkOpen('fence_mark');
  if (!Number.isInteger(flags) || (flags & ~(SCIF_FENCE_INIT_SELF | SCIF_FENCE_INIT_PEER)) !== 0) {
    throw new MicError(
      'EINVAL',
      `scif fence_mark flags 0x${Number(flags).toString(16)} are not INIT_SELF or INIT_PEER`,
    );
  }
  const init = checkInitFlag(flags, 'fence_mark');
  verifyEpd(ep);
  if (mgmtLoopback(ep)) return SCIF_LOOPB_MAGIC_MARK;
  if (init === SCIF_FENCE_INIT_SELF) return markSelf(ep);
  const req = await request(ep, SCIF_MSG.MARK, (m, h) => {
    m.payload[0] = ep.remoteEp;
    m.payload[1] = h;
  });
  if ((req.state as OpState) !== OP.COMPLETED)
    throw new MicError('ENOMEM', 'scif peer refused the fence mark');
  return (req.mark | SCIF_REMOTE_FENCE) >>> 0;
}

/**
 * `scif_fence_wait`.
 * @throws MicError ETIMEDOUT, EINVAL, ENOMEM (the peer refused), ECONNRESET / ENOTCONN / ENODEV
 */
export async function fenceWait(ep: Endpt, mark: number): Promise<void> {
  ep.checkOpen('fence_wait');
  verifyEpd(ep);
  if (mgmtLoopback(ep)) {
    if (mark !== SCIF_LOOPB_MAGIC_MARK)
      throw new MicError('EINVAL', `scif loopback fence mark ${String(mark)} is not 0xdead`);
    return;
  }
  if (!Number.isInteger(mark) || mark <= 0 || mark > 0xffffffff) {
    throw new MicError('EINVAL', `scif fence mark ${String(mark)} is not a mark`);
  }
  if ((mark & SCIF_REMOTE_FENCE) === 0) {
    await waitSelf(ep, mark);
    return;
  }
  const req = await request(ep, SCIF_MSG.WAIT, (m, h) => {
    m.payload[0] = ep.remoteEp;
    m.payload[1] = h;
    m.payload[2] = (mark & ~SCIF_REMOTE_FENCE) >>> 0;
  });
  if ((req.state as OpState) !== OP.COMPLETED)
    throw new MicError('ENOMEM', `scif peer could not wait for mark ${mark}`);
}

/** Writes the 64-bit `val` at `off` of `list` (one window, writable), byte runs across chunks. */
function writeValue(list: readonly Window[], off: number, val: bigint): void {
  const wins = queryWindows(list, off, 8, SCIF_PROT_WRITE, SCIF_WINDOW.SINGLE);
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt.asUintN(64, val), true);
  let at = 0;
  for (const r of runs(wins, off, 8)) {
    asBufferMemory(r.mem, 'scif fence window')
      .bytes(r.at, r.len)
      .set(bytes.subarray(at, at + r.len));
    at += r.len;
  }
}

function checkSignalOffset(what: string, off: number): void {
  if (!Number.isSafeInteger(off) || off < 0 || off % 4 !== 0) {
    throw new MicError('EINVAL', `scif fence_signal ${what} offset ${String(off)} is not 4-byte aligned`);
  }
}

/**
 * `scif_fence_signal`.
 * @throws MicError EINVAL, ENXIO / EPERM (windows), ECONNRESET / ENOTCONN / ENODEV
 */
export async function fenceSignal(
  ep: Endpt,
  loff: number,
  lval: bigint,
  roff: number,
  rval: bigint,
  flags: number,
): Promise<void> {
  ep.checkOpen('fence_signal');
  const known = SCIF_FENCE_INIT_SELF | SCIF_FENCE_INIT_PEER | SCIF_SIGNAL_LOCAL | SCIF_SIGNAL_REMOTE;
  if (!Number.isInteger(flags) || (flags & ~known) !== 0) {
    throw new MicError('EINVAL', `scif fence_signal flags 0x${Number(flags).toString(16)} are unknown`);
  }
  const init = checkInitFlag(flags, 'fence_signal');
  if (!(flags & (SCIF_SIGNAL_LOCAL | SCIF_SIGNAL_REMOTE))) {
    throw new MicError('EINVAL', 'scif fence_signal needs SIGNAL_LOCAL or SIGNAL_REMOTE');
  }
  if (flags & SCIF_SIGNAL_LOCAL) checkSignalOffset('local', loff);
  if (flags & SCIF_SIGNAL_REMOTE) checkSignalOffset('remote', roff);
  if (typeof lval !== 'bigint' || typeof rval !== 'bigint')
    throw new MicError('EINVAL', 'scif fence_signal values are bigints');
  verifyEpd(ep);
  const rma = ep.rma;
  if (init === SCIF_FENCE_INIT_SELF) {
    // Windows first, so a bad offset fails at once; then the values after every RMA so far.
    if (flags & SCIF_SIGNAL_LOCAL) queryWindows(rma.regList, loff, 8, SCIF_PROT_WRITE, SCIF_WINDOW.SINGLE);
    if (flags & SCIF_SIGNAL_REMOTE)
      queryWindows(rma.remoteList, roff, 8, SCIF_PROT_WRITE, SCIF_WINDOW.SINGLE);
    if (!mgmtLoopback(ep)) await waitSelf(ep, markSelf(ep));
    if (flags & SCIF_SIGNAL_LOCAL) writeValue(rma.regList, loff, lval);
    if (flags & SCIF_SIGNAL_REMOTE) writeValue(rma.remoteList, roff, rval);
    return;
  }
  const ask = async (uop: number, off: number, val: bigint): Promise<void> => {
    const req = await request(ep, uop, (m, h) => {
      m.payload[0] = ep.remoteEp;
      m.payload[1] = off;
      m.setPayloadBig(2, val);
      m.payload[3] = h;
    });
    if ((req.state as OpState) !== OP.COMPLETED) {
      throw new MicError('ENXIO', `scif peer could not signal offset 0x${off.toString(16)}`);
    }
  };
  // Our window is the receiver's peer window (SIG_REMOTE); the peer's is its own (SIG_LOCAL).
  if (flags & SCIF_SIGNAL_LOCAL) await ask(SCIF_MSG.SIG_REMOTE, loff, lval);
  if (flags & SCIF_SIGNAL_REMOTE) await ask(SCIF_MSG.SIG_LOCAL, roff, rval);
}

/** Installs the fence message handlers (`scif_recv_mark` .. `scif_recv_sig_resp`). */
export function installFenceHandlers(core: ScifCore): void {
  const epFor = (dev: ScifDev, h: number): Endpt | undefined => {
    const ep = core.handles.get(h, Endpt);
    return ep && ep.remoteDev === dev && ep.state === SCIFEP.CONNECTED ? ep : undefined;
  };
  core.on(SCIF_MSG.MARK, (dev, msg) => {
    const ep = epFor(dev, msg.payload[0]);
    const reply = msg.clone();
    reply.srcNode = core.nodeid;
    if (ep) {
      reply.uop = SCIF_MSG.MARK_ACK;
      reply.payload[0] = ep.remoteEp;
      reply.payload[2] = markSelf(ep);
    } else {
      reply.uop = SCIF_MSG.MARK_NACK;
    }
    core.post(dev, reply);
  });
  core.on(SCIF_MSG.WAIT, (dev, msg) => {
    const ep = epFor(dev, msg.payload[0]);
    const reply = msg.clone();
    reply.srcNode = core.nodeid;
    if (!ep) {
      reply.uop = SCIF_MSG.WAIT_NACK;
      core.post(dev, reply);
      return;
    }
    ep.rma.fenceRefcount++;
    core.spawn('remote fence wait', async () => {
      try {
        await waitSelf(ep, msg.payload[2]);
        reply.uop = SCIF_MSG.WAIT_ACK;
      } catch {
        reply.uop = SCIF_MSG.WAIT_NACK;
      } finally {
        ep.rma.fenceRefcount--;
        ep.core.scheduleReap();
      }
      core.post(dev, reply);
    });
  });
  const sig = (dev: ScifDev, msg: ScifMsg): void => {
    const ep = epFor(dev, msg.payload[0]);
    const reply = msg.clone();
    reply.srcNode = core.nodeid;
    reply.uop = SCIF_MSG.SIG_NACK;
    if (!ep) {
      core.post(dev, reply);
      return;
    }
    const off = msg.payload[1];
    const val = msg.payloadBig(2);
    const list: readonly Window[] = msg.uop === SCIF_MSG.SIG_LOCAL ? ep.rma.regList : ep.rma.remoteList;
    ep.rma.fenceRefcount++;
    core.spawn('remote fence signal', async () => {
      try {
        if (!Number.isSafeInteger(off) || off < 0 || off % 4 !== 0)
          throw new MicError('EINVAL', 'bad signal offset');
        queryWindows(list, off, 8, SCIF_PROT_WRITE, SCIF_WINDOW.SINGLE);
        await waitSelf(ep, markSelf(ep));
        writeValue(list, off, val);
        reply.uop = SCIF_MSG.SIG_ACK;
      } catch {
        reply.uop = SCIF_MSG.SIG_NACK;
      } finally {
        ep.rma.fenceRefcount--;
        ep.core.scheduleReap();
      }
      core.post(dev, reply);
    });
  };
  core.on(SCIF_MSG.SIG_LOCAL, sig);
  core.on(SCIF_MSG.SIG_REMOTE, sig);
  const resp = (slot: 1 | 3) => (_dev: ScifDev, msg: ScifMsg) => {
    const req = core.handles.get(msg.payload[slot], FenceReq);
    if (!req || req.state !== OP.IN_PROGRESS) return;
    const ok = msg.uop === SCIF_MSG.MARK_ACK || msg.uop === SCIF_MSG.WAIT_ACK || msg.uop === SCIF_MSG.SIG_ACK;
    req.state = ok ? OP.COMPLETED : OP.FAILED;
    if (msg.uop === SCIF_MSG.MARK_ACK) req.mark = msg.payload[2] >>> 0;
    req.ep.rmawq.wake();
  };
  core.on(SCIF_MSG.MARK_ACK, resp(1));
  core.on(SCIF_MSG.MARK_NACK, resp(1));
  core.on(SCIF_MSG.WAIT_ACK, resp(1));
  core.on(SCIF_MSG.WAIT_NACK, resp(1));
  core.on(SCIF_MSG.SIG_ACK, resp(3));
  core.on(SCIF_MSG.SIG_NACK, resp(3));
}
