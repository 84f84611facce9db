import { asBufferMemory } from '@mic/memory';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  SCIF_FENCE_INIT_PEER,
  SCIF_FENCE_INIT_SELF,
  SCIF_LOOPB_MAGIC_MARK,
  SCIF_MAP_FIXED,
  SCIF_PROT_READ,
  SCIF_PROT_WRITE,
  SCIF_REMOTE_FENCE,
  SCIF_RMA_ORDERED,
  SCIF_RMA_SYNC,
  SCIF_RMA_USECPU,
  SCIF_SIGNAL_LOCAL,
  SCIF_SIGNAL_REMOTE,
} from '../src/index.js';
import { code, type FakeDmaChannel, pair, rig, type StatusFakeDmaChannel } from './harness.js';

const RW = SCIF_PROT_READ | SCIF_PROT_WRITE;
const PAGE = 4096;

/** A connected host (`h`) / card (`c`) pair and memory on each side. */
async function setup(dma: boolean | 'status' = false) {
  const r = await rig({ dma });
  const { a: c, b: h } = await pair(r.host, r.cards[0]!, 2000);
  // Memory from the links' allocators, so it is nobody else's (rings and QPs come from there too).
  const hostMem = r.fabric.hostDmaOps.alloc(64 * PAGE).va;
  const cardMem = r.fabric.links[0]!.cardDmaOps.alloc(64 * PAGE).va;
  return { r, h, c, hostMem, cardMem };
}

describe('registration', () => {
  it('registers FIXED and allocated windows and checks every argument', async () => {
    const { h, hostMem } = await setup();
    expect(await h.register(hostMem.window(0, 2 * PAGE), 0x10000, RW, SCIF_MAP_FIXED)).toBe(0x10000);
    const top = await h.register(hostMem.window(2 * PAGE, PAGE), 0, SCIF_PROT_READ);
    expect(top % PAGE).toBe(0);
    expect(top).toBeGreaterThan(2 ** 52); // from the top of the address space; the hint ignored
    expect(await code(h.register(hostMem.window(3 * PAGE, PAGE), 0x11000, RW, SCIF_MAP_FIXED))).toBe(
      'EADDRINUSE',
    );
    expect(await code(h.register(hostMem.window(3 * PAGE, PAGE), 0x10800, RW, SCIF_MAP_FIXED))).toBe(
      'EINVAL',
    );
    expect(await code(h.register(hostMem.window(3 * PAGE, 100), 0, RW))).toBe('EINVAL');
    expect(await code(h.register(hostMem.window(3 * PAGE, PAGE), 0, 4))).toBe('EINVAL');
    expect(await code(h.register(hostMem.window(3 * PAGE, PAGE), 0, RW, 0x40))).toBe('EINVAL');
    expect(await code(h.register(hostMem.window(3 * PAGE, PAGE), -PAGE, RW, SCIF_MAP_FIXED))).toBe('EINVAL');
    // Memory the link cannot reach.
    const alien = new (await import('@mic/memory')).BufferMemory(new ArrayBuffer(PAGE));
    expect(await code(h.register(alien, 0, RW))).toBe('EFAULT');
    // unregister: whole windows only
    expect(await code(h.unregister(0x10000, PAGE))).toBe('ENXIO');
    expect(await code(h.unregister(0x10000, 100))).toBe('EINVAL');
    expect(await code(h.unregister(0x20000, PAGE))).toBe('ENXIO');
    await h.unregister(0x10000, 2 * PAGE);
    // the range is free again
    expect(await h.register(hostMem.window(0, PAGE), 0x10000, RW, SCIF_MAP_FIXED)).toBe(0x10000);
  });

  it('unregisters several contiguous windows at once, and ENXIO for a gap', async () => {
    const { h, hostMem } = await setup();
    await h.register(hostMem.window(0, PAGE), 0, RW, SCIF_MAP_FIXED);
    await h.register(hostMem.window(PAGE, PAGE), PAGE, RW, SCIF_MAP_FIXED);
    await h.register(hostMem.window(2 * PAGE, PAGE), 3 * PAGE, RW, SCIF_MAP_FIXED);
    expect(await code(h.unregister(0, 4 * PAGE))).toBe('ENXIO');
    await h.unregister(0, 2 * PAGE);
    await h.unregister(3 * PAGE, PAGE);
  });
});

