import { expect, it } from '@jest/globals';
import { bootparamInit } from '@mic/mic-common';
import { VIRTIO_DEV_ANY_ID, VIRTIO_ID, VirtioBus, type VirtioDriver } from '@mic/virtio';
import { MockVopLink, VopBus } from '@mic/vop-bus';
import { VopCardDriver } from '../src/index.js';

// The README example, with its console output collected.
it('the README example runs', async () => {
  const out: string[] = [];
  const link = new MockVopLink();
  bootparamInit(link.dp.va, 1); // the host's part (vop-host adds the devices)

  const virtioBus = new VirtioBus();
  const consoleDriver: VirtioDriver = {
    name: 'my-console',
    idTable: [
      { device: VIRTIO_ID.CONSOLE, vendor: VIRTIO_DEV_ANY_ID },
      { device: 0, vendor: 0 },
    ],
    featureTable: [],
    async probe(vdev) {
      const [rx, tx] = await vdev.findVqs([{ name: 'rx', callback: (vq) => vq.getBuf() }, { name: 'tx' }]);
      void rx;
      void tx;
    },
    async remove(vdev) {
      await vdev.reset();
      await vdev.delVqs();
    },
  };
  await virtioBus.registerDriver(consoleDriver);

  const driver = new VopCardDriver({ virtioBus });
  const unsubscribe = driver.subscribe((e) => {
    if (e.type === 'device-failed') out.push(e.error.message);
  });
  const cardBus = new VopBus();
  await cardBus.registerDriver(driver);
  const vpdev = await cardBus.registerDevice(link.cardParams()); // scan, devices, h2c_config_db
  out.push(...driver.devices().map((d) => `${d.vdev.name}: type ${d.type} at ${d.offset}`));
  expect(cardBus.driverOf(vpdev)).toBe(driver);
  expect(link.dp.va.readU8(4)).not.toBe(0xff);
  await cardBus.unregisterDevice(vpdev); // every device removed
  unsubscribe();
  expect(out).toEqual([]);
  expect(link.dp.va.readU8(4)).toBe(0xff);
});
