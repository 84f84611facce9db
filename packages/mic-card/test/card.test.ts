// The card driver on the in-process x100, with the host end on the raw host view (host-peer.ts): what probe registers and
// with which fields, the removal order, the doorbell policy, the DMA channels, the direct DMA map
// ops and the peer-to-peer doorbell registers.
import { afterEach, describe, expect, it } from '@jest/globals';
import type { DmaChannel } from '@mic/bus-core';
import { BufferMemory } from '@mic/memory';
import { MIC_BOOTPARAM_OFFSETS, MIC_DPHI_SPAD, MIC_DPLO_SPAD, MIC_MAGIC } from '@mic/mic-common';
import { MBUS_DEV_DMA_MIC } from '@mic/mic-bus';
import {
  MmioMemory,
  X100_APICICR_SEND,
  X100_CARD_MMIO_BASE,
  X100_MMIO_SIZE,
  X100_SMPT,
  apicIcrReg,
  rdmasrReg,
} from '@mic/x100';
import {
  type DmaChannelProvider,
  MicCardDriver,
  cardDpInit,
  cardPages,
  readDpAddress,
} from '../src/index.js';
import { type BareRig, bareRig, closeRig, inProcessRig, makeCardBuses } from './helpers.js';

const rigs: BareRig[] = [];
afterEach(async () => {
  for (const rig of rigs.splice(0).reverse()) await closeRig(rig);
});
async function rig(options: Parameters<typeof inProcessRig>[0] = {}) {
  const r = await inProcessRig(options);
  rigs.push(r);
  return r;
}
async function bare() {
  const r = await bareRig();
  rigs.push(r);
  return r;
}

function recordCardBuses(buses: ReturnType<typeof makeCardBuses>): string[] {
  const log: string[] = [];
  for (const bus of [buses.mbus, buses.vop, buses.scif] as const) {
    (bus as { subscribe(l: (e: { type: string; device?: { name: string } }) => void): unknown }).subscribe(
      (e) => {
        if (e.type === 'device-added' || e.type === 'device-removed') log.push(`${e.type} ${e.device!.name}`);
      },
    );
  }
  return log;
}

