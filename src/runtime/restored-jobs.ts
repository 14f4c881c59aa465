import { INTERRUPTED_ERROR, Job, type JobRecord } from './job.js';
import { outputlessRun } from './run-result.js';
import { countOutcome, recordEnd, type ServiceState } from './service-state.js';

/**
 * How far the journaled service state had counted one job when it was written. A job's records and
 * the state are separate journal lines, and any of them can miss the disk (a full disk fails one
 * write, a later one succeeds); a later state line is the whole live record, so it can count an end
 * whose job line never landed. The job's start number tells which came first.
 */
type Counted = 'nothing' | 'start' | 'end';

function countedOf(state: ServiceState, running: ReadonlySet<string>, record: JobRecord): Counted {
  if (running.has(record.invocationId)) return 'start';
  // A record of an older journal, without a number: a state not listing it as running never counted it.
  if (record.startSeq === undefined) return Job.wasInterrupted(record) ? 'nothing' : 'end';
  return state.startsSeen >= record.startSeq ? 'end' : 'nothing';
}

/** Nobody saw its end: journaled running, or ended as interrupted by an earlier restore. */
const endedUnseen = (record: JobRecord): boolean => Job.wasInterrupted(record) || record.finishedMs === null;

/**
 * Start-up: every job counts once in the state, in `invokes_total` and by its end, whatever subset
 * of its records and of the state lines reached the disk (SPEC §5). What the state has not counted is
 * counted now: a start from the job's record, an end as the record says or, for a run the daemon's
 * death interrupted, as a failure that becomes the last invocation when it is the latest. A job the
 * state counted whole but whose record still says `running` counts nothing more (its record still
 * shows it interrupted). None is running any more. False when nothing was there to settle.
 */
export function countRestored(state: ServiceState, records: readonly JobRecord[], now: number): boolean {
  const running = new Set(state.runningInvocationIds);
  state.runningInvocationIds = [];
  const c = state.counters;
  const sorted = [...records].sort((a, b) => (a.invocationId < b.invocationId ? -1 : 1));
  const known = new Set(sorted.map((record) => record.invocationId));
  // Counted as started, but its record never landed: nobody saw it end either.
  const interrupted = [...running].filter((id) => !known.has(id));
  let settled = interrupted.length > 0;
  for (const record of sorted) {
    const counted = countedOf(state, running, record);
    if (Job.wasInterrupted(record)) settled = true;
    if (counted === 'end') continue;
    settled = true;
    if (counted === 'nothing') {
      c.invokesTotal++;
      if (record.startedMs !== null) c.lastStartedMs = Math.max(c.lastStartedMs ?? 0, record.startedMs);
    }
    if (endedUnseen(record)) interrupted.push(record.invocationId);
    else countEnd(state, record);
  }
  // Every journaled job is counted now: a state written from here on says so.
  state.startsSeen = Math.max(state.startsSeen, ...sorted.map((record) => record.startSeq ?? 0));
  if (interrupted.length > 0) endInterrupted(state, interrupted, now);
  return settled;
}

/** An end the job's record holds but the state missed: counted; the last invocation if none later is. */
function countEnd(state: ServiceState, record: JobRecord): void {
  const outcome = record.state as 'ok' | 'error' | 'timeout' | 'cancelled';
  if (state.last !== null && state.last.invocationId > record.invocationId) {
    countOutcome(state.counters, outcome);
    return;
  }
  const run = {
    ...outputlessRun({ state: outcome, shortMessage: record.error, startedMs: record.startedMs ?? 0, durationMs: record.durationMs ?? 0 }),
    exitCode: record.exitCode,
    signal: record.signal,
  };
  const result = record.resultBase64 === null ? undefined : Buffer.from(record.resultBase64, 'base64');
  const interpreted = { state: outcome, error: record.error, ...(result ? { result } : {}) };
  recordEnd(state, record.invocationId, run, interpreted, record.startedMs !== null, record.finishedMs ?? 0);
}

/** Runs the daemon's death interrupted: failures, and the latest the last invocation (SPEC §5: counted, and shown as interrupted). */
function endInterrupted(state: ServiceState, ids: readonly string[], now: number): void {
  const c = state.counters;
  c.failuresTotal += ids.length;
  c.consecutiveFailures += ids.length;
  c.consecutiveTimeouts = 0;
  const latest = [...ids].sort().pop() as string;
  if (state.last === null || state.last.invocationId < latest) {
    state.last = { invocationId: latest, state: 'error', updatedMs: now, durationMs: null, exitCode: null, signal: null, resultFormat: null };
    state.lastError = INTERRUPTED_ERROR;
    state.lastErrorMs = now;
  }
}
