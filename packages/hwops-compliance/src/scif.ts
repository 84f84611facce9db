/**
 * The compliance suite of `ScifHwOps` (and the `ScifHwDev` fields and DMA map ops that go with it).
 *
 * @see drivers/misc/mic/bus/scif_bus.h
 */
import assert from 'node:assert/strict';
import { MIC_MAX_DMA_CHAN, MIC_SCIF_DEV, type MicMw, SCIF_DEV_ANY_ID, type ScifHwDev } from '@mic/scif-bus';
import { type TestApi, type TestSetup, waitFor, withContext } from './api.js';
import { linkTests } from './link.js';
import type { LinkPeer } from './peer.js';

/** A second card for the card-to-card doorbell test. */
export interface ScifP2pPeer {
  /** That card's MMIO window as the card under test maps it (`mw.pa`: its MMIO BAR address). */
  readonly mw: MicMw;
  /** That card, as a link peer (only `listen` is used). */
  readonly peer: LinkPeer;
}

/** What {@link scifHwOpsCompliance} gets for each test. */
export interface ScifTestContext {
  /**
   * The SCIF device under test (host or card side of a link), no driver bound; its `hwOps` and
   * `dmaOps` are exercised directly, in the test's thread. The suite holds at most two handlers at
   * a time and needs one doorbell with no handler.
   */
  readonly device: ScifHwDev;
  /** The other end of the same link. */
  readonly peer: LinkPeer;
  /** Another card, when {@link ScifTestSetup.p2p} is set. */
  readonly p2p?: ScifP2pPeer;
}

/** The setup of {@link scifHwOpsCompliance}. */
export interface ScifTestSetup extends TestSetup<ScifTestContext> {
  /** The device is a card and the context has {@link ScifTestContext.p2p}: test `sendP2pIntr`. */
  readonly p2p?: boolean;
}

/**
 * Registers the `ScifHwOps` compliance tests for one implementation (one side of a link).
 *
 * @param name - what is tested, e.g. `mic-card on x100 (inProcess)`
 * @param setup - builds a {@link ScifTestContext} per test
 * @param api - the runner's `describe`, `it`, `beforeEach`, `afterEach`
 */
export function scifHwOpsCompliance(name: string, setup: ScifTestSetup, api: TestApi): void {
  api.describe(`ScifHwOps compliance: ${name}`, () => {
    const { ctx, timeoutMs } = withContext(api, setup);
    const testTimeout = timeoutMs * 4 + 10_000;

    api.it(
      'describes a MIC_SCIF_DEV device with vendor ANY named scif-dev<dnode>, with at most 4 DMA channels',
      async () => {
        const { device } = ctx();
        assert.equal(device.id.device, MIC_SCIF_DEV);
        assert.equal(device.id.vendor, SCIF_DEV_ANY_ID);
        assert.equal(device.name, `scif-dev${device.dnode}`);
        assert.ok(device.dmaCh.length <= MIC_MAX_DMA_CHAN, `${device.dmaCh.length} DMA channels`);
        assert.equal(typeof device.cardRelDa, 'boolean');
        assert.ok(
          device.mmio.len > 0 && device.mmio.va.byteLength === device.mmio.len,
          'mmio len and view differ',
        );
      },
      testTimeout,
    );

    api.it(
      'lays out the fields by side: the host talks to node id+1 from node 0, the card to node 0',
      async () => {
        const { device } = ctx();
        if (device.snode === 0) {
          assert.ok(device.dnode >= 1, `the host device talks to node ${device.dnode}`);
          assert.ok(
            device.aper && device.aper.va.byteLength === device.aper.len,
            'the host device has no aperture',
          );
          assert.ok((device.dp?.byteLength ?? 0) >= 4096, 'the host device has no device page');
          assert.equal(device.rdp, null, 'the host device has a remote device page');
          assert.equal(device.hwOps.sendP2pIntr, undefined, 'the host ops have sendP2pIntr');
        } else {
          assert.equal(device.dnode, 0, `the card device talks to node ${device.dnode}`);
          assert.equal(device.aper, null, 'the card device has an aperture');
          assert.equal(device.dp, null, 'the card device has its own device page');
          assert.ok((device.rdp?.byteLength ?? 0) >= 4096, 'the card device has no remote device page');
          assert.equal(typeof device.hwOps.sendP2pIntr, 'function', 'the card ops lack sendP2pIntr');
        }
      },
      testTimeout,
    );

    if (setup.p2p) {
      api.it(
        'rings with sendP2pIntr a doorbell of another card through its MMIO window',
        async () => {
          const { device, p2p } = ctx();
          assert.ok(p2p, 'the setup promised a p2p peer but the context has none');
          const send = device.hwOps.sendP2pIntr;
          assert.ok(send, 'the card ops lack sendP2pIntr');
          const door = await p2p.peer.listen();
          try {
            send.call(device.hwOps, door.db, p2p.mw);
            await waitFor(
              async () => (await door.received()) >= 1,
              timeoutMs,
              `the other card's handler on doorbell ${door.db}`,
            );
          } finally {
            await door.close();
          }
        },
        testTimeout,
      );
    }

    linkTests(
      api,
      () => {
        const { device, peer } = ctx();
        const page = device.dp ?? device.rdp;
        assert.ok(page, `${device.name} has no device page`);
        return { ops: device.hwOps, dmaOps: device.dmaOps, page, peer };
      },
      timeoutMs,
      testTimeout,
    );
  });
}
