import type { ServiceStatusState } from '../protocol/types.gen.js';
import type { Job } from './job.js';
import { addLatency, LATENCY_SAMPLES } from './latency.js';
import type { RunResult, RunState } from './run-result.js';
import type { RuntimeConfig } from './supervision.js';

/** The last invocation that ran to an end. */
export interface LastInvocation {
  invocationId: string;
  state: RunState;
  updatedMs: number;
  /** null for a run the daemon's death interrupted: nobody saw it end. */
  durationMs: number | null;
  exitCode: number | null;
  signal: string | null;
  resultFormat: 'json' | 'text' | null;
}

/** The last invoke refused before a driver ran (EINVAL, EPERM, EAGAIN, EFBIG...). */
export interface Rejection {
  errno: string;
  message: string;
  ms: number;
}

export interface ServiceCounters {
  invokesTotal: number;
  rejectedTotal: number;
  failuresTotal: number;
  consecutiveFailures: number;
  timeoutsTotal: number;
  consecutiveTimeouts: number;
  cancelledTotal: number;
  restartsTotal: number;
  lastDurationMs: number | null;
  lastStartedMs: number | null;
  lastFinishedMs: number | null;
  lastExitCode: number | null;
}

/**
 * The durable state of one service, one record live and journaled alike: LiveService changes it,
 * the journal writes it as it is, a restart reads it back. Binary results are base64.
 */
export interface ServiceState {
  enabled: boolean;
  disabledReason: string | null;
  config: RuntimeConfig;
  counters: ServiceCounters;
  last: LastInvocation | null;
  rejection: Rejection | null;
  resultBase64: string | null;
  resultMs: number;
  lastError: string;
  lastErrorMs: number;
  cooldownUntilMs: number | null;
  lastControlOp: string | null;
  lastControlMs: number | null;
  lastTransitionMs: number;
  lastHealthyMs: number | null;
  /** Since when status.json shows `idle` after control/enable. */
  idleSinceMs: number | null;
  /** The latency window behind metrics.json's percentiles, oldest first. */
  latencyMs: number[];
  /**
   * Invocations counted in `invokes_total` that have not ended: after a crash, their journaled jobs
   * say `running`, and a restore counts the start of any other such job.
   */
  runningInvocationIds: string[];
  /**
   * Starts numbered so far, never reset: each job keeps its number (`JobRecord.startSeq`), so a
   * restore can tell whether a journaled state was written before that job started (restored-jobs.ts).
   */
  startsSeen: number;
}

/** Added after the first journals were written: absent there. */
type LaterFields = 'idleSinceMs' | 'latencyMs' | 'runningInvocationIds' | 'startsSeen';

/** A ServiceState as a journal holds it (shape-checked by the node when read back). */
export type StoredServiceState = Omit<ServiceState, LaterFields> & Partial<Pick<ServiceState, LaterFields>>;

type DeepReadonly<T> =
  T extends ReadonlyArray<infer U> ? ReadonlyArray<DeepReadonly<U>> : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** What readers get: renderers, the journal. */
export type ServiceStateView = DeepReadonly<ServiceState>;

export const newCounters = (): ServiceCounters => ({
  invokesTotal: 0,
  rejectedTotal: 0,
  failuresTotal: 0,
  consecutiveFailures: 0,
  timeoutsTotal: 0,
  consecutiveTimeouts: 0,
  cancelledTotal: 0,
  restartsTotal: 0,
  lastDurationMs: null,
  lastStartedMs: null,
  lastFinishedMs: null,
  lastExitCode: null,
});

/** A new service: enabled, idle, online since `now`. */
export function newServiceState(now: number): ServiceState {
  return {
    enabled: true,
    disabledReason: null,
    config: {},
    counters: newCounters(),
    last: null,
    rejection: null,
    resultBase64: null,
    resultMs: now,
    lastError: '',
    lastErrorMs: now,
    cooldownUntilMs: null,
    lastControlOp: null,
    lastControlMs: null,
    lastTransitionMs: now,
    lastHealthyMs: now,
    idleSinceMs: null,
    latencyMs: [],
    runningInvocationIds: [],
    startsSeen: 0,
  };
}

