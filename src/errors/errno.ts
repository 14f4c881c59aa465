/**
 * src/errors: the errors every area shares. Errno names and `FsError` (here, with `answerErrno`, the
 * one choice of a name for any failure), the JSON document checks that answer EINVAL
 * (`json-document.ts`, on the prefix scanner `json-prefix.ts`). Imports nothing else from src/, so
 * the runtime, the VFS, the manifest loader and the protocol use them without importing each other.
 *
 * Must not import: cli/, node/, control/, world/, runtime/, manifest/, protocol/, fuse/, vfs/, store/ or
 * async/.
 */
import { constants } from 'node:os';
import type { Logger } from 'pino';

/**
 * Errno names, never numbers: the same names travel over the relay (SPEC §9) and are turned
 * into numbers in exactly one place, `src/fuse/errno.ts`.
 */
export const ERRNO_NAMES = [
  'ENOENT',
  'EACCES',
  'EPERM',
  'EINVAL',
  'EFBIG',
  'EAGAIN',
  'ETIMEDOUT',
  'EROFS',
  'ENOTDIR',
  'EISDIR',
  'ENOTCONN',
  'EHOSTUNREACH',
  'EIO',
  'EEXIST',
  'ENOTEMPTY',
  'EXDEV',
  'ENAMETOOLONG',
  'EBADF',
  'ENOSPC',
  'ELOOP',
  'EILSEQ',
  'ESTALE',
] as const;

export type ErrnoName = (typeof ERRNO_NAMES)[number];

const KNOWN = new Set<string>(ERRNO_NAMES);
/** Every errno name of this OS: a Node system error from an export's file system carries one as `code`. */
const SYSTEM = new Set(Object.keys(constants.errno));

export function isErrnoName(name: unknown): name is ErrnoName {
  return typeof name === 'string' && KNOWN.has(name);
}

/** A filesystem condition we know about: answered with its errno, never with EIO. */
export class FsError extends Error {
  readonly errno: ErrnoName;

  constructor(errno: ErrnoName, message: string, options?: ErrorOptions) {
    super(message, options);
    this.errno = errno;
  }
}
Object.defineProperty(FsError.prototype, 'name', { value: 'FsError', enumerable: false, configurable: true, writable: true });

/**
 * The errno name an error stands for: an FsError's own, or the `code` of a system error (an export's
 * file system answers any errno of the OS, ETXTBSY or EMFILE as well as ENOENT). Undefined for
 * anything else: that is not a known condition but a bug.
 */
export function errnoNameOf(error: unknown): string | undefined {
  if (error instanceof FsError) return error.errno;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SYSTEM.has(code) ? code : undefined;
}

/** An errno name as a metric label: one of this OS's names, else `other` (a peer's answer must not grow the set of series). */
export function errnoLabel(name: string | undefined): string {
  return name !== undefined && SYSTEM.has(name) ? name : 'other';
}

/**
 * The one errno mapping of every place that answers a filesystem operation (the FUSE op wrapper on
 * the node and on WorldFS, the node's relay server), so a failure gets the same name on every mount:
 * a known condition keeps its name; anything else is a bug, logged with its stack at error level and
 * answered EIO.
 */
export function answerErrno(error: unknown, log: Pick<Logger, 'error'>, context: Record<string, unknown>): string {
  const name = errnoNameOf(error);
  if (name !== undefined) return name;
  log.error({ err: error, ...context }, 'filesystem operation failed with an unexpected error (answered EIO)');
  return 'EIO';
}

/**
 * A system error's message without its errno and syscall (`EHOSTUNREACH: host is unreachable, read`,
 * `ENOENT: no such file or directory, open '/x'` → the description alone): also what a peer may be
 * shown, which must not learn the node's real paths (an export's directory).
 */
export function systemErrorText(errno: string, message: string): string {
  const text = message.startsWith(`${errno}: `) ? message.slice(errno.length + 2) : message;
  return text.replace(/, [a-z_]+(?: '.*')?$/, '') || message;
}
