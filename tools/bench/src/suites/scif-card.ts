/**
 * Card code of the `scif` suite (runs in the x100 card worker): boots `@mic/mic-card` with the
 * SCIF driver on the card's SCIF bus, as a card OS would, and on request serves an echo port, a
 * sink port and an RMA window.
 */
import { MbusBus } from '@mic/mic-bus';
import { MicCardDriver } from '@mic/mic-card';
import {
  EPOLLIN,
  SCIF_MAP_FIXED,
  SCIF_PROT_READ,
  SCIF_PROT_WRITE,
  SCIF_SEND_BLOCK,
  Scif,
  type ScifEndpoint,
} from '@mic/scif';
import { ScifBus } from '@mic/scif-bus';
import { VopBus } from '@mic/vop-bus';
import type { CardDebugMethods, X100CardView } from '@mic/x100';
import { currentTid } from '../common.js';

/** Endpoint rings of 4 MiB, as the host side of the suite (see `RING` in scif.ts). */
const RING = 1 << 22;

/** Accepts connections on `port` forever, handing each to `serve`. */
function listen(scif: Scif, port: number, serve: (ep: ScifEndpoint) => Promise<void>): void {
  const lep = scif.open();
  lep.bind(port);
  lep.listen(4);
  void (async () => {
    for (;;) {
      const { ep } = await lep.accept(1);
      void serve(ep).catch(() => undefined);
    }
  })().catch(() => undefined);
}

export async function cardMain(card: X100CardView): Promise<CardDebugMethods> {
  const buses = { mbus: new MbusBus(), scif: new ScifBus(), vop: new VopBus() };
  const scif = new Scif({
    clock: card.clock,
    logger: card.logger,
    tunables: { qpPollMs: 5, endpointQpSize: RING },
  });
  await buses.scif.registerDriver(scif.driver);
  const driver = await MicCardDriver.init({ logger: card.logger });
  const mic = await driver.probe({ card, buses });
  const echoEps: ScifEndpoint[] = [];
  return {
    tid: () => currentTid(),
    hostAlive: () => scif.isAlive(0),
    /** Echoes every byte on connections to `port`. */
    echo: (port: number) => {
      listen(scif, port, async (ep) => {
        echoEps.push(ep);
        const buf = new Uint8Array(65536);
        for (;;) {
          const changed = ep.changed(undefined, EPOLLIN);
          const n = await ep.recv(buf, 0);
          if (n > 0) await ep.send(buf.subarray(0, n), SCIF_SEND_BLOCK);
          else await changed;
        }
      });
    },
    /** Reads and drops bytes on connections to `port`; one byte back after each `chunk` bytes. */
    sink: (port: number, chunk: number) => {
      listen(scif, port, async (ep) => {
        // As large as the ring: one read (and one CLIENT_RCVD) takes all that is there.
        const buf = new Uint8Array(RING);
        let got = 0;
        for (;;) {
          const changed = ep.changed(undefined, EPOLLIN);
          const n = await ep.recv(buf, 0);
          if (n === 0) {
            await changed;
            continue;
          }
          got += n;
          while (got >= chunk) {
            got -= chunk;
            await ep.send(new Uint8Array(1), SCIF_SEND_BLOCK);
          }
        }
      });
    },
    /** Registers `size` bytes of card memory at offset 0 of the echo endpoint; returns its address. */
    register: async (size: number) => {
      const buf = mic.dmaOps.alloc(size);
      await echoEps[0]!.register(buf.va, 0, SCIF_PROT_READ | SCIF_PROT_WRITE, SCIF_MAP_FIXED);
      return buf.dmaAddr;
    },
  };
}
