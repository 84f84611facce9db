/**
 * Tests shared by the VOP and SCIF suites: both buses' ops are a doorbell link with remote memory
 * (`nextDb`, `requestIrq`, `freeIrq`, `ackInterrupt`, `sendIntr`, `remap`, `unmap`), a shared
 * device page and DMA map ops, with the same kernel semantics.
 */
import assert from 'node:assert/strict';
import { BufferMemory, readBytes, type Memory } from '@mic/memory';
import { MIC_DP_SIZE } from '@mic/mic-common';
import type { DmaMapOps, IrqHandler, MicIrq } from '@mic/vop-bus';
import { type TestApi, throwsMicError, waitFor } from './api.js';
import type { LinkPeer } from './peer.js';

/** The doorbell-link ops of the side under test. */
export interface LinkOps {
  nextDb(): number;
  requestIrq<D>(func: IrqHandler<D>, name: string, data: D, db: number): MicIrq;
  freeIrq<D>(cookie: MicIrq, data: D): void;
  ackInterrupt(num: number): void;
  sendIntr(db: number): void;
  remap(pa: number, len: number): Memory;
  unmap(va: Memory): void;
}

/** What {@link linkTests} needs of the current context. */
export interface LinkUnderTest {
  readonly ops: LinkOps;
  readonly dmaOps: DmaMapOps;
  /** The side under test's view of the device page. */
  readonly page: Memory;
  readonly peer: LinkPeer;
}

/** A handler that acknowledges, as kernel handlers do, and records its calls. */
function recorder(ops: LinkOps): { calls: [number, unknown][]; fn: IrqHandler<unknown> } {
  const calls: [number, unknown][] = [];
  return {
    calls,
    fn: (irq, data) => {
      ops.ackInterrupt(irq);
      calls.push([irq, data]);
    },
  };
}

/** Page offset the suites scribble on (restored afterwards): the last 8 bytes of the page. */
const PAGE_PROBE = MIC_DP_SIZE - 8;

