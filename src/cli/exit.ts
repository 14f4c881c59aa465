import { ProtocolError } from '../protocol/errors.js';
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
 * What a failed command says after `acheron: `: a refusal from the control server keeps its wire code,
 * so scripts can tell forbidden from not_found, and names the flags that fix it where the server
 * names protocol fields (flag-terms.ts). The same from a daemon that failed before it was live.
 */
export function failureText(error: unknown): string {
  return error instanceof ProtocolError ? `${error.code}: ${inFlagTerms(error.message)}` : (error as Error).message;
}
