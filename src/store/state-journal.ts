import { truncate } from 'node:fs/promises';
import { makeDirectory } from './make-directory.js';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { AppendLog } from './append-log.js';
import { closeAndThrow } from './closing.js';
import { setAside } from './set-aside.js';
import { removeStaleTemps, writeFileAtomic } from './atomic-file.js';
import { namedError } from './named-error.js';
import { RepeatedFailure } from './repeated-failure.js';
import { deletedLine, encoded, readJournal, recordLine, type JsonText, type JsonValue, type RestoredState } from './journal-records.js';

export type StateSync = 'always' | 'batch';

/** Batch mode: at most this much acknowledged state can be lost in a crash (Redis `everysec`, tighter). */
export const BATCH_SYNC_MS = 100;

/** `always`: after a rewrite of what a failed write left out fails, the next try waits this long. */
export const MISSING_RETRY_MS = 1000;

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/** One line waiting to be written, and who waits for it to be durable (`always`, or `whenDurable`'s mark without a line). */
interface Pending {
  line?: string | readonly Buffer[];
  waiter?: Waiter;
}

/**
 * A durable key → JSON value map (SPEC §5): every change is appended as one line and fdatasync'd
 * with group commit (one sync for all lines waiting); the file is compacted by writing a snapshot
 * to a temp file, fsync, rename. A torn last line is skipped; any other bad line sets the whole
 * file aside (renamed, never deleted) after restoring every line that still parses.
 */
export class StateJournal {
  readonly path: string;
  #file!: AppendLog<Pending>;
  #sync: StateSync;
  #log: Logger;
  #latest = new Map<string, JsonValue>();
  /** `batch`: keys set by setLatest since the last write, each serialized when the batch is written. */
  #deferred = new Map<string, () => unknown>();
  #timer: NodeJS.Timeout | undefined;
  /** `batch`: what `whenDurable` gives until the batch it waits for is taken, shared by its callers. */
  #nextBatchDurable: Promise<void> | undefined;
  #compactAtBytes: number;
  #closed = false;
  /**
   * A write failed: lines of changes already taken in (#latest; in `batch` mode already acknowledged)
   * are missing from the file, so a write that succeeds compacts, writing them all again (when: below).
   */
  #missing = false;
  /**
   * `always`: when a write that succeeds next tries that rewrite. The lines missing were refused to
   * their writers, and every later change is appended and synced whole, so nothing acknowledged
   * waits for it: a rewrite (the whole file) at every write while the disk stays too full for one
   * would only multiply the writes. `batch` tries at every batch: what is missing was acknowledged.
   */
  #missingRetryAtMs = 0;
  /** `batch` writes nobody waits for: on a full disk each failed (every 100 ms while changes come), logged once a minute. */
  readonly #batchFailure: RepeatedFailure;

  private constructor(path: string, sync: StateSync, log: Logger, compactAtBytes: number) {
    this.path = path;
    this.#sync = sync;
    this.#log = log;
    this.#batchFailure = new RepeatedFailure(log, 'state journal: write failed', 'state journal: writes work again');
    this.#compactAtBytes = compactAtBytes;
  }

