// The shared halves of the hardware drivers' hw ops (DoorbellLinkOps, ThreadedIrqOps, RemapBook)
// and DMA map ops (DmaMapOpsBase), on stand-in hardware.
import { describe, expect, it } from '@jest/globals';
import { nullLogger } from '@mic/logger';
import { BufferMemory, type Memory } from '@mic/memory';
import {
  type DmaAllocation,
  DmaMapOpsBase,
  DoorbellLinkOps,
  HostDoorbellAllocator,
  type IrqSourceOps,
  RemapBook,
  ThreadedIrqOps,
  ThreadedIrqTable,
} from '../src/index.js';

type Kind = 'doorbell' | 'dma';

/** An interrupt controller whose handlers are fired by hand. */
class FakeHw implements IrqSourceOps<{ src: number; fn: () => void }> {
  readonly installed: { src: number; fn: () => void }[] = [];
  requestIrq(src: number, fn: () => void): { src: number; fn: () => void } {
    const c = { src, fn };
    this.installed.push(c);
    return c;
  }
  freeIrq(cookie: { src: number; fn: () => void }): void {
    this.installed.splice(this.installed.indexOf(cookie), 1);
  }
  fire(src: number): void {
    for (const c of [...this.installed]) if (c.src === src) c.fn();
  }
}

function table(hw: FakeHw): ThreadedIrqTable<Kind> {
  return new ThreadedIrqTable<Kind>({
    side: 'host',
    hw,
    kinds: { doorbell: { count: 4, src: (n) => n }, dma: { count: 8, src: (n) => 8 + n } },
    logger: nullLogger,
  });
}

/** A host side whose peer memory is one buffer and whose rings and acks are recorded. */
class TestLinkOps extends DoorbellLinkOps<Kind> {
  readonly rung: number[] = [];
  acks = 0;
  readonly peer = BufferMemory.allocate(4096);
  constructor(irqs: ThreadedIrqTable<Kind>) {
    super({ side: 'host', irqs, doorbellKind: 'doorbell', doorbells: new HostDoorbellAllocator(4) });
  }
  protected ring(db: number): void {
    this.rung.push(db);
  }
  protected ack(): void {
    this.acks++;
  }
  protected window(pa: number, len: number): Memory {
    return this.peer.window(pa, len);
  }
}

class TestIrqOps extends ThreadedIrqOps<Kind> {
  acks = 0;
  constructor(irqs: ThreadedIrqTable<Kind>) {
    super(irqs, 'dma');
  }
  protected ack(): void {
    this.acks++;
  }
}

