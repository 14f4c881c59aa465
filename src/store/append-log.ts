import { open, stat, type FileHandle } from 'node:fs/promises';
import { writeAll } from './atomic-file.js';

/** How often `probe` writes at most. */
export const PROBE_EVERY_MS = 1_000;
/** A probe writes at most this much, whatever the failed write had. */
const PROBE_MAX_BYTES = 1 << 20;
const NEWLINE = 0x0a;

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
  /** The flush waiting for `#flushing` to take the next batch, shared by those who flush meanwhile. */
  #nextFlush: Promise<void> | undefined;
  #commit: CommitBatch<T>;
  #beforeBatch: (() => void) | undefined;
  #damage: Error | undefined;
  /** Why the last write failed; undefined once one succeeds (or a probe does). */
  #failure: Error | undefined;
  /** How many bytes that write had: a probe writes as many. */
  #failedBytes = 0;
  #probedMs = 0;
  #closed = false;

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
  flush(): Promise<void> {
    if (!this.#flushing) return this.#commitQueued();
    // One waiter for the next batch, however many writers queued meanwhile.
    this.#nextFlush ??= this.#commitAfterThis();
    return this.#nextFlush;
  }

  async #commitAfterThis(): Promise<void> {
    // The batch before failing is its own writers' error, not ours: this one is still to be written
    // (thrown here, what was just queued would wait for a flush that never comes).
    while (this.#flushing) await this.#flushing.catch(() => undefined);
    // Those who flush from now on are in a later batch than the one taken here.
    this.#nextFlush = undefined;
    return this.#commitQueued();
  }

  /** `running`: a batch still answering its writers (commitQueuedNow); this one settles after it too. */
  #commitQueued(running?: Promise<void>): Promise<void> {
    this.#beforeBatch?.();
    if (this.#pending.length === 0) return Promise.resolve();
    const batch = this.#pending;
    this.#pending = [];
    const commit = this.#commit(batch);
    return this.#committing(running ? Promise.all([running, commit]).then(() => undefined) : commit);
  }

  /**
   * From inside `commit`, once its batch is durable and before it answers its writers: commits what
   * is queued now, so that the next batch goes to the disk while this one's writers are answered
   * (the fan-out of the event log). Only for an owner whose commit answers its writers synchronously
   * after its write (so batches are answered in order), touches the file no more in that commit, and
   * rejects never: nobody awaits a batch started here.
   */
  commitQueuedNow(): void {
    // A flush after it waits for both batches. Its writers hear from the owner's commit; a rejection
    // here would have nobody to go to.
    this.#commitQueued(this.#flushing).catch(() => undefined);
  }

  /** `commit` is the file's until it settles (unless a batch started meanwhile took over). */
  #committing(commit: Promise<void>): Promise<void> {
    const flushing: Promise<void> = commit.finally(() => {
      if (this.#flushing === flushing) this.#flushing = undefined;
    });
    this.#flushing = flushing;
    return flushing;
  }

  /**
   * Undefined while appends work; else why they fail: what a failed write left past the last
   * durable length could not be cut off (each later write tries again first).
   */
  get damage(): Error | undefined {
    return this.#damage;
  }

  /**
   * Undefined while the last write was made durable; else why it was not (the damage first). A
   * failure cut cleanly off the file still counts: the next change may meet the same full disk.
   */
  get failure(): Error | undefined {
    return this.#damage ?? this.#failure;
  }

  /**
   * Appends `parts` and fdatasyncs; the length grows only once they are durable. For `commit`. A
   * write that fails is cut off the file, durably, before the error is thrown: the next line must
   * not be glued onto a partial one, and no later start may read lines whose writers were told
   * they failed.
   */
  async write(parts: Iterable<Buffer>): Promise<void> {
    if (this.#damage) await this.#cutBack();
    let bytes = 0;
    try {
      await writeAll(
        this.#file,
        counted(parts, (n) => (bytes += n)),
      );
      await this.#file.datasync();
    } catch (error) {
      [this.#failure, this.#failedBytes] = [error as Error, bytes];
      await this.#cutBack().catch(() => undefined);
      throw error;
    }
    this.#failure = undefined;
    this.#bytes += bytes;
  }

  /**
   * While the last write failed: writes as many bytes as it had, as blank lines (which the line
   * formats on this, the event log and the state journal, skip: a crash before the cut leaves
   * nothing to misread), makes them durable and cuts them off again; `failure` clears if that
   * worked. So a failure on a disk since freed clears without waiting for a change to be written.
   * Between batches, at most once per PROBE_EVERY_MS.
   */
  async probe(): Promise<void> {
    // Asked at every readiness check: nothing to wait for while writes work.
    if (this.#failure === undefined) return;
    while (this.#flushing) await this.#flushing.catch(() => undefined);
    if (this.#failure === undefined || this.#closed || Date.now() - this.#probedMs < PROBE_EVERY_MS) return;
    this.#probedMs = Date.now();
    return this.#committing(this.#probeNow());
  }

  async #probeNow(): Promise<void> {
    try {
      if (this.#damage) await this.#cutBack();
      await writeAll(this.#file, Buffer.alloc(Math.min(Math.max(this.#failedBytes, 1), PROBE_MAX_BYTES), NEWLINE));
      await this.#file.datasync();
      await this.#cutBack();
      this.#failure = undefined;
    } catch (error) {
      this.#failure = error as Error;
      await this.#cutBack().catch(() => undefined);
    }
  }

  async #cutBack(): Promise<void> {
    try {
      await this.#file.truncate(this.#bytes);
      await this.#file.datasync();
      this.#damage = undefined;
    } catch (error) {
      this.#damage = new Error(`a failed append could not be cut off ${this.path} at byte ${this.#bytes}: ${(error as Error).message}`, { cause: error });
      throw this.#damage;
    }
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
      // No probe starts from now on, and one running (a /readyz check during the stop) ends before the file does.
      this.#closed = true;
      while (this.#flushing) await this.#flushing.catch(() => undefined);
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