describe('MicCard probe and remove', () => {
  it('registers DMA, VOP and SCIF in that order with the kernel fields of the card side', async () => {
    const cardBuses = makeCardBuses();
    const log = recordCardBuses(cardBuses);
    const r = await rig({ buses: cardBuses });
    expect(log).toEqual([
      'device-added mbus-dev0',
      'device-added vop-dev4294967295',
      'device-added scif-dev0',
    ]);
    const { card, host } = r;
    expect(card.mbusDevice).toMatchObject({ index: 0, id: { device: MBUS_DEV_DMA_MIC } });
    // The DMA driver writes registers through the register file (handlers run), not raw memory.
    expect(card.mbusDevice!.mmioVa).toBeInstanceOf(MmioMemory);
    expect(card.mbusDevice!.mmioVa.byteLength).toBe(r.view.mmio.memory.byteLength);
    expect(card.vopDevice).toMatchObject({ dnode: 0, index: -1, aper: null, dmaCh: null });
    expect(card.vopDevice!.hwOps.getDp()).toBeNull();
    // The remote device page is the host's page, reached through the SMPT.
    const rdp = card.vopDevice!.hwOps.getRemoteDp()!;
    rdp.storeU32(4092, 0x600df00d);
    expect(host.dp.mem.loadU32(4092)).toBe(0x600df00d);
    expect(card.nodeId).toBe(host.nodeId);
    expect(card.scifDevice).toMatchObject({
      dnode: 0,
      snode: host.nodeId,
      aper: null,
      dp: null,
      cardRelDa: true,
    });
    expect(card.scifDevice!.rdp).toBe(card.dp);
    expect(card.scifDevice!.mmio).toEqual({
      pa: X100_CARD_MMIO_BASE,
      va: r.view.mmio.memory,
      len: X100_MMIO_SIZE,
    });

    await r.cardDriver.exit();
    expect(log.slice(3)).toEqual([
      'device-removed scif-dev0',
      'device-removed vop-dev4294967295',
      'device-removed mbus-dev0',
    ]);
    expect(card.dp).toBeUndefined();
    expect(r.cardDriver.card).toBeUndefined();
  });

  it('loads the DMA driver once at init and refuses a second probe with EBUSY', async () => {
    const r = await bare();
    let loads = 0;
    const driver = await MicCardDriver.init({ loadDmaDriver: () => void loads++ });
    const card = await driver.probe({ card: r.view, buses: r.cardBuses });
    await expect(driver.probe({ card: r.view, buses: makeCardBuses() })).rejects.toMatchObject({
      code: 'EBUSY',
    });
    expect(loads).toBe(1);
    await driver.exit();
    expect(r.cardBuses.vop.devices()).toEqual([]);
    await expect(driver.probe({ card: r.view, buses: r.cardBuses })).rejects.toMatchObject({
      code: 'ENODEV',
    });
    expect(card.vopDevice).toBeUndefined();
  });

  it('gives the device page window back on remove (mic_card_unmap): the host unmaps it without an IOMMU fault', async () => {
    const r = await rig();
    const { iommu } = r.platform.host;
    await r.card.remove();
    r.platform.host.unmapSingle(r.host.dp.micAddr, 4096); // what mic_dp_uninit does on the host
    expect(iommu.faults().count).toBe(0);
    expect(iommu.cardHolds(r.host.dp.dmaAddr, 4096)).toBeUndefined();
    r.platform.host.mapSingle(r.host.dp.dmaAddr, 4096); // for the rig's own close
  });

  it('gives SCIF every DMA channel and VOP the first one, and gives them back on remove', async () => {
    const held = new Set<DmaChannel>();
    const dma: DmaChannelProvider = {
      requestChannels: (dev, max) => {
        expect([dev.name, max]).toEqual(['mbus-dev0', 4]);
        const chans = [4, 5].map((c) => ({ chanId: c, name: `dma0chan${c}` }));
        for (const c of chans) held.add(c);
        return chans;
      },
      releaseChannel: (ch) => {
        expect(held.delete(ch)).toBe(true);
      },
    };
    const r = await rig({ dma });
    expect(r.card.scifDevice!.dmaCh.map((c) => c.chanId)).toEqual([4, 5]);
    expect(r.card.vopDevice!.dmaCh?.chanId).toBe(4);
    await r.cardDriver.exit();
    expect(held.size).toBe(0);
  });

  it('waits for each asynchronous channel release before the next and before the DMA device goes, even when one fails', async () => {
    const log: string[] = [];
    const dma: DmaChannelProvider = {
      requestChannels: () => [4, 5, 6].map((c) => ({ chanId: c, name: `dma0chan${c}` })),
      // a DMA driver's release drains the channel first
      releaseChannel: async (ch) => {
        log.push(`release ${ch.name}`);
        await new Promise((resolve) => setImmediate(resolve));
        log.push(`released ${ch.name}`);
        if (ch.chanId === 5) throw new Error('drain timed out');
      },
    };
    const cardBuses = makeCardBuses();
    const r = await rig({ dma, buses: cardBuses });
    const events = recordCardBuses(cardBuses);
    await r.cardDriver.exit();
    log.push(...events.filter((e) => e.includes('mbus')));
    expect(log).toEqual([
      'release dma0chan6',
      'released dma0chan6',
      'release dma0chan5',
      'released dma0chan5',
      'release dma0chan4',
      'released dma0chan4',
      'device-removed mbus-dev0',
    ]);
    expect(r.card.mbusDevice).toBeUndefined();
  });
});