/** Registers the shared link tests. */
export function linkTests(
  api: TestApi,
  get: () => LinkUnderTest,
  timeoutMs: number,
  testTimeout: number,
): void {
  const { it } = api;
  const until = (cond: () => boolean | Promise<boolean>, what: string): Promise<void> =>
    waitFor(cond, timeoutMs, what);

  it(
    'sees on each side the bytes the other side writes to the device page',
    async () => {
      const { page, peer } = get();
      const remote = await peer.devicePage();
      assert.ok(
        page.byteLength >= MIC_DP_SIZE,
        `the device page has ${page.byteLength} bytes, fewer than MIC_DP_SIZE (${MIC_DP_SIZE})`,
      );
      assert.ok(
        remote.byteLength >= MIC_DP_SIZE,
        `the peer's device page has ${remote.byteLength} bytes, fewer than MIC_DP_SIZE (${MIC_DP_SIZE})`,
      );
      const saved = [page.loadU32(PAGE_PROBE), page.loadU32(PAGE_PROBE + 4)];
      try {
        page.storeU32(PAGE_PROBE, 0xc0ffee5a);
        await until(() => remote.loadU32(PAGE_PROBE) === 0xc0ffee5a, 'the peer to see a device page write');
        remote.storeU32(PAGE_PROBE + 4, 0x5aa5f00d);
        await until(() => page.loadU32(PAGE_PROBE + 4) === 0x5aa5f00d, 'a device page write by the peer');
      } finally {
        page.storeU32(PAGE_PROBE, saved[0]!);
        page.storeU32(PAGE_PROBE + 4, saved[1]!);
      }
    },
    testTimeout,
  );

  it(
    'gives a doorbell number that requestIrq accepts, and another one once it has a handler',
    async () => {
      const { ops } = get();
      const db = ops.nextDb();
      assert.ok(Number.isInteger(db) && db >= 0, `nextDb returned ${db}`);
      const cookie = ops.requestIrq(() => undefined, 'compliance', null, db);
      try {
        const next = ops.nextDb();
        assert.ok(Number.isInteger(next) && next >= 0, `nextDb returned ${next}`);
        assert.notEqual(next, db, 'nextDb returned the doorbell that already has a handler');
      } finally {
        ops.freeIrq(cookie, null);
      }
    },
    testTimeout,
  );

  it(
    'invokes the handler installed with requestIrq when the peer rings its doorbell, with the doorbell and data',
    async () => {
      const { ops, peer } = get();
      const db = ops.nextDb();
      const data = { tag: 'compliance data' };
      const h = recorder(ops);
      const cookie = ops.requestIrq(h.fn, 'compliance', data, db);
      try {
        await peer.ring(db);
        await until(() => h.calls.length >= 1, `the handler on doorbell ${db}`);
        assert.equal(h.calls[0]![0], db, 'the handler got another doorbell number');
        assert.equal(h.calls[0]![1], data, 'the handler got other data than requestIrq was given');
        const before = h.calls.length;
        await peer.ring(db);
        await until(() => h.calls.length > before, `a second interrupt on doorbell ${db}`);
      } finally {
        ops.freeIrq(cookie, data);
      }
    },
    testTimeout,
  );

  it(
    'invokes only the handler of the doorbell that was rung',
    async () => {
      const { ops, peer } = get();
      const a = recorder(ops);
      const dbA = ops.nextDb();
      const ca = ops.requestIrq(a.fn, 'compliance a', 'a', dbA);
      const b = recorder(ops);
      const dbB = ops.nextDb();
      const cb = ops.requestIrq(b.fn, 'compliance b', 'b', dbB);
      try {
        assert.notEqual(dbA, dbB);
        await peer.ring(dbB);
        await until(() => b.calls.length >= 1, `the handler on doorbell ${dbB}`);
        assert.equal(a.calls.length, 0, `the handler on doorbell ${dbA} ran for doorbell ${dbB}`);
      } finally {
        ops.freeIrq(ca, 'a');
        ops.freeIrq(cb, 'b');
      }
    },
    testTimeout,
  );

  it(
    'lets the handler acknowledge the interrupt with ackInterrupt',
    async () => {
      const { ops, peer } = get();
      const db = ops.nextDb();
      const outcome: unknown[] = [];
      const cookie = ops.requestIrq(
        (irq) => {
          try {
            ops.ackInterrupt(irq);
            outcome.push('acked');
          } catch (err) {
            outcome.push(err);
          }
        },
        'compliance ack',
        null,
        db,
      );
      try {
        await peer.ring(db);
        await until(() => outcome.length >= 1, `the handler on doorbell ${db}`);
        assert.equal(outcome[0], 'acked', `ackInterrupt threw inside the handler: ${String(outcome[0])}`);
      } finally {
        ops.freeIrq(cookie, null);
      }
    },
    testTimeout,
  );

  it(
    'stops invoking a handler once freeIrq returned, and accepts a new handler on that doorbell',
    async () => {
      const { ops, peer } = get();
      const freed = recorder(ops);
      const db = ops.nextDb();
      const cookie = ops.requestIrq(freed.fn, 'compliance freed', 'f', db);
      const sentinel = recorder(ops);
      const sdb = ops.nextDb();
      const sc = ops.requestIrq(sentinel.fn, 'compliance sentinel', 's', sdb);
      try {
        assert.notEqual(db, sdb);
        ops.freeIrq(cookie, 'f');
        await peer.ring(db);
        await peer.ring(sdb);
        await until(() => sentinel.calls.length >= 1, `the sentinel handler on doorbell ${sdb}`);
        assert.equal(freed.calls.length, 0, 'a freed handler ran');
        const again = recorder(ops);
        const c2 = ops.requestIrq(again.fn, 'compliance again', 'g', db);
        try {
          await peer.ring(db);
          await until(() => again.calls.length >= 1, `the new handler on doorbell ${db}`);
          assert.equal(freed.calls.length, 0, 'a freed handler ran');
        } finally {
          ops.freeIrq(c2, 'g');
        }
      } finally {
        ops.freeIrq(sc, 's');
      }
    },
    testTimeout,
  );

  it(
    'rejects freeing a cookie twice with EINVAL',
    async () => {
      const { ops } = get();
      const db = ops.nextDb();
      const cookie = ops.requestIrq(() => undefined, 'compliance', 'd', db);
      ops.freeIrq(cookie, 'd');
      throwsMicError(() => ops.freeIrq(cookie, 'd'), 'EINVAL', 'a second freeIrq');
    },
    testTimeout,
  );

  it(
    'rejects requestIrq on a doorbell number this side does not have with EINVAL',
    async () => {
      const { ops } = get();
      for (const db of [-1, 1 << 16, 1.5]) {
        throwsMicError(
          () => ops.requestIrq(() => undefined, 'compliance', null, db),
          'EINVAL',
          `requestIrq(${db})`,
        );
      }
    },
    testTimeout,
  );

  it(
    'rings with sendIntr a doorbell the peer listens on',
    async () => {
      const { ops, peer } = get();
      const door = await peer.listen();
      try {
        ops.sendIntr(door.db);
        await until(async () => (await door.received()) >= 1, `the peer's handler on doorbell ${door.db}`);
        const before = await door.received();
        ops.sendIntr(door.db);
        await until(
          async () => (await door.received()) > before,
          `a second interrupt on the peer's doorbell ${door.db}`,
        );
      } finally {
        await door.close();
      }
    },
    testTimeout,
  );

  it(
    'rejects sendIntr(-1), the "no doorbell" value, with EINVAL',
    async () => {
      throwsMicError(() => get().ops.sendIntr(-1), 'EINVAL', 'sendIntr(-1)');
    },
    testTimeout,
  );

  it(
    'maps peer memory with remap: writes on either side show on the other, sub-ranges included',
    async () => {
      const { ops, peer } = get();
      const buf = await peer.alloc(8192);
      try {
        const m = ops.remap(buf.dmaAddr, 8192);
        try {
          assert.equal(m.byteLength, 8192, 'remap returned a view of another length');
          m.storeU32(0, 0xa5a5_1234);
          assert.equal(buf.view.loadU32(0), 0xa5a5_1234, 'the peer does not see a write through remap');
          buf.view.storeU32(8188, 0x0bad_cafe);
          assert.equal(m.loadU32(8188), 0x0bad_cafe, 'remap does not show a write by the peer');
          const sub = ops.remap(buf.dmaAddr + 4096, 64);
          try {
            buf.view.storeU32(4096 + 60, 0x600d_f00d);
            assert.equal(sub.byteLength, 64);
            assert.equal(sub.loadU32(60), 0x600d_f00d, 'a sub-range mapping shows other bytes');
          } finally {
            ops.unmap(sub);
          }
        } finally {
          ops.unmap(m);
        }
      } finally {
        await buf.free();
      }
    },
    testTimeout,
  );

  it(
    'rejects remap of a zero length with EINVAL and of an unreachable range with EFAULT',
    async () => {
      const { ops } = get();
      throwsMicError(() => ops.remap(0, 0), 'EINVAL', 'remap with length 0');
      throwsMicError(() => ops.remap(-4096, 4096), 'EINVAL', 'remap of a negative address');
      throwsMicError(() => ops.remap(2 ** 52, 4096), 'EFAULT', 'remap of 2^52');
    },
    testTimeout,
  );

  it(
    'rejects unmap of memory it did not map, or already unmapped, with EINVAL',
    async () => {
      const { ops, peer } = get();
      throwsMicError(() => ops.unmap(BufferMemory.allocate(64)), 'EINVAL', 'unmap of foreign memory');
      const buf = await peer.alloc(4096);
      try {
        const m = ops.remap(buf.dmaAddr, 4096);
        ops.unmap(m);
        throwsMicError(() => ops.unmap(m), 'EINVAL', 'a second unmap');
      } finally {
        await buf.free();
      }
    },
    testTimeout,
  );

  it(
    'allocates with dmaOps zeroed, aligned memory that the peer reaches at the returned address',
    async () => {
      const { dmaOps, peer } = get();
      const big = dmaOps.alloc(8192);
      const small = dmaOps.alloc(100);
      try {
        assert.equal(big.va.byteLength, 8192);
        assert.equal(big.size, 8192);
        assert.equal(small.va.byteLength, 100);
        assert.equal(
          big.dmaAddr % 4096,
          0,
          `a page-sized buffer at 0x${big.dmaAddr.toString(16)} is not page-aligned`,
        );
        assert.equal(
          small.dmaAddr % 64,
          0,
          `a buffer at 0x${small.dmaAddr.toString(16)} is not 64-byte aligned`,
        );
        assert.ok(
          readBytes(big.va, 0, 8192).every((b) => b === 0),
          'alloc returned memory that is not zeroed',
        );
        const seen = await peer.view(big.dmaAddr, 8192);
        big.va.storeU32(4, 0x1357_9bdf);
        assert.equal(seen.loadU32(4), 0x1357_9bdf, 'the peer does not see a write to an allocated buffer');
        seen.storeU32(8184, 0x2468_ace0);
        assert.equal(
          big.va.loadU32(8184),
          0x2468_ace0,
          'an allocated buffer does not show a write by the peer',
        );
      } finally {
        dmaOps.free(big);
        dmaOps.free(small);
      }
    },
    testTimeout,
  );

  it(
    'returns zeroed memory from dmaOps.alloc even when it reuses freed memory, and rejects a double free',
    async () => {
      const { dmaOps } = get();
      const a = dmaOps.alloc(4096);
      a.va.fill(0, 4096, 0xee);
      dmaOps.free(a);
      throwsMicError(() => dmaOps.free(a), 'EINVAL', 'a second free');
      const b = dmaOps.alloc(4096);
      try {
        assert.ok(
          readBytes(b.va, 0, 4096).every((x) => x === 0),
          'alloc returned memory that is not zeroed',
        );
      } finally {
        dmaOps.free(b);
      }
      throwsMicError(() => dmaOps.alloc(0), 'EINVAL', 'alloc(0)');
      throwsMicError(() => dmaOps.alloc(1.5), 'EINVAL', 'alloc(1.5)');
    },
    testTimeout,
  );

  it(
    'maps part of an allocated buffer with dmaOps.mapSingle to an address the peer reaches',
    async () => {
      const { dmaOps, peer } = get();
      const buf = dmaOps.alloc(4096);
      try {
        const part = buf.va.window(512, 256);
        const addr = dmaOps.mapSingle(part);
        try {
          const seen = await peer.view(addr, 256);
          part.storeU32(0, 0x7777_1111);
          assert.equal(seen.loadU32(0), 0x7777_1111, 'the peer sees other bytes at the mapped address');
          seen.storeU32(252, 0x3333_9999);
          assert.equal(buf.va.loadU32(512 + 252), 0x3333_9999);
        } finally {
          dmaOps.unmapSingle(addr, 256);
        }
        throwsMicError(() => dmaOps.unmapSingle(addr, 256), 'EINVAL', 'a second unmapSingle');
      } finally {
        dmaOps.free(buf);
      }
    },
    testTimeout,
  );

  it(
    'rejects dmaOps.mapSingle of memory the device cannot reach with EINVAL',
    async () => {
      throwsMicError(
        () => get().dmaOps.mapSingle(BufferMemory.allocate(64)),
        'EINVAL',
        'mapSingle of foreign memory',
      );
    },
    testTimeout,
  );
}
