import { constants } from 'node:os';
import type { Logger } from 'pino';
import { FsError } from '../errors/errno.js';
import { Dispatcher } from '../vfs/dispatch.js';
import type { Attr, FsStats, VNode } from '../vfs/node.js';
import { BusyPoll, DEFAULT_BUSY_POLL_US } from './busy-poll.js';
import { toErrno } from './errno.js';
import { HandleTable } from './handle-table.js';

// fuse-native calls each op with op-specific arguments; the op table below spells them out.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Callback = (...args: any[]) => void;

const EIO = constants.errno.EIO;

const UINT32_MAX = 0xffffffff;
/** chown(2)'s -1 (leave it as it is), as fuse-native passes it: an unsigned 32-bit id. */
const UNCHANGED = UINT32_MAX;

/**
 * fuse-native passes statfs's numbers as 32-bit integers (index.js `getStatfsArray`): a count above
 * that would wrap. Blocks are counted in larger fragments instead (the size `df` shows stays right),
 * and inode counts, which some file systems give as near 2^64, are capped.
 */
export function statfsReply(stats: FsStats): Record<string, number> {
  let { frsize, blocks, bfree, bavail } = stats;
  while (blocks > UINT32_MAX) {
    frsize *= 2;
    blocks = Math.floor(blocks / 2);
    bfree = Math.floor(bfree / 2);
    bavail = Math.floor(bavail / 2);
  }
  const files = Math.min(stats.files, UINT32_MAX);
  const ffree = Math.min(stats.ffree, UINT32_MAX);
  return { bsize: Math.min(stats.bsize, UINT32_MAX), frsize, blocks, bfree, bavail, files, ffree, favail: ffree, fsid: 0, flag: 0, namemax: 255 };
}

/**
 * The adapter's own bound on every operation that does not wait for a driver or a relay's longer
 * bound (SPEC §12): fuse-native answers ETIMEDOUT after it while the handler may still run.
 */
export const OPERATION_TIMEOUT_MS = 15_000;

export interface OperationOptions {
  log: Logger;
  /** How long the loop polls after a reply, in µs (see BusyPoll); 0 turns it off. */
  busyPollUs?: number;
}

export interface FuseOperations {
  /** The op table handed to fuse-native, keyed by its op names (`_op_<name>` in its index.js). */
  readonly ops: Record<string, Callback>;
  readonly handles: HandleTable;
  /**
   * Open handles plus operations still running (a release finishing in the background included):
   * after a lazy unmount, processes that opened a file before it still reach the tree through them.
   */
  readonly busy: number;
}

/**
 * The fuse-native op table for a VFS tree, without mounting it (tests drive it through fuse-native's
 * own `_op_*` functions). It decides no file behaviour: every operation goes to `Dispatcher`, errnos
 * are converted by `toErrno`, and every handler answers exactly once: a throw anywhere (the tree, the
 * shaping of a reply, fuse-native's callback itself) is logged with its stack and answered EIO, never
 * left as an unanswered request and an unhandled rejection (go-fuse's panic handler).
 *
 * Argument orders are fuse-native 2.2.6's (index.js `_op_*`, fed by fuse-native.c), pinned by
 * test/unit/fuse/operations.test.ts. Not here, on purpose: `fgetattr` (fuse-native answers it with
 * `ops.getattr`, and libfuse falls back to getattr without it), `opendir`/`access` (without them
 * libfuse and the kernel allow; `open` checks modes), xattr ops (ENOTSUP, SPEC §3).
 */
