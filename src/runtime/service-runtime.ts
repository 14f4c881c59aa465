import { FsError } from '../vfs/errors.js';
import type { DriverRunner } from './driver-runner.js';
import { LatencyWindow } from './latency.js';
import { Limiter } from './limiter.js';
import type { InvocationIds } from './invocation-id.js';
import type { DriverSpec, RunResult, RunState } from './run-result.js';

/** How one kind of service turns a payload into a driver run and the run into a result. */
export interface DriverAdapter {
  /** `raw` is exactly the bytes written; throws FsError('EINVAL') when `value` does not fit. */
  spec(raw: Buffer, value: Record<string, unknown>, invocationId: string): DriverSpec;
  interpret(run: RunResult): { state: RunState; result?: Buffer; error?: string };
}

export interface ServiceLimits {
  maxConcurrency: number;
  maxQueue: number;
  maxInputBytes: number;
}

export type InvocationState = RunState | 'rejected';

export interface LastInvocation {
  invocationId: string | null;
  state: InvocationState;
  updatedMs: number;
  durationMs: number | null;
  exitCode: number | null;
  signal: string | null;
  resultFormat: 'json' | 'text' | null;
  errno: string | null;
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

export interface InvokeOutcome {
  invocationId: string;
  state: RunState;
  /** The result document on success. */
  result?: Buffer;
  error?: string;
}

/** Validates a payload against the service's `schema.input`: a message naming the field, or undefined. */
export type InputCheck = (payload: unknown) => string | undefined;

const newCounters = (): ServiceCounters => ({
  invokesTotal: 0, rejectedTotal: 0, failuresTotal: 0, consecutiveFailures: 0, timeoutsTotal: 0,
  consecutiveTimeouts: 0, cancelledTotal: 0, restartsTotal: 0, lastDurationMs: null, lastStartedMs: null,
  lastFinishedMs: null, lastExitCode: null,
});

/**
 * The live state of one executable service: admission, the queue, driver runs and what the tree
 * shows about them. It knows nothing of files; `src/node` renders it.
 */
export class ServiceRuntime {
  readonly serviceId: string;
  #runner: DriverRunner;
  #adapter: DriverAdapter;
  #ids: InvocationIds;
  #limits: ServiceLimits;
  #limiter: Limiter;
  #checkInput: InputCheck | undefined;
  #running = new Set<AbortController>();
  #latency = new LatencyWindow();
  #removed = false;
  #closing = false;

  enabled = true;
  disabledReason: string | null = null;
  counters: ServiceCounters = newCounters();
  last: LastInvocation | null = null;
  result: Buffer | null = null;
  resultMs: number;
  lastError = '';
  lastErrorMs: number;
  changedMs: number;
  lastControlOp: string | null = null;
  lastControlMs: number | null = null;
  lastTransitionMs: number;
  lastHealthyMs: number | null = null;

  constructor(options: { serviceId: string; runner: DriverRunner; adapter: DriverAdapter; ids: InvocationIds; limits: ServiceLimits; checkInput?: InputCheck }) {
    this.serviceId = options.serviceId;
    this.#runner = options.runner;
    this.#adapter = options.adapter;
    this.#ids = options.ids;
    this.#limits = options.limits;
    this.#limiter = new Limiter(options.limits.maxConcurrency);
    this.#checkInput = options.checkInput;
    const now = Date.now();
    this.resultMs = this.lastErrorMs = this.changedMs = this.lastTransitionMs = now;
  }

  get maxInputBytes(): number {
    return this.#limits.maxInputBytes;
  }

  get running(): number {
    return this.#limiter.running;
  }

  get queued(): number {
    return this.#limiter.queued;
  }

  latencyPercentiles(): { p50: number | null; p90: number | null; p99: number | null } {
    return this.#latency.percentiles();
  }

