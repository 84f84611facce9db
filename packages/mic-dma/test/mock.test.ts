// The driver on the mock mic bus, against a scripted engine: register programming, descriptor
// layout, cookies, issue rules, completion, errors, release and drain.
import { describe, expect, it } from '@jest/globals';
import { readBytes } from '@mic/memory';
import { VirtualClock } from '@mic/clock';
import { MbusBus, MockMbusHardware } from '@mic/mic-bus';
import type { MbusDevice } from '@mic/mic-bus';
import { X100_DMA_BIT, X100_DMA_CHERR, X100_DMA_REG, X100_REG, dmaChanReg } from '@mic/x100';
import {
  DMA_PREP,
  DMA_STATUS,
  MIC_DMA_CHAN_STATE,
  MIC_DMA_MAX_XFER_SIZE_CARD,
  MIC_DMA_MAX_XFER_SIZE_HOST,
  MicDmaDriver,
  isDmaCopyAligned,
  micDmaFilter,
  releaseDmaChannels,
  requestDmaChannels,
} from '../src/index.js';
import type { DmaTxResult, MicDmaChan, MicDmaDevice, MicDmaDriverOptions } from '../src/index.js';
import { ScriptedEngine } from './scripted-engine.js';

const MIB = 1024 * 1024;

interface Setup {
  readonly hw: MockMbusHardware;
  readonly eng: ScriptedEngine;
  readonly bus: MbusBus;
  readonly driver: MicDmaDriver;
  readonly mbdev: MbusDevice;
  readonly dev: MicDmaDevice;
  readonly clock: VirtualClock;
}

async function setup(role: 'host' | 'card', options: MicDmaDriverOptions = {}): Promise<Setup> {
  const hw = new MockMbusHardware({ role, ramSize: 8 * MIB });
  const eng = new ScriptedEngine(hw);
  const bus = new MbusBus();
  const clock = new VirtualClock();
  const driver = new MicDmaDriver({ ringSize: 64, clock, ...options });
  await bus.registerDriver(driver);
  const mbdev = await bus.registerDevice(eng.params);
  return { hw, eng, bus, driver, mbdev, dev: driver.deviceOf(mbdev)!, clock };
}

function requestFirst(s: Setup): MicDmaChan {
  const ch = s.driver.requestChannel();
  if (!ch) throw new Error('no channel');
  return ch;
}

/** A buffer in the mock RAM: its DMA address and bytes. */
function buffer(s: Setup, size: number) {
  const b = s.hw.dmaOps.alloc(size);
  return { addr: b.dmaAddr, mem: b.va };
}

