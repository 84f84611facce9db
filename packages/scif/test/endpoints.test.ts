import { describe, expect, it } from '@jest/globals';
import {
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  SCIFEP,
  SCIF_ACCEPT_SYNC,
  SCIF_MSG,
  SCIF_RECV_BLOCK,
  SCIF_SEND_BLOCK,
  type ScifEndpoint,
} from '../src/index.js';
import { code, pair, rig, until } from './harness.js';

describe('bring-up', () => {
  it('publishes both queue pairs in the device page, exchanges SCIF_INIT, and the nodes see each other', async () => {
    const seen: string[] = [];
    const r = await rig({ cards: 2, trace: (self, from, uop) => seen.push(`${self}<${from}:${uop}`) });
    expect(seen).toEqual(expect.arrayContaining(['0<1:1', '1<0:1', '0<2:1', '2<0:1']));
    expect(r.host.nodeId).toBe(0);
    expect(r.cards.map((c) => c.nodeId)).toEqual([1, 2]);
    expect(await r.host.getNodeIds()).toEqual({ nodes: [0, 1, 2], self: 0 });
    // The card asks the host (SCIF_GET_NODE_INFO) and learns of node 2 only through maxid.
    const ids = await r.cards[0]!.getNodeIds();
    expect(ids.self).toBe(1);
    expect(ids.nodes).toEqual([0, 1]);
    expect(r.cards[0]!.maxId).toBe(2);
    // The device page carries the QP addresses and doorbells both ways.
    const dp = r.fabric.links[0]!.dp.va;
    expect(dp.readU64(8)).not.toBe(0);
    expect(dp.readU64(16)).not.toBe(0);
    expect(dp.readU8(6)).not.toBe(0xff);
    expect(dp.readU8(7)).not.toBe(0xff);
  });

  it('clients probe every online node, self included, and remove a node that goes', async () => {
    const r = await rig({ cards: 1 });
    const events: string[] = [];
    await r.host.clientRegister({
      name: 'test',
      probe: (p) => void events.push(`probe ${p.dnode}`),
      remove: (p) => void events.push(`remove ${p.dnode}`),
    });
    expect(events).toEqual(['probe 0', 'probe 1']);
    await r.removeHostDev(0);
    await r.host.idle();
    expect(events).toEqual(['probe 0', 'probe 1', 'remove 1']);
  });
});

