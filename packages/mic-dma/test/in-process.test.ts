// The driver on the x100 model's inProcess platform, under the real hardware drivers: host
// channels 0-3 from mic-host and card channels 4-7 from mic-card (in the card code) moving real
// bytes through the DMA engine (queued microtasks, virtual clock).
import { afterEach, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { readBytes } from '@mic/memory';
import { X100_DMA_CHERR, X100_REG, X100_SMPT, dmaDcrEnableBit } from '@mic/x100';
import { DMA_PREP, DMA_STATUS, MIC_DMA_CHAN_STATE } from '../src/index.js';
import type { MicDmaChan } from '../src/index.js';
import { runTransfers } from './fixtures/transfers.mjs';
import { type InProcessRig, MIB, cardChannels, closeRig, hostChannels, inProcessRig } from './rigs.js';
import { REGION, Shadow, checkRun, fillRegion, toTransfer, transferArb, type Region } from './sides.js';

interface Rig {
  readonly drivers: InProcessRig;
  readonly host: { readonly chans: MicDmaChan[] };
  readonly card: { readonly chans: MicDmaChan[] };
  readonly hostRegion: Region;
  readonly cardRegion: Region;
}

let rig: Rig | undefined;
afterEach(async () => {
  const r = rig;
  rig = undefined;
  if (r) await closeRig(r.drivers);
});

async function makeRig(): Promise<Rig> {
  const drivers = await inProcessRig();
  // host memory from mic-host's DMA map ops (SMPT addresses), card memory from mic-card's
  const h = drivers.mic.dmaOps.alloc(REGION);
  const c = drivers.cardOs.mic.dmaOps.alloc(REGION);
  const hostRegion = { addr: h.dmaAddr, mem: h.va };
  // the host's view of the card region: the aperture at its card address
  const cardRegion = { addr: c.dmaAddr, mem: drivers.platform.host.apertureWindow(c.dmaAddr, REGION) };
  fillRegion(hostRegion, 1);
  fillRegion(cardRegion, 2);
  rig = {
    drivers,
    host: { chans: hostChannels(drivers) },
    card: { chans: cardChannels(drivers) },
    hostRegion,
    cardRegion,
  };
  return rig;
}

describe('the DMA driver on the inProcess x100', () => {
  it('leaves memory as Uint8Array.set would for random transfers, with callbacks in order and every cookie complete', async () => {
    const r = await makeRig();
    const chans = [...r.host.chans, ...r.card.chans];
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: chans.length - 1 }),
        fc.array(transferArb(), { minLength: 1, maxLength: 10 }),
        async (which, transfers) => {
          const shadow = new Shadow(r.hostRegion, r.cardRegion);
          const run = await runTransfers(
            chans[which]!,
            transfers.map((t) => toTransfer(t, r.hostRegion, r.cardRegion)),
          );
          for (const t of transfers) shadow.apply(t);
          checkRun(transfers, run);
          shadow.check(r.hostRegion, r.cardRegion);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('writes immediate data behind a fence, as SCIF signals do', async () => {
    const r = await makeRig();
    const ch = r.card.chans[0]!;
    ch.prepMemcpy(r.cardRegion.addr + 4096, r.hostRegion.addr, 4096, DMA_PREP.FENCE).submit();
    const cookie = ch.prepImmData(r.hostRegion.addr + 1028, 0x0123_4567_89ab_cdefn).submit();
    expect(await ch.syncWait(cookie)).toBe(DMA_STATUS.COMPLETE);
    expect(r.hostRegion.mem.readBigU64(1028)).toBe(0x0123_4567_89ab_cdefn);
  });

  it('reports a bad address through txStatus, and recovers the channel by release and request', async () => {
    const r = await makeRig();
    const ch = r.card.chans[1]!;
    const seen: [number, string][] = [];
    const submit = (dst: number) => {
      const tx = ch.prepMemcpy(dst, r.cardRegion.addr, 4096);
      tx.callback = (res) => seen.push([res.cookie, res.status]);
      return tx.submit();
    };
    const unmapped = X100_SMPT.BASE + 7 * X100_SMPT.PAGE_SIZE;
    const before = readBytes(r.hostRegion.mem, 0, 8192);
    const a = submit(r.hostRegion.addr);
    const b = submit(unmapped);
    const c = submit(r.hostRegion.addr + 4096);
    expect(await ch.syncWait(c)).toBe(DMA_STATUS.ERROR);
    expect([a, b, c].map((k) => ch.txStatus(k))).toEqual(['complete', 'error', 'error']);
    expect(seen).toEqual([
      [a, 'complete'],
      [b, 'error'],
      [c, 'error'],
    ]);
    expect(ch.error?.message).toMatch(/DCHERR 0x4 \(address outside mapped memory\)/);
    expect(ch.registers().DCHERR).toBe(X100_DMA_CHERR.ADDR);
    // the copy after the bad one never ran
    expect(Buffer.compare(readBytes(r.hostRegion.mem, 4096, 4096), before.subarray(4096))).toBe(0);
    expect(() => ch.prepMemcpy(r.hostRegion.addr, r.cardRegion.addr, 64)).toThrow(
      expect.objectContaining({ code: 'EIO' }),
    );
    await ch.release();
    ch.request();
    expect(ch.state).toBe(MIC_DMA_CHAN_STATE.READY);
    const d = ch.prepMemcpy(r.hostRegion.addr + 4096, r.cardRegion.addr, 4096).submit();
    expect(await ch.syncWait(d)).toBe(DMA_STATUS.COMPLETE);
    expect(
      Buffer.compare(readBytes(r.hostRegion.mem, 4096, 4096), readBytes(r.cardRegion.mem, 0, 4096)),
    ).toBe(0);
  });

  it('refuses a host-to-host copy through the engine and says so', async () => {
    const r = await makeRig();
    const ch = r.host.chans[0]!;
    const cookie = ch.prepMemcpy(r.hostRegion.addr, r.hostRegion.addr + MIB, 64).submit();
    expect(await ch.syncWait(cookie)).toBe(DMA_STATUS.ERROR);
    expect(ch.error?.message).toMatch(/host-to-host copy/);
  });

  it('gives EIO after 5 s of virtual time when a stalled channel cannot drain, and can be requested again', async () => {
    const r = await makeRig();
    const ch: MicDmaChan = r.host.chans[2]!;
    const mmio = r.drivers.platform.hardware.mmio;
    // the channel stops behind the driver's back
    mmio.write32(X100_REG.DCR, mmio.read32(X100_REG.DCR) & ~dmaDcrEnableBit(ch.chanId));
    const cookie = ch.prepMemcpy(r.cardRegion.addr, r.hostRegion.addr, 4096).submit();
    const start = r.drivers.platform.clock.now();
    await expect(ch.release()).rejects.toMatchObject({
      code: 'EIO',
      message: expect.stringMatching(/did not drain within 5000 ms/),
    });
    expect(r.drivers.platform.clock.now() - start).toBeGreaterThanOrEqual(5000);
    expect(ch.txStatus(cookie)).toBe(DMA_STATUS.ERROR);
    ch.request();
    const again = ch.prepMemcpy(r.cardRegion.addr, r.hostRegion.addr, 4096, DMA_PREP.INTERRUPT).submit();
    expect(await ch.syncWait(again)).toBe(DMA_STATUS.COMPLETE);
  });

  it('keeps several channels of both sides busy at once without mixing up their completions', async () => {
    const r = await makeRig();
    const jobs = [...r.host.chans, ...r.card.chans].map(async (ch, i) => {
      const off = i * 128 * 1024;
      const cookies: number[] = [];
      for (let k = 0; k < 4; k++) {
        cookies.push(
          ch
            .prepMemcpy(r.hostRegion.addr + off + k * 32768, r.cardRegion.addr + off + k * 32768, 32768)
            .submit(),
        );
      }
      ch.issuePending();
      expect(await ch.syncWait(cookies.at(-1)!)).toBe(DMA_STATUS.COMPLETE);
      return cookies.map((c) => ch.txStatus(c));
    });
    for (const statuses of await Promise.all(jobs)) expect(statuses).toEqual(Array(4).fill('complete'));
    expect(Buffer.compare(readBytes(r.hostRegion.mem, 0, MIB), readBytes(r.cardRegion.mem, 0, MIB))).toBe(0);
  });
});
