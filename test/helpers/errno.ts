import type { Test } from 'tap';
import { errnoNameOf, type ErrnoName } from '../../src/errors/errno.js';

/** Asserts that `promise` rejects with the errno `expected` (an FsError or a Node system error). */
export async function rejectsErrno(t: Test, promise: Promise<unknown> | undefined, expected: ErrnoName, what?: string): Promise<void> {
  const error = await Promise.resolve(promise).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.equal(error === undefined ? 'resolved' : (errnoNameOf(error) ?? String(error)), expected, what ?? `rejects with ${expected}`);
}
