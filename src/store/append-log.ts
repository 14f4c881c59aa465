import { open, stat, type FileHandle } from 'node:fs/promises';
import { writeAll } from './atomic-file.js';

/** What the owner does with one batch: encode it, `write` it, answer its writers. */
export type CommitBatch<T> = (batch: T[]) => Promise<void>;

/**
 * An append-only file made durable with group commit (SPEC §5, §6): items queued while a batch is
 * being written and fdatasync'd go into the next batch, under one sync. The owner's `commit` turns
 * a batch into bytes and calls `write`; what the lines mean, and what a failure tells the writers,
 * is the owner's. Batches never overlap, so the owner may swap the file between them (compaction,
 * rotation) from inside `commit`.
 */
export class AppendLog<T> {
  readonly path: string;
  #file: FileHandle;
  /** The file's length up to its last durable write. */
  #bytes: number;
  #pending: T[] = [];
  #flushing: Promise<void> | undefined;
  #commit: CommitBatch<T>;
  #beforeBatch: (() => void) | undefined;

  private constructor(path: string, file: FileHandle, bytes: number, commit: CommitBatch<T>, beforeBatch: (() => void) | undefined) {
    this.path = path;
    this.#file = file;
    this.#bytes = bytes;
    this.#commit = commit;
    this.#beforeBatch = beforeBatch;
  }

  /** `beforeBatch` runs when a batch is about to be taken, after the one before it is done (last-moment items). */
  static async open<T>(path: string, commit: CommitBatch<T>, beforeBatch?: () => void): Promise<AppendLog<T>> {
    const file = await open(path, 'a', 0o600);
    return new AppendLog(path, file, (await file.stat()).size, commit, beforeBatch);
  }

  /** The file's length up to its last durable write. */
  get bytes(): number {
    return this.#bytes;
  }

  get pending(): number {
    return this.#pending.length;
  }

  queue(item: T): void {
    this.#pending.push(item);
  }

  /**
   * Waits for the batch being written, then commits everything queued as one batch; concurrent
   * callers share it (group commit). Rejects as the owner's commit does.
   */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    this.#beforeBatch?.();
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#flushing = this.#commit(batch).finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  /** Appends `parts` and fdatasyncs; the length grows only once they are durable. For `commit`. */
  async write(parts: Iterable<Buffer>): Promise<void> {
    let bytes = 0;
    await writeAll(
      this.#file,
      counted(parts, (n) => (bytes += n)),
    );
    await this.#file.datasync();
    this.#bytes += bytes;
  }

  /** Cuts whatever a failed write left past the last durable length off the file, durably. */
  async cutBack(): Promise<void> {
    await this.#file.truncate(this.#bytes);
    await this.#file.datasync();
  }

  /** Appends go to `file` from now on (a fresh log put in place under the same name), `bytes` long. */
  async replace(file: FileHandle, bytes: number): Promise<void> {
    await this.#file.close();
    this.#file = file;
    this.#bytes = bytes;
  }

  /** Opens the path again (after it was replaced whole by a compacted copy). */
  async reopen(): Promise<void> {
    await this.#file.close();
    this.#file = await open(this.path, 'a', 0o600);
    this.#bytes = (await stat(this.path)).size;
  }

  /** Writes what is queued, then closes the file, also when that last write fails. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.#file.close();
    }
  }
}

function* counted(parts: Iterable<Buffer>, count: (bytes: number) => void): Iterable<Buffer> {
  for (const part of parts) {
    count(part.length);
    yield part;
  }
}
