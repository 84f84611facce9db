// Every hwops-compliance suite against mic-host on both x100 platforms. The host device is used in
// the test's thread; the card end of the link is card code on the x100 card view (in the card's
// worker thread on `worker`), reached through the platform's card handle.
import { afterEach, beforeEach, describe, it } from '@jest/globals';
import {
  type CosmTestContext,
  type MbusTestContext,
  type ScifTestContext,
  type TestApi,
  type VopTestContext,
  cosmHwOpsCompliance,
  mbusHwOpsCompliance,
  scifHwOpsCompliance,
  vopHwOpsCompliance,
} from '@mic/hwops-compliance';
import { hostDmaSrc } from '@mic/x100';

// Generous: the card side may sit on a busy CPU.
const timeoutMs = 10_000;
import { BOOT, type HostRig, PLATFORMS, bootedRig, closeRig, hostRig } from './helpers.js';

const api: TestApi = { describe, it, beforeEach, afterEach };

/** Setup and teardown of a suite whose context is built from a rig, which teardown closes. */
function fromRig<C extends object, R extends HostRig>(
  make: () => Promise<R>,
  context: (rig: R) => C,
): { timeoutMs: number; setup(): Promise<C>; teardown(ctx: C): Promise<void> } {
  const rigs = new WeakMap<C, R>();
  return {
    timeoutMs,
    async setup() {
      const rig = await make();
      const ctx = context(rig);
      rigs.set(ctx, rig);
      return ctx;
    },
    async teardown(ctx) {
      const rig = rigs.get(ctx);
      if (rig) await closeRig(rig);
    },
  };
}

for (const kind of PLATFORMS) {
  const name = `mic-host on x100 (${kind})`;

  vopHwOpsCompliance(
    name,
    fromRig(
      () => bootedRig(kind),
      (rig): VopTestContext => ({ device: rig.mic.vopDevice!, peer: rig.peer }),
    ),
    api,
  );

  scifHwOpsCompliance(
    name,
    fromRig(
      () => bootedRig(kind),
      (rig): ScifTestContext => ({ device: rig.mic.scifDevice!, peer: rig.peer }),
    ),
    api,
  );

  mbusHwOpsCompliance(
    name,
    fromRig(
      () => bootedRig(kind),
      (rig): MbusTestContext => ({
        device: rig.mic.mbusDevice!,
        sources: [0, 1, 2, 3],
        raise: async (ch) => rig.platform.hardware.raiseHostInterrupt(hostDmaSrc(ch)),
      }),
    ),
    api,
  );

  cosmHwOpsCompliance(
    name,
    fromRig(
      () => hostRig(kind),
      (rig): CosmTestContext => ({ device: rig.mic.cosmDevice!, clock: rig.platform.clock, boot: BOOT }),
    ),
    api,
  );
}
