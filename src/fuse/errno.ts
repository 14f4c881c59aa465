import { constants } from 'node:os';
import type { Logger } from 'pino';
import { answerErrno } from '../errors/errno.js';

/**
 * The only place where errno names become numbers (negative, as fuse-native wants them); which name
 * an error gets is `answerErrno`'s decision, shared with the relay server.
 */
export function toErrno(error: unknown, log: Logger, context: Record<string, unknown>): number {
  // Every name answerErrno gives is one of os.constants.errno.
  const number = (constants.errno as Record<string, number | undefined>)[answerErrno(error, log, context)];
  return -(number ?? constants.errno.EIO);
}