describe('connection flow', () => {
  it('runs CNCT_REQ → CNCT_GNT → CNCT_GNTACK, step by step, with a non-blocking connect', async () => {
    const seen: string[] = [];
    const r = await rig({ trace: (self, from, uop) => seen.push(`${self}<${from}:${uop}`) });
    const card = r.cards[0]!;
    const lep = r.host.open();
    expect(lep.bind(3000)).toBe(3000);
    lep.listen(4);
    expect(lep.pollEvents()).toBe(0);
    const ep = card.open();
    seen.length = 0;
    // Non-blocking: EINPROGRESS at once; the request reaches the listener.
    expect(await code(ep.connect({ node: 0, port: 3000 }, { nonBlock: true }))).toBe('EINPROGRESS');
    expect(ep.state).toBe(SCIFEP.CONNECTING);
    expect(ep.port.port).toBe(1089); // auto-bound from 1089
    await until(r.clock, () => lep.pollEvents() === EPOLLIN, 'the request');
    expect(seen).toEqual([`0<1:${SCIF_MSG.CNCT_REQ}`]);
    // A third caller while the connect runs gets EINPROGRESS too.
    expect(await code(ep.connect({ node: 0, port: 3000 }))).toBe('EINPROGRESS');
    const { ep: cep, peer } = await lep.accept(0);
    expect(peer).toEqual({ node: 1, port: 1089 });
    expect(cep.state).toBe(SCIFEP.CONNECTED);
    expect(cep.port).toEqual({ node: 0, port: 3000 }); // the listener's port
    expect(seen).toEqual([
      `0<1:${SCIF_MSG.CNCT_REQ}`,
      `1<0:${SCIF_MSG.CNCT_GNT}`,
      `0<1:${SCIF_MSG.CNCT_GNTACK}`,
    ]);
    await until(r.clock, () => (ep.pollEvents() & EPOLLOUT) !== 0, 'connect to finish');
    expect(ep.state).toBe(SCIFEP.CONNECTED);
    // Collecting the result.
    await ep.connect({ node: 0, port: 3000 });
    expect(ep.peer).toEqual({ node: 0, port: 3000 });
    expect(await code(ep.connect({ node: 0, port: 3000 }))).toBe('EISCONN');
    // Close: DISCNCT then DISCNT_ACK; the peer is DISCONNECTED (EPOLLHUP).
    seen.length = 0;
    await ep.close();
    expect(seen).toEqual([`0<1:${SCIF_MSG.DISCNCT}`, `1<0:${SCIF_MSG.DISCNT_ACK}`]);
    expect(cep.state).toBe(SCIFEP.DISCONNECTED);
    expect(cep.pollEvents() & EPOLLHUP).toBe(EPOLLHUP);
    expect(await code(cep.recv(new Uint8Array(1)))).toBe('ECONNRESET');
    await cep.close();
    await lep.close();
  });

  it('connects a node to itself through the loopback queue pair', async () => {
    const r = await rig();
    const { a, b } = await pair(r.host, r.host, 4000);
    const n = await a.send(new Uint8Array([1, 2, 3]), SCIF_SEND_BLOCK);
    expect(n).toBe(3);
    const got = new Uint8Array(3);
    expect(await b.recv(got, SCIF_RECV_BLOCK)).toBe(3);
    expect([...got]).toEqual([1, 2, 3]);
  });

  it('refuses with ECONNREFUSED when nobody listens, and when the backlog is 0', async () => {
    const r = await rig();
    const ep = r.cards[0]!.open();
    expect(await code(ep.connect({ node: 0, port: 5555 }))).toBe('ECONNREFUSED');
    expect(ep.state).toBe(SCIFEP.BOUND);
    const lep = r.host.open();
    lep.bind(5556);
    lep.listen(0);
    expect(await code(ep.connect({ node: 0, port: 5556 }))).toBe('ECONNREFUSED');
  });

  it('closing a listener refuses its queued requests', async () => {
    const r = await rig();
    const lep = r.host.open();
    lep.bind(6000);
    lep.listen(2);
    const ep = r.cards[0]!.open();
    const c = code(ep.connect({ node: 0, port: 6000 }));
    await until(r.clock, () => lep.pollEvents() === EPOLLIN, 'the request');
    await lep.close();
    expect(await c).toBe('ECONNREFUSED');
  });

  it('flush wakes a blocked accept with EINTR, and so does an aborted signal', async () => {
    const r = await rig();
    const lep = r.host.open();
    lep.bind(6100);
    lep.listen(2);
    const a = code(lep.accept(SCIF_ACCEPT_SYNC));
    lep.flush();
    expect(await a).toBe('EINTR');
    expect(lep.state).toBe(SCIFEP.CLLISTEN);
    const l2 = r.host.open();
    l2.bind(6101);
    l2.listen(2);
    const ac = new AbortController();
    const b = code(l2.accept(SCIF_ACCEPT_SYNC, { signal: ac.signal }));
    ac.abort();
    expect(await b).toBe('EINTR');
  });
});

describe('ports', () => {
  it('reserves exactly, hands out from 1089, shares the listener port with accepted endpoints', async () => {
    const r = await rig();
    const a = r.host.open();
    const b = r.host.open();
    expect(a.bind(0)).toBe(1089);
    expect(b.bind(0)).toBe(1090);
    const c = r.host.open();
    expect(await code(() => c.bind(1089))).toBe('EINVAL');
    expect(await code(() => c.bind(80))).toBe('EACCES');
    expect(r.host.open({ privileged: true }).bind(80)).toBe(80);
    await a.close();
    expect(c.bind(0)).toBe(1089); // freed by close
    const { listener, b: accepted } = await pair(r.host, r.cards[0]!, 7000);
    await listener.close();
    // The accepted endpoint still holds port 7000.
    expect(await code(() => r.host.open().bind(7000))).toBe('EINVAL');
    await accepted.close();
    expect(r.host.open().bind(7000)).toBe(7000);
  });
});

