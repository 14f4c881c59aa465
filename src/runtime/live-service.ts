import { FsError } from '../errors/errno.js';
import { parseJsonDocument } from '../errors/json-document.js';
import type { DriverRunner } from './driver-runner.js';
import { LatencyWindow } from './latency.js';
import { Limiter } from './limiter.js';
import type { InvocationIds } from './invocation-id.js';
import { outputlessRun, type DriverSpec, type RunResult, type RunState } from './run-result.js';
import { INTERRUPTED_ERROR, Job, type JobRecord } from './job.js';
import { DEFAULT_SUPERVISION, type RuntimeConfig, type Supervision } from './supervision.js';

/** How one kind of service turns a payload into a driver run and the run into a result. */
export interface DriverAdapter {
  /** `raw` is exactly the bytes written; throws FsError('EINVAL') when `value` does not fit. */
  spec(raw: Buffer, value: Record<string, unknown>, invocationId: string): DriverSpec;
  interpret(run: RunResult): { state: RunState; result?: Buffer; error?: string };
  /** Runs this adapter's specs instead of the service's runner (wasm: the daemon's worker pool). */
  runner?: DriverRunner;
}

export interface ServiceLimits {
  maxConcurrency: number;
  maxQueue: number;
  maxInputBytes: number;
}

/** Everything a reload may change; the runtime state survives it (SPEC §5). */
export interface ServiceSettings {
  adapter: DriverAdapter;
  limits: ServiceLimits;
  /** Validates a payload against `schema.input`: a message naming the field, or undefined. */
  checkInput?: (payload: unknown) => string | undefined;
  /** How many finished invocations jobs/ keeps (runtime.jobs_keep). */
  jobsKeep: number;
}

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

export interface InvokeOutcome {
  invocationId: string;
  state: RunState;
  /** The result document on success. */
  result?: Buffer;
  error?: string;
}

export type HealthState = 'online' | 'degraded' | 'offline';

/** What persistence is told after each change; `always` sync makes invoke wait for it. */
export type RuntimeChange = { kind: 'state' } | { kind: 'job'; job: JobRecord } | { kind: 'job-removed'; invocationId: string };

/** The durable part of a runtime (journaled; restored at start-up). Binary results travel as base64. */
export interface PersistedRuntime {
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
  /** Since when status.json shows `idle` after control/enable; absent in journals written before it existed. */
  idleSinceMs?: number | null;
  /** The latency window behind metrics.json's percentiles; absent in older journals. */
  latencyMs?: number[];
  /**
   * Invocations counted in `invokes_total` that had not ended when this was written: after a crash,
   * their journaled jobs say `running`, and a restore counts the start of any other such job. Absent
   * in older journals.
   */
  runningInvocationIds?: string[];
}

const newCounters = (): ServiceCounters => ({
  invokesTotal: 0, rejectedTotal: 0, failuresTotal: 0, consecutiveFailures: 0, timeoutsTotal: 0,
  consecutiveTimeouts: 0, cancelledTotal: 0, restartsTotal: 0, lastDurationMs: null, lastStartedMs: null,
  lastFinishedMs: null, lastExitCode: null,
});

/**
 * The live state of one executable service: admission, the queue, driver runs, supervision and
 * what the tree shows about them. It knows nothing of files; `src/node` renders it.
 */
export class ServiceRuntime {
  readonly serviceId: string;
  #runner: DriverRunner;
  #ids: InvocationIds;
  #settings: ServiceSettings;
  #limiter: Limiter;
  #jobs = new Map<string, Job>();
  // 256 samples: enough for a p99, small enough to journal with every outcome.
  #latency = new LatencyWindow(256);
  #persist: (change: RuntimeChange) => Promise<void>;
  #removed = false;
  #closing = false;
  #health: HealthState = 'online';

  enabled = true;
  disabledReason: string | null = null;
  config: RuntimeConfig = {};
  counters: ServiceCounters = newCounters();
  last: LastInvocation | null = null;
  rejection: Rejection | null = null;
  result: Buffer | null = null;
  resultMs: number;
  lastError = '';
  lastErrorMs: number;
  cooldownUntilMs: number | null = null;
  changedMs: number;
  lastControlOp: string | null = null;
  lastControlMs: number | null = null;
  lastTransitionMs: number;
  lastHealthyMs: number | null = null;
  /** Set by the node's probe: why the driver cannot be run now (missing, not executable). */
  probeError: string | null = null;

