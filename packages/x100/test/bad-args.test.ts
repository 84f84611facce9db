import { afterAll, describe, expect, it } from '@jest/globals';
import { badArg, badArgCoverage, optionsParam, sweepBadArguments, type BadArgEntry } from '@mic/errors';
import { nullLogger } from '@mic/logger';
import * as x100 from '../src/index.js';
import {
  InProcessDmaRunner,
  InterruptLine,
  IrqController,
  MmioMemory,
  MmioRegisters,
  SmptTable,
  X100CardView,
  X100DmaEngine,
  X100Hardware,
  X100HostView,
  createInProcessPlatform,
  createWorkerPlatform,
  installDmaRegisterHandlers,
  resolveX100Config,
} from '../src/index.js';
import { ECHO_CARD } from './helpers.js';

/** An entry: `name`, how to call it, good arguments, and its swept parameters. */
const e = badArg;

const SMALL = { cardMemorySize: 1 << 20, hostRamSize: 1 << 20 } as const;
/** Hardware of its own for each call of an entry that changes it for good (installs handlers). */
const fresh = (): X100Hardware => X100Hardware.create(SMALL);
const platform = createInProcessPlatform({ ...SMALL, dmaEngine: false });
const hw = platform.hardware;
const host = platform.host;
const card = new X100CardView(hw, {
  delivery: 'microtask',
  clock: platform.clock,
  generation: hw.generation,
});
const smpt = new SmptTable(hw);
const mic = smpt.map(4096, 8192);
/** A range the host mapped for the card (its IOMMU and the SMPT). */
const mapped = host.mapSingle(4096, 8192);
const hostMem = host.dmaWindow(4096, 4096);
const cardMem = hw.cardMemory.window(0, 4096);
const noop = (): void => undefined;
/** Stands for a new window of `cardMap` in the cardUnmap row. */
const FRESH_WINDOW = Symbol('a fresh cardMap window');
const mmioMem = new MmioMemory(hw.mmio);
afterAll(async () => {
  await platform.close();
});

const ADDR = /address|range|offset/;
const LEN = /length|range|size|\+/;
const REG = /offset|register/;
const MASK = /mask|bits|sources/;
const U32 = [-1]; // a register value may be given signed (`~bits`)

const NAMES = {
  cardMemorySize: /card memory size/,
  hostRamSize: /host RAM size/,
  bootAddr: /boot address/,
  apicId: /APIC id/,
  deviceId: /device id/,
  revision: /PCI revision/,
} as const;
/** Beyond 32 bits but a valid 46-bit address or an SMPT size. */
const BIG = [2 ** 32 + 1];

