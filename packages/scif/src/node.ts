/**
 * Nodes: the SCIF driver's probe and remove of a SCIF hardware device (`scif_probe`,
 * `scif_remove`), the loopback node, the device-page handshake (publish our node queue pair and
 * doorbell, poll for the peer's every second, `SCIF_INIT`), the node-level messages (`SCIF_INIT`,
 * `SCIF_EXIT`/`EXIT_ACK`, `NODE_ADD*`, `NODE_REMOVE*`, `GET_NODE_INFO`) and node teardown
 * (`scif_cleanup_scifdev`): every endpoint of a lost node goes DISCONNECTED and its waiters return.
 *
 * @see drivers/misc/mic/scif/scif_main.c, scif_nodeqp.c, scif_peer_bus.c
 */
import { type MicIrq, NO_DOORBELL } from '@mic/bus-core';
import { MicError, errorMessage } from '@mic/errors';
import { MIC_BOOTPARAM_OFFSETS as BP, readS8, writeS8 } from '@mic/mic-common';
import type { ScifHwDev } from '@mic/scif-bus';
import { OP, SCIF_MGMT_NODE, SCIF_MSG, SCIF_NODE_QP_SIZE } from './constants.js';
import type { ScifCore, ScifDev } from './core.js';
import { invalidateEndpoints, reapZombies } from './endpt.js';
import { HwMemOps, LoopbackMemOps } from './memops.js';
import { NodeLink } from './nodeqp.js';
import { ScifQp, loopbackRings } from './qp.js';
import { dropPendingRemotes } from './rma.js';

/** The loopback node (`scif_setup_loopback_qp`): one shared ring, handled in a later task. */
function setupLoopback(core: ScifCore, node: number): void {
  const dev = core.dev(node);
  dev.ops = new LoopbackMemOps();
  const { inbound, outbound } = loopbackRings(SCIF_NODE_QP_SIZE);
  let scheduled = false;
  const link: NodeLink = new NodeLink(inbound, outbound, {
    clock: core.clock,
    log: core.log,
    sendTimeoutMs: core.t.sendTimeoutMs,
    // The loopback bottom half runs later, never inside the sender (the kernel's loopb_wq).
    ring: () => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        link.drain();
      });
    },
    dispatch: (msg) => core.dispatch(dev, msg),
  });
  dev.link = link;
}

/** The interrupt handler of a node's doorbell (`scif_intr_handler` and its bottom half). */
function intrHandler(dev: ScifDev, irq: number): void {
  dev.sdev?.hwOps.ackInterrupt(irq);
  dev.link?.drain();
}

/** Reads the peer's queue-pair address and doorbell from the device page, once each. */
function readPeerPublication(core: ScifCore, sdev: ScifHwDev): { addr: number; db: number } | undefined {
  const page = core.isMgmt ? sdev.dp : sdev.rdp;
  if (!page) return undefined;
  const addr = page.readU64(core.isMgmt ? BP.scifCardDmaAddr : BP.scifHostDmaAddr);
  const db = readS8(page, core.isMgmt ? BP.h2cScifDb : BP.c2hScifDb);
  return { addr, db };
}

/**
 * One pass of `qp_dwork`: when the peer published its queue pair, map it (`scif_qp_response`)
 * and send `SCIF_INIT`. Returns true once the outbound ring is up.
 */
function qpResponse(core: ScifCore, dev: ScifDev): boolean {
  const sdev = dev.sdev;
  const qp = dev.qp;
  if (!sdev || !qp || !dev.link) return false;
  if (qp.connected) return true;
  const pub = readPeerPublication(core, sdev);
  if (!pub || pub.addr === 0 || pub.db < 0) return false;
  try {
    qp.connectResponse(pub.addr);
  } catch (err) {
    core.log.warn('scif peer queue pair refused', { node: dev.node, error: errorMessage(err) });
    return false;
  }
  dev.rdb = pub.db;
  dev.link.outbound = qp.outbound;
  dev.exit = OP.IDLE;
  core.post(dev, core.msg(SCIF_MSG.INIT), false);
  return true;
}

/** `qp_dwork`: polls the device page every `qpPollMs` until the peer's queue pair is mapped. */
function startQpPoll(core: ScifCore, dev: ScifDev): void {
  dev.qpPoll?.abort();
  const ctl = new AbortController();
  dev.qpPoll = ctl;
  // Not background work `idle()` waits for: it polls until the peer (re)appears or the device goes.
  void (async () => {
    while (!ctl.signal.aborted && !qpResponse(core, dev)) {
      try {
        await core.clock.sleep(core.t.qpPollMs, ctl.signal);
      } catch {
        return;
      }
    }
  })();
}

