// Issue 10, defect 5: every public function of @mic/mic-dma refuses a bad argument with a MicError
// that names it and shows the value, never a TypeError or a silent default. A completeness check
// lists every export the table leaves out, with the reason.
import { describe, expect, it } from '@jest/globals';
import { VirtualClock } from '@mic/clock';
import {
  BAD_VALUES,
  badArg,
  badArgCoverage,
  optionsParam,
  sweepBadArguments,
  type BadArgEntry,
} from '@mic/errors';
import { nullLogger } from '@mic/logger';
import { MbusBus, MockMbusHardware } from '@mic/mic-bus';
import * as micDma from '../src/index.js';
import {
  DMA_PREP,
  MIC_DMA_OWNER,
  MicDmaChan,
  MicDmaDevice,
  MicDmaDriver,
  dmaChannelProvider,
  isDmaCopyAligned,
  micDmaChanReg,
  micDmaFilter,
  releaseDmaChannels,
  requestDmaChannels,
} from '../src/index.js';
import { ScriptedEngine } from './scripted-engine.js';

/** An entry: `name`, how to call it, good arguments, and its swept parameters. */
const e = badArg;

const hw = new MockMbusHardware({ role: 'host', ramSize: 4 << 20 });
const eng = new ScriptedEngine(hw);
eng.auto = true;
const bus = new MbusBus();
const clock = new VirtualClock();
const driver = new MicDmaDriver({ ringSize: 64, clock });
await bus.registerDriver(driver);
const mbdev = await bus.registerDevice(eng.params);
const dev = driver.deviceOf(mbdev)!;
const ch = driver.requestChannel()!;
/** The channel the sweep of releaseDmaChannels releases. */
const spare = driver.requestChannel()!;
const src = hw.dmaOps.alloc(4096).dmaAddr;
const dst = hw.dmaOps.alloc(4096).dmaAddr;
const done = ch.prepInterrupt(DMA_PREP.FENCE).submit();
await ch.syncWait(done);

const DEV_OPTIONS = { ringSize: 64, drainTimeoutMs: 100, clock, logger: nullLogger };
const CTX = { mbdev, owner: MIC_DMA_OWNER.HOST, maxXferSize: 4096, ...DEV_OPTIONS };
const DEFAULTED = [undefined, null];
const BIG = [2 ** 32 + 1];
/** A timeout may be any finite number of milliseconds ≥ 0. */
const MS = [1.5, ...BIG];
/** The empty object of {@link BAD_VALUES}. */
const EMPTY = BAD_VALUES.filter((v) => typeof v === 'object' && v !== null);
const FLAGS = /flags/;

