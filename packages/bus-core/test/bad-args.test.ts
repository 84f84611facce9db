// Issue 10, defect 5: every public function of @mic/bus-core, the mocks included, refuses a bad
// argument with a MicError that names it and shows the value, never a TypeError or a silent
// default. A completeness check lists every export the table leaves out, with the reason.
import { describe, expect, it } from '@jest/globals';
import { badArg, badArgCoverage, optionsParam, sweepBadArguments, type BadArgEntry } from '@mic/errors';
import { nullLogger } from '@mic/logger';
import { BufferMemory, type Memory } from '@mic/memory';
import * as busCore from '../src/index.js';
import {
  AsyncMutex,
  Bus,
  type BusDriver,
  CardDoorbellAllocator,
  type DmaAllocation,
  DmaMapOpsBase,
  DmaMappingCounts,
  DoorbellLinkOps,
  HostDoorbellAllocator,
  IndexAllocator,
  type IrqSourceOps,
  MemoryPool,
  MockDmaMapOps,
  MockIrqLines,
  MockLinkEnd,
  MockRemapper,
  RangeAllocator,
  RemapBook,
  ThreadedIrqOps,
  ThreadedIrqTable,
  checkDeviceId,
  checkIdTable,
  checkOps,
  checkWindow,
  formatModalias,
  idAttributes,
  matchIdTable,
  unwind,
} from '../src/index.js';

/** An entry: `name`, how to call it, good arguments, and its swept parameters. */
const e = badArg;
/** The same, for a call that refuses some bad values with `ENODEV` (an object it does not know). */
const enodev = (entry: BadArgEntry): BadArgEntry => ({ ...entry, codes: ['EINVAL', 'ENODEV'] });
/** An `unmap` entry: `unmap(arg)` after a `remap`, where the good argument is what `remap` returned. */
const unmapEntry = (name: string, remap: () => Memory, unmap: (va: unknown) => void): BadArgEntry =>
  e(
    name,
    (a) => {
      const va = remap();
      try {
        unmap(a[0] === 'va' ? va : a[0]);
      } catch (err) {
        unmap(va);
        throw err;
      }
    },
    ['va'],
    [0, /unmap/],
  );

const noop = (): void => undefined;
const ID = { device: 1, vendor: 0xffffffff } as const;
/** An argument that is a handler or nothing. */
const OPTIONAL_FN = [undefined, null];

// A bus with identity devices, and a driver that binds everything.
interface Dev {
  readonly name: string;
}
type Drv = BusDriver<Dev>;
const busType = { name: 'test_bus', create: (d: Dev) => d, match: () => true, modalias: (d: Dev) => d.name };
const bus = new Bus<Dev, Drv>(busType);
const boundDev = await bus.registerDevice({ name: 'bound0' });
let seq = 0;
const driver = (): Drv => ({ name: `drv${seq++}`, probe: noop, remove: noop });

// Interrupt tables, link ops and their stand-in hardware.
type Kind = 'doorbell' | 'dma';
const fakeHw: IrqSourceOps<number> = { requestIrq: (src) => src, freeIrq: noop };
const KINDS = { doorbell: { count: 4, src: (n: number) => n }, dma: { count: 8, src: (n: number) => 8 + n } };
const irqTable = new ThreadedIrqTable<Kind, number>({
  side: 'host',
  hw: fakeHw,
  kinds: KINDS,
  logger: nullLogger,
});
const tableOptions = { side: 'host', hw: fakeHw, kinds: KINDS, logger: nullLogger };
const peer = BufferMemory.allocate(4096);

class TestLinkOps extends DoorbellLinkOps<Kind> {
  constructor(options: unknown) {
    super(options as never);
  }
  protected ring(): void {}
  protected ack(): void {}
  protected window(pa: number, len: number): Memory {
    return peer.window(pa, len);
  }
}
const linkOptions = {
  side: 'host',
  irqs: irqTable,
  doorbellKind: 'doorbell',
  doorbells: new HostDoorbellAllocator(4),
} as const;
const linkOps = new TestLinkOps(linkOptions);

