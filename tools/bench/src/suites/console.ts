/**
 * Suite `console`: the virtio-console echo round trip on the x100 `worker` platform. The card
 * program of `@mic/demo` runs `@mic/virtio-drivers`' `VirtioConsole` in the card's worker with
 * echo on; the host serves the console over VOP with `@mic/virtio-backends`' `ConsoleBackend`
 * (its log file in a temporary directory). One round trip: the host types one byte
 * (`ConsoleBackend.write`: into a card receive buffer, vring 0), the card writes it back (a
 * transmit chain, vring 1), the host's output listener gets it. Mean round trip over a timed loop.
 *
 * Baselines, measured in the same run, trial by trial: the main thread ↔ plain worker ping-pong of
 * the `doorbell` suite, `Atomics.wait`/`notify` on both sides and spin-then-wait. No target.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CardRig, serveCard } from '@mic/demo';
import type { ConsoleBackend } from '@mic/virtio-backends';
import {
  type BenchRecord,
  type SuiteOptions,
  currentTid,
  median,
  pinPair,
  placement,
  push,
  recordTime,
  regimeOf,
} from '../common.js';
import { PINGPONG_BYTES, PingPong } from './doorbell-pingpong.js';

/** Echo round trips for about `ms`; resolves with the mean round trip in µs. */
function echoLoop(con: ConsoleBackend, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const end = t0 + ms;
    let n = 0;
    let seq = 0;
    const timer = setTimeout(() => {
      off();
      reject(new Error(`console echo stalled after ${n} round trips`));
    }, ms + 30_000);
    const send = (): void => con.write(Uint8Array.of(0x41 + (seq++ % 26)));
    const off = con.onOutput((bytes) => {
      n += bytes.length;
      if (n < seq) return;
      if (performance.now() < end) {
        send();
        return;
      }
      off();
      clearTimeout(timer);
      resolve(((performance.now() - t0) * 1e3) / n);
    });
    send();
  });
}

export async function consoleSuite(options: SuiteOptions): Promise<BenchRecord[]> {
  const trialMs = Math.max(50, Math.round(300 * options.scale));
  const warmMs = Math.max(20, Math.round(trialMs / 4));
  const dir = await mkdtemp(join(tmpdir(), 'mic-bench-console-'));
  const sab = new SharedArrayBuffer(PINGPONG_BYTES);
  const worker = new Worker(new URL('./doorbell-pingpong.js', import.meta.url), {
    workerData: { role: 'pingpong', sab },
  });
  const hello = once(worker, 'message') as Promise<[{ tid: number }]>;
  const pingPong = new PingPong(sab);
  let rig: CardRig | null = null;
  try {
    rig = await CardRig.boot({ platform: 'worker' });
    const devices = await serveCard(rig.control, { console: { logPath: join(dir, 'console.log') } });
    const con = devices.console!;
    await con.waitDriverOk();
    await rig.call('waitDevices', ['console']);
    await rig.call('consoleEcho', true);
    const [{ tid: workerTid }] = await hello;
    const mainTid = currentTid();
    const cardTid = await rig.call<number>('tid');
    const rtt = new Map<string, number[]>();
    const place: string[] = [];
    for (let t = 0; t < options.trials; t++) {
      const unpinCard = pinPair(options.pin, mainTid, cardTid);
      await echoLoop(con.backend, warmMs);
      place.push(placement(mainTid, cardTid));
      push(rtt, 'echo', await echoLoop(con.backend, trialMs));
      place.push(placement(mainTid, cardTid));
      unpinCard();
      for (const mode of ['wait', 'spinThenWait'] as const) {
        const unpin = pinPair(options.pin, mainTid, workerTid);
        pingPong.setMode(mode);
        pingPong.run(mode, warmMs);
        push(rtt, mode, pingPong.run(mode, trialMs));
        unpin();
      }
      options.progress(
        `console trial ${t + 1}/${options.trials}: echo ${rtt.get('echo')!.at(-1)!.toFixed(1)} µs, Atomics wait/notify ${rtt.get('wait')!.at(-1)!.toFixed(1)} µs, spin-then-wait ${rtt.get('spinThenWait')!.at(-1)!.toFixed(1)} µs per round trip`,
      );
    }
    await devices.stop();
    const regime = regimeOf(place);
    const value = median(rtt.get('echo')!);
    return [
      recordTime(
        'console',
        'console-echo-round-trip',
        'µs',
        value,
        { name: 'atomics-wait-notify-ping-pong', value: median(rtt.get('wait')!) },
        null,
        regime,
      ),
      recordTime(
        'console',
        'console-echo-round-trip',
        'µs',
        value,
        { name: 'spin-then-wait-ping-pong', value: median(rtt.get('spinThenWait')!) },
        null,
        regime,
      ),
    ];
  } finally {
    pingPong.stop();
    if (rig) {
      await rig.stopCard().catch(() => {});
      await rig.close();
    }
    await worker.terminate();
    await rm(dir, { recursive: true, force: true });
  }
}
