/**
 * The SCIF peer bus (`scif_peer_bus`): one peer device per online SCIF node (self included).
 * It has no match function; SCIF clients (COSM, the user API) attach like a `subsys_interface`:
 * every client hears about every peer device, and a node is alive exactly while its peer device
 * is registered.
 *
 * Registration has two phases, as in the kernel: {@link ScifPeerBus.initializeDevice} makes the
 * node alive at once (the message thread runs it, so a connect request racing `SCIF_INIT` finds
 * the node), and {@link ScifPeerBus.addDevice} announces it to the clients later (from a work
 * item, so a client probe that connects cannot block the message thread).
 *
 * @see drivers/misc/mic/scif/scif_peer_bus.c
 * @see include/linux/scif.h `struct scif_peer_dev`, `struct scif_client`
 */
import { AsyncMutex } from '@mic/bus-core';
import { MicError, checkInt, toMicError } from '@mic/errors';
import { type Logger, nullLogger } from '@mic/logger';
import { SCIF_MAX_NODE } from './scif.js';

/** A peer device (`struct scif_peer_dev`): one online node. */
export interface ScifPeerDev {
  /** `scif_peer-dev%u` of {@link dnode}. */
  readonly name: string;
  /** The node id. */
  readonly dnode: number;
}

/**
 * A SCIF client (`struct scif_client`): `probe` runs for every peer device added while it is
 * registered (and for those present when it registers), `remove` when the device goes or the
 * client unregisters.
 */
export interface ScifClient {
  readonly name: string;
  probe(spdev: ScifPeerDev): void | Promise<void>;
  remove(spdev: ScifPeerDev): void | Promise<void>;
}

interface PeerEntry {
  readonly dev: ScifPeerDev;
  added: boolean;
  /** Clients whose probe succeeded, in probe order. */
  readonly probed: ScifClient[];
  adding: Promise<void> | undefined;
}

/** Options of a {@link ScifPeerBus}. */
export interface ScifPeerBusOptions {
  /** Where client probe and remove failures are logged. */
  readonly logger?: Logger;
}

/**
 * The SCIF peer bus. Client probe failures are logged and skipped (that client gets no remove for
 * that device); they do not stop the device or the other clients. Add, unregister and client
 * (un)registration are serialized.
 *
 * @example
 * const peers = new ScifPeerBus();
 * await peers.registerClient({ name: 'cosm', probe: (p) => connect(p.dnode), remove: () => {} });
 * peers.initializeDevice(1); // in the message handler: node 1 is alive
 * void peers.addDevice(1); // later: the clients probe it
 */
export class ScifPeerBus {
  readonly #lock = new AsyncMutex();
  readonly #log: Logger;
  readonly #peers = new Map<number, PeerEntry>();
  readonly #clients: ScifClient[] = [];

  constructor(options: ScifPeerBusOptions = {}) {
    this.#log = (options.logger ?? nullLogger).child('scif_peer_bus');
  }

  /**
   * Phase one (`scif_peer_initialize_device`): creates the peer device of `dnode`; the node is
   * alive from now on. Throws `EINVAL` for a bad node id and `EEXIST` when it already has one.
   */
  initializeDevice(dnode: number): ScifPeerDev {
    checkInt('scif peer node', dnode, 0, SCIF_MAX_NODE);
    if (this.#peers.has(dnode)) {
      throw new MicError('EEXIST', `scif peer device of node ${dnode} already exists`, {
        details: { dnode },
      });
    }
    const dev: ScifPeerDev = Object.freeze({ name: `scif_peer-dev${dnode}`, dnode });
    this.#peers.set(dnode, { dev, added: false, probed: [], adding: undefined });
    return dev;
  }

