import { link, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AppendLog } from '../store/append-log.js';
import { syncDir, writeAll } from '../store/atomic-file.js';
import { gzipInBackground } from '../store/gzip-file.js';
import { ARCHIVE, byFileTime, headLine, rotatedName } from './event-log-files.js';

/**
 * Makes everything the log holds up to the returned seq durable elsewhere (the catalog's
 * snapshot), so the log files holding only older events may be archived and pruned.
 */
export type Checkpoint = () => Promise<number>;

export interface RotationOptions {
  dir: string;
  /** The current file. */
  path: string;
  /** Archives kept. */
  archiveKeep: number;
  log: Logger;
}

/**
 * The event log's rotation: the current file is renamed aside and a fresh one started with a
 * `head` line; in the background the catalog checkpoints (snapshot) and the renamed file becomes a
 * gzip archive, one file at a time, the oldest archives pruned.
 */
export class EventLogRotation {
  #options: RotationOptions;
  /** Files a crash left rotated but not archived: archived once there is a checkpoint. */
  #leftovers: string[];
  #checkpoint: Checkpoint | undefined;
  /** The seq the last checkpoint covered. */
  #checkpointed = 0;
  /** Archiving runs one file at a time, behind the appends. */
  #archiving: Promise<void> = Promise.resolve();
  #lastRotationMs = 0;
  /** Aborted when the server stops and waits for the archiving: it then runs at normal priority. */
  #hurry = new AbortController();

  constructor(options: RotationOptions, leftovers: string[]) {
    this.#options = options;
    this.#leftovers = leftovers;
  }

  /** Registers the catalog's checkpoint, run before a rotated file is archived; files a crash left rotated are archived now (`head`: the log's). */
  setCheckpoint(checkpoint: Checkpoint, head: number): void {
    this.#checkpoint = checkpoint;
    for (const path of this.#leftovers) this.#queueArchive(path, head);
    this.#leftovers = [];
  }

  /**
   * The current file gets a second name (the rotated file) and a fresh file takes its place in one
   * rename, so the log file never goes missing; the new names are made durable before any event
   * goes into the fresh file. The slow part, checkpoint and gzip, runs in the background.
   */
  async rotate<T>(file: AppendLog<T>, head: number): Promise<void> {
    const { dir, path, log } = this.#options;
    this.#lastRotationMs = Math.max(Date.now(), this.#lastRotationMs + 1);
    const rotated = join(dir, rotatedName(this.#lastRotationMs));
    const temp = `${path}.new`;
    const line = headLine(head);
    let fresh: FileHandle | undefined;
    let linked = false;
    try {
      fresh = await open(temp, 'w', 0o600);
      await writeAll(fresh, line);
      await link(path, rotated);
      linked = true;
      await rename(temp, path);
    } catch (error) {
      // The current file is still the log (and a crash here leaves at worst events under two names, read once).
      await fresh?.close();
      await rm(temp, { force: true });
      if (linked) await rm(rotated, { force: true });
      log.error({ err: error }, 'event log: rotation failed; appending to the current file');
      return;
    }
    await file.replace(fresh, line.length);
    // Swapped: from here the fresh file is the log, whatever happens. No event is acknowledged in it before the names are durable.
    await syncDir(dir).catch((error: unknown) => log.error({ err: error }, 'event log: could not sync the directory after a rotation'));
    this.#queueArchive(rotated, head);
  }

  /** Resolves once the archiving queued so far is over. */
  idle(): Promise<void> {
    return this.#archiving;
  }

  /** The server stops and will wait for the archiving: it is not background work any more. */
  hurry(): void {
    this.#hurry.abort();
  }

  #queueArchive(rotated: string, lastSeq: number): void {
    this.#archiving = this.#archiving
      .then(() => this.#archive(rotated, lastSeq))
      .catch((error: unknown) => {
        this.#options.log.error({ err: error, rotated }, 'event log: archiving failed; the rotated file stays and is archived at the next start');
      });
  }

  /** Checkpoint first: only then are the rotated file's events not needed to rebuild the catalog. */
  async #archive(rotated: string, lastSeq: number): Promise<void> {
    if (this.#checkpoint && this.#checkpointed < lastSeq) this.#checkpointed = Math.max(this.#checkpointed, await this.#checkpoint());
    const { dir, archiveKeep } = this.#options;
    const archive = `${rotated}.gz`;
    // Compressed at the lowest priority, outside this process: serving watchers and nodes comes first.
    const temp = `${archive}.tmp`;
    await gzipInBackground(rotated, temp, this.#hurry.signal);
    await rename(temp, archive);
    await syncDir(dir);
    const archives = (await readdir(dir)).filter((n) => ARCHIVE.test(n)).sort(byFileTime);
    for (const old of archives.slice(0, Math.max(0, archives.length - archiveKeep))) await rm(join(dir, old), { force: true });
    // Last: a rotated file gone means its archiving is over, pruning included.
    await rm(rotated, { force: true });
    this.#options.log.info({ archive, kept: Math.min(archives.length, archiveKeep) }, 'event log rotated');
  }
}