describe('DoorbellLinkOps', () => {
  it('picks by the side policy, installs on the doorbell kind and acks through the side', () => {
    const hw = new FakeHw();
    const ops = new TestLinkOps(table(hw));
    expect([ops.nextDb(), ops.nextDb(), ops.nextDb()]).toEqual([0, 1, 2]);
    const got: [number, string][] = [];
    const cookie = ops.requestIrq((irq, d: string) => void got.push([irq, d]), 'x', 'data', 3);
    hw.fire(3);
    expect(got).toEqual([[3, 'data']]);
    ops.ackInterrupt(3);
    expect(ops.acks).toBe(1);
    ops.freeIrq(cookie, 'data');
    expect(hw.installed).toEqual([]);
    expect(() => ops.requestIrq(null as never, 'none', null, 0)).toThrow(
      "interrupt request 'none' has no handler",
    );
    expect(() => ops.requestIrq(() => undefined, 'x', null, 4)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });

  it('rings the other side, refusing "no doorbell" before the hardware sees it', () => {
    const ops = new TestLinkOps(table(new FakeHw()));
    ops.sendIntr(7);
    expect(() => ops.sendIntr(-1)).toThrow('card doorbell -1 is "no doorbell": nothing to ring');
    expect(ops.rung).toEqual([7]);
  });

  it('remaps the other side after checking the range, and unmaps only what it mapped', () => {
    const ops = new TestLinkOps(table(new FakeHw()));
    const va = ops.remap(0x100, 16);
    va.writeU8(0, 9);
    expect(ops.peer.readU8(0x100)).toBe(9);
    expect(ops.liveMappings).toBe(1);
    for (const [pa, len] of [
      [0, 0],
      [-1, 4],
      [0, 1.5],
    ] as const) {
      expect(() => ops.remap(pa, len)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(() => ops.remap(4090, 16)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    ops.unmap(va);
    expect(() => ops.unmap(va)).toThrow('unmap of memory that is not a live remap of this host device');
    expect(ops.liveMappings).toBe(0);
  });
});

describe('ThreadedIrqOps', () => {
  it('requests threaded interrupts on its kind and acks through the side', async () => {
    const hw = new FakeHw();
    const ops = new TestIrqOps(table(hw));
    const calls: string[] = [];
    const cookie = ops.requestThreadedIrq(null, () => void calls.push('thread'), 'ch1', null, 1);
    hw.fire(9);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(['thread']);
    ops.ackInterrupt(1);
    expect(ops.acks).toBe(1);
    ops.freeIrq(cookie, null);
    expect(hw.installed).toEqual([]);
  });
});

describe('RemapBook', () => {
  it('checks before it asks for a window, and names itself when an unmap is refused', () => {
    const book = new RemapBook('mock remap');
    let asked = 0;
    const pool = BufferMemory.allocate(64);
    expect(() => book.map(0, 0, () => (asked++, pool))).toThrow('remap length 0 is not a positive integer');
    expect(asked).toBe(0);
    const va = book.map(0, 8, (pa, len) => pool.window(pa, len));
    expect(book.live).toBe(1);
    expect(() => book.unmap(pool)).toThrow('unmap of memory that is not a live remap of this mock remap');
    book.unmap(va);
    expect(book.live).toBe(0);
  });
});

/** DMA map ops over a buffer whose mapping adds 0x1000 and records unmaps. */
class TestDmaOps extends DmaMapOpsBase {
  readonly mem = BufferMemory.allocate(1 << 16);
  readonly released: number[] = [];
  readonly unmapped: number[] = [];
  #next = 4096;
  constructor() {
    super('test dma');
  }
  protected allocMapped(size: number, align: number): DmaAllocation {
    const at = Math.ceil(this.#next / align) * align;
    this.#next = at + size;
    return { va: this.mem.window(at, size), dmaAddr: at + 0x1000, release: () => this.released.push(at) };
  }
  protected addrOf(va: Memory): number {
    const off = (va as Partial<BufferMemory>).byteOffset;
    if ((va as Partial<BufferMemory>).buffer !== this.mem.buffer || off === undefined) {
      throw new Error('not mine');
    }
    return off;
  }
  protected override mapRange(addr: number): number {
    return addr + 0x1000;
  }
  protected override unmapRange(dmaAddr: number): void {
    this.unmapped.push(dmaAddr);
  }
}

describe('DmaMapOpsBase', () => {
  it('aligns allocations by size, frees only live buffers once, and counts mappings', () => {
    const ops = new TestDmaOps();
    const small = ops.alloc(100);
    const page = ops.alloc(5000);
    expect([small.dmaAddr % 64, (page.dmaAddr - 0x1000) % 4096]).toEqual([0, 0]);
    expect(Object.isFrozen(small)).toBe(true);
    expect(ops.liveBuffers).toBe(2);
    ops.free(small);
    expect(() => ops.free(small)).toThrow(/test dma: buffer at 0x[0-9a-f]+ is not live/);
    expect(() => ops.free({ ...page })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => ops.free(null as never)).toThrow('test dma: buffer to free null is not an object');
    expect(ops.released).toEqual([small.dmaAddr - 0x1000]);
    for (const size of [0, -1, 1.5]) {
      expect(() => ops.alloc(size)).toThrow(`test dma: allocation size ${size} is not a positive integer`);
    }

    const addr = ops.mapSingle(page.va.window(64, 64));
    expect(addr).toBe(page.dmaAddr + 64);
    expect(ops.liveMappings).toBe(1);
    expect(() => ops.mapSingle(page.va.window(0, 0))).toThrow('test dma: cannot map an empty view');
    ops.unmapSingle(addr, 64);
    expect(ops.unmapped).toEqual([addr]);
    expect(() => ops.unmapSingle(addr, 64)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(ops.liveMappings).toBe(0);
  });
});
