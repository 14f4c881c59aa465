import { constants } from 'node:os';
import type { Logger } from 'pino';
import { errnoNameOf } from '../vfs/errors.js';

/**
 * The only place where errno names become numbers (negative, as fuse-native wants them). An error
 * that is not a known condition is a bug: logged with its stack and answered EIO, never a crash.
 */
export function toErrno(error: unknown, log: Logger, context: Record<string, unknown>): number {
  // Node system errors from `fs/` exports carry any errno code; pass those through as well.
  const name = errnoNameOf(error) ?? (error as { code?: unknown } | null)?.code;
  const number = typeof name === 'string' ? (constants.errno as Record<string, number>)[name] : undefined;
  if (number !== undefined) return -number;
  log.error({ err: error, ...context }, 'filesystem operation failed with an unexpected error (answered EIO)');
  return -constants.errno.EIO;
}
