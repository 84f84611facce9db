import { describe, expect, it, jest } from '@jest/globals';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ScifStream } from '../src/index.js';
import { pair, rig } from './harness.js';

describe('ScifStream', () => {
  it('pipelines a megabyte through SCIF with backpressure, in order, and ends when the writer ends', async () => {
    const r = await rig({ tunables: { endpointQpSize: 4096 } });
    const { a, b } = await pair(r.host, r.cards[0]!, 2000);
    const total = 1 << 20;
    const data = Buffer.alloc(total);
    for (let i = 0; i < total; i++) data[i] = (i * 13 + (i >> 10)) & 0xff;
    const chunks: Buffer[] = [];
    for (let at = 0; at < total; at += 65536) chunks.push(data.subarray(at, at + 65536));
    const tx = new ScifStream(a);
    const rx = new ScifStream(b, { highWaterMark: 8192 });
    const got: Buffer[] = [];
    let maxBuffered = 0;
    const sink = new Writable({
      highWaterMark: 4096,
      write(chunk: Buffer, _e, cb) {
        got.push(chunk);
        maxBuffered = Math.max(maxBuffered, rx.readableLength);
        setImmediate(cb); // a slow consumer
      },
    });
    await Promise.all([pipeline(Readable.from(chunks), tx), pipeline(rx, sink)]);
    expect(Buffer.concat(got).equals(data)).toBe(true);
    // Backpressure: the reader never buffered much more than its high-water mark.
    expect(maxBuffered).toBeLessThanOrEqual(8192 + 16 * 1024);
  });

  it('sends writes buffered behind a blocked send together (_writev), in order', async () => {
    const r = await rig({ tunables: { endpointQpSize: 4096 } });
    const { a, b } = await pair(r.host, r.cards[0]!, 2002);
    const tx = new ScifStream(a, { highWaterMark: 1 << 20 });
    const rx = new ScifStream(b);
    const writev = jest.spyOn(tx, '_writev');
    const parts: Buffer[] = [];
    for (let i = 0; i < 64; i++) parts.push(Buffer.alloc(1000 + i, i));
    const data = Buffer.concat(parts);
    const got: Buffer[] = [];
    let length = 0;
    const all = new Promise<void>((resolve) =>
      rx.on('data', (d: Buffer) => {
        got.push(d);
        length += d.length;
        if (length >= data.length) resolve();
      }),
    );
    // The first write fills the 4 KiB ring and blocks; the others queue behind it.
    for (const p of parts) tx.write(p);
    await all;
    expect(Buffer.concat(got).equals(data)).toBe(true);
    expect(writev).toHaveBeenCalled();
    tx.destroy();
    rx.destroy();
  });

  it('refuses an endpoint that is not connected', async () => {
    const r = await rig();
    expect(() => new ScifStream(r.host.open())).toThrow(/connected/);
  });

  it('destroy closes the endpoint; the peer reads end of stream', async () => {
    const r = await rig();
    const { a, b } = await pair(r.host, r.cards[0]!, 2001);
    const tx = new ScifStream(a);
    const rx = new ScifStream(b);
    const ended = new Promise<void>((resolve) => rx.on('end', resolve));
    rx.resume();
    const closed = new Promise<void>((resolve) => tx.on('close', resolve));
    tx.destroy();
    await Promise.all([ended, closed]);
    expect(a.stateName).toBe('Zombie');
  });
});
