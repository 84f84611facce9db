/**
 * The SCIF driver's global state (`struct scif_info`) and node table (`scif_dev[]`), node
 * queue-pair sending with the kernel's gating, and the message dispatch table. The handlers live
 * with their subject (`node.ts`, `endpt.ts`, `rma.ts`, `fence.ts`) and install themselves here.
 *
 * @see drivers/misc/mic/scif/scif_main.h, scif_main.c, scif_nodeqp.c
 */
import type { MicIrq, MicMw } from '@mic/bus-core';
import type { Clock } from '@mic/clock';
import { MicError, errorMessage } from '@mic/errors';
import type { Logger } from '@mic/logger';
import type { ScifHwDev, ScifPeerBus } from '@mic/scif-bus';
import { MAX_SCIF_NODES, OP, type OpState, SCIF_MAX_MSG, SCIF_MGMT_NODE, SCIF_MSG } from './constants.js';
import type { Endpt } from './endpt.js';
import type { ScifMemOps } from './memops.js';
import { ScifMsg } from './msg.js';
import { type NodeLink, labelOf } from './nodeqp.js';
import { HandleTable, ScifPorts } from './ports.js';
import type { ScifQp } from './qp.js';
import type { PendingRemote } from './rma-state.js';
import { BusyPoller, WaitQueue } from './wait.js';

/** Tunables of a SCIF node (the kernel's constants, as options so tests can shorten them). */
export interface ScifTunables {
  /** Handshake waits, re-armed while the peer lives (`SCIF_NODE_ALIVE_TIMEOUT`, default 30 000). */
  readonly nodeAliveTimeoutMs: number;
  /** `accept`'s wait for the grant acknowledgement (`SCIF_NODE_ACCEPT_TIMEOUT`, default 3000). */
  readonly acceptTimeoutMs: number;
  /** A full node ring is retried this long (`SCIF_NODEQP_SEND_TO_MSEC`, default 3000). */
  readonly sendTimeoutMs: number;
  /** Device-page poll period for the peer's queue pair (`qp_dwork`, default 1000). */
  readonly qpPollMs: number;
  /** Inbound ring of each endpoint, a power of two (`SCIF_ENDPT_QP_SIZE`, default 4096). */
  readonly endpointQpSize: number;
  /** Set up peer-to-peer links between cards (`p2p_enable`; default false, see the README). */
  readonly p2pEnable: boolean;
  /** Write ring pointers twice (the card silicon workaround; default false, no effect here). */
  readonly doubleWrite: boolean;
  /**
   * Bounded busy poll, in µs of real time, as Linux's `SO_BUSY_POLL` (not a kernel SCIF
   * tunable): a blocking `send`/`recv` that has to wait, and a `poll` with a timeout, first poll
   * the endpoint rings' pointers in shared memory this long (the thread does nothing else
   * meanwhile) before they sleep until the peer's `CLIENT_SENT` / `CLIENT_RCVD` interrupt.
   * Saves the interrupt's wake-up on a round trip when the peer answers fast on another CPU;
   * costs a CPU while it spins. 0 turns it off. Default `SCIF_BUSY_POLL_US` (0, as Linux).
   */
  readonly busyPollUs: number;
}