/**
 * `scif_setup_qp`: a node queue pair (64 KiB inbound ring) and its link; the outbound ring comes
 * with the peer's publication. Rings go to the peer's doorbell once it is known.
 */
function setupNodeQp(core: ScifCore, dev: ScifDev, sdev: ScifHwDev): ScifQp {
  const qp = ScifQp.setupConnect(dev.ops!, SCIF_NODE_QP_SIZE, { doubleWrite: core.t.doubleWrite });
  dev.qp = qp;
  dev.link = new NodeLink(qp.inbound, undefined, {
    clock: core.clock,
    log: core.log,
    sendTimeoutMs: core.t.sendTimeoutMs,
    ring: () => {
      if (dev.rdb >= 0) sdev.hwOps.sendIntr(dev.rdb);
    },
    dispatch: (msg) => core.dispatch(dev, msg),
  });
  return qp;
}

/** Publishes our queue pair and doorbell in the device page (host: `dp`; card: `rdp`). */
function publish(core: ScifCore, sdev: ScifHwDev, db: number, addr: number): void {
  if (core.isMgmt) {
    if (!sdev.dp) return;
    writeS8(sdev.dp, BP.c2hScifDb, db);
    sdev.dp.writeU64(BP.scifHostDmaAddr, addr);
  } else {
    if (!sdev.rdp) return;
    writeS8(sdev.rdp, BP.h2cScifDb, db);
    sdev.rdp.writeU64(BP.scifCardDmaAddr, addr);
  }
}

/**
 * `scif_probe`: the first device sets this node's id and the loopback node; every device gets a
 * node queue pair, a doorbell and an interrupt handler, is published in the device page, and the
 * peer's publication is polled for.
 * @throws MicError EINVAL when the device's node ids disagree with earlier devices
 */
export function probe(core: ScifCore, sdev: ScifHwDev): void {
  if (core.nodeid < 0) {
    core.nodeid = sdev.snode;
    core.maxid = Math.max(core.maxid, sdev.snode);
    setupLoopback(core, sdev.snode);
    core.peerBus.initializeDevice(sdev.snode);
    core.total++;
    core.spawn('self peer add', () => core.peerBus.addDevice(sdev.snode));
  } else if (core.nodeid !== sdev.snode) {
    throw new MicError(
      'EINVAL',
      `scif device ${sdev.name} is for node ${sdev.snode}, this node is ${core.nodeid}`,
    );
  }
  if (sdev.dnode === core.nodeid || core.devs[sdev.dnode]?.sdev) {
    throw new MicError('EEXIST', `scif node ${sdev.dnode} already has a device`);
  }
  const dev = core.dev(sdev.dnode);
  dev.sdev = sdev;
  dev.ops = new HwMemOps(sdev);
  dev.exit = OP.IDLE;
  core.sdevs.push(sdev);
  const qp = setupNodeQp(core, dev, sdev);
  let cookie: MicIrq;
  try {
    dev.db = sdev.hwOps.nextDb();
    cookie = sdev.hwOps.requestIrq(
      (irq: number, d: ScifDev) => intrHandler(d, irq),
      'SCIF_INTR',
      dev,
      dev.db,
    );
  } catch (err) {
    dev.link = undefined;
    dev.qp = undefined;
    dev.sdev = undefined;
    core.sdevs.splice(core.sdevs.indexOf(sdev), 1);
    qp.free();
    throw err;
  }
  dev.cookie = cookie;
  publish(core, sdev, dev.db, qp.qpOffset);
  startQpPoll(core, dev);
}

/** Sends `SCIF_EXIT` and waits for `EXIT_ACK` (≤ the handshake timeout) (`scif_send_exit`). */
async function sendExit(core: ScifCore, dev: ScifDev): Promise<void> {
  if (!dev.link?.outbound) return;
  dev.exit = OP.IN_PROGRESS;
  try {
    await core.sendRaw(dev, core.msg(SCIF_MSG.EXIT));
  } catch {
    dev.exit = OP.IDLE;
    return;
  }
  await core.exitwq.wait(core.clock, () => dev.exit !== OP.IN_PROGRESS, 'scif exit', {
    timeoutMs: core.t.nodeAliveTimeoutMs,
  });
}