const TABLE: BadArgEntry[] = [
  e(
    'micDmaChanReg',
    (a) => micDmaChanReg(a[0] as never, a[1] as never),
    [0, 0],
    [0, /channel/],
    [1, /register/],
  ),
  // the driver
  e('new MicDmaDriver', (a) => new MicDmaDriver(a[0] as never), [{}], optionsParam(0)),
  ...(['ringSize', 'drainTimeoutMs'] as const).map((f) =>
    e(
      `new MicDmaDriver.${f}`,
      (a) => new MicDmaDriver({ [f]: a[0] }),
      [64],
      [0, /ring size|drain timeout/, f === 'drainTimeoutMs' ? [...DEFAULTED, ...MS] : DEFAULTED],
    ),
  ),
  e(
    'MicDmaDriver#probe',
    (a) => new MicDmaDriver({ ringSize: 64 }).probe((a[0] === 'dev' ? mbdev : a[0]) as never),
    ['dev'],
    [0, /mbus device/],
  ),
  ...(['id', 'mmioVa', 'hwOps', 'dmaOps'] as const).map((f) =>
    e(
      `MicDmaDriver#probe.${f}`,
      (a) => new MicDmaDriver({ ringSize: 64 }).probe({ ...mbdev, name: mbdev.name, [f]: a[0] } as never),
      [mbdev[f]],
      [0, /mbus device/],
    ),
  ),
  e(
    'MicDmaDriver#remove',
    (a) => new MicDmaDriver().remove(a[0] as never),
    [mbdev],
    // an object that is not bound here: nothing to remove, as the bus never asks for one
    [0, /mbus device/, EMPTY],
  ),
  e(
    'MicDmaDriver#requestChannel',
    (a) => driver.requestChannel(a[0] as never),
    [() => false],
    [0, /filter/, [undefined]],
  ),
  e('dmaChannelProvider', (a) => dmaChannelProvider(a[0] as never), [driver], [0, /driver/]),
  e(
    'micDmaFilter',
    (a) => micDmaFilter(a[0] as never, a[1] as never),
    [driver, mbdev],
    [0, /driver/],
    [1, /mbus device/],
  ),
  e(
    'requestDmaChannels',
    (a) => requestDmaChannels(a[0] as never, a[1] as never, a[2] as never),
    [driver, () => false, 4],
    [0, /driver/],
    [1, /filter/, [undefined]],
    [2, /channel count/, [undefined]],
  ),
  e('releaseDmaChannels', (a) => releaseDmaChannels(a[0] as never), [[]], [0, /channels/]),
  e('releaseDmaChannels.element', (a) => releaseDmaChannels([a[0] as never]), [spare], [0, /channel/]),
  // the device
  e(
    'new MicDmaDevice',
    (a) => new MicDmaDevice(a[0] as never, a[1] as never, a[2] as never),
    [mbdev, 5, DEV_OPTIONS],
    [0, /mbus device/],
    [1, /device id/],
    [2, /options/],
  ),
  ...(['ringSize', 'drainTimeoutMs'] as const).map((f) =>
    e(
      `new MicDmaDevice.${f}`,
      (a) => new MicDmaDevice(mbdev, 5, { ...DEV_OPTIONS, [f]: a[0] }),
      [DEV_OPTIONS[f]],
      [0, /ring size|drain timeout/, f === 'drainTimeoutMs' ? MS : []],
    ),
  ),
  e(
    'isDmaCopyAligned',
    (a) => isDmaCopyAligned(a[0] as never, a[1] as never, a[2] as never, a[3] as never),
    [dev, 0, 64, 64],
    [0, /DMA device/],
    [1, /offset/, BIG],
    [2, /offset/, BIG],
    [3, /length/, BIG],
  ),
  // the channel
  e(
    'new MicDmaChan',
    (a) => new MicDmaChan(a[0] as never, a[1] as never, 'dma9chan0'),
    [CTX, 0],
    [0, /context/],
    [1, /channel id/],
  ),
  ...(['mbdev', 'maxXferSize', 'ringSize', 'drainTimeoutMs'] as const).map((f) =>
    e(
      `new MicDmaChan.${f}`,
      (a) => new MicDmaChan({ ...CTX, [f]: a[0] } as never, 0, 'dma9chan0'),
      [CTX[f]],
      [0, /mbus device|transfer size|ring size|drain timeout/, f === 'drainTimeoutMs' ? MS : []],
    ),
  ),
  e(
    'MicDmaChan#prepMemcpy',
    (a) => ch.prepMemcpy(a[0] as never, a[1] as never, a[2] as never, a[3] as never).submit(),
    [dst, src, 64, 0],
    [0, /destination/],
    [1, /source/],
    [2, /length/],
    [3, FLAGS, [undefined]],
  ),
  e(
    'MicDmaChan#prepImmData',
    (a) => ch.prepImmData(a[0] as never, a[1] as never, a[2] as never).submit(),
    [ch.statusDestAddr, 1n, 0],
    [0, /destination/],
    [1, /value/, [...BIG, 10n]],
    [2, FLAGS, [undefined]],
  ),
  e(
    'MicDmaChan#prepInterrupt',
    (a) => ch.prepInterrupt(a[0] as never).submit(),
    [DMA_PREP.FENCE],
    [0, FLAGS, [undefined]],
  ),
  e('MicDmaChan#txStatus', (a) => ch.txStatus(a[0] as never), [done], [0, /cookie/]),
  e(
    'MicDmaChan#syncWait',
    (a) => ch.syncWait(a[0] as never, a[1] as never),
    [done, {}],
    [0, /cookie/],
    optionsParam(1, /options/),
  ),
  e(
    'MicDmaChan#syncWait.timeoutMs',
    (a) => ch.syncWait(done, { timeoutMs: a[0] as never }),
    [0],
    [0, /timeoutMs/, [undefined, ...MS]],
  ),
  e(
    'MicDmaChan#syncWait.signal',
    (a) => ch.syncWait(done, { signal: a[0] as never }),
    [undefined],
    [0, /signal/, [undefined]],
  ),
];

const LOOKUP = 'a lookup: any value that is not a bound device or a channel of one answers undefined';
const NOT_SWEPT: Record<string, string> = {
  'MicDmaDriver#deviceOf': LOOKUP,
  'MicDmaDriver#deviceOfChannel': LOOKUP,
};

describe('bad arguments (issue 10, defect 5)', () => {
  it('every public function of @mic/mic-dma refuses each bad argument with a MicError naming it', async () => {
    // Entries for the fields of an object argument are named `<callable>.<field>`.
    const entries = TABLE.filter((t) => !t.name.includes('.'));
    expect(badArgCoverage(micDma, entries, NOT_SWEPT)).toEqual({ missing: [], unknown: [] });
    expect(await sweepBadArguments(TABLE)).toEqual([]);
    await releaseDmaChannels([ch]);
    await bus.unregisterDevice(mbdev);
  });
});
