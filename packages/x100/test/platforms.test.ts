// The same behaviour on both platforms: the card code is the same JavaScript module, run in
// this thread (inProcess) or in a worker thread (worker).
import { afterEach, describe, expect, it } from '@jest/globals';
import { pollUntil } from '@mic/clock';
import { readBytes } from '@mic/memory';
import type { CardMain, X100Platform } from '../src/index.js';
import {
  X100_CARD_STATE,
  X100_SMPT,
  X100_SPAD,
  createInProcessPlatform,
  createWorkerPlatform,
} from '../src/index.js';
import { cardMain } from './fixtures/card-echo.mjs';
import {
  ECHO_CARD,
  eventually,
  hostBuffer,
  PAGE,
  PAGE_SPAD,
  prepareHost,
  publishPage,
  unmapPage,
} from './helpers.js';

interface Setup {
  readonly name: string;
  create(options: { echo?: boolean; iommu?: boolean }): X100Platform;
}

const setups: Setup[] = [
  {
    name: 'inProcess',
    create: ({ echo, iommu }) =>
      createInProcessPlatform({
        cardMain: cardMain as CardMain,
        cardData: { echo },
        resetDelayMs: 20,
        ...(iommu === undefined ? {} : { iommu }),
      }),
  },
  {
    name: 'worker',
    create: ({ echo, iommu }) =>
      createWorkerPlatform({
        cardModule: ECHO_CARD,
        cardData: { echo },
        resetDelayMs: 20,
        ...(iommu === undefined ? {} : { iommu }),
      }),
  },
];

