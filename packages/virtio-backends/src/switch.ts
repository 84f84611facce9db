/**
 * A userspace Ethernet switch: the default network of the net backend, with no privileges. Each
 * {@link SwitchPort} is a {@link FrameLink}; the card's NIC takes one, host code takes others
 * (endpoints that send and receive frames: a ping client, a test, a bridge to something else).
 * It learns source MACs (IEEE 802.1D, without ageing: a MAC stays on the port that last sent
 * from it) and forwards to the learned port, or floods broadcast, multicast and unknown
 * destinations to every other port. Delivery is asynchronous (a microtask), so a receiver that
 * answers at once does not re-enter the sender.
 */
import { MicError } from '@mic/errors';
import type { FrameLink, FrameLinkStats } from './link.js';

/** Bytes of the Ethernet header (destination, source, EtherType). */
export const ETH_HLEN = 14;

function macKey(frame: Uint8Array, at: number): number {
  // 48 bits fit a double exactly.
  return (
    frame[at]! * 2 ** 40 +
    frame[at + 1]! * 2 ** 32 +
    ((frame[at + 2]! << 24) >>> 0) +
    (frame[at + 3]! << 16) +
    (frame[at + 4]! << 8) +
    frame[at + 5]!
  );
}

/** One port of a {@link VirtualSwitch}. */
export class SwitchPort implements FrameLink {
  readonly name: string;
  readonly #sw: VirtualSwitch;
  #receiver: ((frame: Uint8Array) => void) | null = null;
  #closed = false;
  /** @internal */
  readonly counters: FrameLinkStats = { sent: 0, received: 0, dropped: 0 };

  /** @internal made by {@link VirtualSwitch.port} */
  constructor(sw: VirtualSwitch, name: string) {
    this.#sw = sw;
    this.name = name;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(frame: Uint8Array): void {
    if (this.#closed) {
      this.counters.dropped++;
      return;
    }
    this.counters.sent++;
    this.#sw.forward(this, frame);
  }

  setReceiver(receiver: ((frame: Uint8Array) => void) | null): void {
    this.#receiver = receiver;
  }

  /**
   * Resolves with the next frame this port receives for which `match` is true (default: any),
   * taking over the receiver until then. @throws MicError ECANCELED when `signal` aborts
   */
  receive(match: (frame: Uint8Array) => boolean = () => true, signal?: AbortSignal): Promise<Uint8Array> {
    const prev = this.#receiver;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#receiver = prev;
        reject(
          new MicError('ECANCELED', `waiting for a frame on ${this.name} was cancelled`, {
            cause: signal?.reason,
          }),
        );
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#receiver = (frame) => {
        if (!match(frame)) {
          prev?.(frame);
          return;
        }
        signal?.removeEventListener('abort', onAbort);
        this.#receiver = prev;
        resolve(frame);
      };
    });
  }

  /** @internal a frame for this port */
  deliver(frame: Uint8Array): void {
    if (this.#closed) return;
    this.counters.received++;
    const r = this.#receiver;
    if (r === null) {
      this.counters.dropped++;
      return;
    }
    r(frame);
  }

  stats(): FrameLinkStats {
    return { ...this.counters };
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#receiver = null;
      this.#sw.detach(this);
    }
    return Promise.resolve();
  }
}

/** Counters of a {@link VirtualSwitch}. */
export interface VirtualSwitchStats {
  /** Frames forwarded to one learned port. */
  forwarded: number;
  /** Frames flooded to every other port. */
  flooded: number;
  /** Frames shorter than an Ethernet header, dropped. */
  runts: number;
}

/**
 * The switch.
 *
 * @example
 * const sw = new VirtualSwitch();
 * const host = sw.port('host');
 * host.setReceiver((frame) => console.log('frame of', frame.length, 'bytes'));
 * const net = await NetBackend.open({ link: { kind: 'switch', switch: sw } });
 */
export class VirtualSwitch {
  readonly #ports = new Set<SwitchPort>();
  readonly #table = new Map<number, SwitchPort>();
  readonly #stats: VirtualSwitchStats = { forwarded: 0, flooded: 0, runts: 0 };
  #queue: { to: SwitchPort; frame: Uint8Array }[] = [];
  #scheduled = false;
  #next = 0;

  /** A new port (named `port <n>` unless `name` is given). */
  port(name?: string): SwitchPort {
    const p = new SwitchPort(this, name ?? `switch port ${this.#next++}`);
    this.#ports.add(p);
    return p;
  }

  /** Ports attached now. */
  ports(): readonly SwitchPort[] {
    return [...this.#ports];
  }

  /** The port a MAC (6 bytes) was learned on, or null. */
  lookup(mac: Uint8Array): SwitchPort | null {
    if (mac.length !== 6) throw new MicError('EINVAL', `a MAC address has 6 bytes, not ${mac.length}`);
    return this.#table.get(macKey(mac, 0)) ?? null;
  }

  stats(): VirtualSwitchStats {
    return { ...this.#stats };
  }

  /** @internal */
  forward(from: SwitchPort, frame: Uint8Array): void {
    if (frame.length < ETH_HLEN) {
      this.#stats.runts++;
      return;
    }
    // Learn the source unless it is a group address (never a valid source).
    if ((frame[6]! & 1) === 0) this.#table.set(macKey(frame, 6), from);
    const to = (frame[0]! & 1) === 0 ? this.#table.get(macKey(frame, 0)) : undefined;
    if (to !== undefined && !to.closed) {
      this.#stats.forwarded++;
      if (to !== from) this.#enqueue(to, frame);
      return;
    }
    this.#stats.flooded++;
    for (const p of this.#ports) if (p !== from) this.#enqueue(p, frame);
  }

  #enqueue(to: SwitchPort, frame: Uint8Array): void {
    this.#queue.push({ to, frame });
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      const batch = this.#queue;
      this.#queue = [];
      for (const { to: p, frame: f } of batch) p.deliver(f);
    });
  }

  /** @internal */
  detach(port: SwitchPort): void {
    this.#ports.delete(port);
    for (const [mac, p] of this.#table) if (p === port) this.#table.delete(mac);
  }
}