class TestIrqOps extends ThreadedIrqOps<Kind> {
  constructor(irqs: unknown) {
    super(irqs as never, 'dma');
  }
  protected ack(): void {}
}
const irqOps = new TestIrqOps(irqTable);

class TestMapOps extends DmaMapOpsBase {
  constructor(name: unknown = 'test dma') {
    super(name as never);
  }
  protected allocMapped(size: number): DmaAllocation {
    return { va: BufferMemory.allocate(size), dmaAddr: 4096, release: noop };
  }
  protected addrOf(): number {
    return 4096;
  }
}

// The mocks.
const pool = BufferMemory.allocate(1 << 16);
const mockDma = new MockDmaMapOps({ pool, base: 0x1000 });
const lines = new MockIrqLines({ count: 4 });
const remapper = new MockRemapper([{ base: 0, pool: peer }]);
const hostEnd = new MockLinkEnd('test', { role: 'host', remap: [{ base: 0, pool: peer }] });
/** A card end joined to a host end: its `sendIntr` rings the host's 4 doorbells. */
const joinedCard = new MockLinkEnd('test', { role: 'card' });
const join = (MockLinkEnd as unknown as { join(a: unknown, b: unknown): void }).join.bind(MockLinkEnd);
join(new MockLinkEnd('test', { role: 'host' }), joinedCard);
const memPool = new MemoryPool(BufferMemory.allocate(1 << 16));
const ranges = new RangeAllocator(4096, 1 << 20);
const mem64 = BufferMemory.allocate(64);

const ADDR = /address/;
const SIZE = /size|length|bytes|range/;
/** What an allocation of 2^32 + 1 bytes gets: no room. */
const ALLOC_CODES = ['EINVAL', 'ENOMEM'] as const;
const BIG = [2 ** 32 + 1];
/** Values an option defaulted with `??` takes for its default. */
const DEFAULTED = [undefined, null];
const DB = /doorbell|line/;
const HANDLER = /handler/;
const THREAD = /thread/;
const COOKIE = /cookie/;