const TABLE: BadArgEntry[] = [
  // the card's view
  e(
    'new X100CardView',
    (a) => new X100CardView(a[0] as never, a[1] as never),
    [hw, { delivery: 'microtask', clock: platform.clock, generation: hw.generation }],
    [0, /hardware/],
    optionsParam(1),
  ),
  e('X100CardView#physAddrOf', (a) => card.physAddrOf(a[0] as never), [cardMem], [0, /memory/]),
  e(
    'X100CardView#cardMap',
    (a) => card.cardMap(a[0] as never, a[1] as never),
    [mic, 64],
    [0, ADDR],
    [1, LEN],
  ),
  e(
    'X100CardView#cardUnmap',
    // each good call gives back a window of its own
    (a) => card.cardUnmap((a[0] === FRESH_WINDOW ? card.cardMap(mic, 64) : a[0]) as never),
    [FRESH_WINDOW],
    [0, /window/],
  ),
  e(
    'X100CardView#smptTranslate',
    (a) => card.smptTranslate(a[0] as never, a[1] as never),
    [mic, 64],
    [0, ADDR],
    [1, LEN, [undefined]],
  ),
  e('X100CardView#readSpad', (a) => card.readSpad(a[0] as never), [3], [0, /scratchpad/]),
  e(
    'X100CardView#writeSpad',
    (a) => card.writeSpad(a[0] as never, a[1] as never),
    [3, 1],
    [0, /scratchpad/],
    [1, /value/, U32],
  ),
  e('X100CardView#sendIntr', (a) => card.sendIntr(a[0] as never), [0], [0, /doorbell/]),
  e(
    'X100CardView#requestIrq',
    (a) => card.freeIrq(card.requestIrq(a[0] as never, a[1] as never)),
    [0, noop],
    [0, /source/],
    [1, /handler/],
  ),
  e(
    'X100CardView#freeIrq',
    (a) => card.freeIrq(a[0] as never),
    [card.requestIrq(1, noop)],
    [0, /handler|cookie/],
  ),
  // the host's view
  e(
    'new X100HostView',
    (a) => new X100HostView(a[0] as never, a[1] as never),
    [fresh(), { delivery: 'microtask' }],
    [0, /hardware/],
    optionsParam(1),
  ),
  e(
    'X100HostView#dmaWindow',
    (a) => host.dmaWindow(a[0] as never, a[1] as never),
    [4096, 64],
    [0, ADDR],
    [1, LEN],
  ),
  e('X100HostView#dmaAddrOf', (a) => host.dmaAddrOf(a[0] as never), [hostMem], [0, /memory/]),
  e(
    'X100HostView#apertureWindow',
    (a) => host.apertureWindow(a[0] as never, a[1] as never),
    [0, 64],
    [0, ADDR],
    [1, LEN],
  ),
  e('X100HostView#readSpad', (a) => host.readSpad(a[0] as never), [3], [0, /scratchpad/]),
  e(
    'X100HostView#writeSpad',
    (a) => host.writeSpad(a[0] as never, a[1] as never),
    [3, 1],
    [0, /scratchpad/],
    [1, /value/, U32],
  ),
  e('X100HostView#sendIntr', (a) => host.sendIntr(a[0] as never), [0], [0, /doorbell/]),
  e(
    'X100HostView#requestIrq',
    (a) => host.freeIrq(host.requestIrq(a[0] as never, a[1] as never)),
    [0, noop],
    [0, /source/],
    [1, /handler/],
  ),
  e(
    'X100HostView#freeIrq',
    (a) => host.freeIrq(a[0] as never),
    [host.requestIrq(1, noop)],
    [0, /handler|cookie/],
  ),
  e('X100HostView#enableInterrupts', (a) => host.enableInterrupts(a[0] as never), [{}], optionsParam(0)),
  e('X100HostView#handlerCount', (a) => host.handlerCount(a[0] as never), [0], [0, /source/]),
  // the hardware
  e(
    'X100Hardware.create',
    (a) => X100Hardware.create(a[0] as never, a[1] as never),
    [SMALL, {}],
    optionsParam(0),
    optionsParam(1, /hooks/),
  ),
  e(
    'X100Hardware.attach',
    (a) => X100Hardware.attach(a[0] as never, a[1] as never, a[2] as never),
    [hw.buffers, hw.config, {}],
    [0, /buffers/],
    [1, /config/],
    optionsParam(2, /hooks/),
  ),
  e('X100Hardware#setCardState', (a) => hw.setCardState(a[0] as never), [hw.cardState], [0, /state/]),
  e(
    'X100Hardware#setSmptValid',
    (a) => hw.setSmptValid(a[0] as never, a[1] as never),
    [31, false],
    [0, /SMPT entry/],
  ),
  e('X100Hardware#raiseHostInterrupt', (a) => hw.raiseHostInterrupt(a[0] as never), [29], [0, /source/]),
  e('X100Hardware#raiseCardInterrupt', (a) => hw.raiseCardInterrupt(a[0] as never), [29], [0, /source/]),
  e(
    'X100Hardware#smptTranslate',
    (a) => hw.smptTranslate(a[0] as never, a[1] as never),
    [mic, 64],
    [0, ADDR],
    [1, LEN],
  ),
  e(
    'X100Hardware#cardAddressWindow',
    (a) => hw.cardAddressWindow(a[0] as never, a[1] as never),
    [0, 64],
    [0, ADDR],
    [1, LEN],
  ),
  e(
    'X100Hardware#hostTranslate',
    (a) => hw.hostTranslate(a[0] as never, a[1] as never),
    [mapped, 64],
    [0, ADDR],
    [1, LEN],
  ),
  e(
    'X100HostView#mapSingle',
    (a) => host.mapSingle(a[0] as never, a[1] as never),
    [4096, 64],
    [0, ADDR],
    [1, LEN],
  ),
  e(
    'X100HostView#unmapSingle',
    (a) => host.unmapSingle(a[0] as never, a[1] as never),
    [host.mapSingle(8192, 64), 64],
    [0, ADDR],
    [1, LEN],
  ),
  e(
    'resolveX100Config.iommu',
    (a) => resolveX100Config({ ...SMALL, iommu: a[0] as never }),
    [true],
    [0, /iommu/, [undefined, null]],
  ),
  e('resolveX100Config', (a) => resolveX100Config(a[0] as never), [SMALL], optionsParam(0)),
  ...(['cardMemorySize', 'hostRamSize', 'bootAddr', 'apicId', 'deviceId', 'revision'] as const).map((f) =>
    e(
      `resolveX100Config.${f}`,
      (a) => resolveX100Config({ ...SMALL, [f]: a[0] }),
      [undefined],
      [0, NAMES[f], [undefined, null]],
    ),
  ),
  // interrupt lines and controllers
  e(
    'new InterruptLine',
    (a) => new InterruptLine(a[0] as never, a[1] as never),
    [
      'host',
      {
        sab: new SharedArrayBuffer(64),
        status: 0,
        enable: 4,
        wordSab: new SharedArrayBuffer(64),
        wordOffset: 0,
      },
    ],
    [0, /side/],
    [1, /layout/],
  ),
  e(
    'InterruptLine#setKick',
    (a) => hw.cardLine.setKick(a[0] as never),
    [undefined],
    [0, /kick/, [undefined]],
  ),
  e('InterruptLine#raise', (a) => hw.cardLine.raise(a[0] as never), [29], [0, /source/]),
  e('InterruptLine#take', (a) => hw.cardLine.take(a[0] as never), [0], [0, MASK, [undefined, -1]]),
  ...(['clearPending', 'setEnabled', 'enable', 'disable', 'setAutoClear'] as const).map((m) =>
    e(`InterruptLine#${m}`, (a) => hw.hostLine[m](a[0] as never), [0], [0, MASK, U32]),
  ),
  e(
    'new IrqController',
    (a) => new IrqController(a[0] as never, a[1] as never).close(),
    [
      new InterruptLine('card', {
        sab: new SharedArrayBuffer(64),
        status: 0,
        enable: 4,
        wordSab: new SharedArrayBuffer(64),
        wordOffset: 0,
      }),
      { delivery: 'microtask', validSources: 1, logger: nullLogger },
    ],
    [0, /line/],
    optionsParam(1),
  ),
  // IrqController methods are what the views forward to: swept through X100HostView above.
  // registers
  e(
    'new MmioRegisters',
    (a) => new MmioRegisters(a[0] as never),
    [new SharedArrayBuffer(4096)],
    [0, /buffer/],
  ),
  ...(['read32', 'hasWriteHandler'] as const).map((m) =>
    e(`MmioRegisters#${m}`, (a) => hw.mmio[m](a[0] as never), [0x1000], [0, REG]),
  ),
  ...(['write32', 'store32', 'settle32', 'or32', 'and32'] as const).map((m) =>
    e(
      `MmioRegisters#${m}`,
      (a) => hw.mmio[m](a[0] as never, a[1] as never),
      [0x2000, 0],
      [0, REG],
      [1, /value|bits|mask/, U32],
    ),
  ),
  e(
    'MmioRegisters#setWriteHandler',
    (a) => hw.mmio.setWriteHandler(a[0] as never, a[1] as never),
    [0x2004, undefined],
    [0, REG],
    [1, /handler/, [undefined]],
  ),
  e(
    'new MmioMemory',
    (a) => new MmioMemory(a[0] as never, a[1] as never, a[2] as never),
    [hw.mmio, 0, 4096],
    [0, /registers/],
    [1, /base|offset|range/, [undefined]],
    [2, LEN, [undefined]],
  ),
  ...(['readU8', 'readU16', 'readU32', 'readU64', 'readBigU64', 'loadU8', 'loadU16', 'loadU32'] as const).map(
    (m) => e(`MmioMemory#${m}`, (a) => mmioMem[m](a[0] as never), [0x1000], [0, /offset|MMIO|range/]),
  ),
  ...(['writeU32', 'writeU64', 'storeU32'] as const).map((m) =>
    e(
      `MmioMemory#${m}`,
      (a) => mmioMem[m](a[0] as never, a[1] as never),
      [0x2000, 0],
      [0, /offset|MMIO|range/],
    ),
  ),
  e(
    'MmioMemory#writeBigU64',
    (a) => mmioMem.writeBigU64(a[0] as never, a[1] as never),
    [0x2000, 0n],
    [0, /offset|MMIO|range/],
    [1, /value/, [10n]],
  ),
  e(
    'MmioMemory#read',
    (a) => mmioMem.read(a[0] as never, a[1] as never),
    [0x1000, new Uint8Array(4)],
    [0, /offset|MMIO|range/],
    [1, /destination/],
  ),
  e(
    'MmioMemory#window',
    (a) => mmioMem.window(a[0] as never, a[1] as never),
    [0x1000, 64],
    [0, /offset|range/],
    [1, LEN],
  ),
  // the SMPT
  e('new SmptTable', (a) => new SmptTable(a[0] as never), [fresh()], [0, /hardware/]),
  e(
    'SmptTable#map',
    (a) => smpt.unmap(smpt.map(a[0] as never, a[1] as never), a[1] as never),
    [4096, 64],
    [0, /DMA address/, BIG],
    [1, /size/, BIG],
  ),
  e(
    'SmptTable#unmap',
    (a) => smpt.unmap(a[0] as never, a[1] as never),
    [mic + 4096, 0],
    [0, /card range|address/],
    [1, /size/],
  ),
  e('SmptTable#toDmaAddr', (a) => smpt.toDmaAddr(a[0] as never), [mic], [0, /card address/]),
  e('smptRegValue', (a) => x100.smptRegValue(a[0] as never), [0], [0, /DMA address/, BIG]),
  // register offsets and bits
  ...(
    [
      'smptReg',
      'spadReg',
      'apicIcrReg',
      'rdmasrReg',
      'sdbicReg',
      'hostDmaSrc',
      'cardDmaSrc',
      'dmaDcrOwnerBit',
      'dmaDcrEnableBit',
    ] as const
  ).map((f) => e(f, (a) => x100[f](a[0] as never), [0], [0, /entry|index|doorbell|channel/])),
  e(
    'dmaChanReg',
    (a) => x100.dmaChanReg(a[0] as never, a[1] as never),
    [0, 0],
    [0, /channel/],
    [1, /register/],
  ),
  e('decodeSpad2', (a) => x100.decodeSpad2(a[0] as never), [0], [0, /SPAD2|value/, U32]),
  e(
    'encodeSpad2',
    (a) => x100.encodeSpad2(a[0] as never),
    [{ ready: true, apicId: 0, bootAddr: 0 }],
    [0, /SPAD2|scratchpad/],
  ),
  e(
    'encodeSpad2.apicId',
    (a) => x100.encodeSpad2({ ready: true, apicId: a[0] as never, bootAddr: 0 }),
    [0],
    [0, /APIC id/],
  ),
  e(
    'encodeSpad2.bootAddr',
    (a) => x100.encodeSpad2({ ready: true, apicId: 0, bootAddr: a[0] as never }),
    [0],
    [0, /boot address/],
  ),
  // descriptors and rings
  e(
    'readDmaDesc',
    (a) => x100.readDmaDesc(a[0] as never, a[1] as never),
    [cardMem, 0],
    [0, /memory/],
    [1, ADDR],
  ),
  e(
    'writeDmaMemcpyDesc',
    (a) => x100.writeDmaMemcpyDesc(a[0] as never, a[1] as never, a[2] as never, a[3] as never, a[4] as never),
    [cardMem, 0, 0, 64, 64],
    [0, /memory/],
    [1, ADDR],
    [2, /source/, BIG],
    [3, /destination/, BIG],
    [4, /length/],
  ),
  e(
    'writeDmaStatusDesc',
    (a) => x100.writeDmaStatusDesc(a[0] as never, a[1] as never, a[2] as never, a[3] as never, a[4] as never),
    [cardMem, 0, 64, 1n, false],
    [0, /memory/],
    [1, ADDR],
    [2, /destination/, BIG],
    [3, /value/, [10n]],
  ),
  e(
    'encodeDmaRing',
    (a) => x100.encodeDmaRing(a[0] as never, a[1] as never),
    [0, 64],
    [0, /ring address/, BIG],
    [1, /ring size/],
  ),
  e(
    'decodeDmaRing',
    (a) => x100.decodeDmaRing(a[0] as never, a[1] as never),
    [0, 0],
    [0, /DRAR_LO/, U32],
    [1, /DRAR_HI/, U32],
  ),
  // the DMA engine
  e(
    'new X100DmaEngine',
    (a) => new X100DmaEngine(a[0] as never, a[1] as never),
    [hw, {}],
    [0, /hardware/],
    optionsParam(1),
  ),
  e(
    'new X100DmaEngine.chunkBytes',
    (a) => new X100DmaEngine(hw, { chunkBytes: a[0] as never }),
    [undefined],
    [0, /chunk/, [undefined, null]],
  ),
  e(
    'installDmaRegisterHandlers',
    (a) => installDmaRegisterHandlers((a[0] ?? fresh()) as never, a[1] as never, a[2] as never),
    [undefined, noop, {}],
    [1, /kick/],
    optionsParam(2),
  ),
  e(
    'installDmaRegisterHandlers.hw',
    (a) => installDmaRegisterHandlers(a[0] as never, noop),
    [fresh()],
    [0, /hardware/],
  ),
  e(
    'installDmaRegisterHandlers.cardGeneration',
    (a) => installDmaRegisterHandlers(fresh(), noop, { cardGeneration: a[0] as never }),
    [undefined],
    [0, /card generation/, [undefined]],
  ),
  e(
    'new InProcessDmaRunner',
    (a) => new InProcessDmaRunner((a[0] ?? fresh()) as never, a[1] as never).stop(),
    [undefined, {}],
    optionsParam(1),
  ),
  e(
    'new InProcessDmaRunner.hw',
    (a) => new InProcessDmaRunner(a[0] as never).stop(),
    [fresh()],
    [0, /hardware/],
  ),
  // platforms
  e(
    'createInProcessPlatform',
    (a) => createInProcessPlatform(a[0] as never).close(),
    [SMALL],
    optionsParam(0),
  ),
  ...(['resetDelayMs', 'dmaChunkBytes'] as const).map((f) =>
    e(
      `createInProcessPlatform.${f}`,
      (a) => createInProcessPlatform({ ...SMALL, [f]: a[0] }).close(),
      [undefined],
      [0, /reset delay|chunk/, [undefined, null, 1.5, ...BIG]],
    ),
  ),
  e(
    'createWorkerPlatform',
    (a) => createWorkerPlatform(a[0] as never).close(),
    [{ ...SMALL, cardModule: ECHO_CARD }],
    [0, /options/],
  ),
  e(
    'createWorkerPlatform.cardModule',
    (a) => createWorkerPlatform({ ...SMALL, cardModule: a[0] as never }).close(),
    [ECHO_CARD],
    [0, /card module/],
  ),
  ...(['resetDelayMs', 'dmaChunkBytes', 'spinNs'] as const).map((f) =>
    e(
      `createWorkerPlatform.${f}`,
      (a) => createWorkerPlatform({ ...SMALL, cardModule: ECHO_CARD, [f]: a[0] }).close(),
      [undefined],
      [0, /reset delay|chunk|spin/, [undefined, null, 1.5, ...BIG]],
    ),
  ),
];

