import { describe, expect, it } from '@jest/globals';
import { MockScifFabric, MockScifHwOps } from '../src/index.js';

describe('MockScifHwOps', () => {
  it('hands out host doorbells round-robin over 4 and card doorbells least-used over the first 8 of 16 lines', () => {
    const host = new MockScifHwOps({ role: 'host' });
    const card = new MockScifHwOps({ role: 'card' });
    expect([host.nextDb(), host.nextDb(), host.nextDb(), host.nextDb(), host.nextDb()]).toEqual([
      0, 1, 2, 3, 0,
    ]);
    expect(card.nextDb()).toBe(0);
    expect(card.nextDb()).toBe(0);
    card.requestIrq(() => undefined, 'SCIF_INTR', null, 0);
    expect(card.nextDb()).toBe(1);
    expect(card.lines.count).toBe(16);
    expect(card.lines.allocatable).toBe(8);
  });

  it('records sendIntr and sendP2pIntr when not joined', () => {
    const card = new MockScifHwOps({ role: 'card' });
    card.sendIntr(3);
    card.sendP2pIntr!(9, { pa: 0x1000, va: null as never, len: 0 });
    expect(card.sentInterrupts).toEqual([3]);
    expect(card.sentP2pInterrupts).toEqual([{ db: 9, pa: 0x1000 }]);
    expect(() => card.sendP2pIntr!(16, { pa: 0, va: null as never, len: 0 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});

describe('MockScifFabric', () => {
  it('delivers doorbells between the host and a card both ways', async () => {
    const fabric = new MockScifFabric();
    const link = fabric.links[0]!;
    const got: [string, number, unknown][] = [];
    const hdb = link.host.nextDb();
    link.host.requestIrq((irq, d) => void got.push(['host', irq, d]), 'SCIF_INTR', 'h', hdb);
    const cdb = link.card.nextDb();
    link.card.requestIrq((irq, d) => void got.push(['card', irq, d]), 'SCIF_INTR', 'c', cdb);
    link.card.sendIntr(hdb);
    link.host.sendIntr(cdb);
    await fabric.flush();
    expect(got).toEqual(
      expect.arrayContaining([
        ['host', hdb, 'h'],
        ['card', cdb, 'c'],
      ]),
    );
  });

  it('rings another card through its MMIO window and refuses windows that are not a card', async () => {
    const fabric = new MockScifFabric({ cards: 2 });
    const [a, b] = fabric.links as [
      NonNullable<(typeof fabric.links)[0]>,
      NonNullable<(typeof fabric.links)[1]>,
    ];
    let hits = 0;
    const db = b.card.nextDb();
    b.card.requestIrq(() => void hits++, 'p2p', null, db);
    a.card.sendP2pIntr!(db, b.hostMmio);
    await fabric.flush();
    expect(hits).toBe(1);
    expect(() => a.card.sendP2pIntr!(db, { pa: 0x1234, va: b.cardMmio, len: 4096 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => a.card.sendP2pIntr!(db, a.hostMmio)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('shares the device page and maps memory across the link', () => {
    const fabric = new MockScifFabric();
    const link = fabric.links[0]!;
    link.dp.va.writeU32(8, 0x11223344);
    expect(link.rdp.readU32(8)).toBe(0x11223344);
    const qp = fabric.hostDmaOps.alloc(65536);
    const fromCard = link.card.remap(qp.dmaAddr, 65536);
    fromCard.writeU8(65535, 9);
    expect(qp.va.readU8(65535)).toBe(9);
    const ring = link.cardDmaOps.alloc(4096);
    const fromHost = link.host.remap(ring.dmaAddr, 4096);
    ring.va.writeU32(0, 5);
    expect(fromHost.readU32(0)).toBe(5);
    expect(link.aper.va.readU32(ring.dmaAddr)).toBe(5);
  });

  it('gives each card its own node id, RAM, MMIO and device page', () => {
    const fabric = new MockScifFabric({ cards: 3 });
    expect(fabric.links.map((l) => l.node)).toEqual([1, 2, 3]);
    const pas = new Set(fabric.links.map((l) => l.hostMmio.pa));
    expect(pas.size).toBe(3);
    expect(fabric.links[0]!.dp.dmaAddr).not.toBe(fabric.links[1]!.dp.dmaAddr);
    expect(fabric.links[2]!.cardParams()).toMatchObject({ dnode: 0, snode: 3 });
  });
});
