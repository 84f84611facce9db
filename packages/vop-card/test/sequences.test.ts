import { describe, expect, it } from '@jest/globals';
import { readBytes } from '@mic/memory';
import { VirtualClock } from '@mic/clock';
import { isMicError } from '@mic/errors';
import { MIC_DEVICE_CTRL_OFFSETS as CTRL, readS8 } from '@mic/mic-common';
import {
  VIRTIO_CONFIG_S,
  VIRTIO_DEV_ANY_ID,
  VIRTIO_F,
  type VirtioDevice,
  type VirtioDriver,
  features,
} from '@mic/virtio';
import { VOP_RELOCATION_TIMEOUT_MS, VOP_RESET_TIMEOUT_MS } from '../src/index.js';
import { type HostDevice, tick, waitFor } from './host-double.js';
import { type CardSetup, setupCard } from './setup.js';
import { RX_COUNT } from './test-driver.js';

const { ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, FAILED } = VIRTIO_CONFIG_S;
const CONSOLE = { type: 3, nums: [128, 128], config: new Uint8Array(12) };
const NET = { type: 1, nums: [128, 128], config: new Uint8Array(24) };
const BLOCK = { type: 2, nums: [128], config: new Uint8Array(60) };
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function vdevOf(s: CardSetup, offset: number): VirtioDevice {
  const d = s.driver.devices().find((x) => x.offset === offset);
  if (!d) throw new Error(`no card device at offset ${offset}`);
  return d.vdev;
}

/** Every card doorbell is free, every card buffer and mapping released. */
function expectNothingAllocated(s: CardSetup): void {
  for (let db = 0; db < 16; db++) expect(s.link.card.usage(db)).toBe(0);
  expect(s.link.cardDmaOps.liveBuffers).toBe(0);
  expect(s.link.card.liveMappings).toBe(0);
}