const PREDICATE = 'a predicate: any value that is not a valid argument answers false';
const NOT_SWEPT: Record<string, string> = {
  isSystemAddr: PREDICATE,
  'new X100Hardware': 'private: X100Hardware.create and X100Hardware.attach are swept',
  'X100Hardware#isCurrentGeneration': `${PREDICATE} (a plain read on the doorbell path)`,
  'X100Hardware#smptResolve':
    'the exception-free form of smptTranslate for the DMA engine: -1 for every bad range by design',
  ...Object.fromEntries(
    ['writeU8', 'writeU16', 'storeU8', 'storeU16', 'write', 'fill'].map((m) => [
      `MmioMemory#${m}`,
      'refuses every call (EINVAL): MMIO registers take 32-bit writes only',
    ]),
  ),
  'IrqController#requestIrq':
    'swept as X100HostView#requestIrq and X100CardView#requestIrq, which forward to it',
  'IrqController#freeIrq': 'swept as X100HostView#freeIrq and X100CardView#freeIrq',
  'IrqController#handlerCount': 'swept as X100HostView#handlerCount',
};

describe('bad arguments (issue 10, defect 5)', () => {
  it('every public function of @mic/x100 refuses each bad argument with a MicError naming it', async () => {
    const fieldEntries = TABLE.filter((t) => t.name.includes('.') && !/^X100Hardware\./.test(t.name));
    const entries = TABLE.filter((t) => !fieldEntries.includes(t));
    expect(badArgCoverage(x100, entries, NOT_SWEPT)).toEqual({ missing: [], unknown: [] });
    expect(await sweepBadArguments(TABLE)).toEqual([]);
  });
});
