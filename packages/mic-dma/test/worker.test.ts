// The driver on the x100 worker platform under the real hardware drivers: the host side (mic-host)
// in this thread, the card side (mic-card, in the card code) in the card's worker, the DMA engine
// in a thread of its own, all three at once.
import { afterEach, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { readBytes } from '@mic/memory';
import { X100_SMPT } from '@mic/x100';
import type { CardDebugHandle } from '@mic/x100';
import { DMA_PREP, DMA_STATUS } from '../src/index.js';
import type { MicDmaChan } from '../src/index.js';
import { runTransfers } from './fixtures/transfers.mjs';
import type { TransferRun } from './fixtures/transfers.mjs';
import { KIB, type WorkerRig, closeRig, hostChannels, workerRig } from './rigs.js';
import { REGION, Shadow, checkRun, fillRegion, toTransfer, transferArb, type Region } from './sides.js';

interface Rig {
  readonly drivers: WorkerRig;
  readonly host: { readonly chans: MicDmaChan[] };
  /** The card code: its SCIF device's channels 4-7 as indexes 0-3 of `run`, `error`, `recover`. */
  readonly card: CardDebugHandle;
  readonly hostRegion: Region;
  readonly cardRegion: Region;
}

let current: Rig | undefined;
afterEach(async () => {
  const r = current;
  current = undefined;
  if (r) await closeRig(r.drivers);
});

async function makeRig(): Promise<Rig> {
  const drivers = await workerRig();
  const card = drivers.card;
  // card memory from mic-card's DMA map ops (in the card's thread), host memory from mic-host's
  const cardAddr = (await card.call('alloc', REGION)) as number;
  const h = drivers.mic.dmaOps.alloc(REGION);
  const hostRegion = { addr: h.dmaAddr, mem: h.va };
  const cardRegion = { addr: cardAddr, mem: drivers.platform.host.apertureWindow(cardAddr, REGION) };
  fillRegion(hostRegion, 3);
  fillRegion(cardRegion, 4);
  current = { drivers, host: { chans: hostChannels(drivers) }, card, hostRegion, cardRegion };
  return current;
}

describe('the DMA driver on the worker x100', () => {
  it('leaves memory as Uint8Array.set would for random transfers on host and card channels', async () => {
    const r = await makeRig();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 7 }),
        fc.array(transferArb(), { minLength: 1, maxLength: 8 }),
        async (which, transfers) => {
          const shadow = new Shadow(r.hostRegion, r.cardRegion);
          const wire = transfers.map((t) => toTransfer(t, r.hostRegion, r.cardRegion));
          const run =
            which < 4
              ? await runTransfers(r.host.chans[which]!, wire)
              : ((await r.card.call('run', which - 4, wire)) as TransferRun);
          for (const t of transfers) shadow.apply(t);
          checkRun(transfers, run);
          shadow.check(r.hostRegion, r.cardRegion);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('runs all eight channels at once from two threads, each landing its own bytes', async () => {
    const r = await makeRig();
    const slice = 256 * KIB;
    const wire = (i: number, dir: 'h2c' | 'c2h') => {
      const t = { dir, src: i * slice, dst: i * slice, len: slice / 2, flags: 0 } as const;
      const second = { ...t, src: t.src + slice / 2, dst: t.dst + slice / 2, flags: DMA_PREP.INTERRUPT };
      return [toTransfer(t, r.hostRegion, r.cardRegion), toTransfer(second, r.hostRegion, r.cardRegion)];
    };
    const expectedCard = readBytes(r.cardRegion.mem, 0, REGION);
    const expectedHost = readBytes(r.hostRegion.mem, 0, REGION);
    for (let i = 0; i < 4; i++) {
      expectedCard.set(expectedHost.subarray(i * slice, (i + 1) * slice), i * slice);
      const j = i + 4;
      expectedHost.set(readBytes(r.cardRegion.mem, j * slice, slice), j * slice);
    }
    const runs = await Promise.all([
      ...r.host.chans.map((ch, i) => runTransfers(ch, wire(i, 'h2c'))),
      ...[0, 1, 2, 3].map((i) => r.card.call('run', i, wire(i + 4, 'c2h')) as Promise<TransferRun>),
    ]);
    for (const run of runs) {
      expect(run.final).toBe(DMA_STATUS.COMPLETE);
      expect(run.order.map(([, s]) => s)).toEqual(['complete', 'complete']);
    }
    expect(Buffer.compare(readBytes(r.cardRegion.mem, 0, REGION), expectedCard)).toBe(0);
    expect(Buffer.compare(readBytes(r.hostRegion.mem, 0, REGION), expectedHost)).toBe(0);
  });

  it('reports a card channel error to the card and recovers it by release and request', async () => {
    const r = await makeRig();
    const bad = {
      src: r.cardRegion.addr,
      dst: X100_SMPT.BASE + 9 * X100_SMPT.PAGE_SIZE,
      len: 4096,
      flags: 0,
    };
    const good = { src: r.cardRegion.addr, dst: r.hostRegion.addr, len: 4096, flags: DMA_PREP.INTERRUPT };
    const run = (await r.card.call('run', 2, [good, bad, good])) as TransferRun;
    expect(run.final).toBe(DMA_STATUS.ERROR);
    expect(run.statuses).toEqual(['complete', 'error', 'error']);
    expect(run.order.map(([, s]) => s)).toEqual(['complete', 'error', 'error']);
    expect(await r.card.call('error', 2)).toMatch(/DCHERR 0x4/);
    expect(await r.card.call('recover', 2)).toBe('ready');
    const again = (await r.card.call('run', 2, [good])) as TransferRun;
    expect(again.final).toBe(DMA_STATUS.COMPLETE);
  });
});
