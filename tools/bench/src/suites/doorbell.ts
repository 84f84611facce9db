/**
 * Suite `doorbell`: the host → card → host doorbell round trip on the x100 `worker` platform,
 * through the real hardware drivers: `@mic/mic-host` starts the card, whose code (in the card's
 * worker thread) probes `@mic/mic-card`; the host rings a card doorbell with its VOP device's
 * `sendIntr`, the card's VOP handler rings a host doorbell back, and the host's VOP handler rings
 * the card again. Both sides run their interrupts the x100 way: poll ~50 µs, then sleep with
 * `Atomics.waitAsync` (host, on its event loop) or in the card's event loop likewise.
 *
 * Baselines, measured in the same run, trials interleaved: a ping-pong between the main thread
 * and a plain worker, `Atomics.wait`/`notify` on both sides, and spin-then-wait (poll 50 µs, then
 * wait), as shared/bench/anchors.mjs measures them. Target (issue "The bus layer and the X100
 * card"): at most 1.5x the spin-then-wait round trip when the two threads sit on different CPUs.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { CosmBus } from '@mic/cosm-bus';
import { MbusBus } from '@mic/mic-bus';
import { MicHostDriver } from '@mic/mic-host';
import { ScifBus } from '@mic/scif-bus';
import { VopBus, type VopDevice } from '@mic/vop-bus';
import {
  type CardDebugHandle,
  type X100HostView,
  X100_CARD_NUM_DOORBELLS,
  createWorkerPlatform,
} from '@mic/x100';
import {
  type BenchRecord,
  type SuiteOptions,
  currentTid,
  median,
  pinPair,
  placement,
  recordTime,
  regimeOf,
} from '../common.js';
import { PINGPONG_BYTES, PingPong, type PingPongMode } from './doorbell-pingpong.js';

const now = (): number => performance.now();

/** One side's doorbell ops, as the loop uses them. */
interface LoopOps {
  /** Installs `handler` on host doorbell `db`. */
  listen(db: number, handler: () => void): void;
  /** Rings card doorbell `db`. */
  ring(db: number): void;
}

/** The host's side of a doorbell loop: every ring from the card is answered at once. */
class DoorbellLoop {
  readonly #ops: LoopOps;
  readonly #cardDb: number;
  #count = 0;
  #end = 0;
  #done: ((n: number) => void) | undefined;

