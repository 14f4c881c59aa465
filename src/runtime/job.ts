import type { JobState } from '../protocol/types.gen.js';
import { outputlessRun, type RunResult, type RunState } from './run-result.js';

/** The error of a job that was running when the daemon died (kill -9, a crash, power loss). */
export const INTERRUPTED_ERROR = 'interrupted: the node daemon stopped before this invocation finished\n';

/** What jobs/<invocation_id>/ shows and the journal keeps (binary parts as base64). */
export interface JobRecord {
  invocationId: string;
  state: JobState;
  requestBase64: string;
  queuedMs: number;
  startedMs: number | null;
  finishedMs: number | null;
  durationMs: number | null;
  exitCode: number | null;
  signal: string | null;
  resultBase64: string | null;
  error: string;
  stderrBase64: string;
  /** Its number among the service's starts (ServiceState.startsSeen); absent if it never started, or in older journals. */
  startSeq?: number;
}

/** Where a job stands: its state and, once it has run, how it ended (what jobs/<invocation_id>/ renders). */
export interface JobProgress {
  state: JobState;
  startedMs: number | null;
  finishedMs: number | null;
  durationMs: number | null;
  exitCode: number | null;
  signal: string | null;
  result: Buffer | null;
  error: string;
  stderr: Buffer;
}

/** One invocation from arrival to its end; its own cancel reaches only its own driver. */
export class Job {
  readonly invocationId: string;
  readonly request: Buffer;
  readonly queuedMs: number;
  readonly #progress: JobProgress;
  #controller = new AbortController();
  #killGraceMs = 0;
  #startSeq: number | undefined;

  constructor(invocationId: string, request: Buffer, queuedMs = Date.now(), progress?: JobProgress) {
    this.invocationId = invocationId;
    this.request = request;
    this.queuedMs = queuedMs;
    this.#progress = progress ?? {
      state: 'queued',
      startedMs: null,
      finishedMs: null,
      durationMs: null,
      exitCode: null,
      signal: null,
      result: null,
      error: '',
      stderr: Buffer.alloc(0),
    };
  }

  /** A journaled job; one that was queued or running when the daemon died never finished, and says so. */
  static fromRecord(record: JobRecord): Job {
    const interrupted = Job.wasInterrupted(record);
    const job = new Job(record.invocationId, Buffer.from(record.requestBase64, 'base64'), record.queuedMs, {
      state: interrupted ? 'error' : record.state,
      startedMs: record.startedMs,
      finishedMs: record.finishedMs,
      durationMs: record.durationMs,
      exitCode: record.exitCode,
      signal: record.signal,
      result: record.resultBase64 === null ? null : Buffer.from(record.resultBase64, 'base64'),
      error: interrupted ? INTERRUPTED_ERROR : record.error,
      stderr: Buffer.from(record.stderrBase64, 'base64'),
    });
    job.#startSeq = record.startSeq;
    return job;
  }

  /** Journaled as queued or running: the daemon died before this job ended. */
  static wasInterrupted(record: JobRecord): boolean {
    return record.state === 'queued' || record.state === 'running';
  }

  /** Live and read-only: only `start` and `finish` move a job on. */
  get progress(): Readonly<JobProgress> {
    return this.#progress;
  }

  get abortSignal(): AbortSignal {
    return this.#controller.signal;
  }

  get isCancelled(): boolean {
    return this.#controller.signal.aborted;
  }

  /** The outcome of a job cancelled while it waited: it never ran. */
  cancelledBeforeStart(): RunResult {
    return outputlessRun({ state: 'cancelled', shortMessage: `invocation ${this.invocationId} was cancelled before it started` });
  }

  /** Refused when its turn came (`why`: the errno and its message): it never ran, and ends `cancelled`, saying so. */
  refusedAtTurn(why: string, now = Date.now()): void {
    const error = `invocation ${this.invocationId} never ran: refused when its turn came (${why})`;
    this.finish({ state: 'cancelled', run: outputlessRun({ state: 'cancelled', shortMessage: error }), result: null, error, finishedMs: now });
  }

  get isFinished(): boolean {
    const { state } = this.#progress;
    return state !== 'queued' && state !== 'running';
  }

  /** How long a cancel may take to kill its driver (SIGTERM, then SIGKILL): what a stop waits for it. */
  get killGraceMs(): number {
    return this.#killGraceMs;
  }

  start(killGraceMs: number, now = Date.now()): void {
    this.#killGraceMs = killGraceMs;
    this.#progress.state = 'running';
    this.#progress.startedMs = now;
  }

  /** Its number among the service's starts, given when its start is counted (service-state.ts `recordStart`). */
  numberStart(seq: number): void {
    this.#startSeq = seq;
  }

  /** Aborts the driver (or the queued job); false when there was nothing left to cancel. */
  cancel(): boolean {
    if (this.isFinished || this.isCancelled) return false;
    this.#controller.abort();
    return true;
  }

  finish(outcome: { state: RunState; run: RunResult; result: Buffer | null; error: string; finishedMs: number }): void {
    const { run } = outcome;
    Object.assign(this.#progress, {
      state: outcome.state,
      finishedMs: outcome.finishedMs,
      durationMs: this.#progress.startedMs === null ? null : run.durationMs,
      exitCode: run.exitCode,
      signal: run.signal,
      result: outcome.result,
      error: outcome.error,
      stderr: run.stderr,
    } satisfies Omit<JobProgress, 'startedMs'>);
  }

  record(): JobRecord {
    const progress = this.#progress;
    return {
      invocationId: this.invocationId,
      state: progress.state,
      requestBase64: this.request.toString('base64'),
      queuedMs: this.queuedMs,
      startedMs: progress.startedMs,
      finishedMs: progress.finishedMs,
      durationMs: progress.durationMs,
      exitCode: progress.exitCode,
      signal: progress.signal,
      resultBase64: progress.result?.toString('base64') ?? null,
      error: progress.error,
      stderrBase64: progress.stderr.toString('base64'),
      ...(this.#startSeq === undefined ? {} : { startSeq: this.#startSeq }),
    };
  }
}
