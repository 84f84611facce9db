// The host driver on the in-process x100: probe, start, stop, reset, remove, what lands in the
// device page, the scratchpads and the aperture, and the DMA map ops through the SMPT.
import { afterEach, describe, expect, it } from '@jest/globals';
import type { DmaChannel } from '@mic/bus-core';
import { isMicError } from '@mic/errors';
import {
  MIC_BOOTPARAM_OFFSETS,
  MIC_DPHI_SPAD,
  MIC_DPLO_SPAD,
  MIC_MAGIC,
  readBootparam,
} from '@mic/mic-common';
import { MBUS_DEV_DMA_HOST, type MbusDevice } from '@mic/mic-bus';
import {
  MmioMemory,
  spadReg,
  X100_CARD_STATE,
  X100_SMPT,
  X100_SPAD,
  createInProcessPlatform,
} from '@mic/x100';
import {
  BOOT_PARAMS_RAMDISK,
  type DmaChannelProvider,
  MicHostDriver,
  aperBarAddress,
  mmioBarAddress,
  hostRam,
} from '../src/index.js';
import { BOOT, type HostRig, bootedRig, closeRig, hostRig, makeBuses } from './helpers.js';

const rigs: HostRig[] = [];
afterEach(async () => {
  for (const rig of rigs.splice(0).reverse()) await closeRig(rig);
});
async function rig(options: Parameters<typeof hostRig>[1] = {}): Promise<HostRig> {
  const r = await hostRig('inProcess', options);
  rigs.push(r);
  return r;
}

/** Records every device added or removed on the host's buses, in order. */
function recordBusEvents(r: HostRig): string[] {
  const log: string[] = [];
  for (const bus of [r.buses.mbus, r.buses.scif, r.buses.vop, r.buses.cosm] as const) {
    (bus as { subscribe(l: (e: { type: string; device?: { name: string } }) => void): () => void }).subscribe(
      (e) => {
        if (e.type === 'device-added' || e.type === 'device-removed') log.push(`${e.type} ${e.device!.name}`);
      },
    );
  }
  return log;
}

function smptRefs(r: HostRig): number {
  return r.platform.host.smpt.entries().reduce((sum, e) => sum + e.refCount, 0);
}

describe('MicHostDriver', () => {
  it('loads the DMA driver once at init, never when it probes or starts cards', async () => {
    let loads = 0;
    const driver = await MicHostDriver.init({ loadDmaDriver: () => void loads++ });
    expect(loads).toBe(1);
    const platforms = [createInProcessPlatform(), createInProcessPlatform()];
    try {
      const hosts = [];
      for (const p of platforms) {
        hosts.push(await driver.probe({ host: p.host, clock: p.clock, buses: makeBuses() }));
      }
      expect(hosts.map((h) => h.id)).toEqual([0, 1]);
      await hosts[0]!.cosmOps.start(hosts[0]!.cosmDevice!.index, BOOT);
      await driver.exit();
      expect(loads).toBe(1);
      expect(driver.hosts).toEqual([]);
      await expect(driver.probe({ host: platforms[0]!.host, buses: makeBuses() })).rejects.toMatchObject({
        code: 'ENODEV',
      });
    } finally {
      for (const p of platforms) await p.close();
    }
  });

  it('fails init with the loader error and keeps an ENODEV code for plain errors', async () => {
    let calls = 0;
    await expect(
      MicHostDriver.init({
        loadDmaDriver: () => {
          calls++;
          throw new Error('no module mic_x100_dma');
        },
      }),
    ).rejects.toMatchObject({ code: 'ENODEV', message: expect.stringContaining('no module mic_x100_dma') });
    expect(calls).toBe(1);
  });

  it('hands out the lowest free card id, takes a given one, and refuses one in use with EBUSY', async () => {
    const a = await rig({ id: 5 });
    expect(a.mic.id).toBe(5);
    await expect(a.driver.probe({ host: a.platform.host, buses: makeBuses(), id: 5 })).rejects.toMatchObject({
      code: 'EBUSY',
    });
    await expect(
      a.driver.probe({ host: a.platform.host, buses: makeBuses(), id: 128 }),
    ).rejects.toMatchObject({
      code: 'EINVAL',
    });
  });
});

