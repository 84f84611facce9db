/**
 * A virtio loopback over one SharedArrayBuffer: a driver ({@link Virtqueue}) in a worker thread
 * and a device ({@link Vringh}) in this thread exchange requests through a split ring, kicks and
 * interrupts being {@link EventWord}s with virtio's own notification suppression on top (the
 * device asks for kicks only before it sleeps, the driver asks for interrupts only before it
 * sleeps). Each request is one readable buffer; the device answers in one writable buffer of the
 * same size with every byte inverted, so the driver can check every byte it gets back.
 *
 * This is the smallest complete virtio transport of the stack, used by the demo, the `ring`
 * benchmark and the cross-thread tests; it is also usable on its own as a typed request/response
 * channel between threads.
 *
 * Shared memory layout: `[0, 8)` kick word, `[8, 16)` interrupt word, `[16, 20)` stop flag,
 * `[4096, …)` the ring (align 4096), then one 64-byte aligned slot per descriptor pair holding
 * the request and the response buffer.
 */
import { Worker } from 'node:worker_threads';
import { MicError } from '@mic/errors';
import { BufferMemory, CheckedView } from '@mic/memory';
import { EventWord, EVENT_WORD_BYTES, DEFAULT_SPIN_NS } from '@mic/notify';
import {
  Virtqueue,
  Vringh,
  VringhIov,
  alignUp,
  checkQueueSize,
  vringLayout,
  type VirtqChain,
} from '@mic/virtio';

/** Geometry of a loopback region. */
export interface LoopbackConfig {
  /** Queue size (power of two, at least 2). Each request takes two descriptors, so `num / 2` fit. */
  readonly num: number;
  /** Bytes per request and per response: a multiple of 4 from 4 to 1 MiB. */
  readonly payload: number;
  /** Negotiate VIRTIO_RING_F_EVENT_IDX (default true). */
  readonly eventIdx?: boolean;
}

/** Offsets of a loopback region. */
export interface LoopbackLayout {
  readonly size: number;
  readonly ringBase: number;
  readonly dataBase: number;
  readonly slotSize: number;
  /** Requests that can be in flight (each takes two descriptors). */
  readonly slots: number;
}

const KICK = 0;
const IRQ = EVENT_WORD_BYTES;
const STOP = 2 * EVENT_WORD_BYTES;
const RING_BASE = 4096;
const RING_ALIGN = 4096;
/**
 * Both sides publish their index once per this many chains: the driver `avail.idx` while it
 * writes a batch, so the device starts on the first requests while later ones are written (Linux
 * publishes on every add, `virtqueue_add_split`, and kicks once per batch); the device `used.idx`,
 * so the driver collects early responses while later ones are worked on. Neither stores per
 * chain.
 */
const PUBLISH_EVERY = 8;

function checkConfig(c: LoopbackConfig): void {
  checkQueueSize(c.num);
  if (c.num < 2) throw new MicError('EINVAL', `loopback queue size ${c.num} is below 2`);
  if (!Number.isInteger(c.payload) || c.payload < 4 || c.payload > 1 << 20 || c.payload % 4 !== 0) {
    throw new MicError(
      'EINVAL',
      `loopback payload ${String(c.payload)} is not a multiple of 4 from 4 to 1 MiB`,
    );
  }
}

/** Computes where everything goes in a loopback region. */
export function loopbackLayout(c: LoopbackConfig): LoopbackLayout {
  checkConfig(c);
  const ring = vringLayout(c.num, RING_ALIGN, RING_BASE);
  const dataBase = alignUp(ring.desc + ring.size, 64);
  const slotSize = alignUp(2 * c.payload, 64);
  const slots = c.num / 2;
  return { size: dataBase + slots * slotSize, ringBase: RING_BASE, dataBase, slotSize, slots };
}

function ringOf(mem: BufferMemory, c: LoopbackConfig) {
  const l = vringLayout(c.num, RING_ALIGN, RING_BASE);
  return { num: c.num, mem, desc: l.desc, avail: l.avail, used: l.used, eventIdx: c.eventIdx ?? true };
}

/** Fills `dst` with the pattern of request `seq`. */
export function loopbackPattern(seq: number, dst: Uint32Array): void {
  let x = (seq * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < dst.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    dst[i] = x >>> 0;
  }
}

/** Options of the driver half. */
export interface LoopbackDriverOptions {
  /** Requests to send. */
  readonly requests: number;
  /** Requests posted per kick; the driver then collects them all before posting more. */
  readonly batch: number;
  /** Fill each request with its own pattern and check every byte of every response. */
  readonly verify: boolean;
  /** Poll this long before sleeping (ns). */
  readonly spinNs?: number;
  /** Requests sent first and not timed or counted (to let the JIT warm up); default 0. */
  readonly warmup?: number;
}

/** What the driver half measured. */
export interface LoopbackDriverResult {
  readonly requests: number;
  /** Payload bytes sent (responses carry as many back). */
  readonly bytes: number;
  /** Responses whose bytes or length were not the inverted request. */
  readonly mismatches: number;
  readonly elapsedMs: number;
  /** Kicks the device asked for. */
  readonly kicks: number;
  /** Times the driver went to sleep waiting for an interrupt. */
  readonly sleeps: number;
}