const TABLE: BadArgEntry[] = [
  // ids and validation
  e('checkDeviceId', (a) => checkDeviceId('device id', a[0] as never), [ID], [0, /device id/]),
  ...(['device', 'vendor'] as const).map((f) =>
    e(
      `checkDeviceId.${f}`,
      (a) => checkDeviceId('device id', { ...ID, [f]: a[0] } as never),
      [1],
      [0, /device id/],
    ),
  ),
  e(
    'matchIdTable',
    (a) => matchIdTable(a[0] as never, a[1] as never),
    [[ID], ID],
    [0, /id table/],
    [1, /device id/],
  ),
  e('formatModalias', (a) => formatModalias('vop', a[0] as never), [ID], [0, /device id/]),
  e('idAttributes', (a) => idAttributes('vop', a[0] as never), [ID], [0, /device id/]),
  e('checkIdTable', (a) => checkIdTable('id table', a[0]), [[ID]], [0, /id table/]),
  e('checkIdTable.entry', (a) => checkIdTable('id table', [ID, a[0]]), [ID], [0, /id table\[1\]/]),
  e(
    'checkOps',
    (a) => checkOps('hw ops', a[0], a[1] as never),
    [{ f: noop }, ['f']],
    [0, /hw ops/],
    [1, /required/],
  ),
  e('checkWindow', (a) => checkWindow('window', a[0]), [{ pa: 0, va: mem64, len: 64 }], [0, /window/]),
  ...(['pa', 'len'] as const).map((f) =>
    e(
      `checkWindow.${f}`,
      (a) => checkWindow('window', { pa: 0, va: mem64, len: 64, [f]: a[0] }),
      [64],
      // a bus address may be beyond 32 bits
      [0, /window/, f === 'pa' ? BIG : []],
    ),
  ),
  e(
    'unwind',
    (a) => unwind(a[0] as never, a[1] as never, 'probe'),
    [[noop], nullLogger],
    [0, /undo/],
    [1, /logger/],
  ),
  e('unwind.step', (a) => unwind([a[0] as never], nullLogger, 'probe'), [noop], [0, /undo step/]),
  // allocators
  e('AsyncMutex#run', (a) => new AsyncMutex().run(a[0] as never), [noop], [0, /function|callback/]),
  e('new IndexAllocator', (a) => new IndexAllocator(a[0] as never), [10], [0, /max id/, [undefined]]),
  e(
    'IndexAllocator#get',
    (a) => new IndexAllocator(10).get(a[0] as never),
    [0],
    [0, /minimum id/, [undefined]],
  ),
  e(
    'IndexAllocator#remove',
    (a) => {
      const ids = new IndexAllocator(10);
      ids.get();
      ids.remove(a[0] as never);
    },
    [0],
    [0, /id/],
  ),
  e('new HostDoorbellAllocator', (a) => new HostDoorbellAllocator(a[0] as never), [4], [0, /doorbell count/]),
  e('new CardDoorbellAllocator', (a) => new CardDoorbellAllocator(a[0] as never), [8], [0, /doorbell count/]),
  ...(['use', 'usage'] as const).map((m) =>
    e(
      `CardDoorbellAllocator#${m}`,
      (a) => new CardDoorbellAllocator(8)[m](a[0] as never),
      [1],
      [0, /doorbell/],
    ),
  ),
  e(
    'CardDoorbellAllocator#release',
    (a) => {
      const dbs = new CardDoorbellAllocator(8);
      dbs.use(1);
      dbs.release(a[0] as never);
    },
    [1],
    [0, /doorbell/],
  ),
  e(
    'new RangeAllocator',
    (a) => new RangeAllocator(a[0] as never, a[1] as never),
    [0, 4096],
    [0, /range|start/],
    [1, /range|end/, [2 ** 32 + 1]],
  ),
  {
    ...e(
      'RangeAllocator#alloc',
      (a) => ranges.free(ranges.alloc(a[0] as never, a[1] as never)),
      [64, 64],
      [0, SIZE],
      [1, /alignment/, [undefined]],
    ),
    codes: ALLOC_CODES,
  },
  e('RangeAllocator#free', (a) => ranges.free(a[0] as never), [ranges.alloc(64)], [0, ADDR]),
  e(
    'new MemoryPool',
    (a) => new MemoryPool(a[0] as never, a[1] as never),
    [BufferMemory.allocate(8192), {}],
    [0, /memory/],
    optionsParam(1),
  ),
  e(
    'new MemoryPool.reserve',
    (a) => new MemoryPool(BufferMemory.allocate(8192), { reserve: a[0] as never }),
    [0],
    [0, /reserve/, [...DEFAULTED, ...BIG]],
  ),
  {
    ...e(
      'MemoryPool#alloc',
      (a) => memPool.free(memPool.alloc(a[0] as never, a[1] as never).offset),
      [64, 64],
      [0, SIZE],
      [1, /alignment/, [undefined]],
    ),
    codes: ALLOC_CODES,
  },
  e('MemoryPool#free', (a) => memPool.free(a[0] as never), [memPool.alloc(64).offset], [0, /address|offset/]),
  // the bus
  e('new Bus', (a) => new Bus(a[0] as never, a[1] as never), [busType, {}], [0, /bus type/], optionsParam(1)),
  e('new Bus.name', (a) => new Bus({ ...busType, name: a[0] as never }), ['b'], [0, /bus name/]),
  ...(['create', 'match'] as const).map((f) =>
    e(`new Bus.${f}`, (a) => new Bus({ ...busType, [f]: a[0] } as never), [noop], [0, new RegExp(f)]),
  ),
  e(
    'Bus#registerDevice',
    async (a) => {
      const b = new Bus<Dev, Drv>(busType);
      await b.registerDevice(a[0] as never);
    },
    [{ name: 'd' }],
    [0, /device/],
  ),
  enodev(
    e(
      'Bus#unregisterDevice',
      async (a) => {
        const b = new Bus<Dev, Drv>(busType);
        await b.registerDevice({ name: 'd0' });
        await b.unregisterDevice((a[0] === 'd0' ? b.deviceByName('d0') : a[0]) as never);
      },
      ['d0'],
      [0, /device/],
    ),
  ),
  e(
    'Bus#registerDriver',
    (a) => new Bus<Dev, Drv>(busType).registerDriver((a[0] === 'drv' ? driver() : a[0]) as never),
    ['drv'],
    [0, /driver/],
  ),
  ...(['name', 'probe', 'remove'] as const).map((f) =>
    e(
      `Bus#registerDriver.${f}`,
      (a) => new Bus<Dev, Drv>(busType).registerDriver({ ...driver(), [f]: a[0] } as never),
      [f === 'name' ? 'drv' : noop],
      [0, /driver/],
    ),
  ),
  enodev(
    e(
      'Bus#unregisterDriver',
      async (a) => {
        const b = new Bus<Dev, Drv>(busType);
        const d = driver();
        await b.registerDriver(d);
        await b.unregisterDriver((a[0] === 'drv' ? d : a[0]) as never);
      },
      ['drv'],
      [0, /driver/],
    ),
  ),
  e('Bus#findDevice', (a) => bus.findDevice(a[0] as never), [() => true], [0, /predicate/]),
  enodev(e('Bus#modalias', (a) => bus.modalias(a[0] as never), [boundDev], [0, /device/])),
  e('Bus#subscribe', (a) => (bus.subscribe(a[0] as never) as () => void)(), [noop], [0, /listener/]),
  // DMA mapping bookkeeping
  e(
    'DmaMappingCounts#add',
    (a) => new DmaMappingCounts('dma').add(a[0] as never, a[1] as never),
    [4096, 64],
    [0, ADDR, BIG],
    [1, SIZE, BIG],
  ),
  e(
    'DmaMappingCounts#release',
    (a) => {
      const counts = new DmaMappingCounts('dma');
      counts.add(4096, 64);
      counts.release(a[0] as never, a[1] as never, a[2] as never);
    },
    [4096, 64, noop],
    [0, ADDR],
    [1, SIZE],
    [2, /undo/, [undefined]],
  ),
  {
    ...e('DmaMapOpsBase#alloc', (a) => mockDma.free(mockDma.alloc(a[0] as never)), [64], [0, SIZE]),
    codes: ALLOC_CODES,
  },
  e(
    'DmaMapOpsBase#free',
    (a) => {
      const ops = new TestMapOps();
      const buf = ops.alloc(64);
      ops.free((a[0] === 'buf' ? buf : a[0]) as never);
    },
    ['buf'],
    [0, /buffer/],
  ),
  e(
    'DmaMapOpsBase#mapSingle',
    (a) => mockDma.mapSingle(a[0] as never),
    [pool.window(4096, 64)],
    [0, /memory/],
  ),
  e(
    'DmaMapOpsBase#unmapSingle',
    (a) => {
      const ops = new TestMapOps();
      ops.mapSingle(mem64);
      ops.unmapSingle(a[0] as never, a[1] as never);
    },
    [4096, 64],
    [0, ADDR],
    [1, SIZE],
  ),
  e('new MockDmaMapOps', (a) => new MockDmaMapOps(a[0] as never), [{ pool, base: 0 }], [0, /options/]),
  e(
    'new MockDmaMapOps.pool',
    (a) => new MockDmaMapOps({ pool: a[0] as never, base: 0 }),
    [pool],
    [0, /pool/],
  ),
  e(
    'new MockDmaMapOps.base',
    (a) => new MockDmaMapOps({ pool, base: a[0] as never }),
    [0],
    [0, /base/, [2 ** 32 + 1]],
  ),
  // remaps
  e(
    'RemapBook#map',
    (a) => {
      const book = new RemapBook('test');
      book.unmap(book.map(a[0] as never, a[1] as never, a[2] as never));
    },
    [0, 64, (pa: number, len: number) => peer.window(pa, len)],
    [0, ADDR, [2 ** 32 + 1]],
    [1, SIZE],
    [2, /window/],
  ),
  ((book) =>
    unmapEntry(
      'RemapBook#unmap',
      () => book.map(0, 64, (pa, len) => peer.window(pa, len)),
      (va) => book.unmap(va as never),
    ))(new RemapBook('test')),
  e('new MockRemapper', (a) => new MockRemapper(a[0] as never), [[{ base: 0, pool: peer }]], [0, /regions/]),
  e(
    'new MockRemapper.region',
    (a) => new MockRemapper([a[0] as never]),
    [{ base: 0, pool: peer }],
    [0, /region/],
  ),
  e(
    'new MockRemapper.base',
    (a) => new MockRemapper([{ base: a[0] as never, pool: peer }]),
    [0],
    [0, /base/, [2 ** 32 + 1]],
  ),
  e(
    'new MockRemapper.pool',
    (a) => new MockRemapper([{ base: 0, pool: a[0] as never }]),
    [peer],
    [0, /pool/],
  ),
  e(
    'MockRemapper#remap',
    (a) => remapper.unmap(remapper.remap(a[0] as never, a[1] as never)),
    [0, 64],
    [0, ADDR],
    [1, SIZE],
  ),
  unmapEntry(
    'MockRemapper#unmap',
    () => remapper.remap(0, 64),
    (va) => remapper.unmap(va as never),
  ),
  // interrupt tables and the hardware drivers' shared ops
  e('new ThreadedIrqTable', (a) => new ThreadedIrqTable(a[0] as never), [tableOptions], [0, /options/]),
  ...(['hw', 'kinds', 'logger'] as const).map((f) =>
    e(
      `new ThreadedIrqTable.${f}`,
      (a) => new ThreadedIrqTable({ ...tableOptions, [f]: a[0] } as never),
      [tableOptions[f]],
      [0, new RegExp(f === 'hw' ? 'interrupt controller' : f)],
    ),
  ),
  ...(['count', 'src'] as const).map((f) =>
    e(
      `new ThreadedIrqTable.kinds.${f}`,
      (a) => new ThreadedIrqTable({ ...tableOptions, kinds: { dma: { ...KINDS.dma, [f]: a[0] } } } as never),
      [KINDS.dma[f]],
      [0, new RegExp(`dma ${f === 'count' ? 'count' : 'src'}`)],
    ),
  ),
  e(
    'ThreadedIrqTable#request',
    (a) =>
      irqTable.free(
        irqTable.request(a[0] as never, a[1] as never, a[2] as never, 'x', null, a[3] as never),
        null,
      ),
    ['dma', noop, null, 0],
    [0, /kind/],
    [1, HANDLER, OPTIONAL_FN],
    [2, THREAD, OPTIONAL_FN],
    [3, /dma/],
  ),
  e(
    'ThreadedIrqTable#free',
    (a) => irqTable.free(a[0] as never, null),
    [irqTable.request('dma', noop, null, 'x', null, 1)],
    [0, COOKIE],
  ),
  e('new DoorbellLinkOps', (a) => new TestLinkOps(a[0]), [linkOptions], [0, /options/]),
  ...(['side', 'irqs', 'doorbellKind', 'doorbells'] as const).map((f) =>
    e(
      `new DoorbellLinkOps.${f}`,
      (a) => new TestLinkOps({ ...linkOptions, [f]: a[0] }),
      [linkOptions[f]],
      [0, new RegExp(f === 'doorbellKind' ? 'doorbell kind' : f === 'irqs' ? 'interrupt table' : f)],
    ),
  ),
  e(
    'DoorbellLinkOps#requestIrq',
    (a) => linkOps.freeIrq(linkOps.requestIrq(a[0] as never, 'x', null, a[1] as never), null),
    [noop, 0],
    [0, HANDLER],
    [1, DB],
  ),
  e(
    'DoorbellLinkOps#freeIrq',
    (a) => linkOps.freeIrq(a[0] as never, null),
    [linkOps.requestIrq(noop, 'x', null, 1)],
    [0, COOKIE],
  ),
  e('DoorbellLinkOps#ackInterrupt', (a) => linkOps.ackInterrupt(a[0] as never), [0], [0, /interrupt/]),
  e('DoorbellLinkOps#sendIntr', (a) => linkOps.sendIntr(a[0] as never), [0], [0, DB]),
  e(
    'DoorbellLinkOps#remap',
    (a) => linkOps.unmap(linkOps.remap(a[0] as never, a[1] as never)),
    [0, 64],
    [0, ADDR, [2 ** 32 + 1]],
    [1, SIZE],
  ),
  unmapEntry(
    'DoorbellLinkOps#unmap',
    () => linkOps.remap(0, 64),
    (va) => linkOps.unmap(va as never),
  ),
  e('new ThreadedIrqOps', (a) => new TestIrqOps(a[0]), [irqTable], [0, /interrupt table/]),
  e(
    'ThreadedIrqOps#requestThreadedIrq',
    (a) =>
      irqOps.freeIrq(irqOps.requestThreadedIrq(a[0] as never, a[1] as never, 'x', null, a[2] as never), null),
    [noop, null, 0],
    [0, HANDLER, OPTIONAL_FN],
    [1, THREAD, OPTIONAL_FN],
    [2, /dma/],
  ),
  e(
    'ThreadedIrqOps#freeIrq',
    (a) => irqOps.freeIrq(a[0] as never, null),
    [irqOps.requestThreadedIrq(noop, null, 'x', null, 1)],
    [0, COOKIE],
  ),
  e('ThreadedIrqOps#ackInterrupt', (a) => irqOps.ackInterrupt(a[0] as never), [0], [0, /interrupt/]),
  // mock interrupt lines and link ends
  e('new MockIrqLines', (a) => new MockIrqLines(a[0] as never), [{ count: 4 }], [0, /options/]),
  e('new MockIrqLines.count', (a) => new MockIrqLines({ count: a[0] as never }), [4], [0, /line count/]),
  e(
    'new MockIrqLines.allocatable',
    (a) => new MockIrqLines({ count: 4, allocatable: a[0] as never }),
    [2],
    [0, /allocatable/, DEFAULTED],
  ),
  e(
    'new MockIrqLines.policy',
    (a) => new MockIrqLines({ count: 4, policy: a[0] as never }),
    ['least-used'],
    [0, /policy/, DEFAULTED],
  ),
  ...(['usage', 'raise'] as const).map((m) =>
    e(`MockIrqLines#${m}`, (a) => lines[m](a[0] as never), [0], [0, /line/]),
  ),
  e(
    'MockIrqLines#request',
    (a) => lines.free(lines.request(a[0] as never, a[1] as never, 'x', null, a[2] as never), null),
    [noop, null, 0],
    [0, HANDLER, OPTIONAL_FN],
    [1, THREAD, OPTIONAL_FN],
    [2, /line/],
  ),
  e(
    'MockIrqLines#free',
    (a) => lines.free(a[0] as never, null),
    [lines.request(noop, null, 'x', null, 1)],
    [0, COOKIE],
  ),
  e('MockIrqLines#ack', (a) => lines.ack(a[0] as never), [0], [0, /interrupt/]),
  e('new MockLinkEnd', (a) => new MockLinkEnd('test', a[0] as never), [{ role: 'card' }], [0, /options/]),
  e('new MockLinkEnd.role', (a) => new MockLinkEnd('test', { role: a[0] as never }), ['card'], [0, /role/]),
  e(
    'new MockLinkEnd.doorbells',
    (a) => new MockLinkEnd('test', { role: 'host', doorbells: a[0] as never }),
    [4],
    [0, /line count/, DEFAULTED],
  ),
  e(
    'MockLinkEnd.join',
    (a) => join(a[0], a[1]),
    [new MockLinkEnd('test', { role: 'host' }), new MockLinkEnd('test', { role: 'card' })],
    [0, /side/],
    [1, /side/],
  ),
  e(
    'MockLinkEnd#requestIrq',
    (a) => hostEnd.freeIrq(hostEnd.requestIrq(a[0] as never, 'x', null, a[1] as never), null),
    [noop, 0],
    [0, HANDLER],
    [1, DB],
  ),
  e(
    'MockLinkEnd#freeIrq',
    (a) => hostEnd.freeIrq(a[0] as never, null),
    [hostEnd.requestIrq(noop, 'x', null, 1)],
    [0, COOKIE],
  ),
  e('MockLinkEnd#ackInterrupt', (a) => hostEnd.ackInterrupt(a[0] as never), [0], [0, /interrupt/]),
  e('MockLinkEnd#sendIntr', (a) => hostEnd.sendIntr(a[0] as never), [0], [0, DB]),
  e('MockLinkEnd#sendIntr.joined', (a) => joinedCard.sendIntr(a[0] as never), [0], [0, DB]),
  ...(['raiseInterrupt', 'usage'] as const).map((m) =>
    e(`MockLinkEnd#${m}`, (a) => hostEnd[m](a[0] as never), [0], [0, DB]),
  ),
  e(
    'MockLinkEnd#remap',
    (a) => hostEnd.unmap(hostEnd.remap(a[0] as never, a[1] as never)),
    [0, 64],
    [0, ADDR],
    [1, SIZE],
  ),
  unmapEntry(
    'MockLinkEnd#unmap',
    () => hostEnd.remap(0, 64),
    (va) => hostEnd.unmap(va as never),
  ),
];