  constructor(options: { serviceId: string; runner: DriverRunner; ids: InvocationIds; settings: ServiceSettings; persist?: (change: RuntimeChange) => Promise<void> }) {
    this.serviceId = options.serviceId;
    this.#runner = options.runner;
    this.#ids = options.ids;
    this.#settings = options.settings;
    this.#limiter = new Limiter(options.settings.limits.maxConcurrency);
    this.#persist = options.persist ?? (async () => undefined);
    const now = Date.now();
    this.resultMs = this.lastErrorMs = this.changedMs = this.lastTransitionMs = now;
    this.lastHealthyMs = now; // a new service starts online
  }

  get maxInputBytes(): number {
    return this.#settings.limits.maxInputBytes;
  }

  get running(): number {
    return this.#limiter.running;
  }

  get queued(): number {
    return this.#limiter.queued;
  }

  get isRemoved(): boolean {
    return this.#removed;
  }

  latencyPercentiles(): { p50: number | null; p90: number | null; p99: number | null } {
    return this.#latency.percentiles();
  }

  supervision(): Supervision {
    return { ...DEFAULT_SUPERVISION, ...this.config.supervision };
  }

  cooldownRemainingMs(now = Date.now()): number {
    return this.cooldownUntilMs === null ? 0 : Math.max(0, this.cooldownUntilMs - now);
  }

  /** offline when disabled; degraded in cooldown, after a failure, or when the probe fails (SPEC §5). */
  healthState(now = Date.now()): HealthState {
    if (!this.enabled) return 'offline';
    if (this.cooldownRemainingMs(now) > 0 || this.counters.consecutiveFailures > 0 || this.probeError) return 'degraded';
    return 'online';
  }

  /** Records a health transition once; called after every change and when health is read. */
  noteHealth(now = Date.now()): HealthState {
    const state = this.healthState(now);
    if (state !== this.#health) {
      // Entering online: healthy since now; leaving it: healthy until now. Only transitions move it,
      // so the published catalog does not change with every read or invocation (SPEC §5).
      if (state === 'online' || this.#health === 'online') this.lastHealthyMs = now;
      this.#health = state;
      this.lastTransitionMs = now;
    }
    return state;
  }

  /** Jobs in invocation order: queued, running and the last `jobs_keep` finished. */
  jobs(): Job[] {
    return [...this.#jobs.values()];
  }

  job(invocationId: string): Job | undefined {
    return this.#jobs.get(invocationId);
  }

  /** A reload changed the manifest: new driver settings, same state. */
  update(settings: ServiceSettings): void {
    this.#settings = settings;
    this.#limiter.setConcurrency(settings.limits.maxConcurrency);
    this.#touch();
  }

  /** config.json: replaced whole (already validated by the caller). */
  async setConfig(config: RuntimeConfig): Promise<void> {
    this.config = config;
    this.#control('config');
    await this.#persist({ kind: 'state' });
  }

  /**
   * Throws the errno an invoke would get now: ENOENT (removed), EPERM (disabled), EAGAIN (cooldown,
   * queue full, shutting down). Called at open for writing and again at commit; a refusal is
   * recorded where an operator looks.
   */
  admit(): void {
    const refusal = this.#refusal();
    if (!refusal) return;
    // A removed service has no files left to record into.
    if (refusal.errno !== 'ENOENT') this.recordRejection(refusal);
    throw refusal;
  }

  #refusal(): FsError | undefined {
    if (this.#removed) return new FsError('ENOENT', `service ${this.serviceId} has been removed`);
    if (this.#closing) return new FsError('EAGAIN', `service ${this.serviceId}: the node is shutting down`);
    if (!this.enabled) return new FsError('EPERM', `service ${this.serviceId} is disabled${this.disabledReason ? ` (${this.disabledReason})` : ''}`);
    const cooling = this.cooldownRemainingMs();
    if (cooling > 0) return new FsError('EAGAIN', `service ${this.serviceId} is cooling down after a failure: retry in ${cooling} ms`);
    const { maxConcurrency, maxQueue } = this.#settings.limits;
    if (this.#limiter.running >= maxConcurrency && this.#limiter.queued >= maxQueue) {
      return new FsError('EAGAIN', `service ${this.serviceId}: queue full (max_queue ${maxQueue})`);
    }
    return undefined;
  }

  /**
   * One invocation with exactly these bytes. Resolves when it has finished and its outcome is
   * stored (a driver failure is an outcome, not an exception); throws FsError when the payload or
   * the service state refuses it, after recording why in last_error.txt and status.json.
   */
  async invoke(payload: Buffer): Promise<InvokeOutcome> {
    this.admit();
    let value: Record<string, unknown>;
    try {
      value = this.#parse(payload);
    } catch (error) {
      if (error instanceof FsError) this.recordRejection(error);
      throw error;
    }
    const job = new Job(this.#ids.next(), payload);
    this.#jobs.set(job.invocationId, job);
    this.#touch();
    return this.#waitAtMost(job, (started) => this.#limiter.schedule(() => this.#run(job, value, started)));
  }

  /**
   * SPEC §3: a writer waits at most queue time + timeout_ms + kill grace (plus WAIT_SLACK_MS for the
   * pipes, the spawner and the journal); past that its close() gets ETIMEDOUT while the run goes on,
   * and its outcome is recorded when it ends. `run` calls `started` with the bound once the job runs.
   */
  #waitAtMost(job: Job, run: (started: (boundMs: number) => void) => Promise<InvokeOutcome>): Promise<InvokeOutcome> {
    return new Promise<InvokeOutcome>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const started = (boundMs: number): void => {
        timer = setTimeout(() => reject(new FsError('ETIMEDOUT', `invocation ${job.invocationId} is still running ${boundMs} ms after it started (timeout_ms + kill_grace_ms + ${WAIT_SLACK_MS} ms); it goes on, and jobs/${job.invocationId}/status.json will show how it ended`)), boundMs);
      };
      run(started).then((outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      }, (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error);
      });
    });
  }