describe('the card hw ops', () => {
  it('hand out the least used of the first 8 doorbells, lowest first, and count only those', async () => {
    const { card } = await rig();
    const ops = card.vopDevice!.hwOps;
    const scif = card.scifDevice!.hwOps;
    // SCIF and VOP share the card's doorbells and their usage counts.
    const cookies = [];
    for (let i = 0; i < 8; i++) {
      const db = i % 2 === 0 ? ops.nextDb() : scif.nextDb();
      expect(db).toBe(i);
      cookies.push(ops.requestIrq(() => undefined, 'x', null, db));
    }
    // Every one of the 8 has a user: the lowest wins again; doorbells 8-15 are accepted, not counted.
    expect(ops.nextDb()).toBe(0);
    const high = ops.requestIrq(() => undefined, 'high', null, 12);
    expect(ops.nextDb()).toBe(0);
    scif.freeIrq(cookies[5]!, null);
    expect(card.doorbellUsage(5)).toBe(0);
    expect(ops.nextDb()).toBe(5);
    expect(card.irqsInUse).toBe(8);
    ops.freeIrq(high, null);
    for (const [i, c] of cookies.entries()) if (i !== 5) ops.freeIrq(c, null);
    expect(card.irqsInUse).toBe(0);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((db) => card.doorbellUsage(db))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(() => ops.requestIrq(() => undefined, 'x', null, 16)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });

  it('map card memory directly: the DMA address is the card address the host reaches through its aperture', async () => {
    const { card, platform } = await rig();
    const ops = card.dmaOps;
    const buf = ops.alloc(8192);
    expect(buf.dmaAddr % 4096).toBe(0);
    expect(buf.dmaAddr).toBeLessThan(X100_SMPT.BASE);
    buf.va.storeU32(8, 0xabcdef01);
    const seen = platform.host.apertureWindow(buf.dmaAddr, 8192);
    expect(seen.loadU32(8)).toBe(0xabcdef01);
    expect(ops.mapSingle(buf.va.window(64, 64))).toBe(buf.dmaAddr + 64);
    ops.unmapSingle(buf.dmaAddr + 64, 64);
    ops.free(buf);
    expect(ops.liveBuffers).toBe(0);
    expect(ops.liveMappings).toBe(0);
  });

  it('ring a peer card through its MMIO window: APICICR send bit for 0-7, the RDMASR register for 8-15', async () => {
    const { card } = await rig();
    const send = card.scifDevice!.hwOps.sendP2pIntr!;
    const peerMmio = BufferMemory.allocate(X100_MMIO_SIZE, { shared: true });
    const mw = { pa: 0x3f_0010_0000, va: peerMmio, len: X100_MMIO_SIZE };
    peerMmio.storeU32(apicIcrReg(3), 0xe5);
    send(3, mw);
    expect(peerMmio.loadU32(apicIcrReg(3))).toBe(0xe5 | X100_APICICR_SEND);
    peerMmio.storeU32(rdmasrReg(17 + 2), 0xffffffff);
    send(10, mw);
    expect(peerMmio.loadU32(rdmasrReg(17 + 2))).toBe(0);
    for (const [db, w] of [
      [16, mw],
      [-1, mw],
      [1, { pa: 0, va: BufferMemory.allocate(64), len: 64 }],
    ] as const) {
      expect(() => send(db, w)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(card.vopDevice!.hwOps).not.toHaveProperty('sendP2pIntr');
  });
});

describe('the card device page (mic_dp_init)', () => {
  it('maps the page whose address the host wrote to SPAD14/15 and checks its magic', async () => {
    const r = await bare();
    const hostDp = r.host.dp;
    expect(readDpAddress(r.view)).toBe(hostDp.micAddr);
    const dp = cardDpInit(r.view);
    expect(dp.readU8(MIC_BOOTPARAM_OFFSETS.nodeId)).toBe(r.host.nodeId);
    dp.writeU8(MIC_BOOTPARAM_OFFSETS.h2cConfigDb, 5);
    expect(hostDp.mem.readU8(MIC_BOOTPARAM_OFFSETS.h2cConfigDb)).toBe(5);

    hostDp.mem.storeU32(MIC_BOOTPARAM_OFFSETS.magic, 0xdeadbeef);
    expect(() => cardDpInit(r.view)).toThrow(
      expect.objectContaining({ code: 'EIO', message: expect.stringContaining('magic') }),
    );
    hostDp.mem.storeU32(MIC_BOOTPARAM_OFFSETS.magic, MIC_MAGIC);
    // An address in the SMPT window that no entry maps (entry 1: the page is in entry 0).
    r.platform.host.writeSpad(MIC_DPLO_SPAD, 0);
    r.platform.host.writeSpad(MIC_DPHI_SPAD, (X100_SMPT.BASE + X100_SMPT.PAGE_SIZE) / 2 ** 32);
    expect(() => cardDpInit(r.view)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
  });
});

describe('cardPages', () => {
  it('is one page allocator per boot, past the first page, refusing a card that was reset', async () => {
    const r = await bare();
    const pages = cardPages(r.view);
    expect(cardPages(r.view)).toBe(pages);
    const a = pages.alloc(8192, 4096);
    expect(a.offset).toBeGreaterThanOrEqual(4096);
    expect(r.view.physAddrOf(a.mem)).toBe(a.offset);
    a.mem.writeU32(4, 0x1234);
    expect(r.platform.host.apertureWindow(a.offset, 8).readU32(4)).toBe(0x1234);
    pages.free(a.offset);
    r.platform.host.reset();
    expect(() => pages.alloc(64)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
  });
});