/**
 * Runs the driver half synchronously (in a worker: it blocks with `Atomics.wait`). Sets the stop
 * flag and kicks the device when done.
 */
export function runLoopbackDriver(
  sab: SharedArrayBuffer,
  config: LoopbackConfig,
  options: LoopbackDriverOptions,
): LoopbackDriverResult {
  const layout = loopbackLayout(config);
  const mem = new BufferMemory(sab);
  const vq = new Virtqueue<number>(ringOf(mem, config));
  const kick = new EventWord(sab, KICK);
  const irq = new EventWord(sab, IRQ);
  const stop = new Int32Array(sab, STOP, 1);
  const { payload } = config;
  const batch = Math.max(1, Math.min(options.batch, layout.slots));
  const spinNs = options.spinNs ?? DEFAULT_SPIN_NS;
  const out = new Uint32Array(payload / 4);
  const outBytes = new Uint8Array(out.buffer);
  const back = new Uint32Array(payload / 4);
  const backBytes = new Uint8Array(back.buffer);
  const seqOf = new Float64Array(layout.slots);
  // The request and response slots, checked once: the per-request copies compare their range
  // against this view only.
  const data = new CheckedView(mem, layout.dataBase, layout.slots * layout.slotSize);
  // One fixed request/response buffer pair per slot, described once.
  const chains: VirtqChain<number>[] = [];
  for (let slot = 0; slot < layout.slots; slot++) {
    const addr = layout.dataBase + slot * layout.slotSize;
    chains.push({ out: [{ addr, len: payload }], in: [{ addr: addr + payload, len: payload }], token: slot });
  }
  const group: VirtqChain<number>[] = [];
  const free: number[] = [];
  for (let s = layout.slots - 1; s >= 0; s--) free.push(s);
  let sent = 0;
  let received = 0;
  let mismatches = 0;
  let kicks = 0;
  let sleeps = 0;
  vq.disableCb();
  let cbOn = false;
  const more = (): boolean => vq.moreUsed();
  const beforeSleep = (): void => {
    sleeps++;
    cbOn = true;
    vq.enableCb();
  };
  const warmup = options.warmup ?? 0;
  const total = options.requests + warmup;
  let t0 = performance.now();
  // Every batch is collected before the next is posted, so nothing is in flight here.
  while (received < total) {
    if (warmup > 0 && received === warmup) t0 = performance.now();
    // A batch ends at the warm-up boundary, so timing starts with nothing in flight.
    const end = sent < warmup ? warmup : total;
    let posted = 0;
    while (sent < end && posted < batch && free.length > 0) {
      const slot = free.pop()!;
      if (options.verify) loopbackPattern(sent, out);
      data.write(slot * layout.slotSize, outBytes);
      group.push(chains[slot]!);
      seqOf[slot] = sent++;
      posted++;
      if (group.length === PUBLISH_EVERY) {
        vq.addMany(group);
        group.length = 0;
      }
    }
    if (group.length > 0) {
      vq.addMany(group);
      group.length = 0;
    }
    // One kick decision for the whole batch (virtqueue_kick_prepare after the adds).
    if (posted > 0 && vq.kickPrepare()) {
      kicks++;
      kick.signal();
    }
    // Collect this batch. Poll with interrupts off; ask for one only before sleeping.
    while (vq.inFlight > 0) {
      const u = vq.getBuf();
      if (u === null) {
        if (vq.broken) throw vq.broken;
        irq.waitSync(more, { spinNs, beforeSleep });
        if (cbOn) {
          vq.disableCb();
          cbOn = false;
        }
        continue;
      }
      const slot = u.token;
      data.read(slot * layout.slotSize + payload, backBytes);
      if (options.verify) {
        loopbackPattern(seqOf[slot]!, out);
        let ok = u.len === payload;
        for (let i = 0; ok && i < out.length; i++) ok = back[i] === ~out[i]! >>> 0;
        if (!ok) mismatches++;
      } else if (u.len !== payload) {
        mismatches++;
      }
      free.push(slot);
      received++;
    }
  }
  const elapsedMs = performance.now() - t0;
  Atomics.store(stop, 0, 1);
  kick.signal();
  const counted = received - warmup;
  return { requests: counted, bytes: counted * payload, mismatches, elapsedMs, kicks, sleeps };
}

/** What the device half counted. */
export interface LoopbackDeviceStats {
  readonly chains: number;
  readonly badChains: number;
  readonly interrupts: number;
  readonly sleeps: number;
}

/**
 * Runs the device half on this thread's event loop until the driver sets the stop flag or
 * `signal` aborts. Polls for `spinNs` before sleeping with `Atomics.waitAsync`.
 */
