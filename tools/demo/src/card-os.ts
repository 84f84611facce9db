/**
 * The card program (what a card OS does at boot, then its userspace): the card's buses, a virtio
 * bus with the stock drivers of `@mic/virtio-drivers` on it (virtio-blk, virtio-console,
 * virtio-net), `@mic/vop-card` on the VOP bus, then `@mic/mic-card` probed on the card view. A
 * `NetResponder` answers ARP and ICMP echo for the card's IPv4 address on every NIC it binds
 * (mpssd's scheme: 172.31.<id+1>.1). The host drives the card through debug methods (the card's
 * debug channel, a serial line or JTAG on real hardware): write a console line, read console
 * input, write, read and flush the disk, send and capture frames, short measured bursts.
 *
 * It runs in the card's worker thread on the x100 `worker` platform ({@link cardOsModule} is the
 * built module) and in the host's thread on `inProcess` ({@link cardMain}).
 */
import { readFileSync } from 'node:fs';
import { MicError } from '@mic/errors';
import { MbusBus } from '@mic/mic-bus';
import { MicCardDriver } from '@mic/mic-card';
import { ScifBus } from '@mic/scif-bus';
import { VirtioBus } from '@mic/virtio';
import {
  NetResponder,
  type VirtioBlk,
  VirtioBlkDriver,
  type VirtioConsole,
  VirtioConsoleDriver,
  type VirtioNet,
  VirtioNetDriver,
  parseMac,
} from '@mic/virtio-drivers';
import { VopBus } from '@mic/vop-bus';
import { VopCardDriver } from '@mic/vop-card';
import type { CardDebugMethods, X100CardView } from '@mic/x100';
import { burstOffsets, pattern, sha256 } from './pattern.js';

/** What the host gives the card program at boot (`cardData`). */
export interface CardOsData {
  /** The card's IPv4 address the responder answers for (default {@link CARD_DEFAULT_IPV4}). */
  readonly ipv4?: string;
}

/** mpssd's card address for mic0: 172.31.<id+1>.1. */
export const CARD_DEFAULT_IPV4 = '172.31.1.1';

/** Console input kept for {@link cardMain}'s `consoleRead` at most (more is dropped, counted). */
const CONSOLE_INBOX_LIMIT = 1 << 20;
/** Frames kept while capturing at most (more are dropped, counted). */
const CAPTURE_LIMIT = 4096;
/** An EtherType of the local experimental range (IEEE 802): burst frames nobody else parses. */
export const ETH_P_BURST = 0x88b5;

/** What `blkBurst` runs: `count` requests of `size` bytes, `depth` at once. */
export interface BlkBurst {
  readonly op: 'read' | 'write';
  /** Bytes per request (a multiple of 512). */
  readonly size: number;
  readonly depth: number;
  readonly count: number;
  /** Random offsets (aligned to `size`) instead of sequential ones. */
  readonly random?: boolean;
  /** Bytes of the disk the burst covers from sector 0 (default: the whole disk). */
  readonly span?: number;
}

/** The result of a burst: elapsed milliseconds on the card and bytes moved. */
export interface BurstResult {
  readonly ms: number;
  readonly bytes: number;
}

/** A summary of the bound devices, as `devices` returns it. */
export interface CardDeviceSummary {
  readonly block: {
    readonly capacity: string;
    readonly readOnly: boolean;
    readonly canFlush: boolean;
    readonly queueSize: number;
  } | null;
  readonly console: { readonly rxPosted: number } | null;
  readonly net: { readonly mac: string; readonly ipv4: string; readonly linkUp: boolean } | null;
}

/** Re-checks registered conditions whenever something they look at changed. */
class Conditions {
  readonly #waiting = new Set<() => boolean>();

