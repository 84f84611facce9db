/** A host and cards on the scif-bus mock, each node with its own SCIF driver. */
import { afterEach } from '@jest/globals';
import { type Clock, realClock } from '@mic/clock';
import type { Logger } from '@mic/logger';
import { asBufferMemory, type Memory } from '@mic/memory';
import { MockScifFabric, ScifBus, type ScifHwDev } from '@mic/scif-bus';
import { Scif, type ScifEndpoint, type ScifMsg, type ScifTunables } from '../src/index.js';

export interface Rig {
  readonly clock: Clock;
  readonly fabric: MockScifFabric;
  readonly host: Scif;
  readonly cards: Scif[];
  readonly hostDevs: ScifHwDev[];
  readonly cardDevs: ScifHwDev[];
  readonly hostBus: ScifBus;
  readonly cardBuses: ScifBus[];
  /** Removes the host's device of card `i` (host-initiated teardown). */
  removeHostDev(i: number): Promise<void>;
  /** Removes card `i`'s device (card-initiated teardown). */
  removeCardDev(i: number): Promise<void>;
  /** Removes every device left (cards first), so no poll keeps running. */
  close(): Promise<void>;
}

const live = new Set<Rig>();
// Every rig of a test is taken down after it.
afterEach(async () => {
  for (const r of [...live]) await r.close();
});

export interface RigOptions {
  readonly cards?: number;
  readonly tunables?: Partial<ScifTunables>;
  readonly clock?: Clock;
  readonly hostRamSize?: number;
  readonly cardRamSize?: number;
  /**
   * Give every SCIF device a {@link FakeDmaChannel} (default: none, every RMA is a CPU copy);
   * `'status'`: a {@link StatusFakeDmaChannel}, which also answers `txStatus`.
   */
  readonly dma?: boolean | 'status';
  /** Every message each node receives: `self` is the receiving node (host 0), `from` the link. */
  readonly trace?: (self: number, from: number, uop: number, msg: ScifMsg) => void;
  /** The host's logger (default: none). */
  readonly hostLogger?: Logger;
}

/** The errno code a call or promise fails with, `'ok'` when it does not fail. */
export async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  return 'ok';
}

/** Waits (on the clock) until `cond` holds; throws after `limitMs`. */
export async function until(
  clock: Clock,
  cond: () => boolean,
  what: string,
  limitMs = 120_000,
): Promise<void> {
  const end = clock.now() + limitMs;
  while (!cond()) {
    if (clock.now() > end) throw new Error(`timed out waiting for ${what}`);
    await clock.sleep(5);
  }
}

export async function rig(options: RigOptions = {}): Promise<Rig> {
  const n = options.cards ?? 1;
  // The wall clock: the mock delivers interrupts in later tasks, which a virtual clock that
  // jumps when idle would overtake. Waits only run to their end when something is wrong.
  const clock = options.clock ?? realClock;
  const fabric = new MockScifFabric({
    cards: n,
    hostRamSize: options.hostRamSize ?? 8 << 20,
    cardRamSize: options.cardRamSize ?? 4 << 20,
  });
  const tunables = { qpPollMs: 5, ...options.tunables };
  const trace = options.trace;
  const host = new Scif({
    clock,
    tunables,
    ...(options.hostLogger && { logger: options.hostLogger }),
    onMessage: trace && ((from, m) => trace(0, from, m.uop, m)),
  });
  const hostBus = new ScifBus();
  await hostBus.registerDriver(host.driver);
  const cards: Scif[] = [];
  const cardBuses: ScifBus[] = [];
  const hostDevs: ScifHwDev[] = [];
  const cardDevs: ScifHwDev[] = [];
  for (const link of fabric.links) {
    const chans = (): FakeDmaChannel[] =>
      options.dma === 'status'
        ? [new StatusFakeDmaChannel(fabric, link.cardRam)]
        : options.dma
          ? [new FakeDmaChannel(fabric, link.cardRam)]
          : [];
    hostDevs.push(await hostBus.registerDevice(link.hostParams(chans())));
    const s = new Scif({
      clock,
      tunables,
      onMessage: trace && ((from, m) => trace(link.node, from, m.uop, m)),
    });
    const bus = new ScifBus();
    await bus.registerDriver(s.driver);
    cardDevs.push(await bus.registerDevice(link.cardParams(chans())));
    cards.push(s);
    cardBuses.push(bus);
  }
  await until(clock, () => cards.every((c, i) => c.isAlive(0) && host.isAlive(i + 1)), 'every node online');
  const r: Rig = {
    clock,
    fabric,
    host,
    cards,
    hostDevs,
    cardDevs,
    hostBus,
    cardBuses,
    removeHostDev: (i) => hostBus.unregisterDevice(hostDevs[i]!),
    removeCardDev: (i) => cardBuses[i]!.unregisterDevice(cardDevs[i]!),
    close: async () => {
      live.delete(r);
      for (const bus of cardBuses) for (const d of bus.devices()) await bus.unregisterDevice(d);
      for (const d of hostBus.devices()) await hostBus.unregisterDevice(d);
    },
  };
  live.add(r);
  return r;
}