export async function runLoopbackDevice(
  sab: SharedArrayBuffer,
  config: LoopbackConfig,
  options: { spinNs?: number; signal?: AbortSignal } = {},
): Promise<LoopbackDeviceStats> {
  loopbackLayout(config);
  const mem = new BufferMemory(sab);
  const vrh = new Vringh(ringOf(mem, config));
  const kick = new EventWord(sab, KICK);
  const irq = new EventWord(sab, IRQ);
  const stop = new Int32Array(sab, STOP, 1);
  const buf = new Uint32Array(config.payload / 4);
  const bytes = new Uint8Array(buf.buffer);
  const riov = new VringhIov();
  const wiov = new VringhIov();
  const spinNs = options.spinNs ?? DEFAULT_SPIN_NS;
  // The heads and lengths of one publication, as views of every length made once.
  const heads = new Uint16Array(PUBLISH_EVERY);
  const lens = new Uint32Array(PUBLISH_EVERY);
  const headsOf = Array.from({ length: PUBLISH_EVERY + 1 }, (_, k) => heads.subarray(0, k));
  const lensOf = Array.from({ length: PUBLISH_EVERY + 1 }, (_, k) => lens.subarray(0, k));
  let chains = 0;
  let interrupts = 0;
  let sleeps = 0;
  const stopped = (): boolean => Atomics.load(stop, 0) !== 0 || options.signal?.aborted === true;
  const ready = (): boolean => vrh.pending() > 0 || stopped();
  let kicksOn = false;
  const beforeSleep = (): void => {
    sleeps++;
    kicksOn = true;
    vrh.notifyEnable();
  };
  vrh.notifyDisable();
  for (;;) {
    let done = 0;
    for (;;) {
      const r = vrh.getDesc(riov, wiov);
      if (r.status === 'empty') break;
      if (r.status === 'broken') throw r.error;
      if (r.status === 'bad-chain') continue;
      const n = vrh.pull(riov, bytes);
      const words = n >>> 2;
      for (let i = 0; i < words; i++) buf[i] = ~buf[i]!;
      heads[done] = r.head;
      lens[done] = vrh.push(wiov, n === bytes.length ? bytes : bytes.subarray(0, n));
      // One used.idx store per PUBLISH_EVERY chains.
      if (++done === PUBLISH_EVERY) break;
    }
    if (done > 0) vrh.completeMany(headsOf[done]!, lensOf[done]!);
    chains += done;
    if (done > 0 && vrh.needNotify()) {
      interrupts++;
      irq.signal();
    }
    if (stopped()) break;
    if (done === 0) {
      // Poll with kicks off, without a promise while work comes within spinNs; ask for a kick
      // only before sleeping.
      if (!kick.poll(ready, spinNs)) await kick.waitAsync(ready, { spinNs: 0, beforeSleep });
      if (kicksOn) {
        vrh.notifyDisable();
        kicksOn = false;
      }
    }
  }
  return { chains, badChains: vrh.badChains, interrupts, sleeps };
}

/** Options of {@link runLoopback}. */
export interface LoopbackOptions extends LoopbackConfig, LoopbackDriverOptions {}

/** Results of {@link runLoopback}. */
export interface LoopbackResult {
  readonly driver: LoopbackDriverResult;
  readonly device: LoopbackDeviceStats;
  /** Requests per second seen by the driver. */
  readonly rate: number;
}

/**
 * Starts the driver in a worker thread and serves it from this thread until it has sent
 * `requests` requests. Rejects when the worker fails.
 */
export async function runLoopback(options: LoopbackOptions): Promise<LoopbackResult> {
  const config: LoopbackConfig = {
    num: options.num,
    payload: options.payload,
    eventIdx: options.eventIdx ?? true,
  };
  if (!Number.isSafeInteger(options.requests) || options.requests < 1) {
    throw new MicError('EINVAL', `request count ${String(options.requests)} is not a positive integer`);
  }
  const layout = loopbackLayout(config);
  const sab = new SharedArrayBuffer(layout.size);
  const driverOptions: LoopbackDriverOptions = {
    requests: options.requests,
    batch: options.batch,
    verify: options.verify,
    ...(options.spinNs === undefined ? {} : { spinNs: options.spinNs }),
  };
  const worker = new Worker(new URL('../dist/loopback-worker.js', import.meta.url), {
    workerData: { sab, config, options: driverOptions },
  });
  const ac = new AbortController();
  const driverDone = new Promise<LoopbackDriverResult>((resolve, reject) => {
    worker.once('message', (m: LoopbackDriverResult) => resolve(m));
    worker.once('error', (err) =>
      reject(new MicError('EIO', `loopback driver failed: ${err.message}`, { cause: err })),
    );
    worker.once('exit', (code) => reject(new MicError('EIO', `loopback driver exited with code ${code}`)));
  });
  driverDone.catch(() => {
    ac.abort();
    Atomics.store(new Int32Array(sab, STOP, 1), 0, 1);
    new EventWord(sab, KICK).signal();
  });
  try {
    const spin = options.spinNs === undefined ? {} : { spinNs: options.spinNs };
    const device = await runLoopbackDevice(sab, config, { ...spin, signal: ac.signal });
    const driver = await driverDone;
    return { driver, device, rate: driver.requests / (driver.elapsedMs / 1000) };
  } finally {
    await worker.terminate();
  }
}