describe('probe and hot-plug (vop_driver_probe, _vop_scan_devices, _vop_add_device)', () => {
  it('registers a virtio device per entry found by the initial scan, each bound and DRIVER_OK', async () => {
    const s = await setupCard({ devices: [CONSOLE, NET, BLOCK] });
    const devs = s.driver.devices();
    expect(devs.map((d) => [d.offset, d.type, d.numVq])).toEqual([
      [24, 3, 2],
      [120, 1, 2],
      [224, 2, 1],
    ]);
    expect(s.virtioBus.devices()).toHaveLength(3);
    for (const d of devs) {
      expect(d.vdev.parent).toBe('vop-dev4294967295');
      expect(s.virtioBus.driverOf(d.vdev)).toBe(s.testDriver);
      expect(d.vdev.getStatus()).toBe(ACKNOWLEDGE | DRIVER | DRIVER_OK);
      expect(d.c2hVdevDb).toBe(s.hostDevs.find((h) => h.offset === d.offset)!.db);
      expect(
        s.host.usedAddress(
          s.hostDevs.find((h) => h.offset === d.offset)!,
          0,
        ),
      ).not.toBe(0);
    }
    expect(s.events.filter((e) => e.type === 'device-added')).toHaveLength(3);
    expect(s.hostDevs.every((h) => h.relocations === 1 && h.resets === 1)).toBe(true);
    // The bus's first reset (register_virtio_device) went through the handshake.
    expect(s.host.configDb).toBe(3);
  });

  it('walks the negotiation: reset, ACKNOWLEDGE, DRIVER, relocation while not DRIVER_OK, then DRIVER_OK', async () => {
    const s = await setupCard({ probe: false });
    const dev = s.host.add(CONSOLE);
    // What the status byte was each time the card rang the host.
    const rings: { status: number; relocation: boolean; reset: boolean }[] = [];
    const send = s.link.card.sendIntr.bind(s.link.card);
    s.link.card.sendIntr = (db: number): void => {
      rings.push({
        status: s.host.byte(dev.offset + 4),
        relocation: s.host.ctrlByte(dev, 'usedAddressUpdated') === 1,
        reset: s.host.ctrlByte(dev, 'vdevReset') === 1,
      });
      send(db);
    };
    await s.probe();
    expect(rings[0]).toEqual({ status: 0, relocation: false, reset: true }); // register_virtio_device
    const statuses = rings.map((r) => r.status).filter((v, i, a) => i === 0 || a[i - 1] !== v);
    expect(statuses).toEqual([0, ACKNOWLEDGE, ACKNOWLEDGE | DRIVER, ACKNOWLEDGE | DRIVER | DRIVER_OK]);
    const relocation = rings.filter((r) => r.relocation);
    expect(relocation).toEqual([{ status: ACKNOWLEDGE | DRIVER, relocation: true, reset: false }]);
    expect(dev.relocations).toBe(1);
  });

  it('finds a device the host adds after the probe through the config interrupt', async () => {
    const s = await setupCard({});
    expect(s.virtioBus.devices()).toHaveLength(0);
    const configDb = s.host.configDb;
    expect(configDb).toBe(0);
    const dev = s.host.add(CONSOLE);
    expect(s.link.host.sentInterrupts.at(-1)).toBe(configDb);
    await s.settle();
    const [d] = s.driver.devices();
    expect(d?.offset).toBe(dev.offset);
    expect(s.virtioBus.driverOf(d!.vdev)).toBe(s.testDriver);
    expect(d!.vdev.getStatus() & DRIVER_OK).toBe(DRIVER_OK);
    expect(s.link.card.acks).toContain(configDb);
  });

  it('finds a device the host added while the initial scan ran, before it could see h2c_config_db', async () => {
    const s = await setupCard({ probe: false });
    const first = s.host.add(CONSOLE);
    let late: HostDevice | undefined;
    s.host.onNotify = (d) => {
      // During the first device's registration: the card has not published its config doorbell.
      if (d === first && !late) {
        expect(s.host.configDb).toBe(-1);
        late = s.host.add(NET);
      }
    };
    const rings = s.link.host.sentInterrupts.length;
    await s.probe();
    expect(s.link.host.sentInterrupts.slice(rings)).not.toContain(s.host.configDb);
    expect(s.driver.devices().map((d) => d.offset)).toEqual([first.offset, late!.offset]);
  });

  it('fails with ENODEV, quietly, on a host-role device and with EIO on a bad bootparam magic', async () => {
    const s = await setupCard({ probe: false });
    const hostSide = await s.vopBus.registerDevice(s.link.hostParams());
    expect(s.vopBus.probeError(hostSide)?.code).toBe('ENODEV');
    s.host.dp.writeU32(0, 0xdeadbeef);
    const card = await s.vopBus.registerDevice(s.link.cardParams());
    const err = s.vopBus.probeError(card);
    expect(err?.code).toBe('EIO');
    expect(err?.message).toMatch(/bootparam magic mismatch: found 0xdeadbeef/);
    expectNothingAllocated(s);
    expect(s.host.configDb).toBe(-1);
  });
});

