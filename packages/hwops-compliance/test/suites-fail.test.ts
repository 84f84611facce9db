/**
 * The suites must be able to fail: each broken implementation here must fail the test that
 * covers what it breaks (a test that cannot fail is a defect).
 */
import { describe, expect, it } from '@jest/globals';
import { CosmBus, MockCosmHwOps } from '@mic/cosm-bus';
import { IRQ_RETURN, MbusBus, type MbusDevice, MockMbusHardware } from '@mic/mic-bus';
import { MockVopHwOps, MockVopLink, VopBus, type VopDevice } from '@mic/vop-bus';
import {
  type TestApi,
  cosmHwOpsCompliance,
  mbusHwOpsCompliance,
  vopHwOpsCompliance,
  vopLinkPeer,
  waitFor,
} from '../src/index.js';

/** Collects a suite's tests so they can be run one by one. */
function collect(register: (api: TestApi) => void): (title: string) => Promise<void> {
  const tests: [string, () => Promise<void>][] = [];
  const before: (() => Promise<void>)[] = [];
  const after: (() => Promise<void>)[] = [];
  register({
    describe: (_name, fn) => fn(),
    it: (name, fn) => void tests.push([name, fn]),
    beforeEach: (fn) => void before.push(fn),
    afterEach: (fn) => void after.push(fn),
  });
  return async (title) => {
    const found = tests.filter(([name]) => name.startsWith(title));
    if (found.length !== 1) throw new Error(`${found.length} tests start with '${title}'`);
    for (const b of before) await b();
    try {
      await found[0]![1]();
    } finally {
      for (const a of after) await a();
    }
  };
}

