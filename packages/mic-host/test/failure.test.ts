// Failure injection: every step of the host's probe (`mic_probe`) and of COSM start (`_mic_start`)
// is made to fail in turn, through the buses, the DMA channel provider, the firmware loader or the
// hardware; afterwards nothing may stay registered, requested, allocated or mapped, the completed
// steps must have been undone in reverse order, and the card must still start cleanly.
import { afterEach, describe, expect, it } from '@jest/globals';
import type { DmaChannel, IrqHandler, MicIrq } from '@mic/bus-core';
import { MicError } from '@mic/errors';
import type { DmaBuffer } from '@mic/mic-bus';
import { MBUS_DEV_ANY_ID, MBUS_DEV_DMA_HOST, type MbusDevice } from '@mic/mic-bus';
import { MIC_MAGIC } from '@mic/mic-common';
import { X100_HOST_SOURCES, createInProcessPlatform, type InProcessPlatform } from '@mic/x100';
import { MIC_SCIF_DEV, SCIF_DEV_ANY_ID, type ScifHwDev } from '@mic/scif-bus';
import { VOP_DEV_ANY_ID, VOP_DEV_TRNSP, type VopDevice } from '@mic/vop-bus';
import {
  type DmaChannelProvider,
  type FirmwareLoader,
  MIC_HOST_PROBE_STEPS,
  MIC_HOST_START_STEPS,
  type MicHostBuses,
  MicHostDriver,
  hostRam,
} from '../src/index.js';
import { cardMain } from './fixtures/card-peer.mjs';
import { BOOT, makeBuses } from './helpers.js';

type Step = (typeof MIC_HOST_START_STEPS)[number] | (typeof MIC_HOST_PROBE_STEPS)[number];

/** Everything the test's drivers, provider and loader hold, and the order things happened in. */
interface World {
  readonly platform: InProcessPlatform;
  readonly buses: MicHostBuses;
  readonly log: string[];
  readonly held: { irqs: number; buffers: number; channels: number };
  inject: Step | undefined;
  readonly dma: DmaChannelProvider;
  readonly firmware: FirmwareLoader;
}

const injected = (step: string): MicError => new MicError('EIO', `injected failure at ${step}`);

/** Makes `bus.registerDevice` fail while `world.inject` names `step`. */
function failOnRegister(world: World, bus: { registerDevice(p: never): Promise<unknown> }, step: Step): void {
  const register = bus.registerDevice.bind(bus) as (p: unknown) => Promise<unknown>;
  (bus as { registerDevice(p: unknown): Promise<unknown> }).registerDevice = (p) =>
    world.inject === step ? Promise.reject(injected(step)) : register(p);
}

/**
 * A driver that takes what a real driver on that bus takes in probe (an interrupt and a DMA
 * buffer) and gives it back in remove.
 */
