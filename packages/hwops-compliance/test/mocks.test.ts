/**
 * Every compliance suite against every mock of the bus packages.
 */
import { afterEach, beforeEach, describe, it } from '@jest/globals';
import { CosmBus, MockCosmHwOps } from '@mic/cosm-bus';
import { MbusBus, MockMbusHardware } from '@mic/mic-bus';
import { MockScifFabric, ScifBus, type ScifHwDev } from '@mic/scif-bus';
import { MockVopLink, VopBus, type VopDevice } from '@mic/vop-bus';
import {
  type ClosableLinkPeer,
  type CosmTestContext,
  type MbusTestContext,
  type ScifTestContext,
  type TestApi,
  type VopTestContext,
  cosmHwOpsCompliance,
  mbusHwOpsCompliance,
  scifHwOpsCompliance,
  scifLinkPeer,
  vopHwOpsCompliance,
  vopLinkPeer,
} from '../src/index.js';

const api: TestApi = { describe, it, beforeEach, afterEach };

type VopCtx = VopTestContext & {
  peer: ClosableLinkPeer;
  buses: [VopBus, VopBus];
  devs: [VopDevice, VopDevice];
};

function vopSetup(side: 'host' | 'card', shared: boolean) {
  return {
    async setup(): Promise<VopCtx> {
      const link = new MockVopLink({ shared });
      const hostBus = new VopBus();
      const cardBus = new VopBus();
      const host = await hostBus.registerDevice(link.hostParams());
      const card = await cardBus.registerDevice(link.cardParams());
      const [device, other] = side === 'host' ? [host, card] : [card, host];
      return { device, peer: vopLinkPeer(other), buses: [hostBus, cardBus], devs: [host, card] };
    },
    async teardown(ctx: VopCtx): Promise<void> {
      await ctx.peer.close();
      await ctx.buses[0].unregisterDevice(ctx.devs[0]);
      await ctx.buses[1].unregisterDevice(ctx.devs[1]);
    },
  };
}

vopHwOpsCompliance('MockVopHwOps, host side', vopSetup('host', false), api);
vopHwOpsCompliance('MockVopHwOps, card side', vopSetup('card', false), api);
vopHwOpsCompliance('MockVopHwOps, card side over SharedArrayBuffers', vopSetup('card', true), api);

type ScifCtx = ScifTestContext & { peers: ClosableLinkPeer[]; regs: [ScifBus, ScifHwDev][] };

function scifSetup(side: 'host' | 'card', cards: number) {
  return {
    p2p: side === 'card' && cards > 1,
    async setup(): Promise<ScifCtx> {
      const fabric = new MockScifFabric({ cards });
      const regs: [ScifBus, ScifHwDev][] = [];
      const register = async (params: Parameters<ScifBus['registerDevice']>[0]): Promise<ScifHwDev> => {
        const bus = new ScifBus();
        const dev = await bus.registerDevice(params);
        regs.push([bus, dev]);
        return dev;
      };
      const [first, second] = fabric.links;
      const host = await register(first!.hostParams());
      const card = await register(first!.cardParams());
      const [device, other] = side === 'host' ? [host, card] : [card, host];
      const peer = scifLinkPeer(other);
      const peers = [peer];
      let p2p: ScifTestContext['p2p'];
      if (second) {
        const otherCard = await register(second.cardParams());
        const p = scifLinkPeer(otherCard);
        peers.push(p);
        p2p = { mw: second.hostMmio, peer: p };
      }
      return { device, peer, p2p, peers, regs };
    },
    async teardown(ctx: ScifCtx): Promise<void> {
      for (const p of ctx.peers) await p.close();
      for (const [bus, dev] of ctx.regs.reverse()) await bus.unregisterDevice(dev);
    },
  };
}

scifHwOpsCompliance('MockScifHwOps, host side', scifSetup('host', 1), api);
scifHwOpsCompliance('MockScifHwOps, card side', scifSetup('card', 1), api);
scifHwOpsCompliance('MockScifHwOps, card side with a second card', scifSetup('card', 2), api);

type MbusCtx = MbusTestContext & { bus: MbusBus };

function mbusSetup(role: 'host' | 'card') {
  return {
    async setup(): Promise<MbusCtx> {
      const hw = new MockMbusHardware({ role });
      const bus = new MbusBus();
      const device = await bus.registerDevice(hw.params(role === 'host' ? 1 : 0));
      const sources = role === 'host' ? [0, 1, 2, 3] : [4, 5, 6, 7];
      return { device, bus, sources, raise: async (src) => hw.hwOps.raiseInterrupt(src) };
    },
    async teardown(ctx: MbusCtx): Promise<void> {
      await ctx.bus.unregisterDevice(ctx.device);
    },
  };
}

mbusHwOpsCompliance('MockMbusHwOps, host DMA device', mbusSetup('host'), api);
mbusHwOpsCompliance('MockMbusHwOps, card DMA device', mbusSetup('card'), api);

type CosmCtx = CosmTestContext & { bus: CosmBus };

cosmHwOpsCompliance(
  'MockCosmHwOps',
  {
    async setup(): Promise<CosmCtx> {
      const hwOps = new MockCosmHwOps();
      const bus = new CosmBus();
      const device = await bus.registerDevice({ hwOps });
      return {
        device,
        bus,
        clock: hwOps.clock,
        boot: { firmware: 'mic/uos.img', ramdisk: null, cmdline: 'quiet', bootmode: 'linux' },
      };
    },
    async teardown(ctx: CosmCtx): Promise<void> {
      await ctx.bus.unregisterDevice(ctx.device);
    },
  },
  api,
);
