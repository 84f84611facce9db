import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { SCIF_RECV_BLOCK, SCIF_SEND_BLOCK, type ScifEndpoint } from '../src/index.js';
import { pair, rig } from './harness.js';

/** Sends `sizes` as consecutive pieces of one pattern; resolves with the bytes sent. */
async function sender(
  ep: ScifEndpoint,
  sizes: number[],
  seed: number,
  blocking: boolean[],
): Promise<Uint8Array> {
  const total = sizes.reduce((a, b) => a + b, 0);
  const all = new Uint8Array(total).map((_, i) => (i * 31 + seed) & 0xff);
  let at = 0;
  for (let i = 0; i < sizes.length; i++) {
    const n = sizes[i]!;
    let done = 0;
    while (done < n) {
      const piece = all.subarray(at + done, at + n);
      const k = blocking[i % blocking.length] ? await ep.send(piece, SCIF_SEND_BLOCK) : await ep.send(piece);
      if (k === 0) await new Promise((r) => setImmediate(r));
      done += k;
    }
    at += n;
  }
  return all;
}

/** Receives `total` bytes in pieces of the given sizes (cycled). */
async function receiver(
  ep: ScifEndpoint,
  total: number,
  sizes: number[],
  blocking: boolean[],
): Promise<Uint8Array> {
  const out = new Uint8Array(total);
  let at = 0;
  let i = 0;
  while (at < total) {
    const want = Math.min(sizes[i % sizes.length]!, total - at);
    const buf = out.subarray(at, at + want);
    const k = blocking[i % blocking.length] ? await ep.recv(buf, SCIF_RECV_BLOCK) : await ep.recv(buf);
    if (k === 0) await new Promise((r) => setImmediate(r));
    at += k;
    i++;
  }
  return out;
}

describe('property: send/recv', () => {
  it('random send and recv sizes over many endpoints deliver every byte in order', async () => {
    const r = await rig({ cards: 2, tunables: { endpointQpSize: 2048 } });
    let port = 10_000;
    const stream = fc.record({
      dir: fc.boolean(),
      card: fc.integer({ min: 0, max: 1 }),
      sends: fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 8 }),
      recvs: fc.array(fc.integer({ min: 1, max: 6000 }), { minLength: 1, maxLength: 8 }),
      sendBlock: fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }),
      recvBlock: fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(stream, { minLength: 1, maxLength: 6 }), async (streams) => {
        const runs = streams.map(async (s, k) => {
          const card = r.cards[s.card]!;
          const { a, b, listener } = await pair(r.host, card, port++);
          await listener.close();
          const [tx, rx] = s.dir ? [a, b] : [b, a];
          const total = s.sends.reduce((x, y) => x + y, 0);
          const [sent, got] = await Promise.all([
            sender(tx, s.sends, k, s.sendBlock),
            receiver(rx, total, s.recvs, s.recvBlock),
          ]);
          expect(got).toEqual(sent);
          await a.close();
          await b.close();
        });
        await Promise.all(runs);
      }),
      { numRuns: 15 },
    );
    // Nothing leaks: every endpoint was freed.
    await r.host.idle();
    expect(r.host.endpointCount).toBe(0);
    expect(r.cards.map((c) => c.endpointCount)).toEqual([0, 0]);
  });
});