const LOOKUP = 'a lookup: any value that is not a registered one answers undefined (or false, or none)';
const NAME = 'takes only a name (a string for messages)';
const NOT_SWEPT: Record<string, string> = {
  'Bus#has': LOOKUP,
  'Bus#deviceByName': LOOKUP,
  'Bus#driverOf': LOOKUP,
  'Bus#devicesOf': LOOKUP,
  'Bus#probeError': LOOKUP,
  'IndexAllocator#has': LOOKUP,
  'RangeAllocator#sizeOf': LOOKUP,
  'MemoryPool#sizeOf': LOOKUP,
  'MockIrqLines#isMasked': LOOKUP,
  'new DmaMappingCounts': NAME,
  'new RemapBook': NAME,
  'new DmaMapOpsBase': `${NAME}; abstract (its methods are swept on a subclass)`,
  'DmaMapOpsBase#mapRange': 'a protected hook: mapSingle calls it with checked arguments',
  'DmaMapOpsBase#unmapRange': 'a protected hook: unmapSingle calls it with a live mapping only',
  'DoorbellLinkOps#unwindow': 'a protected hook: unmap calls it with a live remap only',
  'MockDmaMapOps#allocMapped': 'a protected hook: alloc calls it with a checked size',
  'MockDmaMapOps#addrOf': 'a protected hook: swept through DmaMapOpsBase#mapSingle',
};

describe('bad arguments (issue 10, defect 5)', () => {
  it('every public function of @mic/bus-core refuses each bad argument with a MicError naming it', async () => {
    // Entries for the fields of an object argument are named `<callable>.<field>`.
    const entries = TABLE.filter((t) => !t.name.includes('.') || t.name === 'MockLinkEnd.join');
    expect(badArgCoverage(busCore, entries, NOT_SWEPT)).toEqual({ missing: [], unknown: [] });
    expect(await sweepBadArguments(TABLE)).toEqual([]);
  });
});
