/**
 * The card's thread on the `worker` platform (run as `dist/card-worker.js`, never imported):
 * attaches to the shared hardware, builds the card view (interrupts through its event word),
 * imports the card module, calls its entry and then serves the host's method calls until the
 * platform terminates the thread. Card log records are posted to the host.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { realClock } from '@mic/clock';
import { MicError } from '@mic/errors';
import { createLogger } from '@mic/logger';
import type { LogRecord } from '@mic/logger';
import { X100CardView } from './card-view.js';
import { installDmaRegisterHandlers } from './dma-regs.js';
import { DmaSharedState, cardLockOwner } from './dma-state.js';
import { X100Hardware } from './hardware.js';
import { debugMethodNames, invokeDebugMethod, serializeError } from './debug-channel.js';
import type { CardWorkerData, CardWorkerMessage, DebugCallMessage } from './debug-channel.js';

function post(port: MessagePort, msg: CardWorkerMessage): void {
  port.postMessage(msg);
}

function postLog(port: MessagePort, record: LogRecord): void {
  const msg: CardWorkerMessage = {
    type: 'log',
    level: record.level,
    component: record.component,
    msg: record.msg,
    fields: record.fields,
  };
  try {
    port.postMessage(msg);
  } catch {
    post(port, { ...msg, fields: { unclonableFields: String(Object.keys(record.fields)) } });
  }
}

async function serve(port: MessagePort, methods: unknown, msg: DebugCallMessage): Promise<void> {
  try {
    const value = await invokeDebugMethod(methods, msg.method, msg.args);
    post(port, { type: 'result', id: msg.id, ok: true, value });
  } catch (err) {
    post(port, { type: 'result', id: msg.id, ok: false, error: serializeError(err) });
  }
}

async function main(port: MessagePort, data: CardWorkerData): Promise<void> {
  const hw = X100Hardware.attach(data.buffers, data.config);
  if (data.dmaEngine) {
    const state = new DmaSharedState(data.buffers.wires, cardLockOwner(data.generation), () => hw.generation);
    installDmaRegisterHandlers(
      hw,
      () => {
        state.word.signal();
      },
      { cardGeneration: data.generation },
    );
  }
  const logger = createLogger((record) => postLog(port, record), 'debug');
  hw.iommu.setLogger(logger.child('iommu'));
  const card = new X100CardView(hw, {
    delivery: 'wait',
    logger,
    clock: realClock,
    generation: data.generation,
    ...(data.spinNs === undefined ? {} : { spinNs: data.spinNs }),
  });
  let methods: unknown;
  port.on('message', (msg: DebugCallMessage) => {
    if (msg.type === 'call') void serve(port, methods, msg);
  });
  try {
    const mod = (await import(data.cardModule)) as Record<string, unknown>;
    const entry = mod[data.cardExport];
    if (typeof entry !== 'function') {
      throw new MicError('ENOENT', `card module ${data.cardModule} exports no function '${data.cardExport}'`);
    }
    methods = await (entry as (c: X100CardView, d: unknown) => unknown)(card, data.cardData);
    post(port, { type: 'booted', methods: debugMethodNames(methods) });
  } catch (err) {
    post(port, { type: 'failed', error: serializeError(err) });
  }
}

if (parentPort) void main(parentPort, workerData as CardWorkerData);