function holdingDriver<D extends { name: string }>(
  world: World,
  name: string,
  idTable: { device: number; vendor: number }[],
  take: (dev: D) => { cookie: MicIrq; data: object; buf: DmaBuffer; free(): void },
) {
  const held = new Map<D, ReturnType<typeof take>>();
  return {
    name,
    idTable,
    probe(dev: D) {
      held.set(dev, take(dev));
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
  const platform = createInProcessPlatform({ cardMain, resetDelayMs: 100 });
  const buses = makeBuses();
  const log: string[] = [];
  const world: World = {
    platform,
    buses,
    log,
    held: { irqs: 0, buffers: 0, channels: 0 },
    inject: undefined,
    dma: {
      requestChannels: (dev: MbusDevice) => {
        if (world.inject === 'dma channels') return [];
        const chans: DmaChannel[] = [0, 1].map((c) => ({ chanId: c, name: `${dev.name}chan${c}` }));
        world.held.channels += chans.length;
        log.push('+channels');
        return chans;
      },
      releaseChannel: () => {
        world.held.channels--;
        log.push('-channel');
      },
    },
    firmware: {
      request: (name) => {
        if (world.inject === 'firmware') throw new MicError('ENOENT', `no firmware file ${name}`);
        log.push('firmware');
        return new Uint8Array(4096).fill(0x90);
      },
    },
  };
  failOnRegister(world, buses.mbus, 'dma');
  failOnRegister(world, buses.scif, 'scif');
  failOnRegister(world, buses.vop, 'vop');
  failOnRegister(world, buses.cosm, 'cosm');
  for (const [bus, tag] of [
    [buses.mbus, 'mbus'],
    [buses.scif, 'scif'],
    [buses.vop, 'vop'],
    [buses.cosm, 'cosm'],
  ] as const) {
    (bus as { subscribe(l: (e: { type: string }) => void): unknown }).subscribe((e) => {
      if (e.type === 'device-added') log.push(`+${tag}`);
      if (e.type === 'device-removed') log.push(`-${tag}`);
    });
  }
  const ack: IrqHandler<unknown> = () => undefined;
  await buses.mbus.registerDriver(
    holdingDriver<MbusDevice>(
      world,
      'test_dma',
      [
        { device: MBUS_DEV_DMA_HOST, vendor: MBUS_DEV_ANY_ID },
        { device: 0, vendor: 0 },
      ],
      (dev) => {
        const data = { dev };
        const cookie = dev.hwOps.requestThreadedIrq(ack, ack, 'test dma', data, 0);
        const buf = dev.dmaOps.alloc(4096);
        return { cookie, data, buf, free: () => (dev.hwOps.freeIrq(cookie, data), dev.dmaOps.free(buf)) };
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
      (dev) => {
        const data = { dev };
        const cookie = dev.hwOps.requestIrq(ack, 'test scif', data, dev.hwOps.nextDb());
        const buf = dev.dmaOps.alloc(8192);
        return { cookie, data, buf, free: () => (dev.hwOps.freeIrq(cookie, data), dev.dmaOps.free(buf)) };
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
      (dev) => {
        const data = { dev };
        const cookie = dev.hwOps.requestIrq(ack, 'test vop', data, dev.hwOps.nextDb());
        const buf = dev.dmaOps.alloc(100);
        return { cookie, data, buf, free: () => (dev.hwOps.freeIrq(cookie, data), dev.dmaOps.free(buf)) };
      },
    ),
  );
  return world;
}

let world: World | undefined;
afterEach(async () => {
  await world?.platform.close();
  world = undefined;
});

function smptRefs(w: World): number {
  return w.platform.host.smpt.entries().reduce((sum, e) => sum + e.refCount, 0);
}

function handlersOnHostLine(w: World): number {
  let n = 0;
  for (let src = 0; src < 32; src++)
    if ((X100_HOST_SOURCES >>> src) & 1) n += w.platform.host.handlerCount(src);
  return n;
}

/** What a successful start does, in order, with the test's drivers bound. */
const START_LOG = [
  ['+mbus', 'probe test_dma'],
  ['+channels'],
  ['+scif', 'probe test_scif'],
  ['+vop', 'probe test_vop'],
  ['firmware'],
] as const;
/** What undoing each start step logs. */
const UNDO_LOG = [
  ['remove test_dma', '-mbus'],
  ['-channel', '-channel'],
  ['remove test_scif', '-scif'],
  ['remove test_vop', '-vop'],
  [],
] as const;

describe('host start (_mic_start) with a failure injected at each step', () => {
  it.each(MIC_HOST_START_STEPS.map((step, at) => [step, at] as const))(
    'unwinds every earlier step in reverse and leaves nothing behind when %s fails',
    async (step, at) => {
      const w = await makeWorld();
      world = w;
      const driver = await MicHostDriver.init();
      const mic = await driver.probe({
        host: w.platform.host,
        clock: w.platform.clock,
        buses: w.buses,
        dma: w.dma,
        firmware: w.firmware,
      });
      w.log.length = 0;
      w.inject = step;
      const failure = mic.cosmOps.start(mic.cosmDevice!.index, BOOT);
      await expect(failure).rejects.toMatchObject({
        code: step === 'dma channels' ? 'ENODEV' : step === 'firmware' ? 'ENOENT' : 'EIO',
      });

      const done = START_LOG.slice(0, at).flat();
      const undone = UNDO_LOG.slice(0, at).reverse().flat();
      expect(w.log).toEqual([...done, ...undone]);
      // Nothing registered but the COSM device of the probe, nothing held.
      expect(w.buses.mbus.devices()).toEqual([]);
      expect(w.buses.scif.devices()).toEqual([]);
      expect(w.buses.vop.devices()).toEqual([]);
      expect(w.buses.cosm.devices()).toEqual([mic.cosmDevice]);
      expect(w.held).toEqual({ irqs: 0, buffers: 0, channels: 0 });
      expect(mic.irqsInUse).toBe(0);
      expect(handlersOnHostLine(w)).toBe(0);
      expect(mic.dmaOps.liveBuffers).toBe(0);
      expect(mic.dmaOps.liveMappings).toBe(0);
      expect(hostRam(w.platform.host).usedBytes).toBe(4096); // the device page only
      expect(smptRefs(w)).toBe(4096);
      expect(mic.started).toBe(false);
      expect(mic.dmaChannels).toEqual([]);
      expect(mic.dp!.mem.loadU32(0)).toBe(MIC_MAGIC);

      // The card still starts, and removing it leaves the hardware as it was before the probe.
      w.inject = undefined;
      w.log.length = 0;
      await mic.cosmOps.start(mic.cosmDevice!.index, BOOT);
      expect(w.log).toEqual(START_LOG.flat());
      await w.platform.boot;
      await driver.exit();
      expect(w.buses.cosm.devices()).toEqual([]);
      expect(w.buses.mbus.devices()).toEqual([]);
      expect(w.held).toEqual({ irqs: 0, buffers: 0, channels: 0 });
      expect(handlersOnHostLine(w)).toBe(0);
      expect(hostRam(w.platform.host).usedBytes).toBe(0);
      expect(smptRefs(w)).toBe(0);
    },
  );
});

describe('host probe (mic_probe) with a failure injected at each step', () => {
  it.each(MIC_HOST_PROBE_STEPS.map((step) => [step] as const))(
    'leaves no device, memory, SMPT entry or card id behind when %s fails',
    async (step) => {
      const w = await makeWorld();
      world = w;
      const host = w.platform.host;
      // Exhausting host RAM is how the device page allocation fails.
      const filler =
        step === 'device page'
          ? hostRam(host).alloc(w.platform.hardware.config.hostRamSize - 4096, 4096)
          : null;
      w.inject = step;
      const driver = await MicHostDriver.init();
      await expect(driver.probe({ host, clock: w.platform.clock, buses: w.buses })).rejects.toMatchObject({
        code: step === 'device page' ? 'ENOMEM' : 'EIO',
      });
      expect(driver.hosts).toEqual([]);
      expect(w.buses.cosm.devices()).toEqual([]);
      expect(w.buses.cosm.indexesInUse).toBe(0);
      expect(smptRefs(w)).toBe(0);
      if (filler) hostRam(host).free(filler.offset);
      expect(hostRam(host).usedBytes).toBe(0);

      w.inject = undefined;
      const mic = await driver.probe({ host, clock: w.platform.clock, buses: w.buses });
      expect(mic.id).toBe(0);
      await driver.exit();
      expect(hostRam(host).usedBytes).toBe(0);
      expect(smptRefs(w)).toBe(0);
    },
  );

  it('registers nothing and returns no driver when loading the DMA driver fails', async () => {
    const w = await makeWorld();
    world = w;
    let loads = 0;
    await expect(
      MicHostDriver.init({
        loadDmaDriver: async () => {
          loads++;
          throw new MicError('ENOENT', 'module mic_x100_dma not found');
        },
      }),
    ).rejects.toMatchObject({ code: 'ENOENT' });
    expect(loads).toBe(1);
    for (const bus of Object.values(w.buses)) expect(bus.devices()).toEqual([]);
    expect(hostRam(w.platform.host).usedBytes).toBe(0);
  });
});
