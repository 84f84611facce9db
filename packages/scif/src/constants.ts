/**
 * SCIF constants: the `include/linux/scif.h` API flags, the driver's sizes and timeouts, the
 * endpoint states and the node-QP message opcodes, with the kernel's names.
 *
 * @see include/linux/scif.h
 * @see drivers/misc/mic/scif/scif_main.h, scif_epd.h, scif_nodeqp.h, scif_rma.h
 */

/** Ports below this need the privilege flag to bind (`SCIF_ADMIN_PORT_END`, `CAP_SYS_ADMIN`). */
export const SCIF_ADMIN_PORT_END = 1024;
/** End of the reserved ports (`SCIF_PORT_RSVD`); automatic ports start after it. */
export const SCIF_PORT_RSVD = 1088;
/** Number of port numbers (`SCIF_PORT_COUNT`): ports are 1..65535. */
export const SCIF_PORT_COUNT = 0x10000;
/** The first port `bind(0)` or an unbound `connect` hands out (`scif_get_new_port`). */
export const SCIF_FIRST_AUTO_PORT = SCIF_PORT_RSVD + 1;

/** `accept` waits for a request (`SCIF_ACCEPT_SYNC`). */
export const SCIF_ACCEPT_SYNC = 1;
/** `send` transfers every byte (`SCIF_SEND_BLOCK`). */
export const SCIF_SEND_BLOCK = 1;
/** `recv` transfers every byte (`SCIF_RECV_BLOCK`). */
export const SCIF_RECV_BLOCK = 1;

/** Window protections (`SCIF_PROT_READ`, `SCIF_PROT_WRITE`). */
export const SCIF_PROT_READ = 1;
export const SCIF_PROT_WRITE = 2;

/** `register` at exactly the given offset (`SCIF_MAP_FIXED`). */
export const SCIF_MAP_FIXED = 0x10;
/** The memory is kernel memory (`SCIF_MAP_KERNEL`): accepted, changes nothing here. */
export const SCIF_MAP_KERNEL = 0x20;

/** Fence flags (`SCIF_FENCE_INIT_SELF`, `SCIF_FENCE_INIT_PEER`, `SCIF_SIGNAL_LOCAL`, `SCIF_SIGNAL_REMOTE`). */
export const SCIF_FENCE_INIT_SELF = 1;
export const SCIF_FENCE_INIT_PEER = 2;
export const SCIF_SIGNAL_LOCAL = 0x10;
export const SCIF_SIGNAL_REMOTE = 0x20;

/** RMA flags (`SCIF_RMA_USECPU`, `SCIF_RMA_USECACHE`, `SCIF_RMA_SYNC`, `SCIF_RMA_ORDERED`). */
export const SCIF_RMA_USECPU = 1;
export const SCIF_RMA_USECACHE = 2;
export const SCIF_RMA_SYNC = 4;
export const SCIF_RMA_ORDERED = 8;

/** Poll events (`EPOLLIN`, `EPOLLOUT`, `EPOLLERR`, `EPOLLHUP`, as `include/uapi/linux/eventpoll.h`). */
export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;

/** Bytes of a node queue-pair ring, per direction (`SCIF_NODE_QP_SIZE`). */
export const SCIF_NODE_QP_SIZE = 0x10000;
/** Bytes of an endpoint queue-pair ring, per direction (`SCIF_ENDPT_QP_SIZE`). */
export const SCIF_ENDPT_QP_SIZE = 0x1000;
/** Magic of a queue pair (`SCIFEP_MAGIC`). */
export const SCIFEP_MAGIC = 0x5c1f000000005c1fn;
/** Queue-pair states of a peer-to-peer node QP (`SCIF_QP_OFFLINE`, `SCIF_QP_ONLINE`). */
export const SCIF_QP_OFFLINE = 0xdead;
export const SCIF_QP_ONLINE = 0xc0de;

/** The management node (the host) (`SCIF_MGMT_NODE`). */
export const SCIF_MGMT_NODE = 0;
/** Nodes in the node table: the management node and 128 cards (`MAX_SCIF_NODES`). */
export const MAX_SCIF_NODES = 129;

/** Handshake wait, re-armed while the peer lives (`SCIF_NODE_ALIVE_TIMEOUT`, 30 s). */
export const SCIF_NODE_ALIVE_TIMEOUT_MS = 30_000;
/** `accept` waits for the grant acknowledgement in slices of this (`SCIF_NODE_ACCEPT_TIMEOUT`). */
export const SCIF_NODE_ACCEPT_TIMEOUT_MS = 3_000;
/** A full node ring is retried every millisecond for this long, then `ENODEV` (`SCIF_NODEQP_SEND_TO_MSEC`). */
export const SCIF_NODEQP_SEND_TO_MS = 3_000;
/** Peer-to-peer queue-pair online check: retries and period (`SCIF_NODE_QP_RETRY`, `SCIF_NODE_QP_TIMEOUT`). */
export const SCIF_NODE_QP_RETRY = 100;
export const SCIF_NODE_QP_TIMEOUT_MS = 100;
/** Period of the device-page poll for the peer's queue pair (`qp_dwork`). */
export const SCIF_QP_POLL_MS = 1_000;
/**
 * Default bounded busy poll of blocking calls, µs (`ScifTunables.busyPollUs`): off, as Linux's
 * `SO_BUSY_POLL`. 50 (Linux's suggested value) pays only while both ends run on CPUs of their own.
 */