describe('MicHost probe and remove', () => {
  it('allocates the device page in host RAM, maps it through the SMPT, initialises mic_bootparam and registers the COSM device', async () => {
    const r = await rig({ id: 2 });
    const dp = r.mic.dp!;
    expect(dp.micAddr).toBeGreaterThanOrEqual(X100_SMPT.BASE);
    expect(r.platform.host.smpt.toDmaAddr(dp.micAddr)).toBe(dp.dmaAddr);
    expect(readBootparam(dp.mem)).toEqual({
      magic: MIC_MAGIC,
      h2cConfigDb: -1,
      nodeId: 3,
      h2cScifDb: -1,
      c2hScifDb: -1,
      scifHostDmaAddr: 0,
      scifCardDmaAddr: 0,
    });
    expect(r.buses.cosm.devices()).toEqual([r.mic.cosmDevice]);
    expect(r.mic.cosmDevice!.hwOps).toBe(r.mic.cosmOps);
    expect(r.mic.aper).toMatchObject({
      pa: aperBarAddress(2),
      len: r.platform.hardware.config.cardMemorySize,
    });
    expect(r.mic.mmio.pa).toBe(mmioBarAddress(2));
    expect(hostRam(r.platform.host).usedBytes).toBe(4096);
    expect(smptRefs(r)).toBe(4096);

    await r.mic.remove();
    expect(r.buses.cosm.devices()).toEqual([]);
    expect(hostRam(r.platform.host).usedBytes).toBe(0);
    expect(smptRefs(r)).toBe(0);
    expect(r.mic.dp).toBeUndefined();
    expect(r.driver.hosts).toEqual([]);
  });

  it('stops and resets a started card on remove, as cosm_stop(force) would, and disables interrupts', async () => {
    const r = await bootedRig('inProcess');
    rigs.push(r);
    const log = recordBusEvents(r);
    expect(r.platform.cardState).toBe(X100_CARD_STATE.RUNNING);
    await r.mic.remove();
    expect(log).toEqual([
      'device-removed cosm-dev0',
      'device-removed vop-dev0',
      'device-removed scif-dev1',
      'device-removed mbus-dev0',
    ]);
    // The reset killed the card code (the firmware is ready again after the platform's reset delay).
    expect(r.platform.card).toBeUndefined();
    expect(r.platform.cardState).not.toBe(X100_CARD_STATE.RUNNING);
    expect(r.platform.host.interruptEnableMask()).toBe(0);
    expect(hostRam(r.platform.host).usedBytes).toBe(0);
    expect(smptRefs(r)).toBe(0);
  });
});