/**
 * `scif_cleanup_scifdev` for any cause: endpoints of the node DISCONNECTED (`scif_invalidate_ep`),
 * its peer windows and mmap views dropped, registrations in flight freed, the peer device
 * removed (clients see `remove`), pending acknowledgements sent, the node queue pair unmapped.
 */
export async function cleanupScifdev(core: ScifCore, dev: ScifDev): Promise<void> {
  if (dev.cleaning) return;
  dev.cleaning = true;
  try {
    invalidateEndpoints(core, dev.node);
    dropPendingRemotes(core, dev);
    if (core.alive(dev.node)) {
      core.total = Math.max(0, core.total - 1);
      await core.peerBus.unregisterDevice(dev.node).catch(() => undefined);
    }
    invalidateEndpoints(core, dev.node);
    // scif_cleanup_rma_for_zombies: closed endpoints of the node let go of its windows.
    for (const ep of [...core.zombies]) if (ep.remoteDev === dev) ep.rma.dropRemoteWindows();
    reapZombies(core);
    if (dev.exitAckPending) {
      dev.exitAckPending = false;
      await core.sendRaw(dev, core.msg(SCIF_MSG.EXIT_ACK)).catch(() => undefined);
    }
    if (dev.node === SCIF_MGMT_NODE && core.cardInitiatedExit) await sendExit(core, dev);
    dev.link?.close();
    if (dev.link) dev.link.outbound = undefined;
    dev.qp?.cleanup();
    dev.rdb = NO_DOORBELL;
  } finally {
    dev.cleaning = false;
  }
}

/**
 * `scif_remove`: the device page is cleared, the node torn down (host: `SCIF_EXIT` to a live card
 * and a wait for `EXIT_ACK`; card: `scif_stop`, which tells the host), the interrupt freed and the
 * node queue pair freed.
 */
export async function remove(core: ScifCore, sdev: ScifHwDev): Promise<void> {
  const dev = core.devs[sdev.dnode];
  if (!dev || dev.sdev !== sdev) return;
  publish(core, sdev, NO_DOORBELL, 0);
  dev.qpPoll?.abort();
  dev.qpPoll = undefined;
  if (core.isMgmt) {
    if (core.alive(dev.node)) await sendExit(core, dev);
  } else {
    core.cardInitiatedExit = true;
  }
  await cleanupScifdev(core, dev);
  core.cardInitiatedExit = false;
  if (dev.cookie) {
    try {
      sdev.hwOps.freeIrq(dev.cookie, dev);
    } catch (err) {
      core.log.warn('scif free_irq failed', { node: dev.node, error: errorMessage(err) });
    }
  }
  dev.cookie = undefined;
  dev.link?.stopReceive();
  dev.link = undefined;
  dev.qp?.free();
  dev.qp = undefined;
  dev.sdev = undefined;
  dev.ops = undefined;
  dev.exit = OP.IDLE;
  core.sdevs.splice(core.sdevs.indexOf(sdev), 1);
}