export function fuseOperations(root: VNode, options: OperationOptions): FuseOperations {
  const { log } = options;
  const dispatch = new Dispatcher(root);
  const handles = new HandleTable();
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const traceOn = log.isLevelEnabled('trace');
  const poll = new BusyPoll(options.busyPollUs ?? DEFAULT_BUSY_POLL_US);
  let running = 0;

  const stat = (attr: Attr) => ({
    mode: attr.mode,
    size: attr.size,
    uid,
    gid,
    nlink: attr.nlink ?? 1,
    ino: attr.ino ?? 0,
    // Never 0 for a file with bytes: tar -S and cp --sparse take a file without blocks for all holes.
    blocks: attr.blocks ?? Math.ceil(attr.size / 512),
    mtime: attr.mtimeMs,
    ctime: attr.ctimeMs,
    atime: attr.atimeMs ?? attr.mtimeMs,
  });

  /** Hands a reply to fuse-native; a throw from its callback is logged, and nothing is answered twice. */
  function reply(name: string, path: string, fh: number | undefined, cb: Callback, args: unknown[]): void {
    try {
      cb(...args);
    } catch (error) {
      log.error({ err: error, op: name, path, fh }, 'fuse-native callback threw');
    }
  }

  // Runs one operation and answers exactly once. `success` shapes the callback arguments.
  function op<T>(name: string, path: string, fh: number | undefined, run: () => Promise<T>, cb: Callback, success: (value: T) => unknown[]): void {
    poll.arrived();
    running++;
    const started = process.hrtime.bigint();
    const settle = async (): Promise<{ args: unknown[]; error?: unknown }> => {
      try {
        // Inside the try: a throw while shaping the reply (a bad attr, a bad list) is answered too.
        return { args: success(await run()) };
      } catch (error) {
        return { args: [toErrno(error, log, { op: name, path, fh })], error };
      }
    };
    settle()
      .then(
        ({ args, error }) => {
          reply(name, path, fh, cb, args);
          const took = process.hrtime.bigint() - started;
          if (traceOn)
            log.trace({
              op: name,
              path,
              fh,
              errno: error === undefined ? 0 : args[0],
              us: Number(took / 1000n),
              ...(error instanceof Error ? { message: error.message } : {}),
            });
          poll.replied(took);
        },
        () => reply(name, path, fh, cb, [-EIO]),
      ) // toErrno itself failed (its logger): still one answer
      .finally(() => running--);
  }
  const ok = (): unknown[] => [0];

  const ops: Record<string, Callback> = {
    getattr: (path: string, cb: Callback) =>
      op(
        'getattr',
        path,
        undefined,
        () => dispatch.getattr(path),
        cb,
        (a) => [0, stat(a)],
      ),
    readdir: (path: string, cb: Callback) =>
      op(
        'readdir',
        path,
        undefined,
        () => dispatch.readdir(path),
        cb,
        (names) => [0, ['.', '..', ...names]],
      ),
    open: (path: string, flags: number, cb: Callback) =>
      op(
        'open',
        path,
        undefined,
        async () => handles.add(await dispatch.open(path, flags)),
        cb,
        (fh) => [0, fh],
      ),
    read: (path: string, fh: number, buffer: Buffer, length: number, position: number, cb: Callback) =>
      op(
        'read',
        path,
        fh,
        async () => {
          const handle = handles.get(fh);
          if (!handle.read) throw new FsError('EBADF', `${path}: not open for reading`);
          const data = await handle.read(position, length);
          return data.copy(buffer, 0, 0, Math.min(length, data.length));
        },
        cb,
        (n) => [n],
      ),
    write: (path: string, fh: number, buffer: Buffer, length: number, position: number, cb: Callback) =>
      op(
        'write',
        path,
        fh,
        async () => {
          const handle = handles.get(fh);
          if (!handle.write) throw new FsError('EBADF', `${path}: not open for writing`);
          // fuse-native reuses its buffer after the callback: copy what we keep.
          return handle.write(position, Buffer.from(buffer.subarray(0, length)));
        },
        cb,
        (n) => [n],
      ),
    flush: (path: string, fh: number, cb: Callback) => op('flush', path, fh, async () => handles.get(fh).flush?.(), cb, ok),
    // fuse-native passes datasync before the handle (a 0/1 number).
    fsync: (path: string, datasync: number, fh: number, cb: Callback) => op('fsync', path, fh, async () => handles.get(fh).fsync?.(Boolean(datasync)), cb, ok),
    // Directories are not opened here (no opendir), so fuse-native's handle is always 0: by path.
    fsyncdir: (path: string, datasync: number, _fh: number, cb: Callback) =>
      op('fsyncdir', path, undefined, () => dispatch.fsyncdir(path, Boolean(datasync)), cb, ok),
    release: (path: string, fh: number, cb: Callback) => {
      // The kernel does not wait for release: answer now, finish in the background.
      poll.arrived();
      const handle = handles.remove(fh);
      reply('release', path, fh, cb, [0]);
      poll.replied();
      running++;
      Promise.resolve()
        .then(() => handle?.release?.())
        .catch((error: unknown) => toErrno(error, log, { op: 'release', path, fh }))
        .finally(() => running--);
    },
    releasedir: (path: string, fh: number, cb: Callback) => reply('releasedir', path, fh, cb, [0]),
    truncate: (path: string, size: number, cb: Callback) => op('truncate', path, undefined, () => dispatch.truncate(path, size), cb, ok),
    ftruncate: (path: string, fh: number, size: number, cb: Callback) =>
      op(
        'ftruncate',
        path,
        fh,
        async () => {
          const handle = handles.get(fh);
          return handle.truncate ? handle.truncate(size) : dispatch.truncate(path, size);
        },
        cb,
        ok,
      ),
    // fuse-native 2.2.6 (fuse-native.c) passes the access time as both times: an export gets atime twice.
    utimens: (path: string, atime: number, mtime: number, cb: Callback) => op('utimens', path, undefined, () => dispatch.utimens(path, atime, mtime), cb, ok),
    chmod: (path: string, mode: number, cb: Callback) => op('chmod', path, undefined, () => dispatch.chmod(path, mode), cb, ok),
    chown: (path: string, owner: number, group: number, cb: Callback) =>
      op('chown', path, undefined, () => dispatch.chown(path, (owner === UNCHANGED || owner === uid) && (group === UNCHANGED || group === gid)), cb, ok),
    readlink: (path: string, cb: Callback) =>
      op(
        'readlink',
        path,
        undefined,
        () => dispatch.readlink(path),
        cb,
        (target) => [0, target],
      ),
    mkdir: (path: string, mode: number, cb: Callback) => op('mkdir', path, undefined, () => dispatch.mkdir(path, mode), cb, ok),
    unlink: (path: string, cb: Callback) => op('unlink', path, undefined, () => dispatch.unlink(path), cb, ok),
    rmdir: (path: string, cb: Callback) => op('rmdir', path, undefined, () => dispatch.rmdir(path), cb, ok),
    rename: (from: string, to: string, cb: Callback) => op('rename', from, undefined, () => dispatch.rename(from, to), cb, ok),
    symlink: (target: string, path: string, cb: Callback) => op('symlink', path, undefined, () => dispatch.symlink(target, path), cb, ok),
    link: (_from: string, path: string, cb: Callback) => op('link', path, undefined, () => dispatch.link(path), cb, ok),
    // No `create` in this table: fuse-native would call it without the open flags (O_APPEND lost),
    // so the kernel makes files with mknod and then opens them with the caller's flags.
    mknod: (path: string, mode: number, _dev: number, cb: Callback) => op('mknod', path, undefined, () => dispatch.mknod(path, mode), cb, ok),
    statfs: (path: string, cb: Callback) =>
      op(
        'statfs',
        path,
        undefined,
        () => dispatch.statfs(path),
        cb,
        (stats) => [0, statfsReply(stats)],
      ),
  };
  return {
    ops,
    handles,
    get busy() {
      return handles.size + running;
    },
  };
}
