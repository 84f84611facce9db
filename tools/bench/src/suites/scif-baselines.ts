/**
 * The baselines' worker of the `scif` suite: a Unix-socket echo server, a Unix-socket sink (one
 * byte back after each `chunk` bytes) and a MessagePort echo, in a thread of its own.
 */
import { createServer } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { currentTid } from '../common.js';

interface Data {
  readonly echoPath: string;
  readonly sinkPath: string;
  readonly chunk: number;
}

const { echoPath, sinkPath, chunk } = workerData as Data;
const echo = createServer((s) => s.on('data', (d) => s.write(d)));
const sink = createServer((s) => {
  let got = 0;
  s.on('data', (d: Buffer) => {
    got += d.length;
    while (got >= chunk) {
      got -= chunk;
      s.write(Buffer.alloc(1));
    }
  });
});
const port = parentPort!;
port.on('message', (m: unknown) => {
  if (m === 'close') {
    echo.close();
    sink.close();
    port.close();
    return;
  }
  port.postMessage(m);
});
echo.listen(echoPath, () =>
  sink.listen(sinkPath, () => port.postMessage({ ready: true, tid: currentTid() })),
);
