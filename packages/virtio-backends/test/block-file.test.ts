// The image file's calls on its raw descriptor never outlive it: close() waits for the calls in
// flight, and a call after close fails with EBADF instead of reaching a reused descriptor.
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBlockFile } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'blk-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openBlockFile', () => {
  it('close() waits for the reads and writes in flight; calls after it fail with EBADF', async () => {
    const path = join(dir, 'img');
    writeFileSync(path, Buffer.alloc(1 << 20, 7));
    const file = await openBlockFile(path, false);
    const bufs = Array.from({ length: 8 }, () => new Uint8Array(128 << 10));
    const reads = bufs.map((b, i) => file.read(b, i * b.length));
    const write = file.writev!([new Uint8Array(4096).fill(9)], 0);
    const closed = file.close();
    expect(await Promise.all(reads)).toEqual(bufs.map((b) => b.length));
    await write;
    await closed;
    expect(bufs[7]![0]).toBe(7);
    const err = { code: 'EBADF' };
    await expect(file.read(new Uint8Array(16), 0)).rejects.toMatchObject(err);
    await expect(file.readv!([new Uint8Array(16)], 0)).rejects.toMatchObject(err);
    await expect(file.write(new Uint8Array(16), 0)).rejects.toMatchObject(err);
    await expect(file.sync()).rejects.toMatchObject(err);
    await expect(file.zero(0, 16, false)).rejects.toMatchObject(err);
  });
});