  /** Throws the errno an invoke would get now: ENOENT (removed), EPERM (disabled), EAGAIN (queue full). */
  admit(): void {
    if (this.#removed) throw new FsError('ENOENT', `service ${this.serviceId} has been removed`);
    if (this.#closing) throw new FsError('EAGAIN', `service ${this.serviceId}: the node is shutting down`);
    if (!this.enabled) throw new FsError('EPERM', `service ${this.serviceId} is disabled${this.disabledReason ? ` (${this.disabledReason})` : ''}`);
    if (this.#limiter.running >= this.#limits.maxConcurrency && this.#limiter.queued >= this.#limits.maxQueue) {
      throw new FsError('EAGAIN', `service ${this.serviceId}: queue full (max_queue ${this.#limits.maxQueue})`);
    }
  }

  /**
   * One invocation with exactly these bytes. Resolves when it has finished (a driver failure is an
   * outcome, not an exception); throws FsError when the payload or the service state refuses it,
   * after recording why in last_error.txt and status.json.
   */
  async invoke(payload: Buffer): Promise<InvokeOutcome> {
    let value: Record<string, unknown>;
    try {
      this.admit();
      value = this.#parse(payload);
    } catch (error) {
      if (error instanceof FsError && error.errno !== 'ENOENT') this.recordRejection(error);
      throw error;
    }
    this.#touch();
    return this.#limiter.schedule(() => this.#run(payload, value));
  }

  /** An invoke refused before any driver ran. */
  recordRejection(error: FsError): void {
    const now = Date.now();
    this.counters.rejectedTotal++;
    this.lastError = `${error.errno}: ${error.message}\n`;
    this.lastErrorMs = now;
    this.last = { invocationId: null, state: 'rejected', updatedMs: now, durationMs: null, exitCode: null, signal: null, resultFormat: null, errno: error.errno };
    this.#touch(now);
  }

  /** control/cancel: kills the running invocation(s); queued ones stay queued. */
  cancel(): number {
    this.#control('cancel');
    for (const controller of this.#running) controller.abort();
    return this.#running.size;
  }

  /** control/reset: result and status back to idle, last error empty, consecutive counters zeroed. */
  reset(): void {
    this.#control('reset');
    this.last = null;
    this.result = null;
    this.resultMs = Date.now();
    this.lastError = '';
    this.lastErrorMs = this.resultMs;
    this.counters.consecutiveFailures = 0;
    this.counters.consecutiveTimeouts = 0;
  }

  enable(): void {
    this.#control('enable');
    if (!this.enabled) this.lastTransitionMs = Date.now();
    this.enabled = true;
    this.disabledReason = null;
  }

  disable(reason = 'disabled by control/disable'): void {
    this.#control('disable');
    if (this.enabled) this.lastTransitionMs = Date.now();
    this.enabled = false;
    this.disabledReason = reason;
  }

  restart(): void {
    this.#control('restart');
    this.counters.restartsTotal++;
    this.lastError = '';
    this.lastErrorMs = Date.now();
  }

  /** The service left the tree: open handles get ENOENT, running drivers are cancelled. */
  remove(): void {
    this.#removed = true;
    for (const controller of this.#running) controller.abort();
  }

  get isRemoved(): boolean {
    return this.#removed;
  }

  /** Waits for running invocations for at most `graceMs`, then cancels the rest and waits for them. */
  async drain(graceMs: number): Promise<void> {
    this.#closing = true;
    const idle = (): boolean => this.#limiter.running === 0;
    const deadline = Date.now() + graceMs;
    while (!idle() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const controller of this.#running) controller.abort();
    while (!idle()) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  #parse(payload: Buffer): Record<string, unknown> {
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8'));
    } catch (error) {
      throw new FsError('EINVAL', `invoke.json: invalid JSON: ${(error as Error).message.replace(/\s+/g, ' ')}`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new FsError('EINVAL', `invoke.json: payload must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
    }
    const problem = this.#checkInput?.(value);
    if (problem) throw new FsError('EINVAL', `invoke.json: ${problem}`);
    return value as Record<string, unknown>;
  }

  async #run(raw: Buffer, value: Record<string, unknown>): Promise<InvokeOutcome> {
    const invocationId = this.#ids.next();
    const controller = new AbortController();
    this.#running.add(controller);
    this.counters.invokesTotal++;
    this.counters.lastStartedMs = Date.now();
    this.#touch();
    let run: RunResult;
    try {
      run = await this.#runner.run(this.#adapter.spec(raw, value, invocationId), controller.signal);
    } finally {
      this.#running.delete(controller);
    }
    const outcome = this.#adapter.interpret(run);
    this.#record(invocationId, run, outcome);
    return { invocationId, ...outcome };
  }

  #record(invocationId: string, run: RunResult, outcome: { state: RunState; result?: Buffer; error?: string }): void {
    const now = Date.now();
    const c = this.counters;
    c.lastDurationMs = run.durationMs;
    c.lastFinishedMs = now;
    c.lastExitCode = run.exitCode;
    this.#latency.add(run.durationMs);
    let resultFormat: 'json' | 'text' | null = null;
    if (outcome.state === 'ok') {
      const result = outcome.result ?? Buffer.alloc(0);
      this.result = result.toString('utf8').trim() === '' ? Buffer.from('{}\n') : result;
      resultFormat = isJson(this.result) ? 'json' : 'text';
      this.resultMs = now;
      this.lastError = '';
      this.lastErrorMs = now;
      c.consecutiveFailures = 0;
      c.consecutiveTimeouts = 0;
      this.lastHealthyMs = now;
    } else {
      this.lastError = outcome.error ?? run.shortMessage;
      if (!this.lastError.endsWith('\n')) this.lastError += '\n';
      this.lastErrorMs = now;
      if (outcome.state === 'cancelled') c.cancelledTotal++;
      else {
        c.failuresTotal++;
        c.consecutiveFailures++;
      }
      if (outcome.state === 'timeout') {
        c.timeoutsTotal++;
        c.consecutiveTimeouts++;
      }
    }
    this.last = { invocationId, state: outcome.state, updatedMs: now, durationMs: run.durationMs, exitCode: run.exitCode, signal: run.signal, resultFormat, errno: null };
    this.#touch(now);
  }

  #control(op: string): void {
    this.lastControlOp = op;
    this.lastControlMs = Date.now();
    this.#touch(this.lastControlMs);
  }

  #touch(now = Date.now()): void {
    this.changedMs = now;
  }
}

function isJson(data: Buffer): boolean {
  try {
    JSON.parse(data.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

export type { RunState };