  /** An invoke refused before any driver ran: last_error.txt and status.json say why. */
  recordRejection(error: FsError): void {
    const now = Date.now();
    this.counters.rejectedTotal++;
    this.rejection = { errno: error.errno, message: error.message, ms: now };
    this.lastError = `${error.errno}: ${error.message}\n`;
    this.lastErrorMs = now;
    this.#touch(now);
    this.#persistSoon({ kind: 'state' });
  }

  /** control/cancel (or a job's cancel): kills running invocations, or that one job. */
  cancel(invocationId?: string): number {
    this.#control('cancel');
    let cancelled = 0;
    for (const job of this.#jobs.values()) {
      if ((invocationId === undefined ? job.state === 'running' : job.invocationId === invocationId) && job.cancel()) cancelled++;
    }
    return cancelled;
  }

  /** control/reset: result and status back to idle, last error empty, consecutive counters zeroed. */
  async reset(): Promise<void> {
    this.#control('reset');
    this.last = null;
    this.rejection = null;
    this.result = null;
    this.resultMs = Date.now();
    this.lastError = '';
    this.lastErrorMs = this.resultMs;
    this.counters.consecutiveFailures = 0;
    this.counters.consecutiveTimeouts = 0;
    this.cooldownUntilMs = null;
    await this.#settle();
  }

  /** control/enable: back to `idle` with a fresh start (consecutive counters and cooldown cleared). */
  async enable(): Promise<void> {
    this.#control('enable');
    if (!this.enabled) {
      this.enabled = true;
      this.disabledReason = null;
      this.rejection = null;
      this.counters.consecutiveFailures = 0;
      this.counters.consecutiveTimeouts = 0;
      this.cooldownUntilMs = null;
      this.#idleSince = this.lastControlMs;
    }
    await this.#settle();
  }

  /** control/disable, or a supervision threshold: invokes get EPERM until enabled. */
  async disable(reason = 'disabled by control/disable'): Promise<void> {
    this.#control('disable');
    this.enabled = false;
    this.disabledReason = reason;
    await this.#settle();
  }