/** One node of the node table (`struct scif_dev`). */
export class ScifDev {
  readonly node: number;
  /** The hardware device this node is reached through (self: the first probed; P2P: the host's). */
  sdev: ScifHwDev | undefined;
  ops: ScifMemOps | undefined;
  /** The node queue pair (not for the loopback node, whose rings are local). */
  qp: ScifQp | undefined;
  link: NodeLink | undefined;
  /** The doorbell we listen on and the peer's we ring. */
  db = -1;
  rdb = -1;
  cookie: MicIrq | undefined;
  /** State of our `SCIF_EXIT` handshake with this node. */
  exit: OpState = OP.IDLE;
  exitAckPending = false;
  nodeRemoveAckPending = false;
  readonly disconnWq = new WaitQueue();
  disconnRescnt = 0;
  /** Stops the device-page poll. */
  qpPoll: AbortController | undefined;
  /** Peer-to-peer: the peer's MMIO window and the base added to our addresses for it. */
  mmio: MicMw | undefined;
  baseAddr = 0;
  p2p = false;
  /** Nodes a peer-to-peer link to was set up for (mgmt node). */
  readonly p2pPeers = new Set<number>();
  /** Round robin over the link's DMA channels. */
  dmaChIdx = 0;
  /** True while `scif_cleanup_scifdev` runs. */
  cleaning = false;
  /** Window descriptors this node allocated for the peer's registrations in flight. */
  readonly pendingRemotes = new Set<PendingRemote>();

  constructor(node: number) {
    this.node = node;
  }
}

/** A background task the node owns (the kernel's work items). */
type Task = Promise<void>;

/** The global state of one SCIF node. */
export class ScifCore {
  readonly clock: Clock;
  readonly log: Logger;
  readonly peerBus: ScifPeerBus;
  readonly t: ScifTunables;
  /** This node's id; -1 until the first device is probed. */
  nodeid = -1;
  maxid = 0;
  total = 0;
  readonly devs: (ScifDev | undefined)[] = new Array<ScifDev | undefined>(MAX_SCIF_NODES);
  readonly ports = new ScifPorts();
  readonly handles = new HandleTable();
  /** Every endpoint not freed yet. */
  readonly endpoints = new Set<Endpt>();
  readonly listen: Endpt[] = [];
  readonly connected = new Set<Endpt>();
  readonly disconnected = new Set<Endpt>();
  readonly zombies = new Set<Endpt>();
  readonly exitwq = new WaitQueue();
  /** The busy poll of `scif_poll` (`ScifTunables.busyPollUs`). */
  readonly pollPoller = new BusyPoller();
  /** Woken by `SCIF_GET_NODE_INFO` replies. */
  readonly nodeInfoWq = new WaitQueue();
  nodeInfoSeq = 0;
  /** `total` as the management node last reported it (cards). */
  nodeInfoTotal = 0;
  cardInitiatedExit = false;
  /** Hardware devices probed, in probe order. */
  readonly sdevs: ScifHwDev[] = [];
  /** Called with every message received, before it is handled (`ScifOptions.onMessage`). */
  trace: ((node: number, msg: ScifMsg) => void) | undefined;
  readonly #handlers: ((dev: ScifDev, msg: ScifMsg) => void)[] = [];
  readonly #tasks = new Set<Task>();
  /** Frees the zombies whose RMA state is gone (`scif_cleanup_zombie_epd`; endpt.ts sets it). */
  reaper: ((core: ScifCore) => void) | undefined;
  #reapQueued = false;

  constructor(clock: Clock, log: Logger, peerBus: ScifPeerBus, tunables: ScifTunables) {
    this.clock = clock;
    this.log = log;
    this.peerBus = peerBus;
    this.t = tunables;
  }

  /** `scif_is_mgmt_node`. */
  get isMgmt(): boolean {
    return this.nodeid === SCIF_MGMT_NODE;
  }

  /** `scif_dev[node]`, created on first use. */
  dev(node: number): ScifDev {
    let d = this.devs[node];
    if (!d) {
      d = new ScifDev(node);
      this.devs[node] = d;
    }
    return d;
  }

  /** `scifdev_self`. */
  isSelf(dev: ScifDev): boolean {
    return dev.node === this.nodeid;
  }

  /** `_scifdev_alive`: the node has a peer device. */
  alive(node: number): boolean {
    return this.peerBus.isAlive(node);
  }

  /** Installs the handler of message `uop`. */
  on(uop: number, handler: (dev: ScifDev, msg: ScifMsg) => void): void {
    this.#handlers[uop] = handler;
  }

