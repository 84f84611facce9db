#!/usr/bin/env node
/**
 * `mic-loopback`: the stack's main job until the daemon exists. A virtio driver runs in a worker
 * thread, the device in the main thread; they exchange requests over one SharedArrayBuffer
 * through a split virtqueue (`@mic/virtio` rings, loopback.ts). Every response is checked byte for byte.
 *
 *   mic-loopback [--requests N] [--payload BYTES] [--batch N] [--queue-size N] [--json]
 */
import { isMicError } from '@mic/errors';
import { runLoopback } from './loopback.js';
import { parseArgs } from './args.js';

const parsed = parseArgs(process.argv.slice(2));
if (!parsed.ok) {
  process.stderr.write(`mic-loopback: ${parsed.error} (--help for usage)\n`);
  process.exit(2);
}
if (parsed.help) {
  process.stdout.write(`${parsed.usage}\n`);
  process.exit(0);
}
const o = parsed.options;
const log = (line: string): void => {
  if (!o.json) process.stdout.write(`${line}\n`);
};

log(
  `loopback: ${o.requests} requests of ${o.payload} bytes, batch ${o.batch}, queue size ${o.queueSize} ` +
    `(driver in a worker thread, device in the main thread, one SharedArrayBuffer)`,
);
try {
  const r = await runLoopback({
    num: o.queueSize,
    payload: o.payload,
    requests: o.requests,
    batch: o.batch,
    verify: true,
  });
  const ok = r.driver.mismatches === 0 && r.driver.requests === o.requests && r.device.chains === o.requests;
  if (o.json) {
    process.stdout.write(JSON.stringify({ ...o, ...r, ok }) + '\n');
  } else {
    const mbs = (r.driver.bytes * 2) / (r.driver.elapsedMs / 1000) / 1e6;
    log(
      `rate: ${Math.round(r.rate).toLocaleString('en-US')} requests/s, ${mbs.toFixed(0)} MB/s of payload (both ways)`,
    );
    log(
      `notifications: ${r.driver.kicks} kicks, ${r.device.interrupts} interrupts ` +
        `(driver slept ${r.driver.sleeps}x, device slept ${r.device.sleeps}x)`,
    );
    log(
      ok
        ? `data integrity: OK (${r.driver.requests.toLocaleString('en-US')} responses, every byte checked)`
        : `data integrity: FAILED (${r.driver.mismatches} bad responses, ${r.driver.requests}/${o.requests} answered)`,
    );
  }
  process.exit(ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`mic-loopback: ${isMicError(err) ? err.toString() : String(err)}\n`);
  process.exit(1);
}