describe.each(setups)('the $name platform', (setup) => {
  let platform: X100Platform | undefined;
  const make = (options: { echo?: boolean; iommu?: boolean } = {}): X100Platform => {
    platform = setup.create(options);
    return platform;
  };
  afterEach(async () => {
    await platform?.close();
    platform = undefined;
  });

  it('boots card code that finds the shared page through SPAD14/15 and the SMPT', async () => {
    const p = make();
    const dp = prepareHost(p, 7);
    expect(p.cardState).toBe(X100_CARD_STATE.READY);
    const card = await p.startCard();
    expect(p.cardState).toBe(X100_CARD_STATE.RUNNING);
    expect(p.card).toBe(card);
    expect(await card.call('pageAddress')).toBe(dp.micAddr);
    expect(dp.micAddr).toBe(X100_SMPT.BASE + dp.dmaAddr);
    expect(await card.call('nodeId')).toBe(7);
    expect(p.host.downloadInfo().ready).toBe(false);
  });

  it('fails the boot with the error of the card code and halts the card when its entry throws', async () => {
    const p = make();
    const dp = prepareHost(p);
    dp.mem.writeU32(PAGE.MARK, 0xdeadbeef);
    await expect(p.startCard()).rejects.toMatchObject({
      code: 'EIO',
      message: expect.stringContaining('mark'),
    });
    expect(p.cardState).toBe(X100_CARD_STATE.HALTED);
    expect(p.card).toBeUndefined();
  });

  it('without the IOMMU (the bare hardware) a card reads all host RAM behind a mapped SMPT entry, and nothing else', async () => {
    const p = make({ iommu: false });
    const dp = prepareHost(p);
    const buf = hostBuffer(p.host, 256);
    buf.mem.write(0, Uint8Array.from([1, 2, 3]));
    const card = await p.startCard();
    // entry 0 is mapped (the device page), so the unmapped buffer behind it is reachable (16 GiB
    // entries); entry 1 is not mapped
    expect(await card.call('readHost', X100_SMPT.BASE + buf.dmaAddr, 3)).toEqual([1, 2, 3]);
    await card.call('writeHost', X100_SMPT.BASE + buf.dmaAddr + 8, [4]);
    expect(buf.mem.readU8(8)).toBe(4);
    expect(p.host.iommu.faults().count).toBe(0);
    await expect(card.call('readHost', X100_SMPT.BASE + X100_SMPT.PAGE_SIZE, 4)).rejects.toMatchObject({
      code: 'EFAULT',
      message: expect.stringContaining('not mapped by any SMPT entry'),
    });
    // a mapped entry still only reaches host RAM
    await expect(
      card.call('readHost', X100_SMPT.BASE + p.hardware.config.hostRamSize - 2, 4),
    ).rejects.toMatchObject({ code: 'EFAULT' });
    // below the SMPT window is card memory, never host memory
    await expect(card.call('readHost', buf.dmaAddr, 3)).rejects.toMatchObject({ code: 'EFAULT' });
    // once the last mapping through entry 0 is gone, the card loses that memory too
    unmapPage(p.host, dp);
    await expect(card.call('readHost', X100_SMPT.BASE + buf.dmaAddr, 3)).rejects.toMatchObject({
      code: 'EFAULT',
    });
  });

  it('with the IOMMU (the default) a card reaches only the host ranges the host DMA-mapped: EFAULT and a fault otherwise', async () => {
    const p = make();
    const dp = prepareHost(p);
    const buf = hostBuffer(p.host, 256);
    buf.mem.write(0, Uint8Array.from([1, 2, 3]));
    const card = await p.startCard();
    // behind the device page's SMPT entry, but not DMA-mapped
    await expect(card.call('readHost', X100_SMPT.BASE + buf.dmaAddr, 3)).rejects.toMatchObject({
      code: 'EFAULT',
      message: expect.stringContaining('IOMMU fault'),
    });
    await expect(card.call('writeHost', X100_SMPT.BASE + buf.dmaAddr + 8, [4])).rejects.toMatchObject({
      code: 'EFAULT',
    });
    expect(buf.mem.readU8(8)).toBe(0);
    // a range that starts in the device page and runs past its end
    await expect(card.call('readHost', dp.micAddr + PAGE.SIZE - 2, 4)).rejects.toMatchObject({
      code: 'EFAULT',
    });
    const faults = p.host.iommu.faults();
    expect(faults.count).toBe(3);
    expect(faults.recent[2]).toEqual({
      index: 3,
      channel: -1,
      micAddr: dp.micAddr + PAGE.SIZE - 2,
      hostAddr: dp.dmaAddr + PAGE.SIZE - 2,
      length: 4,
    });
    // mapped, it is reachable, all of it and no more
    const mic = p.host.mapSingle(buf.dmaAddr, 256);
    expect(await card.call('readHost', mic, 3)).toEqual([1, 2, 3]);
    await expect(card.call('readHost', mic + 255, 2)).rejects.toMatchObject({ code: 'EFAULT' });
    // unmapped again, it is not
    p.host.unmapSingle(mic, 256);
    await expect(card.call('readHost', mic, 3)).rejects.toMatchObject({ code: 'EFAULT' });
    expect(p.host.iommu.faults().count).toBe(5);
  });

  it('moves bytes both ways: card writes through the SMPT, host writes through the aperture', async () => {
    const p = make();
    prepareHost(p);
    const buf = hostBuffer(p.host, 64);
    const micAddr = p.host.mapSingle(buf.dmaAddr, 64);
    const card = await p.startCard();
    await card.call('writeHost', micAddr + 8, [9, 8, 7]);
    expect([...readBytes(buf.mem, 8, 3)]).toEqual([9, 8, 7]);
    const local = 0x5000; // a page of card memory nobody else uses
    p.host.apertureWindow(local, 16).write(4, Uint8Array.from([5, 6]));
    expect(await card.call('readLocal', local + 4, 2)).toEqual([5, 6]);
    await card.call('writeLocal', local, [42]);
    expect(p.host.aperture.readU8(local)).toBe(42);
  });

  it('rings card doorbells from the host and host doorbells from the card', async () => {
    const p = make({ echo: true });
    prepareHost(p);
    const seen: number[] = [];
    for (let db = 0; db < 4; db++) {
      p.host.requestIrq(db, (src) => {
        p.host.ackInterrupt();
        seen.push(src);
      });
    }
    const card = await p.startCard();
    p.host.sendIntr(5);
    await eventually(() => seen.length === 1, 'the echo of card doorbell 5');
    expect(seen).toEqual([1]);
    // doorbells 8-15 go through the RDMASR registers
    p.host.sendIntr(14);
    await eventually(() => seen.length === 2, 'the echo of card doorbell 14');
    expect(seen).toEqual([1, 2]);
    const received = (await card.call('received')) as number[];
    expect(received.map((n, db) => (n ? db : -1)).filter((db) => db >= 0)).toEqual([5, 14]);
    await card.call('ring', 3);
    await expect(card.call('ring', -1)).rejects.toMatchObject({ code: 'EINVAL' });
    await eventually(() => seen.length === 3, 'host doorbell 3');
    expect(seen).toEqual([1, 2, 3]);
  });

  it('boots on the bootstrap interrupt the host sends through APICICR7', async () => {
    const p = make();
    prepareHost(p);
    expect(p.boot).toBeUndefined();
    p.host.sendFirmwareIntr();
    expect(p.cardState).toBe(X100_CARD_STATE.BOOTING);
    const card = await p.boot;
    expect(await card?.call('nodeId')).toBe(1);
    // once running, APICICR7 is only card doorbell 7
    p.host.sendFirmwareIntr();
    await eventually(() => p.hardware.cardLine.pending() === 0, 'doorbell 7 delivery');
    expect(((await card?.call('received')) as number[])[7]).toBe(1);
  });

  it('a reset stops the card and clears the registers; the firmware is ready again after the delay', async () => {
    const p = make();
    const dp = prepareHost(p);
    const first = await p.startCard();
    const firstGeneration = (await first.call('generation')) as number;
    expect(await p.startCard().catch((e: unknown) => e)).toMatchObject({ code: 'EBUSY' });
    p.host.writeSpad(X100_SPAD.DOWNLOAD_INFO, 0);
    p.host.reset();
    expect(p.cardState).toBe(X100_CARD_STATE.RESET);
    expect(p.card).toBeUndefined();
    expect(p.host.readSpad(PAGE_SPAD.LO)).toBe(0);
    expect(p.host.interruptEnableMask()).toBe(0);
    await expect(first.call('nodeId')).rejects.toMatchObject({ code: 'ENODEV' });
    expect(await pollUntil(p.clock, () => p.cardState === X100_CARD_STATE.READY, 60_000, 5)).toBe(true);
    const info = p.host.downloadInfo();
    expect(info).toEqual({ ready: true, apicId: 0, bootAddr: p.hardware.config.bootAddr });
    // what _mic_start does again before the next boot
    p.host.smpt.restore();
    p.host.enableInterrupts();
    publishPage(p.host, dp.micAddr);
    const second = await p.startCard();
    expect(await second.call('nodeId')).toBe(1);
    expect((await second.call('generation')) as number).toBeGreaterThan(firstGeneration);
  });

  it('rejects calls to methods the card code does not offer', async () => {
    const p = make();
    prepareHost(p);
    const card = await p.startCard();
    expect(card.methods).toContain('readHost');
    await expect(card.call('format')).rejects.toMatchObject({ code: 'EINVAL' });
  });
});