describe('features, config space and status (vop_vq_config_ops)', () => {
  it('offers the host features, acks what was negotiated, clears packed and indirect, sets ACCESS_PLATFORM', async () => {
    const offered = features(3, VIRTIO_F.RING_INDIRECT_DESC, VIRTIO_F.RING_EVENT_IDX, 12);
    const s = await setupCard({ devices: [{ ...CONSOLE, features: offered }], featureTable: [3, 5] });
    const vdev = vdevOf(s, 24);
    expect(vdev.config.getFeatures()).toBe(offered);
    expect(vdev.features).toBe(features(3, VIRTIO_F.RING_EVENT_IDX, VIRTIO_F.ACCESS_PLATFORM));
    // feature_len 4: bits 3 and 29 acked, ACCESS_PLATFORM (33) does not fit.
    expect([...readBytes(s.host.dp, 24 + 8 + 48 + 4, 4)]).toEqual([0x08, 0, 0, 0x20]);
    const [rx] = s.testDriver.queues(vdev);
    expect(rx?.ring.eventIdx).toBe(true);
  });

  it('with feature_len 8 negotiates VERSION_1: FEATURES_OK is set and re-read, bits 32 and 33 are acked', async () => {
    const offered = features(VIRTIO_F.VERSION_1, VIRTIO_F.RING_PACKED, 1);
    const s = await setupCard({
      devices: [{ ...CONSOLE, features: offered, featureLen: 8 }],
      featureTable: [1],
    });
    const vdev = vdevOf(s, 24);
    expect(vdev.getStatus()).toBe(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    expect(vdev.features).toBe(features(1, VIRTIO_F.VERSION_1, VIRTIO_F.ACCESS_PLATFORM));
    const acks = 24 + 8 + 48 + 8;
    expect([...readBytes(s.host.dp, acks, 8)]).toEqual([0x02, 0, 0, 0, 0x03, 0, 0, 0]);
  });

  it('reads and writes config space inside config_len and refuses outside it with EINVAL', async () => {
    const config = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
    const s = await setupCard({ devices: [{ ...CONSOLE, config }] });
    const vdev = vdevOf(s, 24);
    expect([...vdev.readConfig(0, 12)]).toEqual([...config]);
    expect(vdev.readConfigU16(2)).toBe(0x0403);
    vdev.writeConfig(10, Uint8Array.of(0xaa, 0xbb));
    const space = 24 + 8 + 48 + 8;
    expect([...readBytes(s.host.dp, space + 10, 2)]).toEqual([0xaa, 0xbb]);
    for (const [o, l] of [
      [10, 4],
      [12, 1],
      [-1, 1],
    ] as const) {
      expect(() => vdev.readConfig(o, l)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(() => vdev.writeConfig(11, Uint8Array.of(1, 2))).toThrow(/outside the 12-byte config space/);
    expect(s.host.dp.readU8(space + 12)).toBe(0); // the ctrl after it is untouched
  });

  it('writes non-zero status and rings c2h_vdev_db; ignores status 0', async () => {
    const s = await setupCard({ devices: [CONSOLE] });
    const vdev = vdevOf(s, 24);
    const dev = s.hostDevs[0]!;
    const rings = s.link.card.sentInterrupts.length;
    vdev.config.setStatus(0);
    expect(s.link.card.sentInterrupts.length).toBe(rings);
    expect(s.host.byte(28)).toBe(ACKNOWLEDGE | DRIVER | DRIVER_OK);
    vdev.config.setStatus(0x47);
    expect(s.host.byte(28)).toBe(0x47);
    expect(s.link.card.sentInterrupts.slice(rings)).toEqual([dev.db]);
  });
});

describe('queues (vop_find_vqs, vop_notify, vop_virtio_intr_handler)', () => {
  it('moves data both ways: card tx echoed by the host into card rx, and host-initiated rx', async () => {
    const s = await setupCard({ devices: [CONSOLE, NET] });
    s.host.onNotify = (dev) => s.host.echo(dev, 1, 0);
    const console = vdevOf(s, 24);
    const net = vdevOf(s, 120);
    s.testDriver.send(console, enc('hello over vop'));
    s.testDriver.send(net, enc('a frame'));
    s.testDriver.send(console, enc('and again'));
    await s.settle();
    expect(s.testDriver.received(console).map(dec)).toEqual(['hello over vop', 'and again']);
    expect(s.testDriver.received(net).map(dec)).toEqual(['a frame']);
    const hostDev = s.hostDevs.find((h) => h.offset === 24)!;
    expect(s.host.send(hostDev, 0, enc('from the host'))).toBe(13);
    await s.settle();
    expect(s.testDriver.received(console).map(dec)).toEqual(['hello over vop', 'and again', 'from the host']);
    // Receive buffers were posted again and transmit buffers came back: nothing leaked.
    expect(s.testDriver.queues(console)[0]!.ring.inFlight).toBe(RX_COUNT);
    expect(s.testDriver.queues(console)[1]!.ring.inFlight).toBe(0);
  });

  it('skips null names without using a queue index and refuses more queues than num_vq with ENOENT', async () => {
    const s = await setupCard({ devices: [CONSOLE], withDriver: false });
    const results: unknown[] = [];
    const drv: VirtioDriver = {
      name: 'null-names',
      idTable: [
        { device: 3, vendor: VIRTIO_DEV_ANY_ID },
        { device: 0, vendor: 0 },
      ],
      featureTable: [],
      probe: async (vdev) => {
        await vdev.findVqs([{ name: 'a' }, { name: 'b' }, { name: 'c' }]).then(
          () => results.push('ok'),
          (e: unknown) => results.push(e),
        );
        const qs = await vdev.findVqs([{ name: null }, { name: 'second' }]);
        results.push(qs.map((q) => (q ? `${q.name}@${q.index}` : null)));
      },
      remove: async (vdev) => {
        await vdev.reset();
        await vdev.delVqs();
      },
    };
    await s.virtioBus.registerDriver(drv);
    await s.settle();
    expect(isMicError(results[0], 'ENOENT')).toBe(true);
    expect(results[1]).toEqual([null, 'second@0']);
    const dev = s.hostDevs[0]!;
    expect(s.host.usedAddress(dev, 0)).not.toBe(0);
    expect(s.host.usedAddress(dev, 1)).toBe(0);
    expect(s.link.card.liveMappings).toBe(1);
  });

  it('card-initiated reset: host_ack cleared, vdev_reset set, doorbell, host_ack awaited, status 0', async () => {
    const s = await setupCard({ devices: [CONSOLE] });
    const vdev = vdevOf(s, 24);
    const dev = s.hostDevs[0]!;
    const before = dev.resets;
    const t0 = s.clock.now();
    await vdev.reset();
    expect(dev.resets).toBe(before + 1);
    expect(s.host.ctrlByte(dev, 'hostAck')).toBe(1);
    expect(s.host.ctrlByte(dev, 'vdevReset')).toBe(0);
    expect(s.host.byte(28)).toBe(0);
    expect(s.clock.now() - t0).toBeLessThan(VOP_RESET_TIMEOUT_MS);
  });
});

describe('config change and hot-unplug (_vop_handle_config_change, _vop_remove_device)', () => {
  it('calls the driver configChanged, then sets guest_ack; the new bytes are readable', async () => {
    const s = await setupCard({ devices: [CONSOLE] });
    const vdev = vdevOf(s, 24);
    const dev = s.hostDevs[0]!;
    await s.host.configChange(dev, Uint8Array.of(80, 0, 25, 0));
    await s.settle();
    expect(s.testDriver.configChanges).toEqual([vdev]);
    expect(vdev.readConfigU16(0)).toBe(80);
    expect(s.events.filter((e) => e.type === 'config-changed')).toHaveLength(1);
    // The host cleared the flags: a later scan does not repeat the change.
    s.host.ringConfig();
    await s.settle();
    expect(s.testDriver.configChanges).toHaveLength(1);
    // Nor does a scan between the card's ack and the host clearing the flags.
    s.host.dp.writeU8(dev.ctrl + CTRL.configChange, 2);
    s.host.ringConfig();
    await waitFor(() => s.host.ctrlByte(dev, 'guestAck') === 1, 'guest_ack');
    s.host.ringConfig();
    await s.settle();
    expect(s.testDriver.configChanges).toHaveLength(2);
  });

  it('hot-unplug: unregisters the virtio device after the reset handshake, h2c_vdev_db -1, guest_ack 1, type -1', async () => {
    const s = await setupCard({ devices: [CONSOLE, NET, BLOCK] });
    const block = vdevOf(s, 224);
    const dev = s.hostDevs[2]!;
    const resets = dev.resets;
    const h2c = readS8(s.host.dp, dev.ctrl + CTRL.h2cVdevDb);
    expect(s.link.card.usage(h2c)).toBe(1);
    s.host.dp.writeU8(dev.ctrl + CTRL.configChange, 1);
    s.host.ringConfig();
    await waitFor(() => s.host.ctrlByte(dev, 'guestAck') === 1, 'guest_ack');
    expect(s.testDriver.removed).toEqual([block]);
    expect(s.virtioBus.devices()).not.toContain(block);
    expect(dev.resets).toBe(resets + 1);
    expect(readS8(s.host.dp, dev.ctrl + CTRL.h2cVdevDb)).toBe(-1);
    expect(readS8(s.host.dp, dev.offset)).toBe(-1);
    expect(s.link.card.usage(h2c)).toBe(0);
    // virtio_dev_remove acknowledges the device again after the driver's reset.
    expect(s.host.byte(dev.offset + 4)).toBe(ACKNOWLEDGE);
    await s.settle();
    expect(s.events.find((e) => e.type === 'device-removed')).toMatchObject({ reason: 'hot-unplug' });
    expect(s.driver.devices().map((d) => d.offset)).toEqual([24, 120]);
    // The other devices keep working.
    s.host.onNotify = (d) => s.host.echo(d, 1, 0);
    s.testDriver.send(vdevOf(s, 24), enc('still here'));
    await s.settle();
    expect(s.testDriver.received(vdevOf(s, 24)).map(dec)).toEqual(['still here']);
  });

  it('re-adds a device into the freed slot and binds a new virtio device there', async () => {
    const s = await setupCard({ devices: [CONSOLE, NET, BLOCK] });
    const old = vdevOf(s, 224);
    const oldHandle = s.driver.devices().find((d) => d.offset === 224)!.handle;
    await s.host.remove(s.hostDevs[2]!);
    await s.settle();
    const again = s.host.add(BLOCK);
    expect(again.offset).toBe(224);
    await s.settle();
    const now = s.driver.devices().find((d) => d.offset === 224)!;
    expect(now.vdev).not.toBe(old);
    expect(now.handle).not.toBe(oldHandle);
    expect(s.host.dp.readU64(again.ctrl)).toBe(now.handle);
    expect(s.virtioBus.driverOf(now.vdev)).toBe(s.testDriver);
    expect(now.vdev.getStatus() & DRIVER_OK).toBe(DRIVER_OK);
    expect(again.relocations).toBe(1);
  });

  it('runs the reset handshake itself when a driver removed a live device without resetting it', async () => {
    const s = await setupCard({ devices: [CONSOLE] });
    s.testDriver.skipResetOnRemove = true;
    const dev = s.hostDevs[0]!;
    const resets = dev.resets;
    await s.host.remove(dev);
    await s.settle();
    expect(dev.resets).toBe(resets + 1);
    expectNothingAllocatedButConfig(s);
  });

  it('acks a hot-unplug of an entry that never became a device', async () => {
    const s = await setupCard({ devices: [{ ...CONSOLE, magic: () => 0x1234 }] });
    expect(s.driver.devices()).toHaveLength(0);
    const dev = s.hostDevs[0]!;
    const rings = s.link.host.sentInterrupts.length;
    await s.host.remove(dev);
    expect(s.link.host.sentInterrupts.length).toBe(rings + 1);
    expect(readS8(s.host.dp, dev.offset)).toBe(-1);
  });

  it('lets go of a device whose slot the host freed without the handshake, without touching the page', async () => {
    const s = await setupCard({ devices: [CONSOLE, NET] });
    const net = vdevOf(s, 120);
    const dev = s.hostDevs[1]!;
    const resets = dev.resets;
    s.host.dp.writeU8(dev.offset, 0xff); // type -1, as a host that gave up waiting
    const ctrlBefore = readBytes(s.host.dp, dev.ctrl, 16).slice();
    s.host.ringConfig();
    await s.settle();
    expect(s.events.find((e) => e.type === 'device-removed')).toMatchObject({ reason: 'host-dropped' });
    expect(s.virtioBus.devices()).not.toContain(net);
    expect(dev.resets).toBe(resets);
    expect([...readBytes(s.host.dp, dev.ctrl, 16)]).toEqual([...ctrlBefore]);
    expect(s.testDriver.queues(vdevOf(s, 24))[0]!.broken).toBe(false);
    expect(s.link.card.liveMappings).toBe(2);
  });
});

function expectNothingAllocatedButConfig(s: CardSetup): void {
  const config = s.host.configDb;
  for (let db = 0; db < 16; db++) expect(s.link.card.usage(db)).toBe(db === config ? 1 : 0);
  expect(s.link.cardDmaOps.liveBuffers).toBe(0);
  expect(s.link.card.liveMappings).toBe(0);
}

describe('timeouts (bounded by the kernel figures on the injected clock)', () => {
  it('host never takes the relocated used rings: find_vqs fails with ENODEV after 9.9 s, all undone', async () => {
    const s = await setupCard({ devices: [CONSOLE], host: { answerRelocation: false } });
    const vdev = vdevOf(s, 24);
    const err = s.virtioBus.probeError(vdev);
    expect(err?.code).toBe('ENODEV');
    expect(err?.message).toMatch(/did not take the relocated used rings within 9900 ms/);
    expect(s.clock.now()).toBeGreaterThanOrEqual(VOP_RELOCATION_TIMEOUT_MS);
    expect(s.clock.now()).toBeLessThan(VOP_RELOCATION_TIMEOUT_MS + 100);
    expect(vdev.getStatus() & FAILED).toBe(FAILED);
    const dev = s.hostDevs[0]!;
    expect(s.host.usedAddress(dev, 0)).toBe(0);
    expect(s.host.usedAddress(dev, 1)).toBe(0);
    expect(s.host.ctrlByte(dev, 'usedAddressUpdated')).toBe(0);
    expect(s.link.cardDmaOps.liveBuffers).toBe(0);
    expect(s.link.card.liveMappings).toBe(0);
  });

  it('host never answers a reset: status 0 after 10 s, logged', async () => {
    const s = await setupCard({ devices: [CONSOLE] });
    const vdev = vdevOf(s, 24);
    s.host.answerReset = false;
    const t0 = s.clock.now();
    await vdev.reset();
    expect(s.clock.now() - t0).toBeGreaterThanOrEqual(VOP_RESET_TIMEOUT_MS);
    expect(s.clock.now() - t0).toBeLessThan(VOP_RESET_TIMEOUT_MS + 100);
    expect(s.host.byte(28)).toBe(0);
    expect(s.host.ctrlByte(s.hostDevs[0]!, 'vdevReset')).toBe(1);
    expect(
      s.logger.records.some((r) => r.level === 'warn' && /did not acknowledge the reset/.test(r.msg)),
    ).toBe(true);
  });

  it('removing the driver cancels a wait on the host in a running hot-plug scan, which stops adding', async () => {
    const clock = new VirtualClock({ autoAdvance: false });
    const s = await setupCard({ clock, host: { answerRelocation: false }, probe: false });
    // The scans of an empty page need no clock.
    const vpdev = await s.vopBus.registerDevice(s.link.cardParams());
    const dev = s.host.add(CONSOLE);
    s.host.add(NET);
    // The registration reset polls host_ack: let the clock move until the relocation wait starts.
    await advanceUntil(clock, () => s.host.ctrlByte(dev, 'usedAddressUpdated') === 1);
    const start = clock.now();
    const removing = s.vopBus.unregisterDevice(vpdev);
    let done = false;
    void removing.then(() => (done = true));
    await advanceUntil(clock, () => done);
    expect(clock.now() - start).toBeLessThan(1000);
    // The scan stopped adding: the net entry after the console never became a device.
    expect(
      s.events
        .filter((e) => e.type === 'device-added')
        .map((e) => e.type === 'device-added' && e.device.offset),
    ).toEqual([24]);
    expect(s.virtioBus.devices()).toHaveLength(0);
    expectNothingAllocated(s);
    expect(s.logger.records.some((r) => /cancelled/.test(r.msg))).toBe(true);
  });
});

async function advanceUntil(clock: VirtualClock, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100_000 && !cond(); i++) {
    await tick();
    if (i % 4 === 3) clock.advance(10);
  }
  if (!cond()) throw new Error('never happened');
}

describe('driver remove (vop_driver_remove, REMOVE_DEVICES)', () => {
  it('unregisters every device with the reset handshake and frees every irq, buffer and mapping', async () => {
    const s = await setupCard({ devices: [CONSOLE, NET, BLOCK] });
    s.host.onNotify = (d) => s.host.echo(d, 1, 0);
    s.testDriver.send(vdevOf(s, 24), enc('traffic'));
    await s.settle();
    const resets = s.hostDevs.map((d) => d.resets);
    await s.vopBus.unregisterDevice(s.vpdev!);
    await s.settle();
    expect(s.virtioBus.devices()).toHaveLength(0);
    expect(s.testDriver.removed).toHaveLength(3);
    expectNothingAllocated(s);
    expect(s.host.configDb).toBe(-1);
    s.hostDevs.forEach((d: HostDevice, i) => {
      expect(d.resets).toBe(resets[i]! + 1);
      expect(readS8(s.host.dp, d.offset)).toBe(-1);
      expect(readS8(s.host.dp, d.ctrl + CTRL.h2cVdevDb)).toBe(-1);
      expect(s.host.ctrlByte(d, 'configChange')).toBe(0);
      expect(s.host.ctrlByte(d, 'guestAck')).toBe(0);
    });
    expect(
      s.events.filter((e) => e.type === 'device-removed').map((e) => e.type === 'device-removed' && e.reason),
    ).toEqual(['driver-remove', 'driver-remove', 'driver-remove']);
    expect(s.driver.devices()).toEqual([]);
    // A config interrupt after remove does nothing.
    s.link.card.raiseInterrupt(3);
    await s.settle();
    expect(s.virtioBus.devices()).toHaveLength(0);
  });
});
