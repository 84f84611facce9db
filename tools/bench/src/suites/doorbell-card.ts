/**
 * Card code of the `doorbell` suite (runs in the x100 card worker): boots the card driver
 * (`@mic/mic-card`) on the card view as a card OS would, and on request installs a VOP handler on a
 * card doorbell that rings a host doorbell back, through the VOP device's hw ops.
 */
import { MbusBus } from '@mic/mic-bus';
import { MicCardDriver } from '@mic/mic-card';
import { ScifBus } from '@mic/scif-bus';
import { VopBus } from '@mic/vop-bus';
import type { CardDebugMethods, X100CardView } from '@mic/x100';
import { currentTid } from '../common.js';

export async function cardMain(card: X100CardView): Promise<CardDebugMethods> {
  const driver = await MicCardDriver.init({ logger: card.logger });
  const mic = await driver.probe({
    card,
    buses: { mbus: new MbusBus(), scif: new ScifBus(), vop: new VopBus() },
  });
  const vop = mic.vopDevice!;
  return {
    /** The card thread's kernel thread id, for the regime. */
    tid: () => currentTid(),
    /** Listens on a card doorbell whose handler rings host doorbell `hostDb`; returns the doorbell. */
    echo: (hostDb: number) => {
      const db = vop.hwOps.nextDb();
      vop.hwOps.requestIrq(
        (irq) => {
          vop.hwOps.ackInterrupt(irq);
          vop.hwOps.sendIntr(hostDb);
        },
        'bench echo',
        null,
        db,
      );
      return db;
    },
    /**
     * The same echo one layer down, on the bare x100 card view (no bus ops): card doorbell `db`
     * rings host doorbell `hostDb`. For comparison: what the hardware model alone costs.
     */
    echoRaw: (db: number, hostDb: number) => {
      card.requestIrq(db, () => {
        card.sendIntr(hostDb);
      });
    },
  };
}