  /** Resolves once `ready()` is true; ETIMEDOUT after `timeoutMs`. */
  until(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (!ready()) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      const timer = setTimeout(() => {
        this.#waiting.delete(check);
        reject(new MicError('ETIMEDOUT', `card: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiting.add(check);
    });
  }

  changed(): void {
    for (const check of this.#waiting) if (check()) this.#waiting.delete(check);
  }
}

/** The card program's entry (the `cardMain` of the x100 platforms). */
export async function cardMain(card: X100CardView, data?: unknown): Promise<CardDebugMethods> {
  const ipv4 = (data as CardOsData | undefined)?.ipv4 ?? CARD_DEFAULT_IPV4;
  const log = card.logger;
  const buses = { mbus: new MbusBus(), scif: new ScifBus(), vop: new VopBus() };
  const virtioBus = new VirtioBus({ logger: log });
  const blkDriver = new VirtioBlkDriver({ logger: log });
  const conDriver = new VirtioConsoleDriver({ logger: log });
  const netDriver = new VirtioNetDriver({ logger: log });
  const cond = new Conditions();

  // Console: input is kept for the host to read back, or echoed (for the latency benchmark).
  const inbox: Buffer[] = [];
  let inboxBytes = 0;
  let inboxDropped = 0;
  let echo = false;
  conDriver.on('add', (con) => {
    con.on('error', (err: unknown) => log.warn('card: console stream error', { err }));
    con.on('data', (b: Buffer) => {
      if (echo) {
        con.write(b);
        return;
      }
      if (inboxBytes + b.length > CONSOLE_INBOX_LIMIT) {
        inboxDropped += b.length;
        return;
      }
      inbox.push(b);
      inboxBytes += b.length;
      cond.changed();
    });
    cond.changed();
  });

  // Net: the responder answers ARP and ping; frames can be captured for the host to compare.
  const responders = new Map<VirtioNet, NetResponder>();
  let capturing = false;
  const captured: Uint8Array[] = [];
  let captureDropped = 0;
  let rxWaiters = 0;
  netDriver.on('add', (nic) => {
    const r = new NetResponder(nic, { ipv4, logger: log });
    r.start();
    responders.set(nic, r);
    nic.on('frame', (frame) => {
      if (capturing) {
        if (captured.length < CAPTURE_LIMIT) captured.push(frame);
        else captureDropped++;
      }
      if (capturing || rxWaiters > 0) cond.changed();
    });
    cond.changed();
  });
  netDriver.on('remove', (nic) => {
    responders.get(nic)?.stop();
    responders.delete(nic);
  });
  blkDriver.on('add', () => cond.changed());

  await virtioBus.registerDriver(blkDriver);
  await virtioBus.registerDriver(conDriver);
  await virtioBus.registerDriver(netDriver);
  const vopCard = new VopCardDriver({ virtioBus, logger: log, clock: card.clock });
  await buses.vop.registerDriver(vopCard);
  const driver = await MicCardDriver.init({ logger: log });
  const mic = await driver.probe({ card, buses });

  const disk = (): VirtioBlk => {
    const d = blkDriver.devices()[0];
    if (!d) throw new MicError('ENODEV', 'card: no virtio-blk device is bound');
    return d;
  };
  const con = (): VirtioConsole => {
    const c = conDriver.devices()[0];
    if (!c) throw new MicError('ENODEV', 'card: no virtio-console device is bound');
    return c;
  };
  const nic = (): VirtioNet => {
    const n = netDriver.devices()[0];
    if (!n) throw new MicError('ENODEV', 'card: no virtio-net device is bound');
    return n;
  };
  const devices = (): CardDeviceSummary => {
    const b = blkDriver.devices()[0];
    const c = conDriver.devices()[0];
    const n = netDriver.devices()[0];
    return {
      block: b
        ? {
            capacity: b.capacity.toString(),
            readOnly: b.readOnly,
            canFlush: b.canFlush,
            queueSize: b.queueSize,
          }
        : null,
      console: c ? { rxPosted: c.rxPosted } : null,
      net: n ? { mac: n.macString, ipv4, linkUp: n.linkUp } : null,
    };
  };
  const sectorOf = (v: unknown): bigint => {
    if (typeof v === 'bigint') return v;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    throw new MicError('EINVAL', `card: sector ${String(v)} is not a non-negative integer`);
  };
  const consoleWrite = (bytes: Uint8Array | string): Promise<number> => {
    const c = con();
    const buf = typeof bytes === 'string' ? Buffer.from(bytes) : Buffer.from(bytes);
    return new Promise((resolve, reject) => c.write(buf, (err) => (err ? reject(err) : resolve(buf.length))));
  };

  const methods = {
    /** The kernel thread id of the card's thread (benchmarks report where threads ran). */
    tid: (): number => {
      try {
        return Number(readFileSync('/proc/thread-self/stat', 'utf8').split(' ', 1)[0]);
      } catch {
        return -1;
      }
    },
    devices,
    /** Waits until a device of each kind named is bound (`block`, `console`, `net`). */
    waitDevices: async (kinds: readonly ('block' | 'console' | 'net')[], timeoutMs = 60_000) => {
      await cond.until(
        () => kinds.every((k) => devices()[k] !== null),
        timeoutMs,
        `devices ${kinds.join(', ')}`,
      );
      return devices();
    },
    /** Waits until no device of the kind is bound (after a hot-unplug). */
    waitGone: async (kind: 'block' | 'console' | 'net', timeoutMs = 60_000) => {
      const drv = { block: blkDriver, console: conDriver, net: netDriver }[kind];
      const gone = (): boolean => drv.devices().length === 0;
      const onRemove = (): void => cond.changed();
      drv.on('remove', onRemove);
      try {
        await cond.until(gone, timeoutMs, `the ${kind} device to go`);
      } finally {
        drv.off('remove', onRemove);
      }
    },

    // Console
    /** Writes to the console (port 0); resolves with the bytes written once the host took them. */
    consoleWrite,
    /** Console input received so far (at least `minBytes`, waiting up to `timeoutMs`); consumed. */
    consoleRead: async (minBytes = 1, timeoutMs = 60_000): Promise<Uint8Array> => {
      await cond.until(() => inboxBytes >= minBytes, timeoutMs, `${minBytes} bytes of console input`);
      const all = Buffer.concat(inbox.splice(0));
      inboxBytes = 0;
      return new Uint8Array(all.buffer, all.byteOffset, all.length);
    },
    /** Echo console input back (true) or keep it for `consoleRead` (false). */
    consoleEcho: (on: boolean): boolean => {
      echo = on;
      return echo;
    },
    consoleStats: () => ({ ...con().counters, inboxBytes, inboxDropped }),
    /** Writes `total` bytes to the console in `chunk`-byte writes; resolves once the host took them. */
    consoleBurst: async (total: number, chunk = 4096): Promise<BurstResult> => {
      const c = con();
      const buf = Buffer.alloc(chunk, 0x2e);
      const t0 = performance.now();
      let sent = 0;
      let failed: Error | null = null;
      let last: Promise<void> = Promise.resolve();
      while (sent < total) {
        const n = Math.min(chunk, total - sent);
        sent += n;
        const piece = n === chunk ? buf : buf.subarray(0, n);
        let more = true;
        last = new Promise<void>((resolve) => {
          more = c.write(piece, (e) => {
            failed ??= e ?? null;
            resolve();
          });
        });
        if (!more) await onceDrain(c);
      }
      await last;
      if (failed) throw failed;
      return { ms: performance.now() - t0, bytes: total };
    },

    // Block
    blkInfo: () => {
      const d = disk();
      return {
        capacity: d.capacity.toString(),
        readOnly: d.readOnly,
        canFlush: d.canFlush,
        queueSize: d.queueSize,
        limits: d.limits,
        counters: { ...d.counters },
      };
    },
    blkWrite: async (sector: number | bigint, bytes: Uint8Array): Promise<number> => {
      await disk().write(sectorOf(sector), bytes);
      return bytes.length;
    },
    blkRead: (sector: number | bigint, count: number): Promise<Uint8Array> =>
      disk().read(sectorOf(sector), count),
    blkFlush: async (): Promise<boolean> => {
      await disk().flush();
      return disk().canFlush;
    },
    blkGetId: (): Promise<string> => disk().getId(),
    /** Writes `pattern(bytes, seed)` at `sector`; @returns its sha256 */
    blkWritePattern: async (sector: number | bigint, bytes: number, seed: number): Promise<string> => {
      const p = pattern(bytes, seed);
      await disk().write(sectorOf(sector), p);
      return sha256(p);
    },
    /** Reads `bytes` at `sector`; @returns their sha256 */
    blkSha: async (sector: number | bigint, bytes: number): Promise<string> =>
      sha256(await disk().read(sectorOf(sector), bytes / 512)),
    /** A measured burst of reads or writes (see {@link BlkBurst}). */
    blkBurst: (burst: BlkBurst): Promise<BurstResult> => blkBurst(disk(), burst),

    // Net
    netInfo: () => {
      const n = nic();
      return {
        mac: n.macString,
        ipv4,
        linkUp: n.linkUp,
        counters: { ...n.counters },
        responder: { ...responders.get(n)!.counters },
        captureDropped,
      };
    },
    /** Sends each frame in order; resolves once all are in the transmit ring. */
    netSend: async (frames: readonly Uint8Array[]): Promise<number> => {
      const n = nic();
      for (const f of frames) await n.send(f);
      return frames.length;
    },
    /** Starts (clearing what was kept) or stops keeping received frames. */
    netCapture: (on: boolean): boolean => {
      capturing = on;
      captured.length = 0;
      captureDropped = 0;
      return capturing;
    },
    /** The frames captured so far, at least `count` (waiting up to `timeoutMs`); consumed. */
    netTake: async (count: number, timeoutMs = 60_000): Promise<Uint8Array[]> => {
      await cond.until(() => captured.length >= count, timeoutMs, `${count} captured frames`);
      return captured.splice(0);
    },
    /** Waits until the NIC received `rxPackets` frames in all (its counter). */
    netWaitRx: async (rxPackets: number, timeoutMs = 60_000): Promise<number> => {
      const n = nic();
      rxWaiters++;
      try {
        await cond.until(() => n.counters.rxPackets >= rxPackets, timeoutMs, `${rxPackets} frames received`);
      } finally {
        rxWaiters--;
      }
      return n.counters.rxPackets;
    },
    /**
     * Sends `count` frames of `size` bytes to `dst` (EtherType {@link ETH_P_BURST}, the frame
     * number in bytes 14–17); resolves once the last is in the transmit ring.
     */
    netBurst: async (dst: string | Uint8Array, count: number, size: number): Promise<BurstResult> => {
      const n = nic();
      const frame = new Uint8Array(size);
      frame.set(parseMac(dst)!, 0);
      frame.set(n.mac, 6);
      frame[12] = ETH_P_BURST >> 8;
      frame[13] = ETH_P_BURST & 0xff;
      const dv = new DataView(frame.buffer);
      const t0 = performance.now();
      let pending: Promise<void>[] = [];
      for (let i = 0; i < count; i++) {
        dv.setUint32(14, i);
        pending.push(n.send(frame));
        if (pending.length >= 64) {
          await Promise.all(pending);
          pending = [];
        }
      }
      await Promise.all(pending);
      return { ms: performance.now() - t0, bytes: count * size };
    },

    // Lifecycle
    held: () => ({ irqs: mic.irqsInUse, buffers: mic.dmaOps.liveBuffers }),
    /** Unbinds everything (mic-card's remove): @returns what is still bound */
    remove: async () => {
      await driver.exit();
      return { vop: vopCard.devices().length, ...devices() };
    },
  };
  return methods;
}

function onceDrain(s: VirtioConsole): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      s.off('error', fail);
      resolve();
    };
    const fail = (err: Error): void => {
      s.off('drain', done);
      reject(err);
    };
    s.once('drain', done);
    s.once('error', fail);
  });
}

/** `count` requests of `size` bytes with `depth` in flight, on buffers allocated once. */
async function blkBurst(d: VirtioBlk, b: BlkBurst): Promise<BurstResult> {
  const { op, size, depth, count } = b;
  if (!Number.isInteger(size) || size <= 0 || size % 512 !== 0) {
    throw new MicError(
      'EINVAL',
      `card: burst request size ${String(size)} is not a positive multiple of 512`,
    );
  }
  if (!Number.isInteger(depth) || depth < 1 || !Number.isInteger(count) || count < 1) {
    throw new MicError(
      'EINVAL',
      `card: burst depth ${String(depth)} or count ${String(count)} is not a positive integer`,
    );
  }
  const capacityBytes = Number(d.capacity) * 512;
  const span = Math.min(b.span ?? capacityBytes, capacityBytes);
  if (span < size)
    throw new MicError('EINVAL', `card: a burst of ${size}-byte requests does not fit in ${span} bytes`);
  const nextOffset = burstOffsets(size, span, b.random ?? false);
  // The disk's own buffers (DMA memory): the device reads and writes them in place, no copy on the card.
  const bufs = Array.from({ length: depth }, () => d.allocBuffer(size).fill(0x5a));
  let issued = 0;
  const lane = async (buf: Uint8Array): Promise<void> => {
    while (issued < count) {
      issued++;
      const sector = nextOffset() / 512;
      if (op === 'read') await d.readInto(sector, buf);
      else await d.write(sector, buf);
    }
  };
  const t0 = performance.now();
  // Every lane settles before the buffers go back (a failed lane leaves the others running).
  const lanes = await Promise.allSettled(bufs.map(lane));
  const ms = performance.now() - t0;
  for (const buf of bufs) d.freeBuffer(buf);
  for (const l of lanes) if (l.status === 'rejected') throw l.reason;
  return { ms, bytes: count * size };
}
