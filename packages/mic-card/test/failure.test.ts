// Failure injection: every step of the card's probe (`mic_driver_init`) is made to fail in turn,
// through the card's buses, the host's device page or the DMA channel provider. Afterwards nothing
// may stay registered, requested or allocated (checked on the buses, on the drivers' books and on
// the hardware: every card interrupt source raised, all of card memory allocatable), the completed
// steps must have been undone in reverse order, and the card must still probe cleanly.
import { afterEach, describe, expect, it } from '@jest/globals';
import type { DmaChannel, IrqHandler, MicIrq } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import { type DmaBuffer, MBUS_DEV_ANY_ID, MBUS_DEV_DMA_MIC, type MbusDevice } from '@mic/mic-bus';
import { MIC_SCIF_DEV, SCIF_DEV_ANY_ID, type ScifHwDev } from '@mic/scif-bus';
import { VOP_DEV_ANY_ID, VOP_DEV_TRNSP, type VopDevice } from '@mic/vop-bus';
import { MIC_MAGIC } from '@mic/mic-common';
import { X100_CARD_NUM_DOORBELLS, X100_DMA, cardDmaSrc } from '@mic/x100';
import {
  type DmaChannelProvider,
  MIC_CARD_PROBE_STEPS,
  type MicCardBuses,
  MicCardDriver,
  cardPages,
} from '../src/index.js';
import { type BareRig, bareRig, closeRig, makeCardBuses } from './helpers.js';

type Step = (typeof MIC_CARD_PROBE_STEPS)[number];

interface World {
  readonly rig: BareRig;
  readonly buses: MicCardBuses;
  readonly log: string[];
  readonly held: { irqs: number; buffers: number; channels: number };
  /** Calls of the test drivers' interrupt functions. */
  calls: number;
  inject: Step | undefined;
  readonly dma: DmaChannelProvider;
}

function failOnRegister(world: World, bus: { registerDevice(p: never): Promise<unknown> }, step: Step): void {
  const register = bus.registerDevice.bind(bus) as (p: unknown) => Promise<unknown>;
  (bus as { registerDevice(p: unknown): Promise<unknown> }).registerDevice = (p) =>
    world.inject === step ? Promise.reject(new MicError('EIO', `injected failure at ${step}`)) : register(p);
}

/** A driver that takes an interrupt and a DMA buffer in probe and gives them back in remove. */
function holdingDriver<D>(
  world: World,
  name: string,
  idTable: { device: number; vendor: number }[],
  take: (dev: D, handler: IrqHandler<unknown>) => { cookie: MicIrq; buf: DmaBuffer; free(): void },
) {
  const held = new Map<D, ReturnType<typeof take>>();
  const handler: IrqHandler<unknown> = () => void world.calls++;
  return {
    name,
    idTable,
    probe(dev: D) {
      held.set(dev, take(dev, handler));
      world.held.irqs++;
      world.held.buffers++;
      world.log.push(`probe ${name}`);
    },
    remove(dev: D) {
      held.get(dev)!.free();
      held.delete(dev);
      world.held.irqs--;
      world.held.buffers--;
      world.log.push(`remove ${name}`);
    },
  };
}

async function makeWorld(): Promise<World> {
  const buses = makeCardBuses();
  const rig = await bareRig();
  const log: string[] = [];
  const world: World = {
    rig,
    buses,
    log,
    held: { irqs: 0, buffers: 0, channels: 0 },
    calls: 0,
    inject: undefined,
    dma: {
      requestChannels: (dev: MbusDevice) => {
        if (world.inject === 'dma channels') return [];
        const chans: DmaChannel[] = [4, 5].map((c) => ({ chanId: c, name: `${dev.name}chan${c}` }));
        world.held.channels += chans.length;
        log.push('+channels');
        return chans;
      },
      releaseChannel: () => {
        world.held.channels--;
        log.push('-channel');
      },
    },
  };
  failOnRegister(world, buses.mbus, 'dma');
  failOnRegister(world, buses.vop, 'vop');
  failOnRegister(world, buses.scif, 'scif');
  for (const [bus, tag] of [
    [buses.mbus, 'mbus'],
    [buses.vop, 'vop'],
    [buses.scif, 'scif'],
  ] as const) {
    (bus as { subscribe(l: (e: { type: string }) => void): unknown }).subscribe((e) => {
      if (e.type === 'device-added') log.push(`+${tag}`);
      if (e.type === 'device-removed') log.push(`-${tag}`);
    });
  }
  await buses.mbus.registerDriver(
    holdingDriver<MbusDevice>(
      world,
      'test_dma',
      [
        { device: MBUS_DEV_DMA_MIC, vendor: MBUS_DEV_ANY_ID },
        { device: 0, vendor: 0 },
      ],
      (dev, handler) => {
        const cookie = dev.hwOps.requestThreadedIrq(handler, handler, 'test dma', dev, 4);
        const buf = dev.dmaOps.alloc(4096);
        return { cookie, buf, free: () => (dev.hwOps.freeIrq(cookie, dev), dev.dmaOps.free(buf)) };
      },
    ),
  );
  await buses.vop.registerDriver(
    holdingDriver<VopDevice>(
      world,
      'test_vop',
      [
        { device: VOP_DEV_TRNSP, vendor: VOP_DEV_ANY_ID },
        { device: 0, vendor: 0 },
      ],
      (dev, handler) => {
        const cookie = dev.hwOps.requestIrq(handler, 'test vop', dev, dev.hwOps.nextDb());
        const buf = dev.dmaOps.alloc(100);
        return { cookie, buf, free: () => (dev.hwOps.freeIrq(cookie, dev), dev.dmaOps.free(buf)) };
      },
    ),
  );
  await buses.scif.registerDriver(
    holdingDriver<ScifHwDev>(
      world,
      'test_scif',
      [
        { device: MIC_SCIF_DEV, vendor: SCIF_DEV_ANY_ID },
        { device: 0, vendor: 0 },
      ],
      (dev, handler) => {
        const cookie = dev.hwOps.requestIrq(handler, 'test scif', dev, dev.hwOps.nextDb());
        const buf = dev.dmaOps.alloc(8192);
        return { cookie, buf, free: () => (dev.hwOps.freeIrq(cookie, dev), dev.dmaOps.free(buf)) };
      },
    ),
  );
  return world;
}

