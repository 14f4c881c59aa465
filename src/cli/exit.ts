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
