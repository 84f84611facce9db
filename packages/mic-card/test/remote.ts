// The jest side of the remote compliance runs (see fixtures/remote.mjs): the host end (host-peer.ts,
// on the raw host view) answers the card's LinkPeer requests, and jest registers the card's suites
// with a test API whose tests ask the card to run the test of the same path.
import { BroadcastChannel } from 'node:worker_threads';
import { it as jestIt, describe as jestDescribe } from '@jest/globals';
import type { ClosableLinkPeer, PeerBuffer, PeerDoorbell, TestApi } from '@mic/hwops-compliance';
import { testPath } from './fixtures/remote.mjs';

type Target = 'vop' | 'scif';

interface Request {
  readonly kind: 'request';
  readonly id: number;
  readonly op: string;
  readonly args: unknown[];
}

/** Where a view from the host starts in the shared buffer behind it. */
function offsetOf(mem: unknown): number {
  const off = (mem as { byteOffset?: unknown }).byteOffset;
  if (typeof off !== 'number') throw new TypeError('the host returned a view without a byte offset');
  return off;
}

/**
 * Answers the card's requests on BroadcastChannel `name` with the host ends of its links: each
 * target is a `LinkPeer` on the host view, `raise` plays the DMA engine raising a card DMA
 * interrupt.
 */
export function serveHostPeer(
  name: string,
  peers: Readonly<Record<Target, ClosableLinkPeer>>,
  raise: (channel: number) => void,
): { close(): Promise<void> } {
  const channel = new BroadcastChannel(name);
  const doors = new Map<number, PeerDoorbell>();
  const buffers = new Map<string, PeerBuffer>();
  let nextKey = 1;
  const handle = async (op: string, args: unknown[]): Promise<unknown> => {
    const target = args[0] as Target;
    const peer = peers[target];
    switch (op) {
      case 'reset':
        await peer.close();
        return null;
      case 'ring':
        await peer.ring(args[1] as number);
        return null;
      case 'listen': {
        const door = await peer.listen();
        const key = nextKey++;
        doors.set(key, door);
        return { key, db: door.db };
      }
      case 'received':
        return doors.get(args[1] as number)!.received();
      case 'unlisten': {
        const door = doors.get(args[1] as number);
        doors.delete(args[1] as number);
        await door?.close();
        return null;
      }
      case 'alloc': {
        const buf = await peer.alloc(args[1] as number);
        buffers.set(`${target}/${buf.dmaAddr}`, buf);
        return { dmaAddr: buf.dmaAddr, offset: offsetOf(buf.view) };
      }
      case 'free': {
        const key = `${target}/${String(args[1])}`;
        const buf = buffers.get(key);
        buffers.delete(key);
        await buf?.free();
        return null;
      }
      case 'map':
        return offsetOf(await peer.view(args[1] as number, args[2] as number));
      case 'devicePage':
        return offsetOf(await peer.devicePage());
      case 'raise':
        raise(args[0] as number);
        return null;
      default:
        throw new Error(`unknown request ${op}`);
    }
  };
  channel.onmessage = (event: unknown) => {
    const msg = (event as { data: Request }).data;
    if (msg?.kind !== 'request') return;
    handle(msg.op, msg.args).then(
      (value) => channel.postMessage({ kind: 'response', id: msg.id, ok: true, value }),
      (err: unknown) =>
        channel.postMessage({
          kind: 'response',
          id: msg.id,
          ok: false,
          message: err instanceof Error ? err.message : String(err),
          code: (err as { code?: unknown })?.code,
        }),
    );
  };
  return {
    async close() {
      channel.close();
      for (const peer of Object.values(peers)) await peer.close();
    },
  };
}

/**
 * A test API that registers each test with jest under the same describe path, running it with
 * `run(path)` (hooks run where the test runs).
 */
export function remoteApi(run: (path: string) => Promise<void>): TestApi {
  const names: string[] = [];
  return {
    describe(name, fn) {
      jestDescribe(name, () => {
        names.push(name);
        try {
          fn();
        } finally {
          names.pop();
        }
      });
    },
    it(name, _fn, timeout) {
      const path = testPath([...names, name]);
      jestIt(name, () => run(path), timeout);
    },
    beforeEach() {},
    afterEach() {},
  };
}
