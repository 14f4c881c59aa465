import { realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { JobRecord } from '../runtime/job.js';
import type { Persist } from '../runtime/job-table.js';
import type { StoredServiceState } from '../runtime/service-state.js';
import { removeStaleTemps } from '../store/atomic-file.js';
import { closeAndThrow } from '../store/closing.js';
import { makeDirectory, namingOption } from '../store/make-directory.js';
import { PidLock, pidLockPath } from '../store/pid-lock.js';
import { StateJournal, type StateSync } from '../store/state-journal.js';

/** What the journal holds of one service: its state (absent when none was written yet) and its jobs. */
export interface RestoredService {
  state?: StoredServiceState;
  jobs: JobRecord[];
}

/**
 * The runtime journal (`<state-file>.runtime-services.json`): every change of a service's runtime
 * becomes a key (`service/<id>`, `job/<id>/<invocation_id>`) in a StateJournal, and at start-up
 * each runtime gets back what was journaled for it. The file is ours, but a crash or a hand edit can
 * damage it: a value that does not fit is reported and skipped, never trusted. It is ours alone: the
 * state file's pid lock is held from before the journal is read until it is closed.
 */
export class RuntimeJournal {
  #journal: StateJournal;
  #lock: PidLock;
  #restored: Map<string, RestoredService>;
  #log: Logger;

  private constructor(journal: StateJournal, lock: PidLock, restored: Map<string, RestoredService>, log: Logger) {
    this.#journal = journal;
    this.#lock = lock;
    this.#restored = restored;
    this.#log = log;
  }

  /** Takes the state file's lock (a live daemon using it is an error naming it), then opens its journal. */
  static async open(stateFile: string, sync: StateSync, log: Logger): Promise<RuntimeJournal> {
    const lock = await lockStateFile(stateFile);
    // The state file itself (the credentials a join saved) is written alike; its journal sweeps its own.
    await removeStaleTemps(stateFile, log);
    const path = `${stateFile}.runtime-services.json`;
    const { journal, restored } = await StateJournal.open(path, { sync, log: log.child({ component: 'journal' }) }).catch((error: unknown) =>
      closeAndThrow({ close: () => lock.release() }, error),
    );
    const grouped = groupRestored(restored.values);
    for (const problem of grouped.problems) log.error({ path: journal.path }, `state journal: ${problem}`);
    return new RuntimeJournal(journal, lock, grouped.services, log);
  }

  /** What was journaled for `serviceId`, handed out once (to the runtime built for it at start-up). */
  takeRestored(serviceId: string): RestoredService | undefined {
    const entry = this.#restored.get(serviceId);
    this.#restored.delete(serviceId);
    return entry;
  }

  /** Where one service's changes go. */
  persistence(serviceId: string): Persist {
    const write: Persist = (change) => {
      switch (change.kind) {
        case 'state':
          // The live record as it is when written: with --state-sync batch once per batch, not per change.
          return this.#journal.setLatest(serviceKey(serviceId), () => change.state);
        case 'job':
          return this.#journal.set(jobKey(serviceId, change.job.invocationId), change.job);
        case 'job-removed':
          return this.#journal.delete(jobKey(serviceId, change.invocationId));
      }
    };
    // Some writes nobody waits for: a failure (a full disk) must still reach the log.
    return (change) =>
      write(change).catch((error: unknown) => {
        this.#log.error({ err: error, service_id: serviceId, change: change.kind }, 'state journal: write failed; this change is not durable');
        throw error;
      });
  }

  /** A service that left (or was replaced): its state and jobs leave the journal. */
  async forget(serviceId: string, invocationIds: readonly string[]): Promise<void> {
    await Promise.all([this.#journal.delete(serviceKey(serviceId)), ...invocationIds.map((id) => this.#journal.delete(jobKey(serviceId, id)))]);
  }

  /** At start-up, once every runtime is built: what no loaded service took is dropped. */
  async forgetUnclaimed(): Promise<void> {
    for (const [serviceId, entry] of this.#restored)
      await this.forget(
        serviceId,
        entry.jobs.map((job) => job.invocationId),
      );
    this.#restored.clear();
  }

  /**
   * Flushes and closes, then gives the state file up. False when acknowledged changes did not reach
   * the file (a full disk): logged, saying what they were, and the stop is not clean (exit 1).
   */
  async close(): Promise<boolean> {
    const failed = await this.#journal.close().then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    const durable = failed === undefined && this.#journal.allDurable;
    if (!durable)
      this.#log.error(
        { err: failed, path: this.#journal.path },
        `state journal: final flush failed (${failed?.message ?? 'changes whose write failed earlier could not be written again'}); ` +
          'changes acknowledged since its last durable write are lost: invocations that ended meanwhile show as interrupted ' +
          'at the next start, and control or config changes are undone',
      );
    await this.#lock.release().catch((error: unknown) => this.#log.error({ err: error, path: this.#lock.path }, 'state file lock: release failed'));
    return durable;
  }
}

/**
 * One daemon per state file: two would append to one journal (each changing the other's state at its
 * next start), and one's compaction (temp file + rename) would leave the other appending to an
 * unlinked file. Keyed by the file's real path, so two spellings of it (relative, through a link)
 * meet the same lock.
 */
async function lockStateFile(stateFile: string): Promise<PidLock> {
  const dir = resolve(dirname(stateFile));
  const path = await makeDirectory(dir)
    .then(() => realpath(dir))
    .then(
      (real) => join(real, basename(stateFile)),
      (error: unknown) => {
        throw namingOption('--state-file', stateFile, error);
      },
    );
  return PidLock.acquire(pidLockPath('state', path), { name: path, heldAs: 'used', otherwise: 'pick another state file (--state-file)' });
}

const serviceKey = (serviceId: string): string => `service/${serviceId}`;
const jobKey = (serviceId: string, invocationId: string): string => `job/${serviceId}/${invocationId}`;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNum = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const isNumOrNull = (v: unknown): boolean => v === null || isNum(v);
const isStrOrNull = (v: unknown): boolean => v === null || typeof v === 'string';

function asStoredServiceState(value: unknown): StoredServiceState | undefined {
  if (!isObject(value)) return undefined;
  const v = value;
  const ok =
    typeof v.enabled === 'boolean' &&
    isStrOrNull(v.disabledReason) &&
    isObject(v.config) &&
    isObject(v.counters) &&
    Object.values(v.counters).every(isNumOrNull) &&
    (v.last === null || isObject(v.last)) &&
    (v.rejection === null || isObject(v.rejection)) &&
    isStrOrNull(v.resultBase64) &&
    isNum(v.resultMs) &&
    typeof v.lastError === 'string' &&
    isNum(v.lastErrorMs) &&
    isNumOrNull(v.cooldownUntilMs) &&
    isStrOrNull(v.lastControlOp) &&
    isNumOrNull(v.lastControlMs) &&
    isNum(v.lastTransitionMs) &&
    isNumOrNull(v.lastHealthyMs) &&
    (v.idleSinceMs === undefined || isNumOrNull(v.idleSinceMs)) &&
    (v.latencyMs === undefined || (Array.isArray(v.latencyMs) && v.latencyMs.every(isNum))) &&
    (v.runningInvocationIds === undefined || (Array.isArray(v.runningInvocationIds) && v.runningInvocationIds.every((id) => typeof id === 'string'))) &&
    (v.startsSeen === undefined || isNum(v.startsSeen));
  return ok ? (value as unknown as StoredServiceState) : undefined;
}

function asJobRecord(value: unknown): JobRecord | undefined {
  if (!isObject(value)) return undefined;
  const v = value;
  const ok =
    typeof v.invocationId === 'string' &&
    typeof v.state === 'string' &&
    typeof v.requestBase64 === 'string' &&
    isNum(v.queuedMs) &&
    isNumOrNull(v.startedMs) &&
    isNumOrNull(v.finishedMs) &&
    isNumOrNull(v.durationMs) &&
    isNumOrNull(v.exitCode) &&
    isStrOrNull(v.signal) &&
    isStrOrNull(v.resultBase64) &&
    typeof v.error === 'string' &&
    typeof v.stderrBase64 === 'string' &&
    (v.startSeq === undefined || isNum(v.startSeq));
  return ok ? (value as unknown as JobRecord) : undefined;
}

/** Groups restored journal entries by service; entries that do not fit are named in `problems`. */
function groupRestored(values: Map<string, unknown>): { services: Map<string, RestoredService>; problems: string[] } {
  const services = new Map<string, RestoredService>();
  const problems: string[] = [];
  const entry = (id: string) => {
    let e = services.get(id);
    if (!e) services.set(id, (e = { jobs: [] }));
    return e;
  };
  for (const [key, value] of values) {
    const [kind, serviceId, invocationId] = key.split('/');
    if (kind === 'service' && serviceId) {
      const state = asStoredServiceState(value);
      if (state) entry(serviceId).state = state;
      else problems.push(`${key}: not a service state; skipped`);
    } else if (kind === 'job' && serviceId && invocationId) {
      const job = asJobRecord(value);
      if (job) entry(serviceId).jobs.push(job);
      else problems.push(`${key}: not a job record; skipped`);
    } else problems.push(`${key}: unknown key; skipped`);
  }
  return { services, problems };
}