  /** A message from this node. */
  msg(uop: number, srcPort = 0): ScifMsg {
    const m = new ScifMsg(uop);
    m.srcNode = Math.max(this.nodeid, 0);
    m.srcPort = srcPort;
    return m;
  }

  /**
   * `scif_nodeqp_send`: messages after `SCIF_EXIT_ACK` go only to a node that is alive and not
   * leaving. Rejects with `ENODEV` otherwise, or as {@link sendRaw}.
   */
  send(dev: ScifDev, msg: ScifMsg): Promise<void> {
    if (msg.uop > SCIF_MSG.EXIT_ACK && (dev.exit !== OP.IDLE || !this.alive(dev.node))) {
      return Promise.reject(
        new MicError('ENODEV', `scif node ${dev.node} is not online for ${labelOf(msg.uop)}`, {
          details: { node: dev.node, uop: msg.uop },
        }),
      );
    }
    return this.sendRaw(dev, msg);
  }

  /**
   * `_scif_nodeqp_send`, without the gating. `lazyRing`: the doorbell may wait for the next
   * message's, at most until the end of this event-loop turn (see `NodeLink.send`).
   */
  sendRaw(dev: ScifDev, msg: ScifMsg, lazyRing = false): Promise<void> {
    msg.dstNode = dev.node;
    const link = dev.link;
    if (!link) {
      return Promise.reject(
        new MicError('ENODEV', `scif node ${dev.node} has no queue pair`, { details: { node: dev.node } }),
      );
    }
    return link.send(msg, lazyRing);
  }

  /** Sends and only logs a failure (replies and notifications the kernel does not check either). */
  post(dev: ScifDev, msg: ScifMsg, gated = true): void {
    (gated ? this.send(dev, msg) : this.sendRaw(dev, msg)).catch((err: unknown) =>
      this.log.debug('scif message not sent', {
        node: dev.node,
        uop: labelOf(msg.uop),
        error: errorMessage(err),
      }),
    );
  }

  /**
   * `scif_nodeqp_msg_handler`: dispatches a message that arrived from `dev`. A message not from the
   * management node names its own link as source, whatever its `src.node` says. Returns false after
   * `SCIF_EXIT_ACK` (the receive loop stops there).
   */
  dispatch(dev: ScifDev, msg: ScifMsg): boolean {
    if (msg.uop < 1 || msg.uop > SCIF_MAX_MSG) {
      this.log.warn('unknown scif message', { uop: msg.uop, node: dev.node });
      return true;
    }
    if (dev.node !== SCIF_MGMT_NODE && !this.isSelf(dev)) msg.srcNode = dev.node;
    this.trace?.(dev.node, msg);
    const h = this.#handlers[msg.uop];
    if (h) h(dev, msg);
    else this.log.warn('unhandled scif message', { uop: labelOf(msg.uop), node: dev.node });
    return msg.uop !== SCIF_MSG.EXIT_ACK;
  }

  /**
   * Queues the misc worker's last step (`scif_misc_handler` → `scif_cleanup_zombie_epd`) after
   * something released RMA state: a closed endpoint whose peer unregistered its windows, or
   * whose last copy or fence finished, is freed then and not only at the next close.
   */
  scheduleReap(): void {
    if (this.#reapQueued || this.zombies.size === 0 || !this.reaper) return;
    this.#reapQueued = true;
    queueMicrotask(() => {
      this.#reapQueued = false;
      this.reaper?.(this);
    });
  }

  /** Runs `fn` as background work the node waits for in {@link idle}; failures are logged. */
  spawn(what: string, fn: () => Promise<void>): Task {
    const task: Task = fn().catch((err: unknown) =>
      this.log.warn(`scif ${what} failed`, { error: errorMessage(err) }),
    );
    this.#tasks.add(task);
    void task.finally(() => {
      this.#tasks.delete(task);
      this.scheduleReap();
    });
    return task;
  }

  /** Resolves once no background work is left. */
  async idle(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
  }
}