describe('MicHost start and stop (the COSM hw ops)', () => {
  it('lets a COSM driver start the card from its probe and stop it from its remove', async () => {
    const buses = makeBuses();
    const calls: string[] = [];
    await buses.cosm.registerDriver({
      name: 'cosm',
      probe: async (cdev) => {
        calls.push(`probe ${cdev.name}`);
        await cdev.hwOps.start(cdev.index, BOOT);
      },
      remove: async (cdev) => {
        calls.push(`remove ${cdev.name}`);
        await cdev.hwOps.stop(true);
      },
    });
    const r = await rig({ buses });
    expect(r.mic.started).toBe(true);
    expect(buses.vop.devices()).toEqual([r.mic.vopDevice]);
    await r.platform.boot;
    await r.mic.remove();
    expect(calls).toEqual(['probe cosm-dev0', 'remove cosm-dev0']);
    for (const bus of Object.values(buses)) expect(bus.devices()).toEqual([]);
    expect(hostRam(r.platform.host).usedBytes).toBe(0);
  });

  it('registers DMA, SCIF and VOP in that order with the kernel fields, loads the firmware and boots the card', async () => {
    const r = await rig({ id: 1 });
    const log = recordBusEvents(r);
    await r.mic.cosmOps.start(r.mic.cosmDevice!.index, BOOT);
    expect(log).toEqual(['device-added mbus-dev0', 'device-added scif-dev2', 'device-added vop-dev1']);
    const mbus = r.mic.mbusDevice!;
    expect(mbus).toMatchObject({ index: 0, id: { device: MBUS_DEV_DMA_HOST } });
    // The DMA driver writes registers through the register file (handlers run), not raw memory.
    expect(mbus.mmioVa).toBeInstanceOf(MmioMemory);
    expect(mbus.mmioVa.byteLength).toBe(r.platform.host.mmio.memory.byteLength);
    r.platform.host.writeSpad(3, 0x1234abcd);
    expect(mbus.mmioVa.readU32(spadReg(3))).toBe(0x1234abcd);
    expect(mbus.dmaOps).toBe(r.mic.dmaOps);
    expect(r.mic.scifDevice).toMatchObject({ dnode: 2, snode: 0, rdp: null, dmaCh: [], cardRelDa: true });
    expect(r.mic.scifDevice!.dp).toBe(r.mic.dp!.mem);
    expect(r.mic.scifDevice!.aper).toBe(r.mic.aper);
    expect(r.mic.scifDevice!.mmio).toBe(r.mic.mmio);
    expect(r.mic.vopDevice).toMatchObject({ dnode: 2, index: 1, dmaCh: null });
    expect(r.mic.vopDevice!.aper).toBe(r.mic.aper);
    expect(r.mic.vopDevice!.hwOps.getDp()).toBe(r.mic.dp!.mem);
    expect(r.mic.vopDevice!.hwOps.getRemoteDp()).toBeNull();
    // _mic_start's tail: device page address in SPAD14/15, interrupts on, the card booting.
    const host = r.platform.host;
    expect(host.readSpad(MIC_DPLO_SPAD) + host.readSpad(MIC_DPHI_SPAD) * 2 ** 32).toBe(r.mic.dp!.micAddr);
    expect(host.interruptEnableMask()).not.toBe(0);
    await r.platform.boot;
    expect(r.platform.cardState).toBe(X100_CARD_STATE.RUNNING);
    expect(await r.platform.card!.call('devicePage')).toBe(r.mic.dp!.dmaAddr);
    await expect(r.mic.cosmOps.start(0, BOOT)).rejects.toMatchObject({ code: 'EBUSY' });
  });

  it('puts the firmware at the boot address, its size in SPAD5, the command line after it and the ramdisk at twice the boot address', async () => {
    const files: Record<string, Uint8Array> = {
      'mic/uos.img': new Uint8Array(0x400).fill(0xa5),
      'mic/mic0.image': new Uint8Array(300).fill(0x3c),
    };
    const r = await rig({
      firmware: {
        request: (name) => {
          const f = files[name];
          if (!f) throw Object.assign(new Error(`no ${name}`), { code: 'ENOENT' });
          return f;
        },
      },
    });
    await r.mic.cosmOps.start(0, { ...BOOT, ramdisk: 'mic/mic0.image', cmdline: 'console=hvc0' });
    const host = r.platform.host;
    const aper = host.aperture;
    const bootAddr = r.platform.hardware.config.bootAddr;
    expect(r.mic.firmwareLayout).toEqual({
      bootAddr,
      fwSize: 0x400,
      cmdline: ` mem=${aper.byteLength >> 20}M console=hvc0`,
      ramdisk: { addr: 2 * bootAddr, size: 300 },
    });
    expect(host.readSpad(X100_SPAD.FW_SIZE)).toBe(0x400);
    expect(aper.readU8(bootAddr)).toBe(0xa5);
    expect(aper.readU32(bootAddr + BOOT_PARAMS_RAMDISK.IMAGE)).toBe(2 * bootAddr);
    expect(aper.readU32(bootAddr + BOOT_PARAMS_RAMDISK.SIZE)).toBe(300);
    const cmdBytes = new Uint8Array(r.mic.firmwareLayout!.cmdline.length);
    aper.read(bootAddr + 0x400, cmdBytes);
    const cmd = new TextDecoder().decode(cmdBytes);
    expect(cmd).toBe(r.mic.firmwareLayout!.cmdline);
    expect(aper.readU8(bootAddr + 0x400 + cmd.length)).toBe(0);
    expect(aper.readU8(2 * bootAddr + 299)).toBe(0x3c);
  });

  it('rejects flash and a missing firmware name with EINVAL before registering anything', async () => {
    const r = await rig();
    const log = recordBusEvents(r);
    await expect(r.mic.cosmOps.start(0, { ...BOOT, bootmode: 'flash' })).rejects.toMatchObject({
      code: 'EINVAL',
    });
    await expect(r.mic.cosmOps.start(0, { ...BOOT, firmware: null })).rejects.toMatchObject({
      code: 'EINVAL',
    });
    expect(log).toEqual([]);
    expect(r.mic.started).toBe(false);
  });

  it('refuses to start a card whose firmware is not ready with EBUSY, and unwinds', async () => {
    const r = await rig();
    const log = recordBusEvents(r);
    r.platform.host.writeSpad(X100_SPAD.DOWNLOAD_INFO, 0);
    await expect(r.mic.cosmOps.start(0, BOOT)).rejects.toMatchObject({ code: 'EBUSY' });
    expect(log).toEqual([
      'device-added mbus-dev0',
      'device-added scif-dev1',
      'device-added vop-dev0',
      'device-removed vop-dev0',
      'device-removed scif-dev1',
      'device-removed mbus-dev0',
    ]);
    expect(r.platform.cardState).toBe(X100_CARD_STATE.READY);
  });

  it('gives SCIF every DMA channel and VOP the first one, and gives them back on stop', async () => {
    const held = new Set<DmaChannel>();
    const asked: [string, number][] = [];
    const dma: DmaChannelProvider = {
      requestChannels: (dev: MbusDevice, max: number) => {
        asked.push([dev.name, max]);
        const chans = [0, 1, 2].map((c) => ({ chanId: c, name: `dma0chan${c}` }));
        for (const c of chans) held.add(c);
        return chans;
      },
      releaseChannel: (ch) => {
        expect(held.delete(ch)).toBe(true);
      },
    };
    const r = await rig({ dma });
    await r.mic.cosmOps.start(0, BOOT);
    expect(asked).toEqual([['mbus-dev0', 4]]);
    expect(r.mic.scifDevice!.dmaCh.map((c) => c.chanId)).toEqual([0, 1, 2]);
    expect(r.mic.vopDevice!.dmaCh?.chanId).toBe(0);
    await r.mic.cosmOps.stop(false);
    expect(held.size).toBe(0);
    expect(r.mic.dmaChannels).toEqual([]);
  });

  it('waits for each asynchronous channel release before the next and before the DMA device goes, even when one fails', async () => {
    const log: string[] = [];
    const dma: DmaChannelProvider = {
      requestChannels: () => [0, 1, 2].map((c) => ({ chanId: c, name: `dma0chan${c}` })),
      // a DMA driver's release drains the channel first
      releaseChannel: async (ch) => {
        log.push(`release ${ch.name}`);
        await new Promise((resolve) => setImmediate(resolve));
        log.push(`released ${ch.name}`);
        if (ch.chanId === 1) throw new Error('drain timed out');
      },
    };
    const r = await rig({ dma });
    await r.mic.cosmOps.start(0, BOOT);
    const events = recordBusEvents(r);
    await r.mic.cosmOps.stop(false);
    log.push(...events.filter((e) => e.includes('mbus')));
    expect(log).toEqual([
      'release dma0chan2',
      'released dma0chan2',
      'release dma0chan1',
      'released dma0chan1',
      'release dma0chan0',
      'released dma0chan0',
      'device-removed mbus-dev0',
    ]);
    expect(r.mic.started).toBe(false);
  });

  it('fails the start with ENODEV when the DMA provider has no channel, as the kernel does', async () => {
    const r = await rig({ dma: { requestChannels: () => [], releaseChannel: () => undefined } });
    await expect(r.mic.cosmOps.start(0, BOOT)).rejects.toMatchObject({ code: 'ENODEV' });
    expect(r.buses.mbus.devices()).toEqual([]);
  });

  it('unregisters VOP, SCIF and DMA in reverse order on stop and reinitialises mic_bootparam', async () => {
    const r = await bootedRig('inProcess');
    rigs.push(r);
    const log = recordBusEvents(r);
    const dp = r.mic.dp!.mem;
    dp.writeU8(MIC_BOOTPARAM_OFFSETS.h2cConfigDb, 3);
    await r.mic.cosmOps.stop(false);
    expect(log).toEqual(['device-removed vop-dev0', 'device-removed scif-dev1', 'device-removed mbus-dev0']);
    expect(readBootparam(dp).h2cConfigDb).toBe(-1);
    expect(r.mic.started).toBe(false);
    // Stopping twice does nothing; a reset makes the card ready again and it can start again.
    await r.mic.cosmOps.stop(true);
    expect(log).toHaveLength(3);
    await r.mic.cosmOps.reset();
    expect(r.platform.card).toBeUndefined();
    while (!r.mic.cosmOps.ready()) await r.platform.clock.sleep(100);
    await r.mic.cosmOps.start(0, BOOT);
    await r.platform.boot;
    expect(r.platform.cardState).toBe(X100_CARD_STATE.RUNNING);
  });

  it('resets through SPAD2 and RGCR and waits a second of the clock, as mic_x100_hw_reset', async () => {
    const r = await rig();
    expect(r.mic.cosmOps.ready()).toBe(true);
    const t0 = r.platform.clock.now();
    await r.mic.cosmOps.reset();
    expect(r.platform.clock.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(r.platform.cardState).toBe(X100_CARD_STATE.READY);
    expect(r.mic.cosmOps.family()).toBe('x100');
    expect(r.mic.cosmOps.stepping()).toBe('C0');
  });
});

describe('the host DMA map ops', () => {
  it('map host RAM through the SMPT to addresses the card reaches, and release the SMPT references', async () => {
    const r = await bootedRig('inProcess');
    rigs.push(r);
    const ops = r.mic.dmaOps;
    const before = smptRefs(r);
    const buf = ops.alloc(8192);
    expect(buf.dmaAddr).toBeGreaterThanOrEqual(X100_SMPT.BASE);
    expect(smptRefs(r)).toBe(before + 8192);
    buf.va.storeU32(16, 0xfeedf00d);
    const seen = r.platform.hardware.hostRam.window(
      (await r.handle.call('map', buf.dmaAddr, 8192)) as number,
      8192,
    );
    expect(seen.loadU32(16)).toBe(0xfeedf00d);
    const addr = ops.mapSingle(buf.va.window(100, 28));
    expect(addr).toBe(buf.dmaAddr + 100);
    expect(ops.liveMappings).toBe(1);
    ops.unmapSingle(addr, 28);
    ops.free(buf);
    expect(smptRefs(r)).toBe(before);
    expect(ops.liveBuffers).toBe(0);
    expect(() => ops.free(buf)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('keeps a failed allocation from leaking: ENOMEM when host RAM is exhausted', async () => {
    const r = await rig();
    const ram = r.platform.hardware.config.hostRamSize;
    let err: unknown;
    try {
      r.mic.dmaOps.alloc(ram);
    } catch (e) {
      err = e;
    }
    expect(isMicError(err, 'ENOMEM')).toBe(true);
    expect(hostRam(r.platform.host).usedBytes).toBe(4096);
    expect(smptRefs(r)).toBe(4096);
  });
});

describe('the host and the card device page', () => {
  it('publishes a device page the card maps through SPAD14/15 and the SMPT', async () => {
    const r = await bootedRig('inProcess');
    rigs.push(r);
    const dp = await r.peer.devicePage();
    expect(dp.readU8(MIC_BOOTPARAM_OFFSETS.nodeId)).toBe(1);
    dp.writeU8(MIC_BOOTPARAM_OFFSETS.h2cConfigDb, 6);
    expect(readBootparam(r.mic.dp!.mem).h2cConfigDb).toBe(6);
  });
});