/** A journaled state as the live record: fields of older journals filled in, nothing else taken. */
export function stateFromStored(stored: StoredServiceState): ServiceState {
  return {
    enabled: stored.enabled,
    disabledReason: stored.disabledReason,
    config: stored.config,
    counters: { ...newCounters(), ...stored.counters },
    last: stored.last,
    rejection: stored.rejection,
    resultBase64: stored.resultBase64,
    resultMs: stored.resultMs,
    lastError: stored.lastError,
    lastErrorMs: stored.lastErrorMs,
    cooldownUntilMs: stored.cooldownUntilMs,
    lastControlOp: stored.lastControlOp,
    lastControlMs: stored.lastControlMs,
    lastTransitionMs: stored.lastTransitionMs,
    lastHealthyMs: stored.lastHealthyMs,
    idleSinceMs: stored.idleSinceMs ?? null,
    latencyMs: (stored.latencyMs ?? []).slice(-LATENCY_SAMPLES),
    runningInvocationIds: [...(stored.runningInvocationIds ?? [])],
    startsSeen: stored.startsSeen ?? 0,
  };
}

/** A job has started: counted (its end will say how it went), and running until then. */
export function recordStart(state: ServiceState, job: Job): void {
  job.numberStart(++state.startsSeen);
  state.counters.invokesTotal++;
  state.counters.lastStartedMs = job.progress.startedMs;
  state.runningInvocationIds.push(job.invocationId);
}

/** A run's end as the adapter read it. */
export interface Interpreted {
  state: RunState;
  result?: Buffer;
  error?: string;
}

/**
 * What a run's end does to the record: the result (an empty one reads `{}`) or the last error (one
 * line ending in a newline), the counters, and for a run that started the last invocation and the
 * latency window. Returns what the writer and the job get, and whether it counts as a failure.
 */
export function recordEnd(
  state: ServiceState,
  invocationId: string,
  run: RunResult,
  interpreted: Interpreted,
  started: boolean,
  now: number,
): { result?: Buffer; error?: string; failed: boolean } {
  const c = state.counters;
  let result: Buffer | undefined;
  let error: string | undefined;
  if (interpreted.state === 'ok') {
    const raw = interpreted.result ?? Buffer.alloc(0);
    result = raw.toString('utf8').trim() === '' ? Buffer.from('{}\n') : raw;
    Object.assign(state, { resultBase64: result.toString('base64'), resultMs: now, lastError: '', lastErrorMs: now });
  } else {
    error = interpreted.error ?? run.shortMessage;
    if (!error.endsWith('\n')) error += '\n';
    // A call cancelled before it started leaves the service's documents as they were: status.json
    // still shows the last run, and last_error.txt must not name an outcome status.json does not.
    if (started || interpreted.state !== 'cancelled') Object.assign(state, { lastError: error, lastErrorMs: now });
  }
  const failed = countOutcome(c, interpreted.state);
  if (started) {
    Object.assign(c, { lastDurationMs: run.durationMs, lastFinishedMs: now, lastExitCode: run.exitCode });
    addLatency(state.latencyMs, run.durationMs);
    const resultFormat = result ? (isJson(result) ? 'json' : 'text') : null;
    state.last = {
      invocationId,
      state: interpreted.state,
      updatedMs: now,
      durationMs: run.durationMs,
      exitCode: run.exitCode,
      signal: run.signal,
      resultFormat,
    };
    state.runningInvocationIds = state.runningInvocationIds.filter((id) => id !== invocationId);
  }
  return { ...(result ? { result } : {}), ...(error !== undefined ? { error } : {}), failed };
}

/** The counters a run's end moves; true when it counts as a failure. */
export function countOutcome(c: ServiceCounters, outcome: RunState): boolean {
  if (outcome === 'ok') {
    c.consecutiveFailures = 0;
    c.consecutiveTimeouts = 0;
    return false;
  }
  if (outcome === 'cancelled') {
    c.cancelledTotal++;
    return false;
  }
  c.failuresTotal++;
  c.consecutiveFailures++;
  if (outcome === 'timeout') {
    c.timeoutsTotal++;
    c.consecutiveTimeouts++;
  } else c.consecutiveTimeouts = 0;
  return true;
}

/** status.json's `state`: `idle` | `running` | the last outcome | `error` after a rejection | `offline` | `backoff`. */
export function statusOf(state: ServiceStateView, running: number, coolingMs: number): ServiceStatusState {
  if (!state.enabled) return 'offline';
  if (running > 0) return 'running';
  if (coolingMs > 0) return 'backoff';
  const lastMs = state.last?.updatedMs ?? -1;
  if (state.rejection && state.rejection.ms >= lastMs) return 'error';
  if (!state.last || (state.idleSinceMs !== null && state.idleSinceMs >= lastMs)) return 'idle';
  return state.last.state;
}

function isJson(data: Buffer): boolean {
  try {
    JSON.parse(data.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