  /**
   * Phase two (`scif_peer_add_device`): every registered client probes the device, in client
   * registration order. Rejects with `ENODEV` when the node has no initialized device, `EEXIST`
   * when it was added already.
   */
  addDevice(dnode: number): Promise<void> {
    const entry = this.#peers.get(dnode);
    if (!entry) {
      return Promise.reject(new MicError('ENODEV', `scif peer node ${String(dnode)} is not initialized`));
    }
    if (entry.adding || entry.added) {
      return Promise.reject(new MicError('EEXIST', `scif peer node ${dnode} was already added`));
    }
    entry.adding = this.#lock.run(async () => {
      if (this.#peers.get(dnode) !== entry) return;
      entry.added = true;
      for (const client of [...this.#clients]) await this.#probe(entry, client);
    });
    return entry.adding;
  }

  /** Both phases: `scif_peer_register_device` followed by its add work. */
  async registerDevice(dnode: number): Promise<ScifPeerDev> {
    const dev = this.initializeDevice(dnode);
    await this.addDevice(dnode);
    return dev;
  }

  /**
   * `scif_peer_unregister_device`: waits for a pending add, marks the node dead, then every client
   * that probed the device removes it (reverse probe order). Rejects with `ENODEV` when the node
   * has no peer device.
   */
  async unregisterDevice(dnode: number): Promise<void> {
    const entry = this.#peers.get(dnode);
    if (!entry)
      throw new MicError('ENODEV', `scif peer node ${String(dnode)} has no device`, { details: { dnode } });
    await entry.adding?.catch(() => undefined);
    await this.#lock.run(async () => {
      if (this.#peers.get(dnode) !== entry) {
        throw new MicError('ENODEV', `scif peer node ${dnode} has no device`, { details: { dnode } });
      }
      this.#peers.delete(dnode);
      for (const client of [...entry.probed].reverse()) await this.#remove(entry, client);
    });
  }

  /** Adds a client; it probes every device already added. `EBUSY` when it (or its name) is registered. */
  registerClient(client: ScifClient): Promise<void> {
    return this.#lock.run(async () => {
      if (
        typeof client !== 'object' ||
        client === null ||
        typeof client.name !== 'string' ||
        typeof client.probe !== 'function' ||
        typeof client.remove !== 'function'
      ) {
        throw new MicError('EINVAL', 'a scif client needs a name, a probe and a remove');
      }
      if (this.#clients.some((c) => c === client || c.name === client.name)) {
        throw new MicError('EBUSY', `scif client ${client.name} is already registered`);
      }
      this.#clients.push(client);
      for (const entry of [...this.#peers.values()]) if (entry.added) await this.#probe(entry, client);
    });
  }

  /** Removes a client: it removes every device it probed (latest node first). `ENODEV` if unknown. */
  unregisterClient(client: ScifClient): Promise<void> {
    return this.#lock.run(async () => {
      const at = this.#clients.indexOf(client);
      if (at < 0) throw new MicError('ENODEV', `scif client ${client?.name} is not registered`);
      this.#clients.splice(at, 1);
      for (const entry of [...this.#peers.values()].reverse()) {
        if (entry.probed.includes(client)) await this.#remove(entry, client);
      }
    });
  }

  /** `_scifdev_alive`: the node has a peer device (initialized, added or not). */
  isAlive(dnode: number): boolean {
    return this.#peers.has(dnode);
  }

  /** The peer device of `dnode`, if any. */
  get(dnode: number): ScifPeerDev | undefined {
    return this.#peers.get(dnode)?.dev;
  }

  /** Peer devices, in initialization order. */
  devices(): readonly ScifPeerDev[] {
    return [...this.#peers.values()].map((e) => e.dev);
  }

  /** Registered clients, in registration order. */
  clients(): readonly ScifClient[] {
    return [...this.#clients];
  }

  /** Resolves once every operation started before this call has finished. */
  idle(): Promise<void> {
    return this.#lock.run(() => undefined);
  }

  async #probe(entry: PeerEntry, client: ScifClient): Promise<void> {
    try {
      await client.probe(entry.dev);
      entry.probed.push(client);
    } catch (err) {
      const e = toMicError(err, 'EIO', `scif client ${client.name} probe of ${entry.dev.name} failed`);
      this.#log.warn(`scif client ${client.name} probe of ${entry.dev.name} failed`, { error: e.toString() });
    }
  }

  async #remove(entry: PeerEntry, client: ScifClient): Promise<void> {
    const at = entry.probed.indexOf(client);
    if (at >= 0) entry.probed.splice(at, 1);
    try {
      await client.remove(entry.dev);
    } catch (err) {
      const e = toMicError(err, 'EIO', `scif client ${client.name} remove of ${entry.dev.name} failed`);
      this.#log.error(`scif client ${client.name} remove of ${entry.dev.name} failed`, {
        error: e.toString(),
      });
    }
  }
}
