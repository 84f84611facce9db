// A hostile peer (issue 14, "Tests"): the card end of a node link writes random bytes into the
// host's inbound node ring and endpoint rings, moves their write pointers anywhere, and forges
// 44-byte messages (any opcode, ports, payload words taken from real handles the host sent or
// random), ringing the host's doorbell, while the host runs ordinary traffic with it and with a
// second, honest card. The host must never throw out of a handler, never write its own memory
// outside what it handed out, finish every call it started once the hostile node is taken down
// (the bounded teardown), and keep serving the honest card.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { DmaBuffer } from '@mic/bus-core';
import { createMemoryLogger } from '@mic/logger';
import type { Memory } from '@mic/memory';
import { MIC_BOOTPARAM_OFFSETS as BP, readS8 } from '@mic/mic-common';
import fc from 'fast-check';
import { SCIFEP_MAGIC, SCIF_MAX_MSG, SCIF_MSG } from '../src/constants.js';
import { SCIF_MSG_SIZE, ScifMsg } from '../src/msg.js';
import { SCIF_QP_OFFSETS, SCIF_QP_SIZE } from '../src/qp.js';
import {
  SCIF_MAP_FIXED,
  SCIF_PROT_READ,
  SCIF_PROT_WRITE,
  SCIF_RECV_BLOCK,
  SCIF_SEND_BLOCK,
  type ScifEndpoint,
} from '../src/index.js';
import { type Rig, pair, rig } from './harness.js';

const TUNABLES = { nodeAliveTimeoutMs: 1500, acceptTimeoutMs: 500, sendTimeoutMs: 500, endpointQpSize: 4096 };
/** How long a host call may take to settle once the hostile node is gone. */
const SETTLE_MS = 30_000;
const CANARY = 0xa5;

// Anything thrown out of a handler or a forgotten promise is a host crash.
const escaped: unknown[] = [];
const onEscape = (err: unknown): void => {
  escaped.push(err);
};
beforeEach(() => {
  escaped.length = 0;
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
});
afterEach(() => {
  process.off('unhandledRejection', onEscape);
  process.off('uncaughtException', onEscape);
});

/** The attacker's grip on one of the host's queue pairs: its block and inbound ring, mapped. */
interface Target {
  readonly block: Memory;
  readonly ring: Memory;
  readonly size: number;
}

/** Maps the host queue pair whose block is at host DMA address `addr`, as the card's SCIF does. */
function grab(r: Rig, addr: number): Target | undefined {
  if (!Number.isSafeInteger(addr) || addr <= 0) return undefined;
  const ops = r.cardDevs[0]!.hwOps;
  let block: Memory;
  try {
    block = ops.remap(addr, SCIF_QP_SIZE);
  } catch {
    return undefined;
  }
  const size = block.readU32(SCIF_QP_OFFSETS.inboundSize);
  const buf = block.readU64(SCIF_QP_OFFSETS.localBuf);
  if (block.readBigU64(SCIF_QP_OFFSETS.magic) !== SCIFEP_MAGIC || size < 64 || (size & (size - 1)) !== 0) {
    ops.unmap(block);
    return undefined;
  }
  return { block, ring: ops.remap(buf, size), size };
}

const u64 = fc.oneof(
  fc.constantFrom(
    0,
    1,
    8,
    2 ** 32,
    2 ** 53 - 1,
    2 ** 52,
    4096,
    0x10000,
    0x10008,
    0x13ff8,
    0x14000,
    0x20000,
    0x20040,
  ),
  fc.integer({ min: 0, max: 0xffff_ffff }),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);

const action = fc.oneof(
  // Random bytes into a ring, the write pointer set anywhere (or left), the doorbell rung.
  fc.record({
    kind: fc.constant('garbage' as const),
    ep: fc.boolean(),
    off: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }),
    ptr: fc.option(fc.integer({ min: 0, max: 0xffff_ffff }), { nil: undefined }),
  }),
  // A well-framed message with anything in it, at the published write pointer.
  fc.record({
    kind: fc.constant('forge' as const),
    uop: fc.oneof(fc.integer({ min: 0, max: SCIF_MAX_MSG + 3 }), fc.constantFrom(...Object.values(SCIF_MSG))),
    srcPort: fc.oneof(fc.constantFrom(0, 2000, 3000), fc.integer({ min: 0, max: 0xffff })),
    dstPort: fc.oneof(fc.constantFrom(0, 2000, 3000), fc.integer({ min: 0, max: 0xffff })),
    // Index into the host handles seen on the wire, or a value of its own.
    payload: fc.array(
      fc.oneof(
        fc.nat().map((i) => ({ seen: i })),
        u64.map((v) => ({ v })),
      ),
      {
        minLength: 4,
        maxLength: 4,
      },
    ),
  }),
  // Ordinary host traffic with the hostile card.
  fc.record({
    kind: fc.constant('host' as const),
    op: fc.constantFrom('send', 'recv', 'readfrom', 'writeto', 'connect', 'register', 'fence'),
    n: fc.integer({ min: 1, max: 5000 }),
  }),
  fc.record({ kind: fc.constant('yield' as const), ms: fc.integer({ min: 0, max: 3 }) }),
);

