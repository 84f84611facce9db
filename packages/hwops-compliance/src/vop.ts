/**
 * The compliance suite of `VopHwOps` (and the `VopDevice` fields and DMA map ops that go with it).
 *
 * @see drivers/misc/mic/bus/vop_bus.h
 */
import assert from 'node:assert/strict';
import { VOP_DEV_ANY_ID, VOP_DEV_TRNSP, type VopDevice, vopRole } from '@mic/vop-bus';
import { type TestApi, type TestSetup, withContext } from './api.js';
import { linkTests } from './link.js';
import type { LinkPeer } from './peer.js';

/** What {@link vopHwOpsCompliance} gets for each test. */
export interface VopTestContext {
  /**
   * The VOP device under test, as its hardware driver registered it (or would): its `hwOps` and
   * `dmaOps` are exercised directly, in the test's thread. No driver may be bound to it (the suite
   * takes doorbells and handlers of its own; it holds at most two handlers at a time and needs one
   * doorbell with no handler).
   */
  readonly device: VopDevice;
  /** The other end of the same link (card for a host device, host for a card device). */
  readonly peer: LinkPeer;
}

/** The setup of {@link vopHwOpsCompliance}. */
export type VopTestSetup = TestSetup<VopTestContext>;

/**
 * Registers the `VopHwOps` compliance tests for one implementation (one side of a link).
 *
 * @param name - what is tested, e.g. `mic-host on x100 (worker)`
 * @param setup - builds a {@link VopTestContext} per test
 * @param api - the runner's `describe`, `it`, `beforeEach`, `afterEach`
 *
 * @example
 * import { describe, it, beforeEach, afterEach } from '@jest/globals';
 * vopHwOpsCompliance('mock host', setup, { describe, it, beforeEach, afterEach });
 */
export function vopHwOpsCompliance(name: string, setup: VopTestSetup, api: TestApi): void {
  api.describe(`VopHwOps compliance: ${name}`, () => {
    const { ctx, timeoutMs } = withContext(api, setup);
    const testTimeout = timeoutMs * 4 + 10_000;

    api.it(
      'describes a VOP_DEV_TRNSP device with vendor ANY, index dnode - 1 and name vop-dev<index>',
      async () => {
        const { device } = ctx();
        assert.equal(device.id.device, VOP_DEV_TRNSP);
        assert.equal(device.id.vendor, VOP_DEV_ANY_ID);
        assert.ok(
          Number.isInteger(device.dnode) && device.dnode >= 0 && device.dnode <= 255,
          `dnode ${device.dnode}`,
        );
        assert.equal(device.index, device.dnode - 1);
        assert.equal(device.name, `vop-dev${device.index >>> 0}`);
      },
      testTimeout,
    );

    api.it(
      'gives the host an aperture and its own device page, and the card only the host page',
      async () => {
        const { device } = ctx();
        const ops = device.hwOps;
        if (vopRole(device) === 'host') {
          assert.ok(device.aper, 'the host device has no aperture');
          assert.ok(
            device.aper.len > 0 && device.aper.va.byteLength === device.aper.len,
            'aperture len and view differ',
          );
          assert.ok((ops.getDp()?.byteLength ?? 0) >= 4096, 'the host getDp() is not a device page');
          assert.equal(ops.getRemoteDp(), null, 'the host getRemoteDp() is not null');
        } else {
          assert.equal(device.aper, null, 'the card device has an aperture');
          assert.equal(ops.getDp(), null, 'the card getDp() is not null');
          assert.ok(
            (ops.getRemoteDp()?.byteLength ?? 0) >= 4096,
            'the card getRemoteDp() is not a device page',
          );
        }
      },
      testTimeout,
    );

    linkTests(
      api,
      () => {
        const { device, peer } = ctx();
        const page = device.hwOps.getDp() ?? device.hwOps.getRemoteDp();
        assert.ok(page, `${device.name} has no device page`);
        return { ops: device.hwOps, dmaOps: device.dmaOps, page, peer };
      },
      timeoutMs,
      testTimeout,
    );
  });
}
