/**
 * Errno names, never numbers: the same names travel over the relay (SPEC §9) and are turned
 * into numbers in exactly one place, `src/fuse/errno.ts`.
 */
export const ERRNO_NAMES = [
  'ENOENT', 'EACCES', 'EPERM', 'EINVAL', 'EFBIG', 'EAGAIN', 'ETIMEDOUT', 'EROFS', 'ENOTDIR',
  'EISDIR', 'ENOTCONN', 'EHOSTUNREACH', 'EIO', 'EEXIST', 'ENOTEMPTY', 'EXDEV', 'ENAMETOOLONG',
  'EBADF', 'ENOSPC', 'ELOOP',
] as const;

export type ErrnoName = (typeof ERRNO_NAMES)[number];

const KNOWN = new Set<string>(ERRNO_NAMES);

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

/** The errno name an error stands for, or undefined when it is not a known condition (a bug). */
export function errnoNameOf(error: unknown): ErrnoName | undefined {
  if (error instanceof FsError) return error.errno;
  const code = (error as { code?: unknown } | null)?.code;
  return isErrnoName(code) ? code : undefined;
}
