import { describe, expect, it } from '@jest/globals';
import { BufferMemory } from '@mic/memory';
import { MockVopHwOps, MockVopLink } from '../src/index.js';

describe('MockVopHwOps', () => {
  it('hands out host doorbells round-robin over 4', () => {
    const ops = new MockVopHwOps({ role: 'host' });
    expect(Array.from({ length: 6 }, () => ops.nextDb())).toEqual([0, 1, 2, 3, 0, 1]);
  });

  it('hands out card doorbells least-used first over the first 8 of 16, the lowest index on a tie', () => {
    const ops = new MockVopHwOps({ role: 'card' });
    const dbs: number[] = [];
    for (let i = 0; i < 9; i++) {
      const db = ops.nextDb();
      dbs.push(db);
      ops.requestIrq(() => undefined, 'x', i, db);
    }
    expect(dbs).toEqual([...Array.from({ length: 8 }, (_, i) => i), 0]);
    expect(ops.usage(0)).toBe(2);
    expect(ops.usage(8)).toBe(0);
  });

  it('can be configured with the 8 card doorbells the VOP reference counts', () => {
    const ops = new MockVopHwOps({ role: 'card', doorbells: 8 });
    expect(() => ops.requestIrq(() => undefined, 'x', null, 8)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });

  it('delivers raiseInterrupt to the handler in a later task and records acks', async () => {
    const ops = new MockVopHwOps({ role: 'host' });
    const seen: [number, string][] = [];
    const db = ops.nextDb();
    ops.requestIrq(
      (irq, data: string) => {
        ops.ackInterrupt(irq);
        seen.push([irq, data]);
      },
      'vop0virtio1',
      'vdev',
      db,
    );
    ops.raiseInterrupt(db);
    expect(seen).toEqual([]);
    await ops.flush();
    expect(seen).toEqual([[db, 'vdev']]);
    expect(ops.acks).toEqual([db]);
  });

  it('masks a host doorbell after delivery until ackInterrupt, like the x100 host; not on the card', async () => {
    for (const role of ['host', 'card'] as const) {
      const ops = new MockVopHwOps({ role });
      let n = 0;
      const db = ops.nextDb();
      ops.requestIrq(() => void n++, 'no ack', null, db);
      ops.raiseInterrupt(db);
      await ops.flush();
      ops.raiseInterrupt(db);
      await ops.flush();
      expect([role, n]).toEqual([role, role === 'host' ? 1 : 2]);
      ops.ackInterrupt(db);
      await ops.flush();
      expect([role, n]).toEqual([role, 2]);
    }
  });

  it('records sendIntr alone and rejects -1', () => {
    const ops = new MockVopHwOps({ role: 'card' });
    ops.sendIntr(2);
    ops.sendIntr(0);
    expect(ops.sentInterrupts).toEqual([2, 0]);
    expect(() => ops.sendIntr(-1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('gives the host its own device page and the card a remote one by default', () => {
    const host = new MockVopHwOps({ role: 'host' });
    const card = new MockVopHwOps({ role: 'card' });
    expect(host.getDp()?.byteLength).toBe(4096);
    expect(host.getRemoteDp()).toBeNull();
    expect(card.getDp()).toBeNull();
    expect(card.getRemoteDp()?.byteLength).toBe(4096);
  });

  it('reaches nothing with remap unless regions are given', () => {
    const ops = new MockVopHwOps({ role: 'host' });
    expect(() => ops.remap(0, 16)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    const pool = BufferMemory.allocate(4096);
    const withPool = new MockVopHwOps({ role: 'host', remap: [{ base: 0, pool }] });
    const m = withPool.remap(16, 16);
    m.writeU8(0, 7);
    expect(pool.readU8(16)).toBe(7);
    expect(withPool.liveMappings).toBe(1);
    withPool.unmap(m);
    expect(withPool.liveMappings).toBe(0);
  });

  it('refuses to join two sides of the same role', () => {
    expect(() =>
      MockVopHwOps.connect(new MockVopHwOps({ role: 'host' }), new MockVopHwOps({ role: 'host' })),
    ).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});

describe('MockVopLink', () => {
  it('rings the card when the host sends an interrupt, and the host when the card does', async () => {
    const link = new MockVopLink();
    const got: string[] = [];
    const cardDb = link.card.nextDb();
    link.card.requestIrq(() => void got.push('card'), 'virtio intr', null, cardDb);
    const hostDb = link.host.nextDb();
    link.host.requestIrq(() => void got.push('host'), 'vop0virtio3', null, hostDb);
    link.host.sendIntr(cardDb);
    link.card.sendIntr(hostDb);
    await link.flush();
    expect(got.sort()).toEqual(['card', 'host']);
    expect(() => link.host.sendIntr(16)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => link.card.sendIntr(4)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('shares the device page: the host page is the card remote page', () => {
    const link = new MockVopLink();
    link.host.getDp()!.writeU32(0, 0xc0ffee00);
    expect(link.card.getRemoteDp()!.readU32(0)).toBe(0xc0ffee00);
    expect(link.dp.va).toBe(link.host.getDp());
  });

  it('lets the card remap host buffers at their host DMA address and the host remap card buffers', () => {
    const link = new MockVopLink();
    const hostBuf = link.hostDmaOps.alloc(8192);
    const fromCard = link.card.remap(hostBuf.dmaAddr, 8192);
    hostBuf.va.writeU32(4096, 0x12345678);
    expect(fromCard.readU32(4096)).toBe(0x12345678);
    const cardBuf = link.cardDmaOps.alloc(1024);
    const fromHost = link.host.remap(cardBuf.dmaAddr, 1024);
    fromHost.writeU16(2, 0xbeef);
    expect(cardBuf.va.readU16(2)).toBe(0xbeef);
    expect(link.aper.va.readU16(cardBuf.dmaAddr + 2)).toBe(0xbeef);
    link.card.unmap(fromCard);
    link.host.unmap(fromHost);
  });

  it('builds registration parameters for both ends', () => {
    const link = new MockVopLink({ dnode: 2 });
    expect(link.hostParams()).toMatchObject({
      dnode: 2,
      aper: link.aper,
      hwOps: link.host,
      dmaOps: link.hostDmaOps,
    });
    expect(link.cardParams()).toMatchObject({
      dnode: 0,
      aper: null,
      hwOps: link.card,
      dmaOps: link.cardDmaOps,
    });
  });
});