describe('RMA transfers', () => {
  /** A SYNC DMA copy of 4 pages, host to card or back, on a fake channel of kind `dma`; checks the bytes. */
  async function syncCopy(dma: true | 'status', toCard: boolean) {
    const { r, h, c, hostMem, cardMem } = await setup(dma);
    await h.register(hostMem.window(0, 4 * PAGE), 0, RW, SCIF_MAP_FIXED);
    await c.register(cardMem.window(0, 4 * PAGE), 0, RW, SCIF_MAP_FIXED);
    const [from, to] = toCard ? [hostMem, cardMem] : [cardMem, hostMem];
    asBufferMemory(from, 'test memory')
      .bytes(0, 4 * PAGE)
      .fill(0x5c);
    if (toCard) await h.writeto(0, 4 * PAGE, 0, SCIF_RMA_SYNC);
    else await h.readfrom(0, 4 * PAGE, 0, SCIF_RMA_SYNC);
    const copied = asBufferMemory(to, 'test memory')
      .bytes(0, 4 * PAGE)
      .every((b) => b === 0x5c);
    expect(copied).toBe(true);
    return r.hostDevs[0]!.dmaCh[0] as StatusFakeDmaChannel;
  }

  it('a SYNC DMA copy sleeps on an interrupting descriptor when its channel cannot report status', async () => {
    const chan: FakeDmaChannel = await syncCopy(true, true);
    expect(chan.copies).toBe(2); // the body, then the interrupting descriptor
    expect(chan.interrupts).toBe(1);
  });

  it('a SYNC DMA copy polls the status of a channel that reports it, and needs no interrupt when done', async () => {
    const chan = await syncCopy('status', false);
    expect(chan.statusQueries).toBeGreaterThan(0);
    expect(chan.interrupts).toBe(0);
  });

  it('reads and writes the peer window (CPU), with protection and range checks', async () => {
    const { h, c, hostMem, cardMem } = await setup();
    await h.register(hostMem.window(0, 4 * PAGE), 0, RW, SCIF_MAP_FIXED);
    await c.register(cardMem.window(0, 4 * PAGE), 0x100000, SCIF_PROT_READ, SCIF_MAP_FIXED);
    asBufferMemory(cardMem, 'test memory').bytes(100, 50).set(new Uint8Array(50).fill(0xab));
    await h.readfrom(10, 50, 0x100000 + 100);
    expect([...asBufferMemory(hostMem, 'test memory').bytes(10, 50)]).toEqual(new Array(50).fill(0xab));
    // The card's window is read-only: writeto is EPERM; outside it ENXIO.
    expect(await code(h.writeto(0, 64, 0x100000))).toBe('EPERM');
    expect(await code(h.readfrom(0, 64, 0x100000 + 4 * PAGE))).toBe('ENXIO');
    expect(await code(h.readfrom(4 * PAGE, 64, 0x100000))).toBe('ENXIO');
    expect(await code(h.readfrom(0, 64, 0x100000, 0x100))).toBe('EINVAL');
    expect(await code(h.readfrom(0, 0, 0x100000))).toBe('EINVAL');
    // v-variants: straight from and into a buffer.
    const buf = new Uint8Array(300);
    await h.vreadfrom(buf, 0x100000 + 90);
    expect(buf.subarray(10, 60).every((b) => b === 0xab)).toBe(true);
    await c.vwriteto(new Uint8Array([1, 2, 3]), 4 * PAGE - 1 - 2, SCIF_RMA_ORDERED);
    expect([...asBufferMemory(hostMem, 'test memory').bytes(4 * PAGE - 3, 3)]).toEqual([1, 2, 3]);
  });

  it('random transfers (offsets, lengths, alignments, flags, DMA or CPU) leave memory equal to a plain copy', async () => {
    for (const dma of [true, false]) {
      const { r, h, c, hostMem, cardMem } = await setup(dma);
      const size = 24 * PAGE;
      // The host window in three pieces (three chunks), the card's in one.
      const pieces = [
        hostMem.window(0, 8 * PAGE),
        hostMem.window(16 * PAGE, 8 * PAGE),
        hostMem.window(40 * PAGE, 8 * PAGE),
      ];
      await h.register(pieces, 0, RW, SCIF_MAP_FIXED);
      await c.register(cardMem.window(0, size), 0, RW, SCIF_MAP_FIXED);
      const hostModel = new Uint8Array(size);
      const cardModel = new Uint8Array(size);
      const hostView = (): Uint8Array => {
        const out = new Uint8Array(size);
        pieces.forEach((p, i) => out.set(asBufferMemory(p, 'test memory').bytes(0, 8 * PAGE), i * 8 * PAGE));
        return out;
      };
      const same = (x: Uint8Array, y: Uint8Array): boolean => Buffer.compare(x, y) === 0;
      let seed = 1;
      const op = fc.record({
        write: fc.boolean(),
        fromHost: fc.boolean(),
        v: fc.boolean(),
        loLine: fc.integer({ min: 0, max: size / 64 - 1 }),
        roLine: fc.integer({ min: 0, max: size / 64 - 1 }),
        // Half the time both sides sit at the same offset in their 64-byte line (the DMA case).
        inLine: fc.oneof(
          fc.integer({ min: 0, max: 63 }).map((a) => [a, a]),
          fc.tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 63 })),
        ),
        len: fc.integer({ min: 1, max: 3 * PAGE }),
        flags: fc.constantFrom(
          0,
          SCIF_RMA_USECPU,
          SCIF_RMA_SYNC,
          SCIF_RMA_ORDERED,
          SCIF_RMA_SYNC | SCIF_RMA_ORDERED,
        ),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
          for (const o of ops) {
            const lo = o.loLine * 64 + o.inLine[0]!;
            const ro = o.roLine * 64 + o.inLine[1]!;
            const len = Math.min(o.len, size - lo, size - ro);
            const [ep, mine, theirs] = o.fromHost ? [h, hostModel, cardModel] : [c, cardModel, hostModel];
            if (o.v) {
              const buf = new Uint8Array(len).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff);
              if (o.write) {
                await ep.vwriteto(buf, ro, o.flags);
                theirs.set(buf, ro);
              } else {
                await ep.vreadfrom(buf, ro, o.flags);
                expect(same(buf, theirs.subarray(ro, ro + len))).toBe(true);
              }
            } else if (o.write) {
              await ep.writeto(lo, len, ro, o.flags);
              theirs.set(mine.subarray(lo, lo + len), ro);
            } else {
              await ep.readfrom(lo, len, ro, o.flags);
              mine.set(theirs.subarray(ro, ro + len), lo);
            }
            // Fences make asynchronous DMA visible before the next step reads memory.
            await ep.fenceWait(await ep.fenceMark(SCIF_FENCE_INIT_SELF));
          }
          expect(same(hostView(), hostModel)).toBe(true);
          expect(same(asBufferMemory(cardMem, 'test memory').bytes(0, size), cardModel)).toBe(true);
        }),
        { numRuns: 30, endOnFailure: true },
      );
      if (dma) {
        const chans = r.hostDevs[0]!.dmaCh as FakeDmaChannel[];
        expect(chans[0]!.copies).toBeGreaterThan(0); // the DMA path ran
      }
    }
  });
});

