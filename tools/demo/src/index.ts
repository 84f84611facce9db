/**
 * `@mic/demo`: the demo of the README (`npm run demo`), and the two halves it is made of, which
 * the end-to-end tests and the benchmarks reuse: the card program (the card OS with the stock
 * virtio drivers and an ARP/ICMP responder; {@link cardOsModule} for the worker platform,
 * {@link cardMain} in-process) and the host rig ({@link CardRig} boots a card, {@link serveCard}
 * and {@link ServedDevice} add and serve its virtio devices over VOP).
 */
export {
  CARD_DEFAULT_IPV4,
  ETH_P_BURST,
  cardMain,
  type BlkBurst,
  type BurstResult,
  type CardDeviceSummary,
  type CardOsData,
} from './card-os.js';
export {
  CardRig,
  FAST_COPY_RIG,
  ServedDevice,
  cardOsModule,
  serveCard,
  type CardDevices,
  type CardDevicesOptions,
  type CardRigOptions,
  type ServedDeviceOptions,
} from './host.js';
export { type FrameBurst, framesCardToHost, framesHostToCard } from './bursts.js';
export { ping, type PingOptions, type PingPort, type PingResult } from './ping.js';
export { burstOffsets, pattern, sha256 } from './pattern.js';
export {
  HOST_PORT,
  runDemo,
  type DemoDevice,
  type DemoOptions,
  type DemoResult,
  type DemoThroughput,
} from './demo.js';