describe('probing a DMA device on the mic bus', () => {
  it('gives the host channels 0-3 with 512 KiB descriptors and the interrupts of sources 0-3', async () => {
    const s = await setup('host');
    expect(s.bus.driverOf(s.mbdev)).toBe(s.driver);
    expect(s.dev.owner).toBe('host');
    expect(s.dev.channels.map((c) => c.chanId)).toEqual([0, 1, 2, 3]);
    expect(s.dev.channels.map((c) => c.name)).toEqual(['dma0chan0', 'dma0chan1', 'dma0chan2', 'dma0chan3']);
    expect(s.dev.maxXferSize).toBe(MIC_DMA_MAX_XFER_SIZE_HOST);
    expect(s.dev.capabilities).toEqual({ memcpy: true, private: true, copyAlign: 6 });
    expect([0, 1, 2, 3, 4].map((i) => s.hw.hwOps.usage(i))).toEqual([1, 1, 1, 1, 0]);
    await s.bus.unregisterDevice(s.mbdev);
    expect([0, 1, 2, 3].map((i) => s.hw.hwOps.usage(i))).toEqual([0, 0, 0, 0]);
    expect(s.driver.devices).toEqual([]);
  });

  it('gives the card channels 4-7 with 1 MiB - 64 descriptors, not private', async () => {
    const s = await setup('card');
    expect(s.dev.owner).toBe('mic');
    expect(s.dev.channels.map((c) => c.chanId)).toEqual([4, 5, 6, 7]);
    expect(s.dev.maxXferSize).toBe(MIC_DMA_MAX_XFER_SIZE_CARD);
    expect(s.dev.capabilities.private).toBe(false);
    expect([3, 4, 5, 6, 7].map((i) => s.hw.hwOps.usage(i))).toEqual([0, 1, 1, 1, 1]);
  });

  it('checks copy alignment as is_dma_copy_aligned does', async () => {
    const s = await setup('card');
    expect(isDmaCopyAligned(s.dev, 64, 128, 4096)).toBe(true);
    expect(isDmaCopyAligned(s.dev, 64, 130, 4096)).toBe(false);
    expect(isDmaCopyAligned(s.dev, 2 ** 40, 0, 100)).toBe(false);
  });

  it('refuses a ring size the DRAR_HI field cannot hold', () => {
    expect(() => new MicDmaDriver({ ringSize: 0x20000 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => new MicDmaDriver({ drainTimeoutMs: -1 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});

describe('requesting a channel', () => {
  it('programs a host channel: enabled, not card-owned, unmasked, errors unmasked, ring in system memory', async () => {
    const s = await setup('host');
    const ch = requestFirst(s);
    expect(ch.chanId).toBe(0);
    expect(ch.state).toBe(MIC_DMA_CHAN_STATE.READY);
    const dcr = s.hw.mmio.readU32(X100_REG.DCR);
    expect(dcr & 0b11).toBe(0b10);
    expect(s.eng.reg(0, X100_DMA_REG.DCAR) & X100_DMA_BIT.DCAR_IM1).toBe(0);
    expect(s.eng.writesTo(dmaChanReg(0, X100_DMA_REG.DCHERRMSK))).toEqual([0]);
    const ring = s.eng.ring(0);
    expect(ring).toEqual({ addr: ring.addr, entries: 64, system: true });
    expect(ring.addr).toBeGreaterThanOrEqual(0x80_0000_0000);
    // disable, then (after the ring) enable: the kernel's order
    const dcrWrites = s.eng.writesTo(X100_REG.DCR);
    expect(dcrWrites.at(-2)! & 0b10).toBe(0);
    expect(dcrWrites.at(-1)! & 0b10).toBe(0b10);
  });

  it('programs a card channel card-owned, with its ring in card memory', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    expect(ch.chanId).toBe(4);
    expect((s.hw.mmio.readU32(X100_REG.DCR) >>> 8) & 0b11).toBe(0b11);
    expect(s.eng.reg(4, X100_DMA_REG.DCAR) & X100_DMA_BIT.DCAR_IM0).toBe(0);
    expect(s.eng.ring(4).system).toBe(false);
  });

  it('starts at the hardware tail, so a channel used before continues where the engine is', async () => {
    const s = await setup('card');
    s.eng.setReg(4, X100_DMA_REG.DTPR, 60);
    s.eng.setReg(4, X100_DMA_REG.DSTAT, 60);
    const ch = requestFirst(s);
    const src = buffer(s, 4096);
    for (let i = 0; i < 6; i++) ch.prepMemcpy(src.addr, src.addr + 2048, 64).submit();
    ch.issuePending();
    // wrapped past the end of the 64-entry ring
    expect(s.eng.reg(4, X100_DMA_REG.DHPR)).toBe(2);
    s.eng.complete(4);
    expect(ch.txStatus(6)).toBe(DMA_STATUS.COMPLETE);
  });

  it('refuses a channel the engine reports in error or quiesced with EBUSY, disabled and masked', async () => {
    const s = await setup('host');
    const live = s.hw.dmaOps.liveBuffers;
    s.eng.setReg(0, X100_DMA_REG.DCHERR, 0x4);
    s.eng.setReg(1, X100_DMA_REG.DSTAT, X100_DMA_BIT.DSTAT_QUIESCE);
    const [c0, c1] = s.dev.channels;
    expect(() => c0!.request()).toThrow(
      expect.objectContaining({ code: 'EBUSY', message: expect.stringMatching(/DCHERR 0x4/) }),
    );
    expect(() => c1!.request()).toThrow(/quiesced/);
    expect(s.hw.mmio.readU32(X100_REG.DCR) & 0b1010).toBe(0);
    expect(s.eng.reg(0, X100_DMA_REG.DCAR) & X100_DMA_BIT.DCAR_IM1).not.toBe(0);
    expect(s.hw.dmaOps.liveBuffers).toBe(live);
    expect(c0!.state).toBe(MIC_DMA_CHAN_STATE.FREE);
    // the per-side request skips them
    const chans = requestDmaChannels(s.driver, micDmaFilter(s.driver, s.mbdev));
    expect(chans.map((c) => c.chanId)).toEqual([2, 3]);
  });

  it("hands out at most the side's four channels, only of the filtered device, and refuses a second request", async () => {
    const s = await setup('host');
    const other = new ScriptedEngine(new MockMbusHardware({ role: 'host', ramSize: 4 * MIB }), 1);
    other.auto = true;
    const otherDev = await s.bus.registerDevice(other.params);
    const chans = requestDmaChannels(s.driver, micDmaFilter(s.driver, otherDev));
    expect(chans.map((c) => c.name)).toEqual(['dma1chan0', 'dma1chan1', 'dma1chan2', 'dma1chan3']);
    expect(requestDmaChannels(s.driver, micDmaFilter(s.driver, otherDev))).toEqual([]);
    expect(() => chans[0]!.request()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(s.driver.requestChannel()?.name).toBe('dma0chan0');
    await releaseDmaChannels(chans);
    expect(chans.every((c) => c.state === MIC_DMA_CHAN_STATE.FREE)).toBe(true);
  });

  it('fails with ENOMEM when the ring cannot be allocated', async () => {
    const hw = new MockMbusHardware({ role: 'card', ramSize: 64 * 1024 });
    const bus = new MbusBus();
    const driver = new MicDmaDriver();
    await bus.registerDriver(driver);
    const mbdev = await bus.registerDevice(hw.params());
    expect(() => driver.deviceOf(mbdev)!.channels[0]!.request()).toThrow(
      expect.objectContaining({ code: 'ENOMEM' }),
    );
    expect(driver.requestChannel()).toBeUndefined();
  });
});

describe('preparing transfers', () => {
  it('splits a host copy into 512 KiB descriptors', async () => {
    const s = await setup('host');
    const ch = requestFirst(s);
    const len = 3 * MIC_DMA_MAX_XFER_SIZE_HOST + 64;
    ch.prepMemcpy(0x80_1000_0000, 0x8000, len).submit();
    ch.issuePending();
    const h = MIC_DMA_MAX_XFER_SIZE_HOST;
    expect(s.eng.descriptors(0, 0, 4)).toEqual([
      { type: 'memcpy', src: 0x8000, dst: 0x80_1000_0000, length: h },
      { type: 'memcpy', src: 0x8000 + h, dst: 0x80_1000_0000 + h, length: h },
      { type: 'memcpy', src: 0x8000 + 2 * h, dst: 0x80_1000_0000 + 2 * h, length: h },
      { type: 'memcpy', src: 0x8000 + 3 * h, dst: 0x80_1000_0000 + 3 * h, length: 64 },
    ]);
    expect(s.eng.reg(0, X100_DMA_REG.DHPR)).toBe(4);
  });

  it('splits a card copy into 1 MiB - 64 descriptors', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    ch.prepMemcpy(0x40_0000, 0x80_0000_0000, 2 * MIB).submit();
    ch.issuePending();
    const c = MIC_DMA_MAX_XFER_SIZE_CARD;
    expect(s.eng.descriptors(4, 0, 3)).toEqual([
      { type: 'memcpy', src: 0x80_0000_0000, dst: 0x40_0000, length: c },
      { type: 'memcpy', src: 0x80_0000_0000 + c, dst: 0x40_0000 + c, length: c },
      { type: 'memcpy', src: 0x80_0000_0000 + 2 * c, dst: 0x40_0000 + 2 * c, length: 128 },
    ]);
  });

  it('adds one STATUS for FENCE and two for INTERRUPT, only the second interrupting', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const st = ch.statusDestAddr!;
    ch.prepMemcpy(0x100000, 0x200000, 64, DMA_PREP.FENCE).submit();
    ch.prepMemcpy(0x100000, 0x200000, 64, DMA_PREP.INTERRUPT).submit();
    ch.prepInterrupt(DMA_PREP.INTERRUPT | DMA_PREP.FENCE).submit();
    ch.prepImmData(0x300004, 0xdead_beef_0000_0001n, DMA_PREP.CTRL_ACK).submit();
    ch.issuePending();
    const memcpy = { type: 'memcpy', src: 0x200000, dst: 0x100000, length: 64 };
    const status = (interrupt: boolean) => ({ type: 'status', dst: st, value: 0n, interrupt });
    expect(s.eng.descriptors(4, 0, 10)).toEqual([
      memcpy,
      status(false),
      memcpy,
      status(false),
      status(true),
      status(false),
      status(false),
      status(true),
      { type: 'status', dst: 0x300004, value: 0xdead_beef_0000_0001n, interrupt: false },
      // (index 9 is not written: 9 descriptors in all)
      { type: 'nop' },
    ]);
    expect(s.eng.reg(4, X100_DMA_REG.DHPR)).toBe(9);
  });

  it('issues automatically once more than 4 descriptors are pending, and never writes the same head twice', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const dhpr = dmaChanReg(4, X100_DMA_REG.DHPR);
    for (let i = 0; i < 4; i++) ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    expect(s.eng.writesTo(dhpr)).toEqual([]);
    ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    expect(s.eng.writesTo(dhpr)).toEqual([5]);
    ch.issuePending();
    ch.issuePending();
    expect(s.eng.writesTo(dhpr)).toEqual([5]);
    ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    ch.issuePending();
    ch.issuePending();
    expect(s.eng.writesTo(dhpr)).toEqual([5, 6]);
  });

  it('refuses invalid requests with errors that name the bad value', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const free = s.dev.channels[3]!;
    expect(() => ch.prepMemcpy(0x100010, 0x200000, 64)).toThrow(
      /destination 0x100010 is not 64-byte aligned/,
    );
    expect(() => ch.prepMemcpy(0x100000, 0x200008, 64)).toThrow(/source 0x200008 is not 64-byte aligned/);
    expect(() => ch.prepMemcpy(0x100000, 0x200000, 100)).toThrow(/length 100 is not a multiple of 64/);
    expect(() => ch.prepMemcpy(0x100000, 0x200000, 0)).toThrow(/0 bytes without flags/);
    expect(() => ch.prepMemcpy(2 ** 46 - 64, 0x200000, 128)).toThrow(/46-bit address space/);
    expect(() => ch.prepMemcpy(-64, 0x200000, 64)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => ch.prepMemcpy(0x100000, 0x200000, 64, 0x4)).toThrow(/flags 0x4/);
    expect(() => ch.prepImmData(0x100002, 1n)).toThrow(/not 4-byte aligned/);
    expect(() => ch.prepImmData(0x100000, -1)).toThrow(/not an unsigned 64-bit integer/);
    expect(() => ch.prepImmData(0x100000, 1n << 64n)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => free.prepMemcpy(0x100000, 0x200000, 64)).toThrow(
      expect.objectContaining({ code: 'ENODEV', message: expect.stringMatching(/not allocated/) }),
    );
    const tx = ch.prepMemcpy(0x100000, 0x200000, 64);
    expect(() => ch.prepInterrupt(DMA_PREP.INTERRUPT)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    const cookie = tx.submit();
    expect(() => tx.submit()).toThrow(/already submitted/);
    expect(() => ch.txStatus(cookie + 1)).toThrow(/was not handed out/);
    expect(() => ch.txStatus(0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(s.eng.descriptors(4, 0, 2)).toEqual([
      { type: 'memcpy', src: 0x200000, dst: 0x100000, length: 64 },
      { type: 'nop' },
    ]);
  });

  it('refuses with ENOMEM when the ring is full, and has room again once the engine caught up', async () => {
    const s = await setup('card', { ringSize: 16 });
    const ch = requestFirst(s);
    const cookies: number[] = [];
    // a memcpy needs its descriptors plus 3 spare: 12 fit in 15 usable slots
    for (let i = 0; i < 12; i++) cookies.push(ch.prepMemcpy(0x100000, 0x200000, 64).submit());
    expect(ch.freeDescriptors).toBe(3);
    expect(() => ch.prepMemcpy(0x100000, 0x200000, 64)).toThrow(
      expect.objectContaining({
        code: 'ENOMEM',
        message: expect.stringMatching(/3 free descriptors, 4 needed/),
      }),
    );
    ch.issuePending();
    s.eng.complete(4);
    const more = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    expect(cookies.every((c) => ch.txStatus(c) === DMA_STATUS.COMPLETE)).toBe(true);
    expect(ch.txStatus(more)).toBe(DMA_STATUS.IN_PROGRESS);
  });
});

describe('completion', () => {
  it('follows the completion count, calls callbacks in order and reports each cookie', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const seen: DmaTxResult[] = [];
    const cookies: number[] = [];
    for (let i = 0; i < 3; i++) {
      const tx = ch.prepMemcpy(0x100000, 0x200000, 64 * (i + 1), DMA_PREP.FENCE);
      tx.callback = (r) => seen.push(r);
      cookies.push(tx.submit());
    }
    expect(cookies).toEqual([1, 2, 3]);
    ch.issuePending();
    s.eng.complete(4, 3); // the first transfer and its fence, and the second's memcpy
    expect(ch.txStatus(1)).toBe(DMA_STATUS.COMPLETE);
    expect(ch.txStatus(2)).toBe(DMA_STATUS.IN_PROGRESS);
    expect(seen).toEqual([{ cookie: 1, status: 'complete' }]);
    s.eng.complete(4);
    expect(ch.txStatus(3)).toBe(DMA_STATUS.COMPLETE);
    expect(seen.map((r) => r.cookie)).toEqual([1, 2, 3]);
  });

  it('runs the cleanup from the interrupt, acknowledging it on the host', async () => {
    const s = await setup('host');
    const ch = requestFirst(s);
    const seen: number[] = [];
    const buf = buffer(s, 4096);
    const tx = ch.prepMemcpy(buf.addr, buf.addr + 2048, 64, DMA_PREP.INTERRUPT);
    tx.callback = (r) => seen.push(r.cookie);
    tx.submit();
    ch.issuePending();
    s.eng.complete(0);
    await s.hw.hwOps.flush();
    expect(seen).toEqual([1]);
    expect(s.hw.hwOps.acks).toEqual([0]);
  });

  it('masks and unmasks DCAR in the interrupt of a card-owned channel (the errata)', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const dcar = dmaChanReg(4, X100_DMA_REG.DCAR);
    const before = s.eng.writesTo(dcar).length;
    ch.prepInterrupt(DMA_PREP.INTERRUPT).submit();
    ch.issuePending();
    s.eng.complete(4);
    await s.hw.hwOps.flush();
    expect(
      s.eng
        .writesTo(dcar)
        .slice(before)
        .map((v) => v & X100_DMA_BIT.DCAR_IM0),
    ).toEqual([X100_DMA_BIT.DCAR_IM0, 0]);
    expect(ch.txStatus(1)).toBe(DMA_STATUS.COMPLETE);
  });

  it('completes a transaction without descriptors in order with the others', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const seen: number[] = [];
    const add = (tx: { callback: unknown; submit(): number }) => {
      tx.callback = (r: DmaTxResult) => seen.push(r.cookie);
      return tx.submit();
    };
    const empty0 = add(ch.prepInterrupt(0));
    const a = add(ch.prepMemcpy(0x100000, 0x200000, 64));
    const empty = add(ch.prepInterrupt(0));
    const b = add(ch.prepMemcpy(0x100000, 0x200000, 64));
    ch.issuePending();
    expect(ch.txStatus(empty0)).toBe(DMA_STATUS.COMPLETE);
    expect(ch.txStatus(empty)).toBe(DMA_STATUS.IN_PROGRESS);
    s.eng.complete(4, 1);
    expect(ch.txStatus(empty)).toBe(DMA_STATUS.COMPLETE);
    expect(ch.txStatus(b)).toBe(DMA_STATUS.IN_PROGRESS);
    s.eng.complete(4);
    expect(ch.txStatus(b)).toBe(DMA_STATUS.COMPLETE);
    expect(seen).toEqual([empty0, a, empty, b]);
  });

  it('waits with syncWait until the engine completes, woken by the interrupt', async () => {
    const s = await setup('card');
    s.eng.auto = true;
    const ch = requestFirst(s);
    const cookie = ch.prepMemcpy(0x100000, 0x200000, 64, DMA_PREP.INTERRUPT).submit();
    await expect(ch.syncWait(cookie)).resolves.toBe(DMA_STATUS.COMPLETE);
  });

  it('times out a syncWait with ETIMEDOUT and cancels one with ECANCELED', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const cookie = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    await expect(ch.syncWait(cookie, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(s.clock.now()).toBeGreaterThanOrEqual(100);
    const abort = new AbortController();
    const wait = ch.syncWait(cookie, { signal: abort.signal });
    abort.abort();
    await expect(wait).rejects.toMatchObject({ code: 'ECANCELED' });
  });

  it('finds a completion by polling: no timer, no interrupt asked for', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const dstat = dmaChanReg(4, X100_DMA_REG.DSTAT);
    const cookie = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    ch.issuePending();
    const head = s.eng.reg(4, X100_DMA_REG.DHPR);
    // The engine finishes while the waiter polls: after the driver read DSTAT 40 times.
    let reads = 0;
    s.eng.onRead = (offset) => {
      if (offset === dstat && ++reads === 40) s.eng.complete(4);
    };
    await expect(ch.syncWait(cookie, { pollNs: 60_000_000_000 })).resolves.toBe(DMA_STATUS.COMPLETE);
    expect(reads).toBe(40);
    expect(s.clock.now()).toBe(0);
    // Nothing was added behind the copy: the poll needed no interrupt.
    expect(s.eng.reg(4, X100_DMA_REG.DHPR)).toBe(head);
  });

  it('asks for an interrupt before it sleeps, and the interrupt wakes it (no timer)', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const s = await setup('card', { clock });
    const ch = requestFirst(s);
    const cookie = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    const done = ch.syncWait(cookie, { pollNs: 0 });
    await new Promise((r) => setImmediate(r));
    // The copy (one descriptor, no FENCE), then the interrupt-only transaction of the waiter.
    expect(s.eng.descriptors(4, 0, 3)).toEqual([
      expect.objectContaining({ type: 'memcpy' }),
      expect.objectContaining({ type: 'status', interrupt: false }),
      expect.objectContaining({ type: 'status', interrupt: true }),
    ]);
    expect(s.eng.reg(4, X100_DMA_REG.DHPR)).toBe(3);
    s.eng.complete(4);
    await expect(done).resolves.toBe(DMA_STATUS.COMPLETE);
    expect(clock.now()).toBe(0);
    expect(ch.txStatus(cookie + 1)).toBe(DMA_STATUS.COMPLETE);
  });

  it('adds no interrupt when one comes after the awaited transfer anyway', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const s = await setup('card', { clock });
    const ch = requestFirst(s);
    const first = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    ch.prepMemcpy(0x100000, 0x200000, 64, DMA_PREP.INTERRUPT).submit();
    const done = ch.syncWait(first, { pollNs: 0 });
    await new Promise((r) => setImmediate(r));
    expect(s.eng.reg(4, X100_DMA_REG.DHPR)).toBe(4);
    s.eng.complete(4);
    await expect(done).resolves.toBe(DMA_STATUS.COMPLETE);
    expect(clock.now()).toBe(0);
  });

  it('ends a wait on a dead engine with ETIMEDOUT although it asked for an interrupt', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const cookie = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    await expect(ch.syncWait(cookie, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(s.clock.now()).toBeGreaterThanOrEqual(50);
    // One interrupt-only transaction was added, and a second wait does not add another.
    const head = s.eng.reg(4, X100_DMA_REG.DHPR);
    expect(head).toBe(3);
    await expect(ch.syncWait(cookie, { timeoutMs: 30 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(s.clock.now()).toBeGreaterThanOrEqual(80);
    expect(s.eng.reg(4, X100_DMA_REG.DHPR)).toBe(head);
  });

  it('shares one poll timer among sleeping waiters, and the signal still cancels a sleeping wait', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const s = await setup('card', { clock });
    const ch = requestFirst(s);
    const a = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    const b = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    const abort = new AbortController();
    const waits = [ch.syncWait(a, { pollNs: 0 }), ch.syncWait(b, { pollNs: 0, signal: abort.signal })];
    await new Promise((r) => setImmediate(r));
    expect(clock.pending).toBe(1);
    abort.abort();
    await expect(waits[1]).rejects.toMatchObject({ code: 'ECANCELED' });
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
    expect(clock.pending).toBe(1);
    s.eng.complete(4);
    await expect(waits[0]).resolves.toBe(DMA_STATUS.COMPLETE);
  });

  it('refuses syncWait options it cannot use with EINVAL naming them, before waiting', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const cookie = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    const bad = (options: unknown, what: RegExp) =>
      expect(ch.syncWait(cookie, options as object)).rejects.toMatchObject({
        code: 'EINVAL',
        message: expect.stringMatching(what),
      });
    await bad(null, /options null/);
    await bad(5, /options 5/);
    await bad({ timeoutMs: Number.NaN }, /timeoutMs NaN/);
    await bad({ timeoutMs: -1 }, /timeoutMs -1/);
    await bad({ timeoutMs: Infinity }, /timeoutMs Infinity/);
    await bad({ timeoutMs: '10' }, /timeoutMs "10"/);
    await bad({ signal: {} }, /not an AbortSignal/);
    await bad({ pollNs: -1 }, /pollNs -1/);
    await bad({ pollNs: Number.NaN }, /pollNs NaN/);
    await bad({ pollNs: '5' }, /pollNs 5/);
    expect(s.clock.now()).toBe(0);
  });

  it('reads flags as numbers: a flag word above 32 bits is refused, not truncated to INTERRUPT', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    for (const flags of [2 ** 32 + DMA_PREP.INTERRUPT, 2 ** 40, -1, 0.5, Number.NaN]) {
      expect(() => ch.prepMemcpy(0x100000, 0x200000, 64, flags)).toThrow(
        expect.objectContaining({ code: 'EINVAL' }),
      );
      expect(() => ch.prepInterrupt(flags)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(() => ch.prepMemcpy(0x100000, 0x200000, 64, 10n as unknown as number)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(s.eng.descriptors(4, 0, 1)).toEqual([{ type: 'nop' }]);
  });
});

describe('a channel error', () => {
  it('fails every outstanding transfer in order, refuses new ones, and is recovered by release and request', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const seen: DmaTxResult[] = [];
    const cookies: number[] = [];
    for (let i = 0; i < 4; i++) {
      const tx = ch.prepMemcpy(0x100000, 0x200000, 64);
      tx.callback = (r) => seen.push(r);
      cookies.push(tx.submit());
    }
    ch.issuePending();
    s.eng.complete(4, 1);
    s.eng.fail(4, 0x4);
    await s.hw.hwOps.flush();
    expect(ch.state).toBe(MIC_DMA_CHAN_STATE.ERROR);
    expect(cookies.map((c) => ch.txStatus(c))).toEqual(['complete', 'error', 'error', 'error']);
    expect(seen.map((r) => [r.cookie, r.status])).toEqual([
      [1, 'complete'],
      [2, 'error'],
      [3, 'error'],
      [4, 'error'],
    ]);
    expect(seen[1]!.error?.message).toMatch(
      /stopped at descriptor 1: DCHERR 0x4 \(address outside mapped memory\)/,
    );
    expect(() => ch.prepMemcpy(0x100000, 0x200000, 64)).toThrow(
      expect.objectContaining({
        code: 'EIO',
        message: expect.stringMatching(/release and request it again/),
      }),
    );
    await ch.release();
    // the engine clears the error when the channel is disabled (the x100 model does)
    s.eng.setReg(4, X100_DMA_REG.DCHERR, 0);
    s.eng.setReg(4, X100_DMA_REG.DSTAT, s.eng.tail(4));
    ch.request();
    const again = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    expect(again).toBe(5);
    ch.issuePending();
    s.eng.complete(4);
    expect(ch.txStatus(again)).toBe(DMA_STATUS.COMPLETE);
    expect(ch.txStatus(2)).toBe(DMA_STATUS.ERROR);
  });

  it('names an engine fault (DCHERR FAULT) as such', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const cookie = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    ch.issuePending();
    s.eng.fail(4, X100_DMA_CHERR.FAULT);
    expect(ch.txStatus(cookie)).toBe(DMA_STATUS.ERROR);
    expect(ch.error?.message).toMatch(/DCHERR 0x40 \(engine fault\)/);
  });

  it('is a completion count beyond what was issued: the channel stops with EIO', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const cookie = ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    ch.issuePending();
    s.eng.setReg(4, X100_DMA_REG.DSTAT, 7);
    expect(ch.txStatus(cookie)).toBe(DMA_STATUS.ERROR);
    expect(ch.error?.message).toMatch(/completion count 7, outside the issued descriptors 0\.\.1/);
  });
});

describe('releasing a channel', () => {
  it('drains it with a FENCE, disables and masks it, and frees its memory', async () => {
    const s = await setup('host');
    s.eng.auto = true;
    const live = s.hw.dmaOps.liveBuffers;
    const ch = requestFirst(s);
    expect(s.hw.dmaOps.liveBuffers).toBe(live + 2);
    const seen: string[] = [];
    const buf = buffer(s, 4096);
    const tx = ch.prepMemcpy(buf.addr, buf.addr + 2048, 64);
    tx.callback = (r) => seen.push(r.status);
    tx.submit();
    await ch.release();
    expect(seen).toEqual(['complete']);
    expect(s.eng.descriptors(0, 1, 2)).toEqual([
      { type: 'status', dst: expect.any(Number), value: 0n, interrupt: false },
    ]);
    expect(s.hw.mmio.readU32(X100_REG.DCR) & 0b10).toBe(0);
    expect(s.eng.reg(0, X100_DMA_REG.DCAR) & X100_DMA_BIT.DCAR_IM1).not.toBe(0);
    expect(s.hw.dmaOps.liveBuffers).toBe(live + 1);
    expect(ch.state).toBe(MIC_DMA_CHAN_STATE.FREE);
    await expect(ch.release()).rejects.toMatchObject({ code: 'ENODEV' });
    expect(() => ch.prepMemcpy(buf.addr, buf.addr + 2048, 64)).toThrow(
      expect.objectContaining({
        code: 'ENODEV',
        message: expect.stringMatching(/dma0chan0, which is not allocated/),
      }),
    );
    expect(() => ch.prepInterrupt(DMA_PREP.INTERRUPT)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    ch.issuePending();
    expect(ch.txStatus(1)).toBe(DMA_STATUS.COMPLETE);
  });

  it('gives EIO after 5 s of virtual time when the engine never drains, and frees the channel anyway', async () => {
    const s = await setup('card');
    const ch = requestFirst(s);
    const seen: DmaTxResult[] = [];
    const tx = ch.prepMemcpy(0x100000, 0x200000, 64);
    tx.callback = (r) => seen.push(r);
    const cookie = tx.submit();
    const start = s.clock.now();
    await expect(ch.release()).rejects.toMatchObject({
      code: 'EIO',
      message: expect.stringMatching(/did not drain within 5000 ms/),
    });
    expect(s.clock.now() - start).toBeGreaterThanOrEqual(5000);
    expect(ch.state).toBe(MIC_DMA_CHAN_STATE.FREE);
    expect(ch.txStatus(cookie)).toBe(DMA_STATUS.ERROR);
    expect(seen.map((r) => r.status)).toEqual(['error']);
    expect(seen[0]!.error?.message).toMatch(/released before the transfer completed/);
  });

  it('drops a prepared transfer that was never submitted', async () => {
    const s = await setup('card');
    s.eng.auto = true;
    const ch = requestFirst(s);
    const tx = ch.prepMemcpy(0x100000, 0x200000, 64);
    await ch.release();
    expect(() => tx.submit()).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    ch.request();
    expect(ch.prepMemcpy(0x100000, 0x200000, 64).submit()).toBe(2);
  });

  it('happens for channels still in use when the device goes away', async () => {
    const s = await setup('card');
    s.eng.auto = true;
    const ch = requestFirst(s);
    ch.prepMemcpy(0x100000, 0x200000, 64).submit();
    await s.bus.unregisterDevice(s.mbdev);
    expect(ch.state).toBe(MIC_DMA_CHAN_STATE.FREE);
    expect([4, 5, 6, 7].map((i) => s.hw.hwOps.usage(i))).toEqual([0, 0, 0, 0]);
  });
});

describe('memory moved by the scripted engine', () => {
  it('matches Uint8Array.set for a split host copy', async () => {
    const s = await setup('host');
    s.eng.auto = true;
    const ch = requestFirst(s);
    const src = buffer(s, 2 * MIB);
    const dst = buffer(s, 2 * MIB);
    const data = new Uint8Array(2 * MIB).map((_, i) => (i * 7) & 0xff);
    src.mem.write(0, data);
    const cookie = ch.prepMemcpy(dst.addr + 64, src.addr + 128, MIB + 64 * 3, DMA_PREP.INTERRUPT).submit();
    await expect(ch.syncWait(cookie)).resolves.toBe(DMA_STATUS.COMPLETE);
    const expected = new Uint8Array(2 * MIB);
    expected.set(data.subarray(128, 128 + MIB + 192), 64);
    expect(Buffer.compare(readBytes(dst.mem, 0, 2 * MIB), expected)).toBe(0);
  });
});