describe('fences', () => {
  it('SELF and PEER marks and waits, with asynchronous DMA', async () => {
    const { h, c, hostMem, cardMem } = await setup(true);
    await h.register(hostMem.window(0, 4 * PAGE), 0, RW, SCIF_MAP_FIXED);
    await c.register(cardMem.window(0, 4 * PAGE), 0, RW, SCIF_MAP_FIXED);
    asBufferMemory(hostMem, 'test memory')
      .bytes(0, 4 * PAGE)
      .fill(0x5a);
    await h.writeto(0, 4 * PAGE, 0); // asynchronous DMA
    const mark = await h.fenceMark(SCIF_FENCE_INIT_SELF);
    expect(mark & SCIF_REMOTE_FENCE).toBe(0);
    await h.fenceWait(mark);
    expect(
      asBufferMemory(cardMem, 'test memory')
        .bytes(0, 4 * PAGE)
        .every((b) => b === 0x5a),
    ).toBe(true);
    // The card marks the host's RMAs.
    asBufferMemory(hostMem, 'test memory')
      .bytes(0, 4 * PAGE)
      .fill(0x33);
    await h.writeto(0, 4 * PAGE, 0);
    const peerMark = await c.fenceMark(SCIF_FENCE_INIT_PEER);
    expect((peerMark & SCIF_REMOTE_FENCE) >>> 0).toBe(SCIF_REMOTE_FENCE);
    await c.fenceWait(peerMark);
    expect(
      asBufferMemory(cardMem, 'test memory')
        .bytes(0, 4 * PAGE)
        .every((b) => b === 0x33),
    ).toBe(true);
    expect(await code(h.fenceMark(3))).toBe('EINVAL');
    expect(await code(h.fenceMark(0))).toBe('EINVAL');
    expect(await code(h.fenceWait(12345))).toBe('EINVAL');
  });

  it('signals local and remote 64-bit values after the marked RMAs (SELF and PEER)', async () => {
    const { h, c, hostMem, cardMem } = await setup(true);
    await h.register(hostMem.window(0, 2 * PAGE), 0, RW, SCIF_MAP_FIXED);
    await c.register(cardMem.window(0, 2 * PAGE), 0, RW, SCIF_MAP_FIXED);
    asBufferMemory(hostMem, 'test memory').bytes(0, PAGE).fill(7);
    await h.writeto(0, PAGE, 0);
    const v = 0x1122334455667788n;
    await h.fenceSignal(
      PAGE + 8,
      v,
      PAGE + 16,
      v + 1n,
      SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL | SCIF_SIGNAL_REMOTE,
    );
    expect(hostMem.readBigU64(PAGE + 8)).toBe(v);
    expect(cardMem.readBigU64(PAGE + 16)).toBe(v + 1n);
    expect(
      asBufferMemory(cardMem, 'test memory')
        .bytes(0, PAGE)
        .every((b) => b === 7),
    ).toBe(true); // the RMA landed first
    // PEER with one flag each: documented semantics (lval at loff locally, rval at roff remotely).
    await c.fenceSignal(PAGE + 24, 0xaan, 0, 0n, SCIF_FENCE_INIT_PEER | SCIF_SIGNAL_LOCAL);
    expect(cardMem.readBigU64(PAGE + 24)).toBe(0xaan);
    await c.fenceSignal(0, 0n, PAGE + 32, 0xbbn, SCIF_FENCE_INIT_PEER | SCIF_SIGNAL_REMOTE);
    expect(hostMem.readBigU64(PAGE + 32)).toBe(0xbbn);
    expect(await code(h.fenceSignal(2, 0n, 0, 0n, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL))).toBe('EINVAL');
    expect(await code(h.fenceSignal(0, 0n, 0, 0n, SCIF_FENCE_INIT_SELF))).toBe('EINVAL');
    expect(await code(h.fenceSignal(8 * PAGE, 0n, 0, 0n, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL))).toBe(
      'ENXIO',
    );
    expect(await code(c.fenceSignal(8 * PAGE, 0n, 0, 0n, SCIF_FENCE_INIT_PEER | SCIF_SIGNAL_LOCAL))).toBe(
      'ENXIO',
    );
  });

  it('the management node talking to itself uses the loopback mark 0xdead', async () => {
    const r = await rig();
    const { a, b } = await pair(r.host, r.host, 2100);
    const mem = r.fabric.hostDmaOps.alloc(2 * PAGE).va;
    await a.register(mem.window(0, PAGE), 0, RW, SCIF_MAP_FIXED);
    await b.register(mem.window(PAGE, PAGE), 0, RW, SCIF_MAP_FIXED);
    asBufferMemory(mem, 'test memory').bytes(0, 10).fill(9);
    await a.writeto(0, 10, 0);
    expect([...asBufferMemory(mem, 'test memory').bytes(PAGE, 10)]).toEqual(new Array(10).fill(9));
    expect(await a.fenceMark(SCIF_FENCE_INIT_SELF)).toBe(SCIF_LOOPB_MAGIC_MARK);
    await a.fenceWait(SCIF_LOOPB_MAGIC_MARK);
    expect(await code(a.fenceWait(1))).toBe('EINVAL');
  });
});

