/**
 * Listening on a Unix socket path with clear errors: a path some server listens on is refused
 * (EADDRINUSE), a path that is something else is refused (EEXIST), a stale socket file left by a
 * dead server is replaced. Used by the console backend and the QEMU stream link.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import { MicError } from '@mic/errors';
import { fsError } from './block-file.js';

/** True when a server accepts connections on `path`. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * A server listening on `path`. @throws MicError EADDRINUSE (a server listens there), EEXIST (the
 * path is not a socket), ENOENT (its directory does not exist), EACCES; `what` names the socket
 */
export async function listenUnix(
  path: string,
  what: string,
  onConnection: (s: net.Socket) => void,
): Promise<net.Server> {
  if (typeof path !== 'string' || path === '') throw new MicError('EINVAL', `${what} path is empty`);
  try {
    if (!(await fsp.stat(dirname(path))).isDirectory())
      throw new MicError('ENOENT', `${what} ${path}: its directory is not a directory`);
  } catch (err) {
    if (err instanceof MicError) throw err;
    throw new MicError('ENOENT', `${what} ${path}: its directory does not exist`, { cause: err });
  }
  let st;
  try {
    st = await fsp.lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, `${what} ${path}`);
  }
  if (st) {
    if (!st.isSocket()) throw new MicError('EEXIST', `${what} ${path} exists and is not a socket`);
    if (await listening(path))
      throw new MicError('EADDRINUSE', `${what} ${path} is in use: a server listens on it`);
    await fsp.unlink(path).catch(() => {});
  }
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        reject(new MicError('EADDRINUSE', `${what} ${path} is in use`, { cause: err }));
      else reject(fsError(err, `${what} ${path}`));
    });
    server.listen(path, () => resolve());
  });
  return server;
}

/** Closes a server made by {@link listenUnix} and removes its socket file. */
export async function closeUnix(server: net.Server, path: string): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await fsp.unlink(path).catch(() => {});
}
