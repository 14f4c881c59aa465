import type { JobState } from '../protocol/types.gen.js';
import type { RunResult, RunState } from './run-result.js';

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
}

/** One invocation from arrival to its end; its own cancel reaches only its own driver. */
export class Job {
  readonly invocationId: string;
  readonly request: Buffer;
  readonly queuedMs: number;
  state: JobState = 'queued';
  startedMs: number | null = null;
  finishedMs: number | null = null;
  durationMs: number | null = null;
  exitCode: number | null = null;
  signal: string | null = null;
  result: Buffer | null = null;
  error = '';
  stderr: Buffer = Buffer.alloc(0);
  #controller = new AbortController();

  constructor(invocationId: string, request: Buffer, queuedMs = Date.now()) {
    this.invocationId = invocationId;
    this.request = request;
    this.queuedMs = queuedMs;
  }

  /** A journaled job; one that was queued or running when the daemon died never finished, and says so. */
  static fromRecord(record: JobRecord): Job {
    const job = new Job(record.invocationId, Buffer.from(record.requestBase64, 'base64'), record.queuedMs);
    const interrupted = Job.wasInterrupted(record);
    Object.assign(job, {
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
    return job;
  }

  /** Journaled as queued or running: the daemon died before this job ended. */
  static wasInterrupted(record: JobRecord): boolean {
    return record.state === 'queued' || record.state === 'running';
  }

  get abortSignal(): AbortSignal {
    return this.#controller.signal;
  }

  get isCancelled(): boolean {
    return this.#controller.signal.aborted;
  }

  get isFinished(): boolean {
    return this.state !== 'queued' && this.state !== 'running';
  }

  start(now = Date.now()): void {
    this.state = 'running';
    this.startedMs = now;
  }

  /** Aborts the driver (or the queued job); false when there was nothing left to cancel. */
  cancel(): boolean {
    if (this.isFinished || this.isCancelled) return false;
    this.#controller.abort();
    return true;
  }

  finish(outcome: { state: RunState; run: RunResult; result: Buffer | null; error: string; finishedMs: number }): void {
    this.state = outcome.state;
    this.finishedMs = outcome.finishedMs;
    this.durationMs = this.startedMs === null ? null : outcome.run.durationMs;
    this.exitCode = outcome.run.exitCode;
    this.signal = outcome.run.signal;
    this.result = outcome.result;
    this.error = outcome.error;
    this.stderr = outcome.run.stderr;
  }

  record(): JobRecord {
    return {
      invocationId: this.invocationId,
      state: this.state,
      requestBase64: this.request.toString('base64'),
      queuedMs: this.queuedMs,
      startedMs: this.startedMs,
      finishedMs: this.finishedMs,
      durationMs: this.durationMs,
      exitCode: this.exitCode,
      signal: this.signal,
      resultBase64: this.result?.toString('base64') ?? null,
      error: this.error,
      stderrBase64: this.stderr.toString('base64'),
    };
  }
}