describe('a hostile card on the node link', () => {
  it('cannot crash the host, make it write outside what it handed out, or hang it past teardown', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 40 }), async (actions) => {
        const seen: number[] = [];
        const log = createMemoryLogger();
        const r = await rig({
          hostLogger: log,
          cards: 2,
          tunables: TUNABLES,
          hostRamSize: 8 << 20,
          // Every payload word the host sends the hostile card: the handles worth forging.
          trace: (self, _from, _uop, msg) => {
            if (self === 1) for (const w of msg.payload) if (w !== 0) seen.push(w);
          },
        });
        try {
          await run(r, actions, seen);
        } finally {
          await r.close();
        }
        expect(escaped).toEqual([]);
        // Every forged message is answered or dropped on purpose: none makes a handler throw.
        expect(log.records.filter((l) => l.msg === 'scif message handler threw')).toEqual([]);
      }),
      { numRuns: 25, interruptAfterTimeLimit: 60_000 },
    );
  }, 300_000);
});

type Action = typeof action extends fc.Arbitrary<infer T> ? T : never;

async function run(r: Rig, actions: Action[], seen: number[]): Promise<void> {
  const [host, bad, good] = [r.host, r.cards[0]!, r.cards[1]!];
  const hostOps = r.hostDevs[0]!.dmaOps;
  // Traffic set up honestly first: a connection each way with the hostile card, windows on both.
  const { b: hostEp, a: badEp } = await pair(host, bad, 2000);
  const honest = await pair(host, good, 2001);
  const hostWin = hostOps.alloc(16384);
  const badWin = r.cardDevs[0]!.dmaOps.alloc(16384);
  await Promise.all([
    hostEp.register(hostWin.va, 0x10000, SCIF_PROT_READ | SCIF_PROT_WRITE, SCIF_MAP_FIXED),
    badEp.register(badWin.va, 0x20000, SCIF_PROT_READ | SCIF_PROT_WRITE, SCIF_MAP_FIXED),
  ]);
  const listener = bad.open();
  listener.bind(3000);
  listener.listen(4);

  // Host memory the host never handed to SCIF: it must come out as it went in.
  const canaries: DmaBuffer[] = [];
  for (let i = 0; i < 4; i++) {
    const c = hostOps.alloc(512 * 1024);
    c.va.fill(0, c.va.byteLength, CANARY);
    canaries.push(c);
  }

  // The host's node queue pair (published in its device page) and the endpoint's (from the grant).
  const rdp = r.cardDevs[0]!.rdp!;
  const doorbell = readS8(rdp, BP.c2hScifDb);
  const nodeQp = grab(r, rdp.readU64(BP.scifHostDmaAddr));
  expect(nodeQp).toBeDefined();
  const targets: Target[] = [nodeQp!];
  // Any value the host sent that maps as a queue pair block is an endpoint's (the grant's).
  for (const w of new Set(seen)) {
    const t = grab(r, w);
    if (t) targets.push(t);
  }
  expect(targets.length).toBeGreaterThan(1);

  const started: Promise<unknown>[] = [];
  const hostOp = (op: string, n: number): void => {
    const buf = new Uint8Array(n);
    const ep: ScifEndpoint = hostEp;
    const p = ((): Promise<unknown> => {
      switch (op) {
        case 'send':
          return ep.send(buf, n % 2 === 0 ? SCIF_SEND_BLOCK : 0);
        case 'recv':
          return ep.recv(buf, n % 2 === 0 ? SCIF_RECV_BLOCK : 0);
        case 'readfrom':
          return ep.readfrom(0x10000 + (n & ~63), 4096, 0x20000, 0);
        case 'writeto':
          return ep.writeto(0x10000, 4096, 0x20000 + (n & ~63), 0);
        case 'connect':
          return host.open().connect({ node: 1, port: 3000 });
        case 'register':
          return ep.register(hostOps.alloc(4096).va, 0x40000 + n * 4096, SCIF_PROT_READ, SCIF_MAP_FIXED);
        default:
          return ep.fenceMark(1);
      }
    })();
    started.push(p.catch(() => undefined));
  };

  for (const act of actions) {
    switch (act.kind) {
      case 'garbage': {
        const t = targets[act.ep ? targets.length - 1 : 0]!;
        for (let i = 0; i < act.bytes.length; i++) t.ring.writeU8((act.off + i) % t.size, act.bytes[i]!);
        if (act.ptr !== undefined) t.block.storeU32(SCIF_QP_OFFSETS.localWrite, act.ptr);
        r.cardDevs[0]!.hwOps.sendIntr(doorbell);
        break;
      }
      case 'forge': {
        const m = new ScifMsg(act.uop);
        m.srcNode = 1;
        m.srcPort = act.srcPort;
        m.dstNode = 0;
        m.dstPort = act.dstPort;
        act.payload.forEach((p, i) => {
          const v = 'seen' in p ? (seen.length > 0 ? seen[p.seen % seen.length]! : 0) : p.v;
          if (typeof v === 'bigint') m.big[i] = v;
          else m.payload[i] = v;
        });
        const bytes = new Uint8Array(SCIF_MSG_SIZE);
        m.encode(bytes);
        const t = nodeQp!;
        const w = t.block.loadU32(SCIF_QP_OFFSETS.localWrite) & (t.size - 1);
        for (let i = 0; i < SCIF_MSG_SIZE; i++) t.ring.writeU8((w + i) % t.size, bytes[i]!);
        t.block.storeU32(SCIF_QP_OFFSETS.localWrite, (w + SCIF_MSG_SIZE) % t.size);
        r.cardDevs[0]!.hwOps.sendIntr(doorbell);
        break;
      }
      case 'host':
        try {
          hostOp(act.op, act.n);
        } catch {
          // A synchronous refusal (an allocation the pool cannot give) is an answer too.
        }
        break;
      case 'yield':
        await new Promise((res) => setTimeout(res, act.ms));
        break;
    }
  }
  await new Promise((res) => setTimeout(res, 5));

  // The honest card is served throughout.
  const ping = new Uint8Array([1, 2, 3, 4]);
  const back = new Uint8Array(4);
  await honest.a.send(ping, SCIF_SEND_BLOCK);
  expect(await honest.b.recv(back, SCIF_RECV_BLOCK)).toBe(4);
  expect([...back]).toEqual([...ping]);

  // Take the hostile node down: every call the host started settles within a bound.
  await r.removeHostDev(0);
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    Promise.all(started).then(() => true),
    new Promise<false>((res) => {
      timer = setTimeout(() => res(false), SETTLE_MS);
    }),
  ]);
  clearTimeout(timer);
  expect(settled).toBe(true);
  expect(host.isAlive(1)).toBe(false);
  expect(host.isAlive(2)).toBe(true);

  for (const c of canaries) {
    const b = new Uint8Array(c.va.byteLength);
    c.va.read(0, b);
    const bad = b.findIndex((x) => x !== CANARY);
    expect(bad).toBe(-1);
  }
}

