// The README's examples, compiled and run: the VOP one is type-checked (it needs a card to run;
// packages/e2e runs the same sequence), the host-side one runs.
import { describe, expect, it } from '@jest/globals';
import {
  BlockBackend,
  ConsoleBackend,
  NetBackend,
  StreamFramer,
  type VirtioBackend,
  VirtualSwitch,
  VopBackendTransport,
  encodeStreamFrame,
  waitForDriverOk,
} from '../src/index.js';
import type { VopHostControl } from '@mic/vop-host';

/** Serves console, net and block for the card of `control` until `signal` aborts. */
export async function serveCard(
  control: VopHostControl,
  dir: string,
  signal: AbortSignal,
): Promise<string | null> {
  const con = await ConsoleBackend.open({ logPath: `${dir}/console.log`, pty: true });
  const net = await NetBackend.open({ pcapPath: `${dir}/mic0.pcap` }); // on a new userspace switch
  const blk = await BlockBackend.open({ path: `${dir}/mic0.img`, serial: 'mic0-disk' });
  const serve = async (backend: VirtioBackend): Promise<void> => {
    const t = await VopBackendTransport.add(control.open(), backend.description); // ADD_DEVICE
    try {
      if (await waitForDriverOk(t, signal)) await backend.serve(t, { signal });
    } finally {
      await t.remove(); // hot-unplug (the card removes its driver)
      await t.handle.close();
      await backend.close();
    }
  };
  const host = net.switch!.port('host'); // frames from and to host code
  host.setReceiver((frame) => void frame);
  await Promise.all([serve(con), serve(net), serve(blk)]).catch((err: unknown) => {
    if (!signal.aborted) throw err;
  });
  return con.ptyPath; // e.g. /dev/pts/3: `screen /dev/pts/3` while it runs
}

describe('README', () => {
  it('runs the host-side example', async () => {
    const sw = new VirtualSwitch();
    const a = sw.port('a');
    const b = sw.port('b');
    const got: Uint8Array[] = [];
    b.setReceiver((frame) => got.push(frame));
    const frame = new Uint8Array(60);
    frame.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1], 0); // broadcast from 02:00:00:00:00:01
    a.send(frame); // flooded to b (delivered in a microtask)

    // QEMU -netdev stream framing
    const framer = new StreamFramer((f) => got.push(f));
    framer.push(encodeStreamFrame(frame));

    await Promise.resolve();
    expect(got).toHaveLength(2);
    expect(got.every((f) => f.length === 60)).toBe(true);
    expect(typeof serveCard).toBe('function');
  });
});
