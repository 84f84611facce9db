// Every card-side hwops-compliance suite (VOP, SCIF, mbus) against mic-card on both x100 platforms,
// with the host end of the link on the raw x100 host view (host-peer.ts; mic-card may not import
// mic-host: the host and card drivers together are tested in @mic/e2e).
//
// inProcess: mic-card (these sources) and the host end share the test's thread.
// worker: the card's view of the hardware lives in the card's worker thread, so that is where the
// suites run: card-main.mjs probes mic-card there and runs each test when jest asks for it by name
// (see fixtures/remote.mjs); the host end stays in the jest thread and answers the card's LinkPeer
// requests over a BroadcastChannel.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  type ClosableLinkPeer,
  type MbusTestContext,
  type ScifTestContext,
  type TestApi,
  type VopTestContext,
  mbusHwOpsCompliance,
  scifHwOpsCompliance,
  vopHwOpsCompliance,
} from '@mic/hwops-compliance';
import { cardDmaSrc } from '@mic/x100';
import { registerCardSuites, testPath } from './fixtures/remote.mjs';
import { type InProcessRig, type WorkerRig, closeRig, inProcessRig, workerRig } from './helpers.js';
import { remoteApi, serveHostPeer } from './remote.js';

const api: TestApi = { describe, it, beforeEach, afterEach };
// Generous: the other side may sit on a busy CPU.
const timeoutMs = 10_000;

/** Setup and teardown of a suite whose context is built from a fresh in-process rig. */
function fromRig<C extends object>(context: (rig: InProcessRig) => C & { peer?: ClosableLinkPeer }) {
  const rigs = new WeakMap<C, InProcessRig>();
  return {
    timeoutMs,
    async setup(): Promise<C> {
      const rig = await inProcessRig();
      const ctx = context(rig);
      rigs.set(ctx, rig);
      return ctx;
    },
    async teardown(ctx: C & { peer?: ClosableLinkPeer }): Promise<void> {
      await ctx.peer?.close();
      const rig = rigs.get(ctx);
      if (rig) await closeRig(rig);
    },
  };
}

vopHwOpsCompliance(
  'mic-card on x100 (inProcess)',
  fromRig((rig): VopTestContext & { peer: ClosableLinkPeer } => ({
    device: rig.card.vopDevice!,
    peer: rig.host.linkPeer(),
  })),
  api,
);

scifHwOpsCompliance(
  'mic-card on x100 (inProcess)',
  fromRig((rig): ScifTestContext & { peer: ClosableLinkPeer } => ({
    device: rig.card.scifDevice!,
    peer: rig.host.linkPeer(),
  })),
  api,
);

mbusHwOpsCompliance(
  'mic-card on x100 (inProcess)',
  fromRig((rig): MbusTestContext => ({
    device: rig.card.mbusDevice!,
    sources: [4, 5, 6, 7],
    raise: async (ch) => rig.platform.hardware.raiseCardInterrupt(cardDmaSrc(ch)),
  })),
  api,
);

describe('mic-card on the worker platform, suites run in the card thread', () => {
  const channel = `mic-card-compliance-${process.pid}-${Date.now()}`;
  let rig: WorkerRig | undefined;
  let server: { close(): Promise<void> } | undefined;

  beforeAll(async () => {
    rig = await workerRig({ channel, timeoutMs });
    const { host, platform } = rig;
    server = serveHostPeer(channel, { vop: host.linkPeer(), scif: host.linkPeer() }, (ch) =>
      platform.hardware.raiseCardInterrupt(cardDmaSrc(ch)),
    );
  });

  afterAll(async () => {
    await server?.close();
    if (rig) await closeRig(rig);
  });

  const run = async (path: string): Promise<void> => {
    const result = (await rig!.handle.call('runTest', path)) as {
      ok: boolean;
      message?: string;
      stack?: string;
    };
    if (!result.ok) {
      const err = new Error(`in the card thread: ${result.message}`);
      if (result.stack) err.stack = `${err.message}\n${result.stack}`;
      throw err;
    }
  };
  // The same suites as the card registers, with setups that never run here (the card's do).
  const remote = {
    timeoutMs,
    setup: () => Promise.reject(new Error('runs in the card')),
    teardown: async () => {},
  };
  registerCardSuites(remoteApi(run), { vop: remote, scif: remote, mbus: remote });

  it('registers here exactly the tests the card thread has', async () => {
    const there = (await rig!.handle.call('testPaths')) as string[];
    const here: string[] = [];
    const names: string[] = [];
    registerCardSuites(
      {
        describe: (name, fn) => {
          names.push(name);
          fn();
          names.pop();
        },
        it: (name) => void here.push(testPath([...names, name])),
        beforeEach: () => {},
        afterEach: () => {},
      },
      { vop: remote, scif: remote, mbus: remote },
    );
    expect(there).toEqual(here);
    expect(here.length).toBeGreaterThan(40);
  });
});