describe('errno table', () => {
  it('bind, listen, connect, accept, send, recv by state', async () => {
    const r = await rig();
    const card = r.cards[0]!;
    const ep = r.host.open();
    // listen needs BOUND
    expect(await code(() => ep.listen(1))).toBe('EINVAL');
    ep.bind(8000);
    expect(await code(() => ep.bind(8001))).toBe('EINVAL'); // already bound
    ep.listen(1);
    expect(await code(() => ep.bind(0))).toBe('EISCONN');
    expect(await code(() => ep.listen(1))).toBe('EISCONN');
    expect(await code(ep.connect({ node: 1, port: 1 }))).toBe('EOPNOTSUPP');
    expect(await code(ep.accept(2))).toBe('EINVAL'); // flags
    expect(await code(ep.accept(0))).toBe('EAGAIN');
    expect(ep.pollEvents()).toBe(0);
    const un = r.host.open();
    expect(await code(un.accept(0))).toBe('EINVAL'); // not listening
    expect(un.pollEvents()).toBe(EPOLLERR);
    expect(await code(un.send(new Uint8Array(1)))).toBe('ENOTCONN');
    expect(await code(un.recv(new Uint8Array(1)))).toBe('ENOTCONN');
    expect(await code(un.send(new Uint8Array(1), 2))).toBe('EINVAL');
    expect(await code(un.recv(new Uint8Array(1), 2))).toBe('EINVAL');
    expect(await un.send(new Uint8Array(0))).toBe(0);
    // connect to a node beyond maxid, or one that is not online
    expect(await code(un.connect({ node: 9, port: 1 }))).toBe('ENODEV');
    const { a, b } = await pair(card, r.host, 8100);
    expect(await code(() => a.bind(0))).toBe('EISCONN');
    expect(await code(() => a.listen(1))).toBe('EISCONN');
    expect(await code(a.connect({ node: 1, port: 8100 }))).toBe('EISCONN');
    // After the peer closes: drain, then ECONNRESET; send is ECONNRESET at once.
    await a.send(new Uint8Array([7, 8]), SCIF_SEND_BLOCK);
    await a.close();
    expect(b.state).toBe(SCIFEP.DISCONNECTED);
    expect(await code(b.send(new Uint8Array(1)))).toBe('ECONNRESET');
    const got = new Uint8Array(4);
    expect(await b.recv(got)).toBe(2);
    expect(await code(b.recv(got))).toBe('ECONNRESET');
    expect(await code(() => b.listen(1))).toBe('EINVAL'); // disconnected
    expect(await code(b.connect({ node: 1, port: 8100 }))).toBe('EINVAL');
    await b.close();
    // closed: every call is EBADF
    expect(await code(() => b.bind(0))).toBe('EBADF');
    expect(await code(b.close())).toBe('EBADF');
    expect(await code(a.send(new Uint8Array(1)))).toBe('EBADF');
  });

  it('scif_verify_epd precedence: ECONNRESET over ENOTCONN over ENODEV', async () => {
    // The host's close waits for a DISCNT_ACK the card may not send (its host peer is gone).
    const r = await rig({ tunables: { nodeAliveTimeoutMs: 100 } });
    const card = r.cards[0]!;
    const mem = r.fabric.links[0]!.cardRam.window(0, 4096);
    const un = card.open();
    expect(await code(un.register(mem, 0, 3))).toBe('ENOTCONN');
    expect(await code(un.fenceMark(1))).toBe('ENOTCONN');
    const { a, b } = await pair(r.host, card, 8200);
    // The card's endpoint is CONNECTED, but its peer device (the host) is gone: ENODEV.
    await card.peerBus.unregisterDevice(0);
    expect(a.state).toBe(SCIFEP.CONNECTED);
    expect(await code(a.register(mem, 0, 3))).toBe('ENODEV');
    expect(await code(a.readfrom(0, 64, 0))).toBe('ENODEV');
    expect(await code(() => a.mmap(0, 64, 1))).toBe('ENODEV');
    // DISCONNECTED wins over a dead node.
    await b.close();
    await until(r.clock, () => a.state === SCIFEP.DISCONNECTED, 'disconnect');
    expect(await code(a.register(mem, 0, 3))).toBe('ECONNRESET');
    expect(await code(a.fenceWait(1))).toBe('ECONNRESET');
  });

  it('poll over many endpoints with a timeout', async () => {
    const r = await rig();
    const pairs: { a: ScifEndpoint; b: ScifEndpoint }[] = [];
    for (let i = 0; i < 4; i++) pairs.push(await pair(r.host, r.cards[0]!, 9000 + i));
    const entries = pairs.map((p) => ({ ep: p.b, events: EPOLLIN, revents: 0 }));
    expect(await r.host.poll(entries, 0)).toBe(0);
    expect(await r.host.poll(entries, 50)).toBe(0);
    const waiting = r.host.poll(entries, -1);
    await pairs[2]!.a.send(new Uint8Array([1]));
    expect(await waiting).toBe(1);
    expect(entries.map((e) => e.revents)).toEqual([0, 0, EPOLLIN, 0]);
    const ac = new AbortController();
    const p = code(
      r.host.poll([{ ep: pairs[0]!.b, events: EPOLLIN, revents: 0 }], -1, { signal: ac.signal }),
    );
    ac.abort();
    expect(await p).toBe('EINTR');
  });
});