/** Installs the node-level message handlers. */
export function installNodeHandlers(core: ScifCore): void {
  // SCIF_INIT: the peer mapped our queue pair; make sure ours is mapped too, then it is alive.
  core.on(SCIF_MSG.INIT, (dev) => {
    if (core.isSelf(dev) || core.alive(dev.node)) return;
    if (!qpResponse(core, dev)) {
      core.log.warn('scif SCIF_INIT before the peer published its queue pair', { node: dev.node });
      return;
    }
    dev.qpPoll?.abort();
    core.peerBus.initializeDevice(dev.node);
    core.total++;
    core.maxid = Math.max(core.maxid, dev.node);
    core.spawn('peer add', () => core.peerBus.addDevice(dev.node));
  });
  // SCIF_EXIT: the peer is leaving; tear the node down and acknowledge, then wait for it to return.
  core.on(SCIF_MSG.EXIT, (dev) => {
    dev.exitAckPending = true;
    core.spawn('node exit', async () => {
      if (core.isMgmt) {
        await cleanupScifdev(core, dev);
      } else {
        // scif_stop: every peer goes, this node's link to the host last.
        for (let n = core.maxid; n >= 0; n--) {
          const d = core.devs[n];
          if (d && !core.isSelf(d) && d !== dev) await cleanupScifdev(core, d);
        }
        await cleanupScifdev(core, dev);
      }
      if (dev.exitAckPending) {
        dev.exitAckPending = false;
        await core.sendRaw(dev, core.msg(SCIF_MSG.EXIT_ACK)).catch(() => undefined);
      }
      dev.link?.close();
      if (dev.sdev && dev.qp) {
        // The peer may come back: a fresh ring, published again, polled again (qp_dwork re-armed).
        rearm(core, dev);
      }
    });
  });
  core.on(SCIF_MSG.EXIT_ACK, (dev) => {
    dev.exit = OP.COMPLETED;
    core.exitwq.wake();
  });
  // P2P is not set up (p2p_enable off): a card refuses NODE_ADD, the host forwards acks as Linux does.
  core.on(SCIF_MSG.NODE_ADD, (dev, msg) => {
    const nack = msg.clone();
    nack.uop = SCIF_MSG.NODE_ADD_NACK;
    nack.srcNode = core.nodeid;
    core.post(dev, nack);
  });
  const forward = (_dev: ScifDev, msg: ReturnType<ScifCore['msg']>): void => {
    if (!core.isMgmt) return;
    const to = core.devs[msg.dstNode];
    if (!to || core.isSelf(to)) return;
    const fwd = msg.clone();
    if (msg.uop === SCIF_MSG.NODE_ADD_ACK) fwd.payload[1] = core.maxid;
    core.post(to, fwd);
  };
  core.on(SCIF_MSG.NODE_ADD_ACK, forward);
  core.on(SCIF_MSG.NODE_ADD_NACK, forward);
  core.on(SCIF_MSG.NODE_REMOVE, (dev, msg) => {
    const node = msg.payload[0];
    const target = Number.isInteger(node) ? core.devs[node] : undefined;
    const ack = core.msg(SCIF_MSG.NODE_REMOVE_ACK);
    ack.payload[0] = node;
    core.spawn('node remove', async () => {
      if (target && !core.isSelf(target)) await cleanupScifdev(core, target);
      core.post(dev, ack, false);
    });
  });
  core.on(SCIF_MSG.NODE_REMOVE_ACK, (dev) => {
    dev.disconnRescnt++;
    dev.disconnWq.wake();
  });
  core.on(SCIF_MSG.GET_NODE_INFO, (dev, msg) => {
    if (core.isMgmt) {
      const reply = msg.clone();
      reply.srcNode = core.nodeid;
      reply.dstNode = msg.srcNode;
      reply.payload[1] = core.maxid;
      reply.payload[2] = core.total;
      core.post(dev, reply);
      return;
    }
    const maxid = msg.payload[1];
    const total = msg.payload[2];
    if (Number.isInteger(maxid) && maxid >= 0 && maxid < core.devs.length)
      core.maxid = Math.max(core.maxid, maxid);
    if (Number.isInteger(total) && total >= 0 && total < core.devs.length) core.nodeInfoTotal = total;
    core.nodeInfoSeq++;
    core.nodeInfoWq.wake();
  });
}

/** After an exit: a fresh node queue pair, published again, and the device page polled again. */
function rearm(core: ScifCore, dev: ScifDev): void {
  const sdev = dev.sdev!;
  const old = dev.qp!;
  dev.link?.stopReceive();
  old.free();
  const qp = setupNodeQp(core, dev, sdev);
  publish(core, sdev, dev.db, qp.qpOffset);
  startQpPoll(core, dev);
}

/**
 * `scif_get_node_ids`: on a card, first asks the management node for `maxid` and `total`
 * (`SCIF_GET_NODE_INFO`). Returns the online node ids (self included) and this node's id.
 */
export async function getNodeIds(core: ScifCore): Promise<{ nodes: number[]; self: number }> {
  if (core.nodeid < 0) return { nodes: [], self: -1 };
  const host = core.devs[SCIF_MGMT_NODE];
  if (!core.isMgmt && host && core.alive(SCIF_MGMT_NODE)) {
    const seq = core.nodeInfoSeq;
    const m = core.msg(SCIF_MSG.GET_NODE_INFO);
    try {
      await core.send(host, m);
      await core.nodeInfoWq.wait(
        core.clock,
        () => core.nodeInfoSeq !== seq || !core.alive(SCIF_MGMT_NODE),
        'scif node info',
        {
          timeoutMs: core.t.nodeAliveTimeoutMs,
        },
      );
    } catch (err) {
      core.log.debug('scif node info not refreshed', { error: errorMessage(err) });
    }
  }
  const nodes: number[] = [];
  for (let n = 0; n <= core.maxid; n++) if (core.alive(n)) nodes.push(n);
  return { nodes, self: core.nodeid };
}
