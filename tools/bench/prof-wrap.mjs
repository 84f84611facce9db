import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const orig = fs.readv;
globalThis.__rv = { n: 0, us: 0, lat: 0 };
fs.readv = function (fd, bufs, pos, cb) {
  const t0 = performance.now();
  const r = orig.call(this, fd, bufs, pos, (...a) => { globalThis.__rv.lat += performance.now() - t0; cb(...a); });
  globalThis.__rv.n++; globalThis.__rv.us += (performance.now() - t0) * 1000;
  return r;
};
syncBuiltinESMExports();
await import('./prof-blk.mjs');
const s = globalThis.__rv;
console.log('readv calls', s.n, 'sync us/call', (s.us / s.n).toFixed(1), 'latency us/call', (s.lat * 1000 / s.n).toFixed(1));