  constructor(ops: LoopOps, hostDb: number, cardDb: number) {
    this.#ops = ops;
    this.#cardDb = cardDb;
    ops.listen(hostDb, () => {
      this.#count++;
      if ((this.#count & 15) !== 0 || now() < this.#end) ops.ring(this.#cardDb);
      else this.#done?.(this.#count);
    });
  }

  /** Round trips for about `ms`; resolves with the mean round trip in µs. */
  async run(ms: number): Promise<number> {
    this.#count = 0;
    const t0 = now();
    this.#end = t0 + ms;
    const n = await new Promise<number>((resolve) => {
      this.#done = resolve;
      this.#ops.ring(this.#cardDb);
    });
    return ((now() - t0) * 1e3) / n;
  }
}

/** The VOP device's hw ops as a loop side (what a VOP driver does: ack first, then work). */
function vopOps(vop: VopDevice): LoopOps {
  return {
    listen: (db, handler) => {
      vop.hwOps.requestIrq(
        (irq) => {
          vop.hwOps.ackInterrupt(irq);
          handler();
        },
        'bench doorbell',
        null,
        db,
      );
    },
    ring: (db) => vop.hwOps.sendIntr(db),
  };
}

/** The bare x100 host view as a loop side. */
function x100Ops(host: X100HostView): LoopOps {
  return {
    listen: (db, handler) => {
      host.requestIrq(db, () => {
        host.ackInterrupt();
        handler();
      });
    },
    ring: (db) => void host.sendIntr(db),
  };
}

export async function doorbellSuite(options: SuiteOptions): Promise<BenchRecord[]> {
  const trialMs = Math.max(50, Math.round(300 * options.scale));
  const warmMs = Math.max(20, Math.round(trialMs / 4));
  const mainTid = currentTid();

  // The card, booted by mic-host; its code probes mic-card in the card's worker.
  const platform = createWorkerPlatform({ cardModule: new URL('./doorbell-card.js', import.meta.url) });
  const buses = { mbus: new MbusBus(), scif: new ScifBus(), vop: new VopBus(), cosm: new CosmBus() };
  const driver = await MicHostDriver.init();
  // The baselines' plain worker.
  const sab = new SharedArrayBuffer(PINGPONG_BYTES);
  const worker = new Worker(new URL('./doorbell-pingpong.js', import.meta.url), {
    workerData: { role: 'pingpong', sab },
  });
  const hello = once(worker, 'message') as Promise<[{ tid: number }]>;
  const pingPong = new PingPong(sab);
  try {
    const mic = await driver.probe({ host: platform.host, clock: platform.clock, buses, resetSleepMs: 0 });
    await mic.cosmOps.start(mic.cosmDevice!.index, {
      firmware: 'mic/uos.img',
      ramdisk: null,
      cmdline: null,
      bootmode: 'linux',
    });
    const card: CardDebugHandle = await platform.boot!;
    const cardTid = (await card.call('tid')) as number;
    const vop = mic.vopDevice!;
    const hostDb = vop.hwOps.nextDb();
    const cardDb = (await card.call('echo', hostDb)) as number;
    const loop = new DoorbellLoop(vopOps(vop), hostDb, cardDb);
    // The same loop on the bare x100 views, on a host doorbell and a card doorbell nobody else uses.
    const rawHostDb = platform.host.numDoorbells - 1;
    const rawCardDb = X100_CARD_NUM_DOORBELLS - 1;
    await card.call('echoRaw', rawCardDb, rawHostDb);
    const raw = new DoorbellLoop(x100Ops(platform.host), rawHostDb, rawCardDb);
    const [{ tid: workerTid }] = await hello;

    const rtt: Record<'doorbell' | 'raw' | PingPongMode, number[]> = {
      doorbell: [],
      raw: [],
      wait: [],
      spinThenWait: [],
    };
    const place: Record<'doorbell' | 'baseline', string[]> = { doorbell: [], baseline: [] };
    for (let t = 0; t < options.trials; t++) {
      // Interleave the variants so drifts in machine load hit all of them alike.
      // Placement is sampled right after a warm-up and right after the timed run, when both
      // threads have just run (a sleeping thread's last CPU may be stale).
      const unpinCard = pinPair(options.pin, mainTid, cardTid);
      await loop.run(warmMs);
      place.doorbell.push(placement(mainTid, cardTid));
      rtt.doorbell.push(await loop.run(trialMs));
      place.doorbell.push(placement(mainTid, cardTid));
      await raw.run(warmMs);
      rtt.raw.push(await raw.run(trialMs));
      unpinCard();
      for (const mode of ['wait', 'spinThenWait'] as const) {
        const unpin = pinPair(options.pin, mainTid, workerTid);
        pingPong.setMode(mode);
        pingPong.run(mode, warmMs);
        place.baseline.push(placement(mainTid, workerTid));
        rtt[mode].push(pingPong.run(mode, trialMs));
        place.baseline.push(placement(mainTid, workerTid));
        unpin();
      }
      options.progress(
        `doorbell trial ${t + 1}/${options.trials}: VOP doorbell ${fmt(rtt.doorbell.at(-1)!)}, x100 views ${fmt(rtt.raw.at(-1)!)}, Atomics wait/notify ${fmt(rtt.wait.at(-1)!)}, spin-then-wait ${fmt(rtt.spinThenWait.at(-1)!)} µs per round trip`,
      );
    }
    const regime = regimeOf([...place.doorbell, ...place.baseline]);
    const value = median(rtt.doorbell);
    return [
      recordTime(
        'doorbell',
        'vop-doorbell-round-trip',
        'µs',
        value,
        { name: 'spin-then-wait-ping-pong', value: median(rtt.spinThenWait) },
        1.5,
        regime,
        { onlyIn: 'different-cpus' },
      ),
      recordTime(
        'doorbell',
        'vop-doorbell-round-trip',
        'µs',
        value,
        { name: 'atomics-wait-notify-ping-pong', value: median(rtt.wait) },
        null,
        regime,
      ),
      recordTime(
        'doorbell',
        'x100-doorbell-round-trip',
        'µs',
        median(rtt.raw),
        { name: 'spin-then-wait-ping-pong', value: median(rtt.spinThenWait) },
        null,
        regime,
      ),
    ];
  } finally {
    pingPong.stop();
    await driver.exit();
    await platform.close();
    await worker.terminate();
  }
}

function fmt(us: number): string {
  return us >= 100 ? us.toFixed(0) : us >= 10 ? us.toFixed(1) : us.toFixed(2);
}
