/**
 * The bounded busy poll of blocking calls (`ScifTunables.busyPollUs`, Linux's `SO_BUSY_POLL`), and
 * the deferred doorbell of `CLIENT_RCVD`.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { EPOLLIN, SCIF_BUSY_POLL_US, SCIF_RECV_BLOCK, SCIF_SEND_BLOCK, Scif } from '../src/index.js';
import { MAX_POLL_SKIP } from '@mic/notify';
import { BusyPoller } from '../src/wait.js';
import { code, pair, rig, until } from './harness.js';

describe('busyPollUs tunable', () => {
  it('defaults to SCIF_BUSY_POLL_US (off) and accepts 0 to 10 000', () => {
    expect(SCIF_BUSY_POLL_US).toBe(0);
    expect(() => new Scif({ tunables: { busyPollUs: 50 } })).not.toThrow();
    expect(() => new Scif({ tunables: { busyPollUs: 0 } })).not.toThrow();
    expect(() => new Scif({ tunables: { busyPollUs: 10_000 } })).not.toThrow();
  });

  it.each([-1, 1.5, 10_001, Number.NaN, Infinity, '50' as unknown as number])(
    'rejects %p with EINVAL naming busyPollUs',
    (bad) => {
      let err: unknown;
      try {
        new Scif({ tunables: { busyPollUs: bad } });
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string }).code).toBe('EINVAL');
      expect(String((err as Error).message)).toContain('busyPollUs');
    },
  );
});

describe('BusyPoller', () => {
  it('returns at once when ready, without backing off', () => {
    const p = new BusyPoller();
    let calls = 0;
    expect(
      p.poll(50, () => {
        calls++;
        return true;
      }),
    ).toBe(true);
    expect(calls).toBe(1);
  });

  it('polls nothing when off', () => {
    const p = new BusyPoller();
    let calls = 0;
    expect(p.poll(0, () => (calls++, true))).toBe(false);
    expect(calls).toBe(0);
  });

  it('gives up after its bound and then skips 1, 2, 4, ... waits, at most MAX_POLL_SKIP', () => {
    const p = new BusyPoller();
    const never = (): boolean => false;
    const skips: number[] = [];
    for (let round = 0; round < 9; round++) {
      expect(p.poll(20, never)).toBe(false);
      skips.push(p.skipping);
      let calls = 0;
      // The waits it skips do not poll at all.
      while (p.skipping > 0) expect(p.poll(20, () => (calls++, true))).toBe(false);
      expect(calls).toBe(0);
    }
    expect(skips).toEqual([1, 2, 4, 8, 16, 32, MAX_POLL_SKIP, MAX_POLL_SKIP, MAX_POLL_SKIP]);
    // A poll that pays ends the back-off. (One that found its condition after the thread was
    // descheduled does not count, which a busy machine may do to any poll: so try a few.)
    const yes = (): boolean => true;
    let reset = false;
    for (let i = 0; i < 100 && !reset; i++) {
      expect(p.poll(20, yes)).toBe(true);
      expect(p.poll(20, never)).toBe(false);
      reset = p.skipping === 1;
      while (p.skipping > 0) p.poll(20, yes);
    }
    expect(reset).toBe(true);
  });

  it('sees a condition that turns true while it polls', () => {
    const p = new BusyPoller();
    let n = 0;
    expect(p.poll(10_000, () => ++n >= 100)).toBe(true);
    expect(n).toBe(100);
  });
});

describe.each([0, 50])('messaging with busyPollUs %d', (busyPollUs) => {
  it('blocking send/recv and poll deliver every byte in order', async () => {
    const r = await rig({ tunables: { busyPollUs, endpointQpSize: 1024 } });
    const { a, b } = await pair(r.host, r.cards[0]!, 2000);
    const msg = new Uint8Array(20_000).map((_, i) => (i * 7) & 0xff);
    const got = new Uint8Array(msg.length);
    // The ring (1 KiB) is far smaller than the message: both sides wait many times.
    const [s, n] = await Promise.all([a.send(msg, SCIF_SEND_BLOCK), b.recv(got, SCIF_RECV_BLOCK)]);
    expect([s, n]).toEqual([msg.length, msg.length]);
    expect(got).toEqual(msg);
    const entries = [{ ep: b, events: EPOLLIN, revents: 0 }];
    expect(await r.cards[0]!.poll(entries, 0)).toBe(0);
    const polled = r.cards[0]!.poll(entries, -1);
    await a.send(new Uint8Array([1, 2, 3]), SCIF_SEND_BLOCK);
    expect(await polled).toBe(1);
    expect(entries[0]!.revents & EPOLLIN).toBe(EPOLLIN);
    // A blocking recv whose peer closes returns what it has (the wait ends, busy poll or not).
    const rest = new Uint8Array(10);
    const pending = b.recv(rest, SCIF_RECV_BLOCK);
    await a.close();
    expect(await pending).toBe(3);
    expect(await code(b.recv(rest, SCIF_RECV_BLOCK))).toBe('ECONNRESET');
  });
});

describe('CLIENT_RCVD doorbell', () => {
  it('rides on the next message of the same turn, else rings at the end of the turn', async () => {
    const r = await rig();
    // a on the card, b on the host: b's doorbells ring the card.
    const { a, b } = await pair(r.host, r.cards[0]!, 2000);
    const ops = r.hostDevs[0]!.hwOps;
    const rings = jest.spyOn(ops, 'sendIntr');
    const buf = new Uint8Array(64);
    await a.send(buf, SCIF_SEND_BLOCK);
    await until(r.clock, () => (b.pollEvents() & EPOLLIN) !== 0, 'data');
    // An echo: recv (CLIENT_RCVD) then send (CLIENT_SENT) in one turn rings the peer once.
    rings.mockClear();
    expect(await b.recv(buf, 0)).toBe(64);
    expect(await b.send(buf, SCIF_SEND_BLOCK)).toBe(64);
    await new Promise((resolve) => setImmediate(resolve));
    expect(rings).toHaveBeenCalledTimes(1);
    expect(await a.recv(buf, SCIF_RECV_BLOCK)).toBe(64);
    // A recv alone still rings, by the end of the turn.
    await a.send(buf, SCIF_SEND_BLOCK);
    await until(r.clock, () => (b.pollEvents() & EPOLLIN) !== 0, 'data');
    rings.mockClear();
    expect(await b.recv(buf, 0)).toBe(64);
    expect(rings).toHaveBeenCalledTimes(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(rings).toHaveBeenCalledTimes(1);
  });
});
