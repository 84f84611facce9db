/**
 * What the net backend connects the card's NIC to: a {@link FrameLink} carries whole Ethernet
 * frames (destination MAC first, no FCS) both ways. Implementations: a port of the userspace
 * {@link VirtualSwitch}, a QEMU `-netdev stream` socket, a TAP device.
 */

/** Counters every link keeps. */
export interface FrameLinkStats {
  /** Frames sent into the link (card → network). */
  sent: number;
  /** Frames received from the link (network → card). */
  received: number;
  /** Frames the link could not send (no peer, a full queue). */
  dropped: number;
}

/** A two-way Ethernet frame carrier. */
export interface FrameLink {
  /** What it is, for logs (`switch port 2`, `qemu stream /run/n0.sock`, `tap mic0`). */
  readonly name: string;
  /**
   * Sends a frame into the network. The link owns `frame` afterwards (it may hand the same
   * buffer to several receivers: nobody modifies it). Never blocks: a frame that cannot go is
   * dropped and counted.
   */
  send(frame: Uint8Array): void;
  /** Sets where frames from the network go (one receiver; a later call replaces it). */
  setReceiver(receiver: ((frame: Uint8Array) => void) | null): void;
  stats(): FrameLinkStats;
  /** Releases the link. Idempotent. */
  close(): Promise<void>;
}
