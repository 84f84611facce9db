import { describe, expect, it } from '@jest/globals';
import { SCIFEP, SCIF_RECV_BLOCK, SCIF_SEND_BLOCK } from '../src/index.js';
import { pair, rig } from './harness.js';

describe('smoke', () => {
  it('brings a host and a card up and moves bytes both ways', async () => {
    const r = await rig();
    expect(r.host.nodeId).toBe(0);
    expect(r.cards[0]!.nodeId).toBe(1);
    const { a, b } = await pair(r.host, r.cards[0]!, 2000);
    expect(a.state).toBe(SCIFEP.CONNECTED);
    expect(b.state).toBe(SCIFEP.CONNECTED);
    const msg = new Uint8Array(10000).map((_, i) => i & 0xff);
    const got = new Uint8Array(10000);
    const [s, n] = await Promise.all([a.send(msg, SCIF_SEND_BLOCK), b.recv(got, SCIF_RECV_BLOCK)]);
    expect(s).toBe(10000);
    expect(n).toBe(10000);
    expect(got).toEqual(msg);
  });
});