/**
 * A DMA channel double for the mock fabric: addresses from `hostDmaBase` up are host RAM, below
 * it the card's RAM (as the x100 engine sees them). Copies run in a later task after
 * `issuePending`, in submission order, so asynchronous RMA semantics are real.
 */
export class FakeDmaChannel {
  readonly chanId = 0;
  readonly name = 'fake-dma';
  readonly copyAlign = 6;
  readonly #fabric: MockScifFabric;
  readonly #card: Memory;
  #cookie = 0;
  #done = 0;
  readonly #pending: { cookie: number; run: () => void }[] = [];
  readonly #queued: { cookie: number; run: () => void }[] = [];
  readonly #waiters: (() => void)[] = [];
  /** Descriptors copied (for tests that check the DMA path ran). */
  copies = 0;
  /** Transfers prepared with `DMA_PREP_INTERRUPT` (a waiter asked for the completion interrupt). */
  interrupts = 0;

  constructor(fabric: MockScifFabric, card: Memory) {
    this.#fabric = fabric;
    this.#card = card;
  }

  #bytes(addr: number, len: number): Uint8Array {
    const base = this.#fabric.hostDmaBase;
    return addr >= base
      ? asBufferMemory(this.#fabric.hostRam, 'test memory').bytes(addr - base, len)
      : asBufferMemory(this.#card, 'test memory').bytes(addr, len);
  }

  prepMemcpy(dst: number, src: number, len: number, flags = 0): { submit(): number } {
    if (dst % 64 || src % 64 || len % 64) throw new Error(`fake dma: unaligned ${dst} ${src} ${len}`);
    return {
      submit: () => {
        if (flags & 1) this.interrupts++;
        const cookie = ++this.#cookie;
        this.#pending.push({
          cookie,
          run: () => {
            this.#bytes(dst, len).set(this.#bytes(src, len));
            this.copies++;
          },
        });
        return cookie;
      },
    };
  }

  issuePending(): void {
    this.#queued.push(...this.#pending.splice(0));
    setImmediate(() => this.runIssued());
  }

  /** The engine's progress: runs every issued copy, in order, and wakes the waiters. */
  protected runIssued(): void {
    for (const d of this.#queued.splice(0)) {
      d.run();
      this.#done = d.cookie;
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The last cookie completed. */
  protected get done(): number {
    return this.#done;
  }

  async syncWait(cookie: number): Promise<string> {
    while (this.#done < cookie) await new Promise<void>((r) => this.#waiters.push(r));
    return 'complete';
  }
}

/** A listener on `server` at `port` and a connected pair (client on `client`). */
export async function pair(
  server: Scif,
  client: Scif,
  port: number,
): Promise<{ listener: ScifEndpoint; a: ScifEndpoint; b: ScifEndpoint }> {
  const listener = server.open();
  listener.bind(port);
  listener.listen(16);
  const a = client.open();
  const [, acc] = await Promise.all([a.connect({ node: server.nodeId, port }), listener.accept(1)]);
  return { listener, a, b: acc.ep };
}

/**
 * A {@link FakeDmaChannel} that also answers `txStatus` (`device_tx_status`); asking runs the
 * issued copies first, as an engine that is quicker than its poller.
 */
export class StatusFakeDmaChannel extends FakeDmaChannel {
  /** `txStatus` calls. */
  statusQueries = 0;

  txStatus(cookie: number): string {
    this.statusQueries++;
    this.runIssued();
    return this.done >= cookie ? 'complete' : 'in-progress';
  }
}
