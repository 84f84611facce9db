/**
 * `@mic/hwops-compliance`: one compliance suite per bus hardware-ops interface, runnable against any
 * implementation (the mocks of the bus packages, and `mic-host`/`mic-card` on the x100 model).
 */
export { DEFAULT_TIMEOUT_MS, rejectsMicError, throwsMicError, waitFor } from './api.js';
export type { TestApi, TestSetup } from './api.js';
export { linkPeer, scifLinkPeer, vopLinkPeer } from './peer.js';
export type {
  ClosableLinkPeer,
  InThreadPeer,
  LinkPeer,
  PeerBuffer,
  PeerDoorbell,
  PeerHwOps,
} from './peer.js';
export { vopHwOpsCompliance } from './vop.js';
export type { VopTestContext, VopTestSetup } from './vop.js';
export { scifHwOpsCompliance } from './scif.js';
export type { ScifP2pPeer, ScifTestContext, ScifTestSetup } from './scif.js';
export { mbusHwOpsCompliance } from './mbus.js';
export type { MbusTestContext, MbusTestSetup } from './mbus.js';
export { cosmHwOpsCompliance } from './cosm.js';
export type { CosmTestContext, CosmTestSetup, SuiteClock } from './cosm.js';
