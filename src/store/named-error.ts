/**
 * `error` with `what` (a file, a journal) in front of its message and its code (ENOSPC, …) kept: the
 * control server's reply names both (connection.ts), a node's errno is taken from the code.
 */
export function namedError(what: string, error: unknown): Error {
  const { code } = error as NodeJS.ErrnoException;
  return Object.assign(new Error(`${what}: ${(error as Error).message}`, { cause: error }), code === undefined ? {} : { code });
}