export const SCIF_BUSY_POLL_US = 0;
/** Interrupt-based DMA drain timeout (`SCIF_DMA_TO`). */
export const SCIF_DMA_TO_MS = 3_000;
/** Fence waits give up after this (`SCIF_FENCE_WAIT` in `_scif_fence_wait`: `SCIF_NODE_ALIVE_TIMEOUT`). */
export const SCIF_FENCE_TIMEOUT_MS = 30_000;

/** Page size of the registered address space. */
export const PAGE_SIZE = 4096;
/** The cache line the RMA alignment rules use (`L1_CACHE_BYTES`). */
export const L1_CACHE_BYTES = 64;
/** Chunk of a mutually misaligned RMA (`SCIF_MAX_UNALIGNED_BUF_SIZE`). */
export const SCIF_MAX_UNALIGNED_BUF_SIZE = 1 << 20;
/** Chunk-table entries per lookup page (`SCIF_NR_ADDR_IN_PAGE`). */
export const SCIF_NR_ADDR_IN_PAGE = 512;
/** Bit of a fence mark that says the peer made it (`SCIF_REMOTE_FENCE_BIT`). */
export const SCIF_REMOTE_FENCE = 0x80000000;
/** The only mark of management-node loopback fences (`SCIF_LOOPB_MAGIC_MARK`). */
export const SCIF_LOOPB_MAGIC_MARK = 0xdead;
/** Pages of temporary windows the RMA cache keeps, in all (`SCIF_RMA_TEMP_CACHE_LIMIT`). */
export const SCIF_RMA_TEMP_CACHE_LIMIT = 0x20000;

/**
 * The top of the registered address space. Linux allocates non-fixed offsets below 2^63; a
 * JavaScript number is exact only below 2^53, so this port keeps every offset below
 * `2^53 - PAGE_SIZE` (non-fixed offsets come from the top of that space).
 */
export const SCIF_RAS_END = 2 ** 53 - PAGE_SIZE;

/**
 * Endpoint states (`enum scif_epd_state`).
 *
 * @see drivers/misc/mic/scif/scif_epd.h
 */
export const SCIFEP = {
  UNBOUND: 0,
  BOUND: 1,
  LISTENING: 2,
  CONNECTED: 3,
  CONNECTING: 4,
  MAPPING: 5,
  CLOSING: 6,
  CLLISTEN: 7,
  DISCONNECTED: 8,
  ZOMBIE: 9,
} as const;
/** One of {@link SCIFEP}. */
export type ScifEpState = (typeof SCIFEP)[keyof typeof SCIFEP];

/** The kernel's debug names of the endpoint states (`scif_ep_states[]`). */
export const SCIF_EP_STATE_NAMES = [
  'Unbound',
  'Bound',
  'Listening',
  'Connected',
  'Connecting',
  'Mapping',
  'Closing',
  'Close Listening',
  'Disconnected',
  'Zombie',
] as const;

/** Sub-state of a non-blocking connect (`enum conn_async_state`; 0 is a blocking connect). */
export const ASYNC_CONN = { BLOCKING: 0, IDLE: 1, INPROGRESS: 2, FLUSH_WORK: 3 } as const;

/** Handshake states (`enum scif_msg_state`). */
export const OP = { IDLE: 1, IN_PROGRESS: 2, COMPLETED: 3, FAILED: 4 } as const;
/** One of {@link OP}. */
export type OpState = (typeof OP)[keyof typeof OP];

/**
 * Node queue-pair message opcodes (`SCIF_INIT` .. `SCIF_SIG_NACK`).
 *
 * @see drivers/misc/mic/scif/scif_nodeqp.h
 */
export const SCIF_MSG = {
  INIT: 1,
  EXIT: 2,
  EXIT_ACK: 3,
  NODE_ADD: 4,
  NODE_ADD_ACK: 5,
  NODE_ADD_NACK: 6,
  NODE_REMOVE: 7,
  NODE_REMOVE_ACK: 8,
  CNCT_REQ: 9,
  CNCT_GNT: 10,
  CNCT_GNTACK: 11,
  CNCT_GNTNACK: 12,
  CNCT_REJ: 13,
  DISCNCT: 14,
  DISCNT_ACK: 15,
  CLIENT_SENT: 16,
  CLIENT_RCVD: 17,
  GET_NODE_INFO: 18,
  REGISTER: 19,
  REGISTER_ACK: 20,
  REGISTER_NACK: 21,
  UNREGISTER: 22,
  UNREGISTER_ACK: 23,
  UNREGISTER_NACK: 24,
  ALLOC_REQ: 25,
  ALLOC_GNT: 26,
  ALLOC_REJ: 27,
  FREE_VIRT: 28,
  MUNMAP: 29,
  MARK: 30,
  MARK_ACK: 31,
  MARK_NACK: 32,
  WAIT: 33,
  WAIT_ACK: 34,
  WAIT_NACK: 35,
  SIG_LOCAL: 36,
  SIG_REMOTE: 37,
  SIG_ACK: 38,
  SIG_NACK: 39,
} as const;
/** The highest opcode (`SCIF_MAX_MSG`). */
export const SCIF_MAX_MSG = 39;

/** Opcode names by number, for logs (without the kernel table's off-by-one after 27). */
export const SCIF_MSG_NAMES: readonly string[] = (() => {
  const names: string[] = ['BAD'];
  for (const [k, v] of Object.entries(SCIF_MSG)) names[v] = k;
  return names;
})();

/** `dmaengine` prep flags the RMA and fence paths use (`DMA_PREP_INTERRUPT`, `DMA_PREP_FENCE`). */
export const DMA_PREP_INTERRUPT = 1 << 0;
export const DMA_PREP_FENCE = 1 << 5;
