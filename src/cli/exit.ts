import { ProtocolError } from '../protocol/errors.js';
import { isIdentifier } from '../protocol/identifier.js';
import { inFlagTerms } from './flag-terms.js';

/** CLI exit codes (SPEC §1); docs/errors.md has the table. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Bad usage: exit 2 with one line naming what was wrong. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
  }
}
Object.defineProperty(UsageError.prototype, 'name', { value: 'UsageError', enumerable: false, configurable: true, writable: true });

/**
 * An id given on the command line (`what`: how the command names it, `--node-id`, `node_id`), checked
 * here as the server or daemon would check it: one that is not an identifier is exit 2 naming it,
 * before any connection (the server's `invalid_payload` was exit 1).
 */
export function checkIdentifier(what: string, id: string): void {
  if (!isIdentifier(id)) throw new UsageError(`${what} ${JSON.stringify(id)}: must be 1-128 characters of [A-Za-z0-9._-], not . or ..`);
}

/**
 * What a failed command says after `acheron: `: a refusal from the control server keeps its wire code,
 * so scripts can tell forbidden from not_found, and names the flags that fix it where the server
 * names protocol fields (flag-terms.ts). The same from a daemon that failed before it was live.
 */
export function failureText(error: unknown): string {
  return error instanceof ProtocolError ? `${error.code}: ${inFlagTerms(error.message)}` : (error as Error).message;
}
