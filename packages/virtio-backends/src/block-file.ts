/**
 * The image file under the block backend, as a small interface so that a test (or a tool) can
 * watch or wrap the file operations: positioned reads and writes (`fs.promises`, several at once),
 * `fsync`, and zeroing a range (a punched hole where the file system can, else written zeros).
 */
import { constants, promises as fsp } from 'node:fs';
import { MicError } from '@mic/errors';
import { punchHole } from './libc.js';

/** What the block backend does with its image. Positions and lengths are bytes. */
export interface BlockFile {
  /** Bytes of the image (fixed while it is open). */
  readonly size: number;
  /** Reads into `buf` at `position`; @returns bytes read (fewer only at the end of the file) */
  read(buf: Uint8Array, position: number): Promise<number>;
  /** Writes all of `buf` at `position`. */
  write(buf: Uint8Array, position: number): Promise<void>;
  /** `fsync(2)`: everything written so far is on stable storage. */
  sync(): Promise<void>;
  /** Makes `[position, position + length)` read as zeros; `deallocate` allows punching a hole. */
  zero(position: number, length: number, deallocate: boolean): Promise<void>;
  close(): Promise<void>;
}

/** Opens a {@link BlockFile} (a function of this shape can replace {@link openBlockFile}). */
export type OpenBlockFile = (path: string, readOnly: boolean) => Promise<BlockFile>;

const ZERO_CHUNK = 1 << 20;

/**
 * Opens an image: a regular file, read-write unless `readOnly`.
 * @throws MicError ENOENT (no such file), EISDIR (a directory), EINVAL (not a regular file),
 *   EACCES (no permission), each naming the path
 */
export const openBlockFile: OpenBlockFile = async (path, readOnly) => {
  if (typeof path !== 'string' || path === '') throw new MicError('EINVAL', 'block image path is empty');
  let st;
  try {
    st = await fsp.stat(path);
  } catch (err) {
    throw fsError(err, `block image ${path}`);
  }
  if (st.isDirectory()) throw new MicError('EISDIR', `block image ${path} is a directory, not an image file`);
  if (!st.isFile()) throw new MicError('EINVAL', `block image ${path} is not a regular file`);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(path, readOnly ? constants.O_RDONLY : constants.O_RDWR);
  } catch (err) {
    throw fsError(err, `block image ${path}${readOnly ? '' : ' (read-write)'}`);
  }
  const size = (await fh.stat()).size;
  let closed = false;
  const write = async (buf: Uint8Array, position: number): Promise<void> => {
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
      done += bytesWritten;
    }
  };
  return {
    size,
    async read(buf, position) {
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    },
    write,
    sync: () => fh.sync(),
    async zero(position, length, deallocate) {
      if (length === 0) return;
      if (deallocate && (await punchHole(fh.fd, position, length))) return;
      const zeros = new Uint8Array(Math.min(length, ZERO_CHUNK));
      for (let at = 0; at < length; at += zeros.length) {
        const n = Math.min(zeros.length, length - at);
        await write(n === zeros.length ? zeros : zeros.subarray(0, n), position + at);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
};

/** A MicError for a failed fs call on `what`, with the errno name Node gave. */
export function fsError(err: unknown, what: string): MicError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new MicError('ENOENT', `${what} does not exist`, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new MicError('EACCES', `${what}: permission denied`, { cause: err });
    case 'EISDIR':
      return new MicError('EISDIR', `${what} is a directory`, { cause: err });
    case 'ENOTDIR':
      return new MicError('ENOENT', `${what}: a parent of it is not a directory`, { cause: err });
    default:
      return new MicError('EIO', `${what}: ${(err as Error | undefined)?.message ?? String(err)}`, {
        cause: err,
      });
  }
}