describe('scifmsg words a peer sent', () => {
  it('a reply echoing a word of 2^53 or more encodes (as that number) instead of throwing', () => {
    const bytes = new Uint8Array(SCIF_MSG_SIZE);
    for (const b of [0xffff_8880_1234_5678n, (1n << 64n) - 1n, 1n << 53n]) {
      bytes.fill(0);
      new DataView(bytes.buffer).setBigUint64(12, b, true);
      const got = ScifMsg.decode(bytes);
      expect(got.payloadBig(0)).toBe(b);
      // A handler copies the number into another word of its reply, without the exact value.
      const reply = new ScifMsg(SCIF_MSG.CNCT_REJ);
      reply.payload[1] = got.payload[0];
      const out = new Uint8Array(SCIF_MSG_SIZE);
      reply.encode(out);
      const expected = BigInt(got.payload[0]!) >= 1n << 64n ? (1n << 64n) - 1n : BigInt(got.payload[0]!);
      expect(new DataView(out.buffer).getBigUint64(20, true)).toBe(expected);
    }
    // What no u64 can be is still refused.
    for (const v of [-1, 0.5, Number.NaN, 2 ** 65, Infinity]) {
      const m = new ScifMsg(1);
      m.payload[0] = v;
      expect(() => m.encode(new Uint8Array(SCIF_MSG_SIZE))).toThrow(/is not a u64 number/);
    }
  });
});
