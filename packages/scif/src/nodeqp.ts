/**
 * Node queue-pair messaging (`scif_nodeqp.c`): `_scif_nodeqp_send` (write 44 bytes into the
 * peer's ring, retrying every millisecond for 3 s before `ENODEV`, commit, then ring the peer's
 * doorbell) and the receive loop of the interrupt bottom half (`scif_nodeqp_intrhandler`: take
 * whole messages, dispatch, update the read pointer).
 *
 * @see drivers/misc/mic/scif/scif_nodeqp.c
 */
import type { Clock } from '@mic/clock';
import { MicError, errorMessage } from '@mic/errors';
import type { Logger } from '@mic/logger';
import { SCIF_MSG } from './constants.js';
import { SCIF_MSG_SIZE, ScifMsg } from './msg.js';
import type { ScifRb } from './rb.js';

/** What a node link needs from its node. */
export interface NodeLinkHooks {
  readonly clock: Clock;
  readonly log: Logger;
  /** Milliseconds a full ring is retried before `ENODEV`. */
  readonly sendTimeoutMs: number;
  /** Rings the peer's doorbell (or schedules the loopback bottom half). */
  ring(): void;
  /** Handles one received message (the dispatch table). Returns false to stop the loop. */
  dispatch(msg: ScifMsg): boolean;
}

interface Pending {
  readonly bytes: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/**
 * What {@link NodeLink.send} returns when the message went into the peer's ring at once (the
 * doorbell rang within the call): callers on a hot path compare with it to go on without a
 * promise turn.
 */
export const SENT: Promise<void> = Promise.resolve();

/** One node's message rings: the inbound ring we read, the outbound ring we write. */
export class NodeLink {
  readonly inbound: ScifRb;
  outbound: ScifRb | undefined;
  readonly #hooks: NodeLinkHooks;
  readonly #scratch = new Uint8Array(SCIF_MSG_SIZE);
  readonly #rx = new Uint8Array(SCIF_MSG_SIZE);
  #queue: Pending[] = [];
  #retrying = false;
  #draining = false;
  #again = false;
  #closed = false;
  #closedForRead = false;
  /** A committed message's doorbell was left for later ({@link send}'s `lazyRing`). */
  #ringPending = false;
  #ringScheduled = false;

  constructor(inbound: ScifRb, outbound: ScifRb | undefined, hooks: NodeLinkHooks) {
    this.inbound = inbound;
    this.outbound = outbound;
    this.#hooks = hooks;
  }

  /** Messages waiting for room in the peer's ring. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * `_scif_nodeqp_send`. Resolves once the message is in the peer's ring and the doorbell rang
   * ({@link SENT} when that happened within the call; with `lazyRing` the doorbell rings with the
   * next message's, or at the end of this event-loop turn); the message is encoded within the call, so
   * the caller may reuse `msg` at once. Rejects with `ENODEV` when the ring stayed full for the send timeout, the link has no outbound
   * ring, or it was closed.
   */
  send(msg: ScifMsg, lazyRing = false): Promise<void> {
    const out = this.outbound;
    if (!out || this.#closed) {
      return Promise.reject(
        new MicError('ENODEV', `scif node link has no outbound ring for ${labelOf(msg.uop)}`, {
          details: { uop: msg.uop },
        }),
      );
    }
    if (this.#queue.length === 0 && out.space() >= SCIF_MSG_SIZE) {
      msg.encode(this.#scratch);
      out.write(this.#scratch);
      out.commit();
      if (lazyRing) this.#ringLater();
      else this.#ringNow();
      return SENT;
    }
    const bytes = new Uint8Array(SCIF_MSG_SIZE);
    msg.encode(bytes);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ bytes, resolve, reject });
      if (!this.#retrying) void this.#retry();
    });
  }

  /** Rings the doorbell for every message committed so far. */
  #ringNow(): void {
    this.#ringPending = false;
    this.#hooks.ring();
  }

  /**
   * Leaves the doorbell of a committed message to the next message's ring, or to the end of
   * this turn of the event loop at the latest (`setImmediate`), so a `CLIENT_RCVD` followed by
   * a `CLIENT_SENT` (a `recv` then a `send`, as an echo does) rings the peer once.
   */
  #ringLater(): void {
    this.#ringPending = true;
    if (this.#ringScheduled) return;
    this.#ringScheduled = true;
    setImmediate(this.#flushRing);
  }

  readonly #flushRing = (): void => {
    this.#ringScheduled = false;
    if (this.#ringPending && !this.#closed && this.outbound) this.#ringNow();
  };

  /** Writes queued messages as room appears, 1 ms apart, for at most the send timeout each. */
  async #retry(): Promise<void> {
    this.#retrying = true;
    const { clock } = this.#hooks;
    try {
      let since = clock.now();
      while (this.#queue.length > 0) {
        const out = this.outbound;
        if (!out || this.#closed) {
          this.#failAll(new MicError('ENODEV', 'scif node link closed with messages queued'));
          return;
        }
        let wrote = false;
        while (this.#queue.length > 0 && out.space() >= SCIF_MSG_SIZE) {
          out.write(this.#queue[0]!.bytes);
          out.commit();
          this.#queue.shift()!.resolve();
          wrote = true;
        }
        if (wrote) {
          this.#ringNow();
          since = clock.now();
          continue;
        }
        if (clock.now() - since >= this.#hooks.sendTimeoutMs) {
          this.#failAll(
            new MicError('ENODEV', `scif node ring stayed full for ${this.#hooks.sendTimeoutMs} ms`, {
              details: { queued: this.#queue.length },
            }),
          );
          return;
        }
        await clock.sleep(1);
      }
    } finally {
      this.#retrying = false;
    }
  }

  #failAll(err: MicError): void {
    const q = this.#queue;
    this.#queue = [];
    for (const p of q) p.reject(err);
  }

  /** Stops sending: queued messages fail with `ENODEV`, later sends too. */
  close(): void {
    this.#closed = true;
    this.outbound = undefined;
    this.#failAll(new MicError('ENODEV', 'scif node link closed'));
  }

  /**
   * The bottom half: takes whole 44-byte messages while there are any, dispatches each, then
   * publishes the read pointer. Re-entrant calls (a handler that sends to its own node) run once
   * more after the current pass.
   */
  drain(): void {
    if (this.#draining) {
      this.#again = true;
      return;
    }
    this.#draining = true;
    try {
      do {
        this.#again = false;
        while (!this.#closedForRead && this.inbound.getNext(this.#rx) === SCIF_MSG_SIZE) {
          const msg = ScifMsg.decode(this.#rx);
          let go = true;
          try {
            go = this.#hooks.dispatch(msg);
          } catch (err) {
            this.#hooks.log.error('scif message handler threw', { uop: msg.uop, error: errorMessage(err) });
          }
          if (!go) return;
          this.inbound.updateReadPtr();
        }
      } while (this.#again);
    } finally {
      this.#draining = false;
    }
  }

  /** Stops the receive loop for good (the node is gone). */
  stopReceive(): void {
    this.#closedForRead = true;
  }
}

/** A message's opcode name, for logs and errors. */
export function labelOf(uop: number): string {
  for (const [k, v] of Object.entries(SCIF_MSG)) if (v === uop) return `SCIF_${k}`;
  return `unknown message ${uop}`;
}
