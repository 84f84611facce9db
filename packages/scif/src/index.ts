/**
 * `@mic/scif`: SCIF, the Symmetric Communication Interface between the MIC host and its cards:
 * nodes over the SCIF hardware bus, endpoints (`include/linux/scif.h`, Promise-based), a Node.js
 * `Duplex` over a connected endpoint, RMA windows and transfers, and fences.
 *
 * @see drivers/misc/mic/scif
 */
export { Scif, ScifEndpoint, SCIF_DEFAULT_TUNABLES } from './scif.js';
export type {
  ScifCallOptions,
  ScifConnectOptions,
  ScifMapping,
  ScifOptions,
  ScifPollEntry,
  ScifPortId,
  ScifTunables,
} from './scif.js';
export { ScifStream } from './stream.js';
export type { ScifRange } from './pages.js';
export type { ScifStreamOptions } from './stream.js';
export {
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  MAX_SCIF_NODES,
  SCIFEP,
  SCIF_ACCEPT_SYNC,
  SCIF_ADMIN_PORT_END,
  SCIF_BUSY_POLL_US,
  SCIF_ENDPT_QP_SIZE,
  SCIF_EP_STATE_NAMES,
  SCIF_FENCE_INIT_PEER,
  SCIF_FENCE_INIT_SELF,
  SCIF_FIRST_AUTO_PORT,
  SCIF_LOOPB_MAGIC_MARK,
  SCIF_MAP_FIXED,
  SCIF_MAP_KERNEL,
  SCIF_MAX_MSG,
  SCIF_MGMT_NODE,
  SCIF_MSG,
  SCIF_NODE_QP_SIZE,
  SCIF_PORT_RSVD,
  SCIF_PROT_READ,
  SCIF_PROT_WRITE,
  SCIF_RECV_BLOCK,
  SCIF_REMOTE_FENCE,
  SCIF_RMA_ORDERED,
  SCIF_RMA_SYNC,
  SCIF_RMA_USECACHE,
  SCIF_RMA_USECPU,
  SCIF_SEND_BLOCK,
  SCIF_SIGNAL_LOCAL,
  SCIF_SIGNAL_REMOTE,
} from './constants.js';
export type { ScifEpState } from './constants.js';
export { SCIF_MSG_SIZE, ScifMsg } from './msg.js';
export { ScifRb } from './rb.js';
export type { RbPointer } from './rb.js';