describe('mmap', () => {
  it('is a live view of the peer window, refused after unmap and after node loss', async () => {
    const { r, h, c, cardMem } = await setup();
    await c.register(cardMem.window(0, 2 * PAGE), 0x4000, RW, SCIF_MAP_FIXED);
    const m = h.mmap(0x4000 + 100, 200, RW);
    cardMem.writeU32(100, 0xdeadbeef);
    expect(m.mem.readU32(0)).toBe(0xdeadbeef);
    m.mem.writeU32(4, 0x12345678);
    expect(cardMem.readU32(104)).toBe(0x12345678);
    // While mapped, the card's unregister is refused by the host (NACK): the window stays.
    await c.unregister(0x4000, 2 * PAGE);
    expect(m.mem.readU32(0)).toBe(0xdeadbeef);
    m.unmap();
    expect(m.valid).toBe(false);
    expect(() => m.mem.readU32(0)).toThrow(/gone/);
    await c.register(cardMem.window(2 * PAGE, PAGE), 0x8000, RW, SCIF_MAP_FIXED);
    const m2 = h.mmap(0x8000, 64, SCIF_PROT_READ);
    await r.removeCardDev(0);
    await r.host.idle();
    expect(m2.valid).toBe(false);
    expect(() => m2.mem.readU8(0)).toThrow(/gone/);
  });
});