describe('send and recv', () => {
  it('non-blocking send returns a partial count when the ring fills, blocking send waits for room', async () => {
    const r = await rig({ tunables: { endpointQpSize: 1024 } });
    const { a, b } = await pair(r.host, r.cards[0]!, 9100);
    const big = new Uint8Array(5000).map((_, i) => (i * 7) & 0xff);
    expect(await a.send(big)).toBe(1023); // size - 1 bytes fit
    expect(await a.send(big)).toBe(0);
    expect(a.pollEvents() & EPOLLOUT).toBe(0);
    const got = new Uint8Array(5000 + 1023);
    const [sent, rcvd] = await Promise.all([a.send(big, SCIF_SEND_BLOCK), b.recv(got, SCIF_RECV_BLOCK)]);
    expect(sent).toBe(5000);
    expect(rcvd).toBe(got.length);
    expect(got.subarray(0, 1023)).toEqual(big.subarray(0, 1023));
    expect(got.subarray(1023)).toEqual(big);
  });

  it('a blocking recv returns the partial count when the peer closes', async () => {
    const r = await rig();
    const { a, b } = await pair(r.host, r.cards[0]!, 9200);
    const got = new Uint8Array(100);
    const rx = b.recv(got, SCIF_RECV_BLOCK);
    await a.send(new Uint8Array([5, 6, 7]), SCIF_SEND_BLOCK);
    await a.close();
    expect(await rx).toBe(3);
  });

  it("a blocked recv and a blocked send resume their caller in the first promise turn after the peer's notification is handled", async () => {
    // A check queued behind the handler, one turn later, sees whether the caller already ran: no
    // promise turns (nor timers) between the doorbell's handler and the caller's code.
    const seen: Record<number, boolean | undefined> = {};
    const resumed: Record<number, boolean> = { [SCIF_MSG.CLIENT_SENT]: false, [SCIF_MSG.CLIENT_RCVD]: false };
    let watch = false;
    const r = await rig({
      tunables: { endpointQpSize: 1024 },
      trace: (self, _from, uop) => {
        if (!watch || self !== 0 || !(uop in resumed) || seen[uop] !== undefined) return;
        queueMicrotask(() => queueMicrotask(() => (seen[uop] ??= resumed[uop])));
      },
    });
    const { a, b } = await pair(r.host, r.cards[0]!, 9300);
    // b (host) waits for 64 bytes; a (card) sends them: CLIENT_SENT reaches the host.
    const got = new Uint8Array(64);
    watch = true;
    const rx = b.recv(got, SCIF_RECV_BLOCK).then((n) => ((resumed[SCIF_MSG.CLIENT_SENT] = true), n));
    expect(await a.send(new Uint8Array(64).fill(9), SCIF_SEND_BLOCK)).toBe(64);
    expect(await rx).toBe(64);
    expect(seen[SCIF_MSG.CLIENT_SENT]).toBe(true);
    // b fills a's ring and blocks; a's recv frees room: CLIENT_RCVD reaches the host.
    expect(await b.send(new Uint8Array(1023))).toBe(1023);
    const tx = b
      .send(new Uint8Array(100), SCIF_SEND_BLOCK)
      .then((n) => ((resumed[SCIF_MSG.CLIENT_RCVD] = true), n));
    expect(await a.recv(new Uint8Array(1023), SCIF_RECV_BLOCK)).toBe(1023);
    expect(await tx).toBe(100);
    expect(seen[SCIF_MSG.CLIENT_RCVD]).toBe(true);
  });

  it('changed(signal, EPOLLIN) sleeps through the CLIENT_RCVD that wakes changed()', async () => {
    const r = await rig();
    const { a, b } = await pair(r.host, r.cards[0]!, 9400);
    const anyChange = b.changed();
    let readable = false;
    const whenReadable = b.changed(undefined, EPOLLIN).then(() => (readable = true));
    expect(await b.send(new Uint8Array(10), SCIF_SEND_BLOCK)).toBe(10);
    expect(await a.recv(new Uint8Array(10), SCIF_RECV_BLOCK)).toBe(10); // CLIENT_RCVD to b
    await anyChange;
    await new Promise((resolve) => setImmediate(resolve));
    expect(readable).toBe(false);
    expect(await a.send(new Uint8Array([1]), SCIF_SEND_BLOCK)).toBe(1); // CLIENT_SENT to b
    await whenReadable;
    expect(b.pollEvents() & EPOLLIN).toBe(EPOLLIN);
    const aborted = new AbortController();
    aborted.abort();
    await b.changed(aborted.signal, EPOLLOUT); // an aborted signal resolves at once
  });
});
