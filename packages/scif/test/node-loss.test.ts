import { describe, expect, it } from '@jest/globals';
import { SCIFEP, SCIF_RECV_BLOCK, SCIF_SEND_BLOCK } from '../src/index.js';
import { code, pair, rig, until } from './harness.js';

describe('node teardown and loss', () => {
  it('host-initiated: SCIF_EXIT/EXIT_ACK, both sides DISCONNECTED, blocked calls return', async () => {
    const seen: string[] = [];
    const r = await rig({ cards: 2, trace: (self, from, uop) => seen.push(`${self}<${from}:${uop}`) });
    const { a, b } = await pair(r.host, r.cards[0]!, 2000);
    const other = await pair(r.host, r.cards[1]!, 2001);
    const hostRecv = code(b.recv(new Uint8Array(10), SCIF_RECV_BLOCK));
    const cardRecv = code(a.recv(new Uint8Array(10), SCIF_RECV_BLOCK));
    seen.length = 0;
    await r.removeHostDev(0);
    expect(seen).toContain('1<0:2'); // SCIF_EXIT to the card
    expect(seen).toContain('0<1:3'); // EXIT_ACK back
    expect(await hostRecv).toBe('ECONNRESET');
    expect(await cardRecv).toBe('ECONNRESET');
    expect(a.state).toBe(SCIFEP.DISCONNECTED);
    expect(b.state).toBe(SCIFEP.DISCONNECTED);
    expect(r.host.isAlive(1)).toBe(false);
    expect(r.cards[0]!.isAlive(0)).toBe(false);
    // The other card is untouched.
    expect(other.a.state).toBe(SCIFEP.CONNECTED);
    await other.a.send(new Uint8Array([1]), SCIF_SEND_BLOCK);
    expect(await other.b.recv(new Uint8Array(1), SCIF_RECV_BLOCK)).toBe(1);
    // New connections to the lost node fail at once.
    expect(await code(r.host.open().connect({ node: 1, port: 1 }))).toBe('ENODEV');
    await a.close();
    await b.close();
    // The host brings the card's device back: the card (polling again) comes back online.
    r.hostDevs[0] = await r.hostBus.registerDevice(r.fabric.links[0]!.hostParams());
    await until(r.clock, () => r.host.isAlive(1) && r.cards[0]!.isAlive(0), 'the card back online');
    const again = await pair(r.host, r.cards[0]!, 2002);
    await again.a.send(new Uint8Array([9]), SCIF_SEND_BLOCK);
    expect(await again.b.recv(new Uint8Array(1), SCIF_RECV_BLOCK)).toBe(1);
  });

  it('card-initiated: the card leaves, the host tears the node down', async () => {
    const r = await rig();
    const { a, b, listener } = await pair(r.host, r.cards[0]!, 3000);
    const blocked = code(b.recv(new Uint8Array(10), SCIF_RECV_BLOCK));
    await r.removeCardDev(0);
    await r.host.idle();
    expect(await blocked).toBe('ECONNRESET');
    expect(b.state).toBe(SCIFEP.DISCONNECTED);
    expect(a.state).toBe(SCIFEP.DISCONNECTED);
    expect(r.host.isAlive(1)).toBe(false);
    await a.close();
    await b.close();
    await listener.close();
    expect(r.host.endpointCount).toBe(0);
  });

  it('a dead card (reset mid-connection) never hangs the host: every call returns', async () => {
    const r = await rig({ tunables: { nodeAliveTimeoutMs: 300, acceptTimeoutMs: 100 } });
    const card = r.cards[0]!;
    const { a, b, listener } = await pair(r.host, card, 4000);
    const mem = r.fabric.hostRam.window(0, 8192);
    const off = await b.register(mem, 0, 3);
    expect(off).toBeGreaterThan(0);
    // A listener on the card, a host connect in flight, a blocked send with a full ring.
    const lep = card.open();
    lep.bind(4001);
    lep.listen(4);
    // The card dies: its doorbells are never rung again, so it answers nothing.
    const hostOps = r.fabric.links[0]!.host;
    hostOps.sendIntr = () => undefined;
    const connector = r.host.open();
    const connecting = code(connector.connect({ node: 1, port: 4001 }));
    const full = new Uint8Array(64 * 1024);
    const sending = b.send(full, SCIF_SEND_BLOCK).then(
      (n) => `sent ${n}`,
      (err: { code?: string }) => err.code ?? 'error',
    );
    const receiving = code(b.recv(new Uint8Array(1), SCIF_RECV_BLOCK));
    // The host's COSM would reset the card: SCIF's device goes (host-initiated teardown).
    await r.removeHostDev(0);
    expect(await receiving).toBe('ECONNRESET');
    expect(await sending).toMatch(/^sent \d+$|^ECONNRESET$/);
    expect(['ECONNREFUSED', 'ENODEV']).toContain(await connecting);
    expect(b.state).toBe(SCIFEP.DISCONNECTED);
    expect(await code(b.readfrom(0, 64, 0))).toBe('ECONNRESET');
    await b.close();
    await connector.close();
    await listener.close();
    await r.host.idle();
    expect(r.host.endpointCount).toBe(0); // windows unregistered, nothing held
    expect(a.state).toBe(SCIFEP.CONNECTED); // the card never heard of it
  });

  it('accept gives up with ENODEV when the connector node is lost during the grant', async () => {
    const r = await rig({ tunables: { acceptTimeoutMs: 20, nodeAliveTimeoutMs: 500 } });
    const lep = r.host.open();
    lep.bind(5000);
    lep.listen(4);
    const ep = r.cards[0]!.open();
    // The card hears nothing after its request: it never sees the grant.
    void ep.connect({ node: 0, port: 5000 }).catch(() => undefined);
    await until(r.clock, () => lep.pollEvents() !== 0, 'the request');
    r.fabric.links[0]!.host.sendIntr = () => undefined;
    const accepting = code(lep.accept(0));
    // The node goes away while accept waits in 20 ms slices.
    await r.host.peerBus.unregisterDevice(1);
    expect(await accepting).toBe('ENODEV');
    expect(r.host.endpointCount).toBe(1); // only the listener: the half-made endpoint was freed
  });
});