describe('closed endpoints and their peer windows', () => {
  it('a closed endpoint still holding a peer window is freed when the peer closes', async () => {
    const r = await rig();
    const { a, b } = await pair(r.host, r.cards[0]!, 7100);
    const cardMem = r.cardDevs[0]!.dmaOps.alloc(4096);
    await a.register(cardMem.va, 0x1000, SCIF_PROT_READ | SCIF_PROT_WRITE, SCIF_MAP_FIXED);
    const before = r.host.endpointCount;
    // The host closes first: its endpoint becomes a zombie that still holds the card's window.
    await b.close();
    await r.host.idle();
    expect(r.host.endpointCount).toBe(before);
    // The card closes and its window goes: the host's misc work frees the zombie then, not at
    // some later close on the host.
    await a.close();
    await r.host.idle();
    await new Promise((res) => setImmediate(res));
    expect(r.host.endpointCount).toBe(before - 1);
  });
});

describe('getPages / putPages', () => {
  it("hands out the peer's page addresses with a reference, held against the peer's unregister", async () => {
    const { r, h, c } = await setup();
    const cardBuf = r.fabric.links[0]!.cardDmaOps.alloc(3 * PAGE);
    const cardMem = cardBuf.va;
    await c.register(cardMem, 0x4000, RW, SCIF_MAP_FIXED);
    const range = h.getPages(0x5000, 2 * PAGE);
    expect(range.nrPages).toBe(2);
    expect(range.protFlags).toBe(RW);
    expect(range.cookie).toBeGreaterThan(0);
    // On the host, a card page's address is its card address plus the aperture base.
    const aper = r.hostDevs[0]!.aper!.pa;
    expect(range.physAddr).toEqual([cardBuf.dmaAddr + PAGE + aper, cardBuf.dmaAddr + 2 * PAGE + aper]);
    // va[] reaches the card's pages.
    cardMem.writeU32(PAGE + 8, 0xcafef00d);
    expect(range.va![0]!.readU32(8)).toBe(0xcafef00d);
    range.va![1]!.writeU32(0, 0x01020304);
    expect(cardMem.readU32(2 * PAGE)).toBe(0x01020304);
    // Arguments as the kernel checks them.
    expect(await code(() => h.getPages(0x5001, PAGE))).toBe('EINVAL');
    expect(await code(() => h.getPages(0x5000, 0))).toBe('EINVAL');
    expect(await code(() => h.getPages(0x6000, 2 * PAGE))).toBe('ENXIO');
    // Held: the card's unregister is refused by the host, and the offset stays taken.
    await c.unregister(0x4000, 3 * PAGE);
    expect(await code(c.register(cardMem, 0x4000, RW, SCIF_MAP_FIXED))).toBe('EADDRINUSE');
    // Put back: the last reference sends SCIF_MUNMAP and the card's window goes.
    h.putPages(range);
    expect(() => range.va![0]!.readU32(0)).toThrow(/gone/);
    expect(() => h.putPages(range)).toThrow(/put already/);
    await r.host.idle();
    await r.fabric.flush();
    await r.cards[0]!.idle();
    expect(await c.register(cardMem, 0x4000, RW, SCIF_MAP_FIXED)).toBe(0x4000);
  });

  it('on a card: host DMA addresses and no va; on the host, va dies with the node', async () => {
    const { r, h, c, hostMem, cardMem } = await setup();
    await h.register(hostMem.window(0, 2 * PAGE), 0x10000, RW, SCIF_MAP_FIXED);
    const range = c.getPages(0x10000, 2 * PAGE);
    expect(range.va).toBeUndefined();
    expect(range.physAddr[1]! - range.physAddr[0]!).toBe(PAGE);
    expect(() => h.putPages(range)).toThrow(/not a range/);
    c.putPages(range);
    await c.register(cardMem.window(0, PAGE), 0x8000, RW, SCIF_MAP_FIXED);
    const onHost = h.getPages(0x8000, PAGE);
    await r.removeCardDev(0);
    await r.host.idle();
    expect(() => onHost.va![0]!.readU8(0)).toThrow(/gone/);
    // The endpoint is DISCONNECTED after the node loss: putting back is still allowed.
    h.putPages(onHost);
  });
});
