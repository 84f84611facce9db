/**
 * The benchmark suites of the MIC stack by name, and the record format they print.
 */
import type { Suite } from './common.js';
import { blkSuite } from './suites/blk.js';
import { consoleSuite } from './suites/console.js';
import { doorbellSuite } from './suites/doorbell.js';
import { dmaSuite } from './suites/dma.js';
import { netSuite } from './suites/net.js';
import { ringSuite } from './suites/ring.js';
import { vopSuite } from './suites/vop.js';

export {
  type BenchRecord,
  type Regime,
  type Suite,
  type SuiteOptions,
  median,
  regimeOf,
  record,
  recordTime,
} from './common.js';

/** Every suite by name. */
export const suites: Record<string, Suite> = {
  ring: ringSuite,
  doorbell: doorbellSuite,
  dma: dmaSuite,
  vop: vopSuite,
  blk: blkSuite,
  net: netSuite,
  console: consoleSuite,
};