  /** control/restart: counts a restart, clears the error (and the cooldown), restarts a persistent driver. */
  async restart(): Promise<void> {
    this.#control('restart');
    this.#runner.restartPersistent?.(this.serviceId, 'control/restart');
    this.counters.restartsTotal++;
    this.lastError = '';
    this.lastErrorMs = Date.now();
    this.rejection = null;
    this.cooldownUntilMs = null;
    await this.#settle();
  }

  /** Since when the status shows `idle` although an invocation ran before (after enable). */
  #idleSince: number | null = null;

  /** `idle` | `running` | the last outcome | `error` after a rejection | `offline` | `backoff`. */
  statusState(now = Date.now()): string {
    if (!this.enabled) return 'offline';
    if (this.#limiter.running > 0) return 'running';
    if (this.cooldownRemainingMs(now) > 0) return 'backoff';
    const lastMs = this.last?.updatedMs ?? -1;
    if (this.rejection && this.rejection.ms >= lastMs) return 'error';
    if (!this.last || (this.#idleSince !== null && this.#idleSince >= lastMs)) return 'idle';
    return this.last.state;
  }

  /** The service left the tree: open handles get ENOENT, running drivers are cancelled. */
  remove(): void {
    this.#removed = true;
    for (const job of this.#jobs.values()) job.cancel();
    this.#runner.restartPersistent?.(this.serviceId, 'the service was removed');
  }

  /** Waits for running invocations for at most `graceMs`, then cancels the rest and waits for them. */
  async drain(graceMs: number): Promise<void> {
    this.#closing = true;
    const idle = (): boolean => this.#limiter.running === 0 && this.#limiter.queued === 0;
    const deadline = Date.now() + graceMs;
    while (!idle() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const job of this.#jobs.values()) job.cancel();
    while (!idle()) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  snapshot(): PersistedRuntime {
    return {
      enabled: this.enabled, disabledReason: this.disabledReason, config: this.config, counters: { ...this.counters },
      last: this.last, rejection: this.rejection, resultBase64: this.result?.toString('base64') ?? null, resultMs: this.resultMs,
      lastError: this.lastError, lastErrorMs: this.lastErrorMs, cooldownUntilMs: this.cooldownUntilMs,
      lastControlOp: this.lastControlOp, lastControlMs: this.lastControlMs, lastTransitionMs: this.lastTransitionMs, lastHealthyMs: this.lastHealthyMs,
      idleSinceMs: this.#idleSince,
      latencyMs: this.#latency.samples(),
      runningInvocationIds: this.jobs().filter((job) => job.state === 'running').map((job) => job.invocationId),
    };
  }

  /**
   * Start-up: state and jobs as they were acknowledged before the restart (already validated); no
   * state when the daemon died before its first one was written. Runs the daemon's death interrupted
   * end here, as failures (SPEC §5: counted, and shown as interrupted).
   */
  restore(state: PersistedRuntime | undefined, jobs: JobRecord[], now = Date.now()): void {
    if (state) this.#restoreState(state);
    this.#health = this.healthState(now);
    const sorted = [...jobs].sort((a, b) => (a.invocationId < b.invocationId ? -1 : 1));
    for (const record of sorted) this.#jobs.set(record.invocationId, Job.fromRecord(record));
    const interrupted = sorted.filter((record) => Job.wasInterrupted(record));
    const ended = this.#endInterrupted(interrupted, state?.runningInvocationIds ?? [], now);
    this.noteHealth(now);
    if (this.#health === 'online') this.lastHealthyMs ??= this.lastTransitionMs;
    if (state) this.#touch(Math.max(state.resultMs, state.lastErrorMs, state.lastControlMs ?? 0));
    if (!ended) return;
    // The jobs before the state: a crash in between can then only miss a count, never make one twice.
    for (const record of interrupted) this.#persistSoon({ kind: 'job', job: (this.#jobs.get(record.invocationId) as Job).record() });
    this.#persistSoon({ kind: 'state' });
  }

  #restoreState(state: PersistedRuntime): void {
    this.enabled = state.enabled;
    this.disabledReason = state.disabledReason;
    this.config = state.config;
    this.counters = { ...newCounters(), ...state.counters };
    this.last = state.last;
    this.rejection = state.rejection;
    this.result = state.resultBase64 === null ? null : Buffer.from(state.resultBase64, 'base64');
    this.resultMs = state.resultMs;
    this.lastError = state.lastError;
    this.lastErrorMs = state.lastErrorMs;
    this.cooldownUntilMs = state.cooldownUntilMs;
    this.lastControlOp = state.lastControlOp;
    this.lastControlMs = state.lastControlMs;
    this.lastTransitionMs = state.lastTransitionMs;
    this.lastHealthyMs = state.lastHealthyMs;
    this.#idleSince = state.idleSinceMs ?? null;
    this.#latency.restore(state.latencyMs ?? []);
  }

  /**
   * Each interrupted run counts as a start (unless the state already did) and as a failure, and the
   * latest becomes the last invocation. False when there was none.
   */
  #endInterrupted(interrupted: JobRecord[], countedIds: string[], now: number): boolean {
    const counted = new Set(countedIds);
    const ids = new Set([...counted, ...interrupted.map((record) => record.invocationId)]);
    if (ids.size === 0) return false;
    const c = this.counters;
    for (const record of interrupted) {
      if (counted.has(record.invocationId)) continue;
      c.invokesTotal++;
      if (record.startedMs !== null) c.lastStartedMs = Math.max(c.lastStartedMs ?? 0, record.startedMs);
    }
    c.failuresTotal += ids.size;
    c.consecutiveFailures += ids.size;
    c.consecutiveTimeouts = 0;
    const latest = [...ids].sort().pop() as string;
    if (this.last === null || this.last.invocationId < latest) {
      this.last = { invocationId: latest, state: 'error', updatedMs: now, durationMs: null, exitCode: null, signal: null, resultFormat: null };
      this.lastError = INTERRUPTED_ERROR;
      this.lastErrorMs = now;
    }
    return true;
  }

  #parse(payload: Buffer): Record<string, unknown> {
    const value = parseJsonDocument(payload.toString('utf8'), 'invoke.json');
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new FsError('EINVAL', `invoke.json: payload must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
    }
    const problem = this.#settings.checkInput?.(value);
    if (problem) throw new FsError('EINVAL', `invoke.json: ${problem}`);
    return value as Record<string, unknown>;
  }

  async #run(job: Job, value: Record<string, unknown>, started: (boundMs: number) => void): Promise<InvokeOutcome> {
    if (job.isCancelled) return this.#finish(job, cancelledBeforeStart(job));
    const { adapter } = this.#settings;
    let spec: DriverSpec;
    try {
      spec = withConfig(adapter.spec(job.request, value, job.invocationId), this.config);
    } catch (error) {
      this.#jobs.delete(job.invocationId);
      if (error instanceof FsError) this.recordRejection(error);
      throw error;
    }
    job.start();
    started(spec.timeoutMs + spec.killGraceMs + WAIT_SLACK_MS);
    this.counters.invokesTotal++;
    this.counters.lastStartedMs = job.startedMs;
    this.#touch();
    // The job is journaled at start, so after a kill -9 it shows as interrupted instead of
    // vanishing; the service state follows at the end (nothing about this run is acknowledged yet).
    this.#persistSoon({ kind: 'job', job: job.record() });
    const run = await (adapter.runner ?? this.#runner).run(spec, job.abortSignal);
    return this.#finish(job, run, adapter.interpret(run));
  }

  async #finish(job: Job, run: RunResult, outcome: { state: RunState; result?: Buffer; error?: string } = { state: run.state, error: run.shortMessage }): Promise<InvokeOutcome> {
    const now = Date.now();
    const c = this.counters;
    const ran = job.startedMs !== null;
    let resultFormat: 'json' | 'text' | null = null;
    let result: Buffer | undefined;
    let error: string | undefined;
    if (outcome.state === 'ok') {
      const raw = outcome.result ?? Buffer.alloc(0);
      result = raw.toString('utf8').trim() === '' ? Buffer.from('{}\n') : raw;
      resultFormat = isJson(result) ? 'json' : 'text';
      this.result = result;
      this.resultMs = now;
      this.lastError = '';
      this.lastErrorMs = now;
      c.consecutiveFailures = 0;
      c.consecutiveTimeouts = 0;
    } else {
      error = outcome.error ?? run.shortMessage;
      if (!error.endsWith('\n')) error += '\n';
      this.lastError = error;
      this.lastErrorMs = now;
      if (outcome.state === 'cancelled') c.cancelledTotal++;
      else {
        c.failuresTotal++;
        c.consecutiveFailures++;
        if (outcome.state === 'timeout') {
          c.timeoutsTotal++;
          c.consecutiveTimeouts++;
        } else c.consecutiveTimeouts = 0;
        this.#supervise(now);
      }
    }
    if (ran) {
      c.lastDurationMs = run.durationMs;
      c.lastFinishedMs = now;
      c.lastExitCode = run.exitCode;
      this.#latency.add(run.durationMs);
      this.last = { invocationId: job.invocationId, state: outcome.state, updatedMs: now, durationMs: run.durationMs, exitCode: run.exitCode, signal: run.signal, resultFormat };
    }
    job.finish({ state: outcome.state, run, result: result ?? null, error: error ?? '', finishedMs: now });
    this.#touch(now);
    this.noteHealth(now);
    await this.#persistJob(job);
    return { invocationId: job.invocationId, state: outcome.state, ...(result ? { result } : {}), ...(error ? { error } : {}) };
  }

  /** After a failure: cooldown, and a threshold reached auto-disables (SPEC §5). */
  #supervise(now: number): void {
    const policy = this.supervision();
    if (policy.cooldown_ms > 0) this.cooldownUntilMs = now + policy.cooldown_ms;
    const reached =
      policy.max_consecutive_failures > 0 && this.counters.consecutiveFailures >= policy.max_consecutive_failures
        ? `${this.counters.consecutiveFailures} consecutive failures reached max_consecutive_failures (${policy.max_consecutive_failures})`
        : policy.max_consecutive_timeouts > 0 && this.counters.consecutiveTimeouts >= policy.max_consecutive_timeouts
          ? `${this.counters.consecutiveTimeouts} consecutive timeouts reached max_consecutive_timeouts (${policy.max_consecutive_timeouts})`
          : undefined;
    if (reached && policy.auto_disable_on_threshold && this.enabled) {
      this.enabled = false;
      this.disabledReason = `auto-disabled: ${reached}`;
    }
  }

  /** The job and the service state, durable together before the writer's close() returns. */
  async #persistJob(job: Job): Promise<void> {
    const pruned: string[] = [];
    const finished = this.jobs().filter((j) => j.isFinished);
    for (const old of finished.slice(0, Math.max(0, finished.length - this.#settings.jobsKeep))) {
      this.#jobs.delete(old.invocationId);
      pruned.push(old.invocationId);
    }
    await Promise.all([
      this.#persist({ kind: 'state' }),
      ...(this.#jobs.has(job.invocationId) ? [this.#persist({ kind: 'job', job: job.record() })] : []),
      ...pruned.map((invocationId) => this.#persist({ kind: 'job-removed', invocationId })),
    ]);
  }

  /** Nobody waits for this change: a failed write must not become an unhandled rejection. */
  #persistSoon(change: RuntimeChange): void {
    this.#persist(change).catch(() => undefined);
  }

  async #settle(): Promise<void> {
    this.noteHealth();
    await this.#persist({ kind: 'state' });
  }

  #control(op: string): void {
    this.lastControlOp = op;
    this.lastControlMs = Date.now();
    this.#touch(this.lastControlMs);
  }

  #touch(now = Date.now()): void {
    this.changedMs = Math.max(this.changedMs, now);
  }
}

/** Beyond timeout_ms + kill grace: the pipes' drain, the spawner's hop, a persistent restart, the journal. */
export const WAIT_SLACK_MS = 2000;

/** config.json overrides the manifest's runtime values for the next runs. */
function withConfig(spec: DriverSpec, config: RuntimeConfig): DriverSpec {
  return {
    ...spec,
    timeoutMs: config.timeout_ms ?? spec.timeoutMs,
    killGraceMs: config.kill_grace_ms ?? spec.killGraceMs,
    maxOutputBytes: config.max_output_bytes ?? spec.maxOutputBytes,
  };
}

function cancelledBeforeStart(job: Job): RunResult {
  return outputlessRun({ state: 'cancelled', shortMessage: `invocation ${job.invocationId} was cancelled before it started` });
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