  static async open(
    path: string,
    options: { sync: StateSync; log: Logger; compactAtBytes?: number },
  ): Promise<{ journal: StateJournal; restored: RestoredState }> {
    try {
      await makeDirectory(dirname(path));
      // What a compaction killed mid-write left (the node's runtime journal, the control server's journals).
      await removeStaleTemps(path, options.log);
      const restored = await readJournal(path);
      if (restored.problems.length > 0 && restored.setAside) restored.problems.push(`set the damaged file aside as ${await setAside(path)}`);
      // A torn tail (a crash, or a write the disk had no room for) is cut off: that needs no space.
      if (restored.tornAt !== undefined && !restored.setAside) await truncate(path, restored.tornAt);
      const journal = new StateJournal(path, options.sync, options.log, options.compactAtBytes ?? 4 << 20);
      journal.#file = await AppendLog.open<Pending>(
        path,
        (batch) => journal.#write(batch),
        () => journal.#takeDeferred(),
      );
      for (const [key, value] of restored.values) journal.#latest.set(key, JSON.stringify(value));
      // A file set aside starts over as a clean snapshot of what was restored.
      if (restored.setAside) await journal.compact().catch((error: unknown) => closeAndThrow(journal.#file, error));
      for (const problem of restored.problems) options.log.error({ path }, `state journal: ${problem}`);
      return { journal, restored: { values: restored.values, problems: restored.problems } };
    } catch (error) {
      // Whatever stops the start names the journal.
      throw inJournal(path, error);
    }
  }

  /** Stores `value`; resolves once durable (`always`) or at once (`batch`, synced within 100 ms). */
  set(key: string, value: unknown): Promise<void> {
    return this.setJson(key, JSON.stringify(value));
  }

  /**
   * Stores what `current()` returns. With `batch` it is called when the batch is written, once
   * however often the key was set since the last one: a key that changes with every invocation
   * (a service's state) is serialized once per batch, not once per change. With `always`, now.
   */
  setLatest(key: string, current: () => unknown): Promise<void> {
    if (this.#sync === 'always') return this.set(key, current());
    if (this.#closed) return Promise.reject(new Error(`state journal ${this.path} is closed`));
    this.#deferred.set(key, current);
    this.#scheduleBatch();
    return Promise.resolve();
  }

  /** `set` for a value the caller has already serialized, or renders itself (see JsonValue). */
  setJson(key: string, json: JsonValue): Promise<void> {
    // A later value wins over a deferred one, which would otherwise be written after it.
    this.#deferred.delete(key);
    this.#latest.set(key, json);
    // The record embeds the value's JSON as is: one serialization per set, not two.
    return this.#append(recordLine(key, json));
  }

  /**
   * The value `key` holds, given again as a renderer (see JsonValue): after a restart the journal
   * would otherwise keep a copy of what the caller holds. Nothing is written.
   */
  keepJson(key: string, render: () => JsonText): void {
    if (this.#latest.has(key) && !this.#deferred.has(key)) this.#latest.set(key, render);
  }

  delete(key: string): Promise<void> {
    this.#deferred.delete(key);
    if (!this.#latest.delete(key)) return Promise.resolve();
    return this.#append(deletedLine(key));
  }

  #append(line: string | readonly Buffer[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`state journal ${this.path} is closed`));
    if (this.#sync === 'batch') {
      this.#file.queue({ line });
      this.#scheduleBatch();
      return Promise.resolve();
    }
    const durable = new Promise<void>((resolve, reject) => this.#file.queue({ line, waiter: { resolve, reject } }));
    void this.flush().catch(() => undefined);
    return durable;
  }

  /**
   * Resolves once everything set before the call is durable; rejects as that write does. `batch`:
   * with the batch that writes it (within BATCH_SYNC_MS), under its one sync, so a caller that must
   * not publish a value before it is on disk waits without a sync of its own.
   */
  whenDurable(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`state journal ${this.path} is closed`));
    if (this.#sync === 'always') return this.flush();
    this.#nextBatchDurable ??= new Promise<void>((resolve, reject) => this.#file.queue({ waiter: { resolve, reject } }));
    this.#scheduleBatch();
    return this.#nextBatchDurable;
  }

  #scheduleBatch(): void {
    this.#timer ??= setTimeout(
      () =>
        void this.flush().then(
          () => this.#batchFailure.succeeded(),
          (error: unknown) => this.#batchFailure.failed(error, { path: this.path }),
        ),
      BATCH_SYNC_MS,
    );
  }

  /** Writes and syncs everything pending; concurrent callers share one sync (group commit). */
  flush(): Promise<void> {
    return this.#file.flush();
  }

  /** The deferred keys join the batch about to be written; a later `whenDurable` waits for the next one. */
  #takeDeferred(): void {
    this.#nextBatchDurable = undefined;
    for (const [key, current] of this.#deferred) {
      const json = JSON.stringify(current());
      this.#latest.set(key, json);
      this.#file.queue({ line: recordLine(key, json) });
    }
    this.#deferred.clear();
  }

  async #write(batch: Pending[]): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      // Encoded a group at a time as they are written: a big batch never exists whole as bytes.
      await this.#file.write(encoded(batch.flatMap((p) => (p.line === undefined ? [] : [p.line]))));
    } catch (error) {
      // The first rewrite comes with the next write that succeeds.
      if (!this.#missing) this.#missingRetryAtMs = 0;
      this.#missing = true;
      const failure = inJournal(this.path, error);
      for (const { waiter } of batch) waiter?.reject(failure);
      throw failure;
    }
    for (const { waiter } of batch) waiter?.resolve();
    // Compaction runs inside the same critical section, so no write lands on a renamed file.
    if (this.#rewriteDue() || this.#file.bytes > this.#compactAtBytes) await this.#compactOrSay();
  }

  #rewriteDue(): boolean {
    return this.#missing && (this.#sync === 'batch' || Date.now() >= this.#missingRetryAtMs);
  }

  /** Compacts after a write; a failure is logged, not thrown (the batch is durable), and tried again later. */
  async #compactOrSay(): Promise<void> {
    try {
      await this.compact();
      this.#missing = false;
    } catch (error) {
      // Not at every write until the disk has room: when the file has grown by half again.
      this.#compactAtBytes = Math.max(this.#compactAtBytes, Math.ceil(this.#file.bytes * 1.5));
      this.#missingRetryAtMs = Date.now() + MISSING_RETRY_MS;
      this.#log.error({ err: error, path: this.path }, `state journal: compaction failed (${(error as Error).message}); the file grows until it succeeds`);
    }
  }

  /** Rewrites the file as one line per key: temp file, fsync, rename, then fsync the directory. */
  async compact(): Promise<void> {
    // Rendered one record at a time as the file is written.
    const records = this.#latest.entries();
    await writeFileAtomic(
      this.path,
      encoded(
        (function* () {
          for (const [key, value] of records) yield recordLine(key, value);
        })(),
      ),
    );
    await this.#file.reopen();
    this.#compactAtBytes = Math.max(this.#compactAtBytes, this.#file.bytes * 2);
  }

  /**
   * Undefined while the last write was made durable; else why not, naming the file (the control
   * server's /readyz `store` check). After a failed write it first probes whether a write would be
   * now (AppendLog.probe). A rewrite still due (`allDurable`) does not count: appends take changes,
   * and the rewrite, tried with the next write, would only retry a whole copy on a full disk.
   */
  async durabilityProblem(): Promise<string | undefined> {
    await this.#file.probe();
    const failure = this.#file.failure;
    return failure && `the state journal ${this.path} could not make a change durable: ${failure.message}`;
  }

  /**
   * False while changes taken in are missing from the file: a write failed and the compaction that
   * would write them again has not succeeded yet. After `close`, they are lost.
   */
  get allDurable(): boolean {
    return !this.#missing;
  }

  /** Writes what is queued and closes the file, also when that last write fails. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#missing) {
      // A last try at the rewrite, however recent the one that failed: an empty batch carries it.
      this.#missingRetryAtMs = 0;
      this.#file.queue({});
    }
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      await this.#file.close();
    }
  }
}

/** `error` with the journal's path in front of its message (`namedError`). */
function inJournal(path: string, error: unknown): Error {
  return namedError(`state journal ${path}`, error);
}
