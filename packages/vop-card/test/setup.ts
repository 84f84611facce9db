/** A card VOP device on a MockVopLink with the host double, a virtio bus and the test driver. */
import { VirtualClock } from '@mic/clock';
import { type MemoryLogger, createMemoryLogger } from '@mic/logger';
import { VirtioBus } from '@mic/virtio';
import { MockVopLink, VopBus, type VopDevice } from '@mic/vop-bus';
import { type VopCardEvent, VopCardDriver } from '../src/index.js';
import {
  HostDouble,
  type HostDeviceSpec,
  type HostDoubleOptions,
  type HostDevice,
  settle,
} from './host-double.js';
import { TestDriver } from './test-driver.js';

export interface CardSetupOptions {
  /** Devices the host adds before the card probes. */
  readonly devices?: readonly HostDeviceSpec[];
  readonly host?: HostDoubleOptions;
  readonly pollIntervalMs?: number;
  /** Feature bits the test driver understands. */
  readonly featureTable?: number[];
  /** Register the test virtio driver (default true). */
  readonly withDriver?: boolean;
  /** Register the card VOP device (default true). */
  readonly probe?: boolean;
  /** The clock (default an auto-advancing virtual clock). */
  readonly clock?: VirtualClock;
}

export interface CardSetup {
  readonly link: MockVopLink;
  readonly host: HostDouble;
  readonly hostDevs: HostDevice[];
  readonly clock: VirtualClock;
  readonly virtioBus: VirtioBus;
  readonly vopBus: VopBus;
  readonly driver: VopCardDriver;
  readonly testDriver: TestDriver;
  readonly logger: MemoryLogger;
  readonly events: VopCardEvent[];
  vpdev: VopDevice | null;
  /** Registers the card VOP device (probe). */
  probe(): Promise<VopDevice>;
  settle(): Promise<void>;
}

export async function setupCard(options: CardSetupOptions = {}): Promise<CardSetup> {
  const link = new MockVopLink();
  const host = new HostDouble(link, options.host);
  const clock = options.clock ?? new VirtualClock();
  const logger = createMemoryLogger();
  const virtioBus = new VirtioBus({ logger });
  const testDriver = new TestDriver(options.featureTable ?? []);
  if (options.withDriver ?? true) await virtioBus.registerDriver(testDriver);
  const driver = new VopCardDriver({
    virtioBus,
    clock,
    logger,
    ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
  });
  const events: VopCardEvent[] = [];
  driver.subscribe((e) => events.push(e));
  const vopBus = new VopBus({ logger });
  await vopBus.registerDriver(driver);
  const hostDevs = (options.devices ?? []).map((d) => host.add(d));
  const s: CardSetup = {
    link,
    host,
    hostDevs,
    clock,
    virtioBus,
    vopBus,
    driver,
    testDriver,
    logger,
    events,
    vpdev: null,
    async probe() {
      s.vpdev = await vopBus.registerDevice(link.cardParams());
      await s.settle();
      return s.vpdev;
    },
    settle: () => settle(link, driver, virtioBus, clock),
  };
  if (options.probe ?? true) await s.probe();
  return s;
}