/** `target` with some members replaced. */
function patch<T extends object>(target: T, members: Record<string, unknown>): T {
  return new Proxy(target, {
    get(t, key) {
      if (typeof key === 'string' && key in members) return members[key];
      const v = Reflect.get(t, key, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

function brokenVop(side: 'host' | 'card', breakIt: (dev: VopDevice, link: MockVopLink) => VopDevice) {
  return (api: TestApi) =>
    vopHwOpsCompliance(
      `broken ${side}`,
      {
        timeoutMs: 100,
        async setup() {
          const link = new MockVopLink();
          const host = await new VopBus().registerDevice(link.hostParams());
          const card = await new VopBus().registerDevice(link.cardParams());
          const [dev, other] = side === 'host' ? [host, card] : [card, host];
          return { device: breakIt(dev, link), peer: vopLinkPeer(other) };
        },
        async teardown() {},
      },
      api,
    );
}

describe('the VOP suite', () => {
  it('fails an implementation whose freeIrq leaves the handler installed', async () => {
    const run = collect(
      brokenVop('host', (dev) => ({ ...dev, hwOps: patch(dev.hwOps, { freeIrq: () => undefined }) })),
    );
    await expect(run('stops invoking a handler once freeIrq returned')).rejects.toThrow(
      'a freed handler ran',
    );
    await expect(run('rejects freeing a cookie twice')).rejects.toThrow('expected a MicError EINVAL');
  });

  it('fails an implementation whose sendIntr does not reach the peer', async () => {
    const lonely = new MockVopHwOps({ role: 'card' });
    const run = collect(
      brokenVop('card', (dev) => ({
        ...dev,
        hwOps: patch(dev.hwOps, { sendIntr: (db: number) => lonely.sendIntr(db) }),
      })),
    );
    await expect(run('rings with sendIntr')).rejects.toThrow(
      /timed out after 100 ms waiting for the peer's handler/,
    );
  });

  it('fails an implementation that hands handlers other data', async () => {
    const run = collect(
      brokenVop('card', (dev) => ({
        ...dev,
        hwOps: patch(dev.hwOps, {
          requestIrq: (fn: (irq: number, d: unknown) => void, name: string, _data: unknown, db: number) =>
            dev.hwOps.requestIrq(fn, name, 'wrong', db),
          freeIrq: (cookie: never) => dev.hwOps.freeIrq(cookie, 'wrong'),
        }),
      })),
    );
    await expect(run('invokes the handler installed with requestIrq')).rejects.toThrow('other data');
  });

  it('fails a host whose ackInterrupt does not re-enable the doorbell', async () => {
    const run = collect(
      brokenVop('host', (dev) => ({ ...dev, hwOps: patch(dev.hwOps, { ackInterrupt: () => undefined }) })),
    );
    await expect(run('invokes the handler installed with requestIrq')).rejects.toThrow(
      /a second interrupt on doorbell/,
    );
  });

  it('fails an implementation whose nextDb keeps returning a doorbell in use', async () => {
    const run = collect(
      brokenVop('host', (dev) => ({ ...dev, hwOps: patch(dev.hwOps, { nextDb: () => 0 }) })),
    );
    await expect(run('gives a doorbell number that requestIrq accepts')).rejects.toThrow(
      'already has a handler',
    );
  });

  it('fails DMA ops that hand out dirty memory', async () => {
    const run = collect(
      brokenVop('host', (dev) => ({
        ...dev,
        dmaOps: patch(dev.dmaOps, {
          alloc: (size: number) => {
            const buf = dev.dmaOps.alloc(size);
            buf.va.writeU8(size - 1, 1);
            return buf;
          },
        }),
      })),
    );
    await expect(run('allocates with dmaOps zeroed')).rejects.toThrow('not zeroed');
  });

  it('fails a remap that maps the wrong bytes', async () => {
    const run = collect(
      brokenVop('card', (dev) => ({
        ...dev,
        hwOps: patch(dev.hwOps, { remap: (pa: number, len: number) => dev.hwOps.remap(pa + 64, len) }),
      })),
    );
    await expect(run('maps peer memory with remap')).rejects.toThrow(
      'the peer does not see a write through remap',
    );
  });
});

describe('the mbus suite', () => {
  it('fails an implementation that never runs thread functions', async () => {
    const run = collect((api) =>
      mbusHwOpsCompliance(
        'no threads',
        {
          timeoutMs: 100,
          async setup() {
            const hw = new MockMbusHardware({ role: 'host' });
            const dev = await new MbusBus().registerDevice(hw.params());
            const device: MbusDevice = {
              ...dev,
              hwOps: patch(dev.hwOps, {
                requestThreadedIrq: (h: never, _t: unknown, name: string, data: unknown, src: number) =>
                  dev.hwOps.requestThreadedIrq(h ?? (() => IRQ_RETURN.HANDLED), null, name, data, src),
              }),
            };
            return { device, sources: [0, 1], raise: async (s) => hw.hwOps.raiseInterrupt(s) };
          },
          async teardown() {},
        },
        api,
      ),
    );
    await expect(run('runs the thread fn after a handler that returns IRQ_WAKE_THREAD')).rejects.toThrow(
      'timed out',
    );
  });
});

describe('the COSM suite', () => {
  it('fails a card that never comes back after a reset', async () => {
    const run = collect((api) =>
      cosmHwOpsCompliance(
        'stuck card',
        {
          async setup() {
            const hwOps = new MockCosmHwOps();
            hwOps.failResets = true;
            const device = await new CosmBus().registerDevice({ hwOps });
            return {
              device,
              clock: hwOps.clock,
              boot: { firmware: 'f', ramdisk: null, cmdline: null, bootmode: 'linux' },
            };
          },
          async teardown() {},
        },
        api,
      ),
    );
    await expect(run('reports the card ready at setup')).rejects.toThrow('within 45 s after reset');
  });
});

describe('waitFor', () => {
  it('resolves once the condition holds and fails naming what it waited for', async () => {
    let flag = false;
    setTimeout(() => (flag = true), 5);
    await waitFor(() => flag, 5000, 'the flag');
    await expect(waitFor(() => false, 20, 'Godot')).rejects.toThrow(
      'timed out after 20 ms waiting for Godot',
    );
  });
});
