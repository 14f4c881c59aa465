/** Something that holds files, sockets or watches until closed. */
export interface Closable {
  close(): Promise<void>;
}

/** For an owner whose set-up failed after `part` was opened: it is closed (its own failure aside), the error goes on. */
export async function closeAndThrow(part: Closable, error: unknown): Promise<never> {
  await part.close().catch(() => undefined);
  throw error;
}

/**
 * Closes every part in order, each also when one before it failed (one failure must not leave the
 * rest open); then throws the first failure, if any.
 */
export async function closeAll(parts: Iterable<Closable>): Promise<void> {
  let failure: { error: unknown } | undefined;
  for (const part of parts) {
    try {
      await part.close();
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure) throw failure.error;
}

/** What a set-up has opened so far: closed in reverse order, the last opened first. */
export class OpenedParts implements Closable {
  #parts: Closable[] = [];

  keep<T extends Closable>(part: T): T {
    this.#parts.push(part);
    return part;
  }

  close(): Promise<void> {
    return closeAll([...this.#parts].reverse());
  }
}