let world: World | undefined;
afterEach(async () => {
  if (world) await closeRig(world.rig);
  world = undefined;
});

/**
 * What the hardware says is still held: interrupt handlers that run when every card doorbell and
 * DMA source is raised, and whether all of card memory can still be allocated.
 */
async function hardwareHeld(w: World): Promise<{ handlerCalls: number; cardMemoryFree: boolean }> {
  const { platform, view } = w.rig;
  const before = w.calls;
  for (let db = 0; db < X100_CARD_NUM_DOORBELLS; db++) platform.host.sendIntr(db);
  for (let ch = 0; ch < X100_DMA.MAX_NUM_CHAN; ch++) platform.hardware.raiseCardInterrupt(cardDmaSrc(ch));
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  let cardMemoryFree = false;
  try {
    const pages = cardPages(view);
    pages.free(pages.alloc(platform.hardware.config.cardMemorySize - 4096).offset);
    cardMemoryFree = true;
  } catch {
    cardMemoryFree = false;
  }
  return { handlerCalls: w.calls - before, cardMemoryFree };
}

/** What a successful probe does, step by step, with the test's drivers bound. */
const PROBE_LOG = [
  ['+mbus', 'probe test_dma'],
  [],
  ['+channels'],
  ['+vop', 'probe test_vop'],
  ['+scif', 'probe test_scif'],
];
/** What undoing each step logs. */
const UNDO_LOG = [
  ['remove test_dma', '-mbus'],
  [],
  ['-channel', '-channel'],
  ['remove test_vop', '-vop'],
  [],
];

describe('card probe (mic_driver_init) with a failure injected at each step', () => {
  it.each(MIC_CARD_PROBE_STEPS.map((step, at) => [step, at] as const))(
    'unwinds every earlier step in reverse and leaves nothing behind when %s fails',
    async (step, at) => {
      const w = await makeWorld();
      world = w;
      const dp = w.rig.host.dp.mem;
      if (step === 'device page') dp.storeU32(0, 0xdeadbeef);
      w.inject = step;
      const driver = await MicCardDriver.init();
      await expect(driver.probe({ card: w.rig.view, buses: w.buses, dma: w.dma })).rejects.toMatchObject({
        code: step === 'dma channels' ? 'ENODEV' : 'EIO',
      });

      expect(w.log).toEqual([...PROBE_LOG.slice(0, at).flat(), ...UNDO_LOG.slice(0, at).reverse().flat()]);
      expect(driver.card).toBeUndefined();
      for (const bus of Object.values(w.buses)) expect(bus.devices()).toEqual([]);
      expect(w.held).toEqual({ irqs: 0, buffers: 0, channels: 0 });
      expect(await hardwareHeld(w)).toEqual({ handlerCalls: 0, cardMemoryFree: true });

      // The card still probes, and removing it leaves nothing either.
      dp.storeU32(0, MIC_MAGIC);
      w.inject = undefined;
      w.log.length = 0;
      const card = await driver.probe({ card: w.rig.view, buses: w.buses, dma: w.dma });
      expect(w.log).toEqual(PROBE_LOG.flat());
      expect(card.irqsInUse).toBe(3);
      expect(await hardwareHeld(w)).toEqual({ handlerCalls: 3, cardMemoryFree: false });
      await driver.exit();
      expect(card.irqsInUse).toBe(0);
      expect(card.dmaOps.liveBuffers).toBe(0);
      expect(w.held).toEqual({ irqs: 0, buffers: 0, channels: 0 });
      expect(await hardwareHeld(w)).toEqual({ handlerCalls: 0, cardMemoryFree: true });
    },
  );

  it('registers nothing and returns no driver when loading the DMA driver fails', async () => {
    const w = await makeWorld();
    world = w;
    let loads = 0;
    await expect(
      MicCardDriver.init({
        loadDmaDriver: () => {
          loads++;
          throw new MicError('ENOENT', 'module mic_x100_dma not found');
        },
      }),
    ).rejects.toMatchObject({ code: 'ENOENT' });
    expect(loads).toBe(1);
    for (const bus of Object.values(w.buses)) expect(bus.devices()).toEqual([]);
  });
});
