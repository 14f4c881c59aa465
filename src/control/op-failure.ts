import { errnoNameOf } from '../errors/errno.js';
import { ProtocolError } from '../protocol/errors.js';

/**
 * The reply to an op that failed with something other than a refusal: a file of the store that could
 * not be read or written (a system error: ENOSPC, EIO, …) is named with its errno, as the store's
 * messages name the file (`state journal <path>: ENOSPC: …`, `namedError`), by its name alone: the
 * client may be any principal, and the data dir's layout is the server's (its log has the paths);
 * anything else is a bug, whose details stay in the server log.
 */
export function opFailure(error: unknown): ProtocolError {
  if (error instanceof ProtocolError) return error;
  if (errnoNameOf(error) === undefined) return new ProtocolError('unavailable', 'internal error; see the server log');
  const named = (error as Error).message.replace(/(?:\/[^\s/:'"]+)+\/(?=[^\s/:'"]+)/g, '');
  return new ProtocolError('unavailable', `the control server could not read or write its files: ${named}`, { cause: error });
}
