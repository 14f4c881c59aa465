/**
 * src/runtime: running drivers. Owns `LiveService` (admission, invoke, the controls of one service)
 * around its one state record, `Supervisor`, `JobTable`, the adapters (native, terminal, wasm), the
 * spawner process (the only execa importer) and persistent drivers. Knows nothing of files: it is
 * told to run a payload and answers with a result or an `FsError` from errors/.
 *
 * Must not import: vfs/, fuse/, node/, control/, world/, cli/ or manifest/ (a service's settings
 * arrive already resolved, so the runtime runs under any front end).
 */
import { FsError } from '../errors/errno.js';
import type { DriverRunner } from './driver-runner.js';
import type { InvocationIds } from './invocation-id.js';
import { Job, type JobRecord } from './job.js';
import { JobTable, type Persist } from './job-table.js';
import { latencyPercentiles } from './latency.js';
import { outputlessRun, type DriverSpec, type RunResult, type RunState } from './run-result.js';
import { parsePayload, withConfig, type ServiceSettings } from './service-settings.js';
import {
  newServiceState,
  recordEnd,
  recordStart,
  stateFromStored,
  statusOf,
  type Interpreted,
  type ServiceState,
  type StoredServiceState,
} from './service-state.js';
import type { RuntimeConfig } from './supervision.js';
import { countRestored } from './restored-jobs.js';
import { Supervisor } from './supervisor.js';
import { DecodedResult, type ServiceView } from './service-view.js';
import { runBoundMs, type WaitClock } from './wait-bound.js';
import { applyControl, configAccepted, recordRefusal, refusalOf, serviceRefusalOf, type ControlOp } from './service-controls.js';

export type { ControlOp };

export interface InvokeOutcome {
  invocationId: string;
  state: RunState;
  /** The result document on success. */
  result?: Buffer;
  error?: string;
}

export interface LiveServiceOptions {
  serviceId: string;
  runner: DriverRunner;
  ids: InvocationIds;
  settings: ServiceSettings;
  persist?: Persist;
  /** Start-up: what the journal held (no state when the daemon died before writing one), and when. */
  restored?: { state?: StoredServiceState; jobs: JobRecord[]; now?: number };
}

/**
 * One executable service while the node runs: admission, invocations and the controls, around its
 * state record (service-state.ts), with the Supervisor (health, cooldown, auto-disable) and the
 * JobTable (jobs/, the queue) beside it. It knows nothing of files; `src/node` renders `view`.
 */
export class LiveService {
  readonly view: ServiceView;
  #serviceId: string;
  #runner: DriverRunner;
  #ids: InvocationIds;
  #settings: ServiceSettings;
  #state: ServiceState;
  #supervisor: Supervisor;
  #jobs: JobTable;
  #persist: Persist;
  #removed = false;
  #closing = false;
  #changedMs = Date.now();
  #result = new DecodedResult();

  constructor(options: LiveServiceOptions) {
    this.#serviceId = options.serviceId;
    this.#runner = options.runner;
    this.#ids = options.ids;
    this.#settings = options.settings;
    const persist = options.persist;
    // A removed service's journal entries are deleted right after remove(): its cancelled jobs, ending
    // later, must not write them back (a service re-added under the same id would restore them).
    this.#persist = persist ? (change) => (this.#removed ? Promise.resolve() : persist(change)) : async () => undefined;
    this.#state = newServiceState(this.#changedMs);
    this.#supervisor = new Supervisor(this.#state);
    this.#jobs = new JobTable(options.settings.limits.maxConcurrency, this.#persist);
    this.view = this.#makeView();
    if (options.restored) this.#restore(options.restored.state, options.restored.jobs, options.restored.now ?? Date.now());
  }

  /**
   * Throws the errno an invoke would get now: ENOENT (removed), EPERM (disabled), EAGAIN (cooldown,
   * queue full, shutting down). Called at open for writing and again at commit; a refusal is
   * recorded where an operator looks.
   */
  admit(): void {
    const refusal = refusalOf(this.#state, {
      serviceId: this.#serviceId,
      isRemoved: this.#removed,
      isClosing: this.#closing,
      supervisor: this.#supervisor,
      jobs: this.#jobs,
      limits: this.#settings.limits,
    });
    if (!refusal) return;
    // A removed service has nothing left to record into; a stopping node refuses for itself, not the service.
    if (refusal.errno !== 'ENOENT' && !this.#closing) this.recordRejection(refusal);
    throw refusal;
  }

  /**
   * One invocation with exactly these bytes. Resolves when it has finished and its outcome is
   * stored (a driver failure is an outcome, not an exception); throws FsError when the payload or
   * the service state refuses it, after recording why in last_error.txt and status.json, and
   * ENOENT when the service was removed while it waited or ran (nothing left to record into).
   */
  async invoke(payload: Buffer): Promise<InvokeOutcome> {
    this.admit();
    let value: Record<string, unknown>;
    try {
      value = parsePayload(payload, this.#settings);
    } catch (error) {
      if (error instanceof FsError) this.recordRejection(error);
      throw error;
    }
    const job = new Job(this.#ids.next(), payload);
    this.#touch();
    const outcome = await this.#jobs.schedule(job, (clock) => this.#run(job, value, clock), this.#settings, this.#state.config);
    // remove() cancelled it and took the service's files: the writer has nowhere to read this outcome.
    // Asked of the job, not the outcome: the run may have ended otherwise first (an answer that raced the cancel).
    if (job.isCancelled && this.#removed)
      throw new FsError('ENOENT', `service ${this.#serviceId} has been removed; invocation ${job.invocationId} was cancelled`);
    return outcome;
  }

  /** An invoke refused before any driver ran: last_error.txt and status.json say why. */
  recordRejection(error: FsError): void {
    const now = Date.now();
    recordRefusal(this.#state, error, now);
    this.#touch(now);
    this.#persistSoon({ kind: 'state', state: this.#state });
  }

  /** control/<op>: the state record changes as `applyControl` says (service-controls.ts); restart also restarts a persistent driver. */
  async control(op: ControlOp): Promise<void> {
    const now = this.#noteControl(op);
    if (op === 'restart') this.#runner.restartPersistent?.(this.#serviceId, 'control/restart');
    applyControl(this.#state, op, now);
    this.#supervisor.noteHealth();
    await this.#persist({ kind: 'state', state: this.#state });
  }

  /** control/cancel (or a job's cancel): kills running invocations, or that one job. */
  cancel(invocationId?: string): number {
    this.#noteControl('cancel');
    return this.#jobs.cancel(invocationId);
  }

  /** config.json: replaced whole (already validated by the caller); a refused one before it is no longer the latest refusal. */
  async setConfig(config: RuntimeConfig): Promise<void> {
    this.#state.config = config;
    configAccepted(this.#state, this.#serviceId, this.#noteControl('config'));
    await this.#persist({ kind: 'state', state: this.#state });
  }

  /** A reload changed the manifest: new driver settings, same state. */
  update(settings: ServiceSettings): void {
    this.#settings = settings;
    this.#jobs.setConcurrency(settings.limits.maxConcurrency);
    this.#touch();
  }

  /** The service left the tree: open handles get ENOENT, running drivers are cancelled (their writers: ENOENT). */
  remove(): void {
    this.#removed = true;
    this.#jobs.cancelAll();
    this.#runner.restartPersistent?.(this.#serviceId, 'the service was removed');
  }

  /** Waits for running invocations for at most `graceMs` (less once `cut` aborts), then cancels the rest; the ids of those the kill did not end. */
  async drain(graceMs: number, cut?: AbortSignal): Promise<string[]> {
    this.#closing = true;
    return (await this.#jobs.drain(Date.now() + graceMs, cut)).map((job) => job.invocationId);
  }

  #makeView(): ServiceView {
    const self = this;
    return {
      serviceId: this.#serviceId,
      state: this.#state,
      supervisor: this.#supervisor,
      jobs: this.#jobs,
      get changedMs() {
        return self.#changedMs;
      },
      get isRemoved() {
        return self.#removed;
      },
      get maxInputBytes() {
        return self.#settings.limits.maxInputBytes;
      },
      get result() {
        return self.#result.of(self.#state.resultBase64);
      },
      statusState: (now = Date.now()) => statusOf(this.#state, this.#jobs.started, this.#supervisor.cooldownRemainingMs(now)),
      latency: () => latencyPercentiles(this.#state.latencyMs),
    };
  }

  async #run(job: Job, value: Record<string, unknown>, clock: WaitClock): Promise<InvokeOutcome> {
    if (job.isCancelled) return this.#finish(job, job.cancelledBeforeStart());
    const { adapter } = this.#settings;
    let spec: DriverSpec;
    try {
      spec = withConfig(adapter.spec(job.request, value, job.invocationId), this.#state.config);
    } catch (error) {
      if (error instanceof FsError) this.recordRejection(error);
      throw error;
    }
    const start = (): void => {
      // Disabled or cooling down since its commit (also while a wasm worker was awaited): refused as at commit; no driver starts.
      const refusal = serviceRefusalOf(this.#state, this.#serviceId, this.#supervisor);
      if (refusal) {
        this.recordRejection(refusal);
        throw refusal;
      }
      job.start(spec.killGraceMs);
      clock.started(runBoundMs(spec));
      recordStart(this.#state, job);
      this.#touch();
      // The service state follows at the end (nothing about this run is acknowledged yet).
      this.#jobs.journal(job);
    };
    // A runner with a queue of its own (wasm workers) starts the job when the driver starts: until
    // then it is queued, and its wait is queue time for the writer's bound (SPEC §3).
    let run: RunResult;
    try {
      if (adapter.runner) run = await adapter.runner.run(spec, job.abortSignal, start);
      else {
        start();
        run = await this.#runner.run(spec, job.abortSignal);
      }
      return await this.#finish(job, run, adapter.interpret(run, job.invocationId));
    } catch (error) {
      // A run that started ends, whatever failed: a job left `running` would count in status.json for good.
      if (job.progress.state !== 'running') throw error;
      return this.#finish(job, outputlessRun({ state: 'error', shortMessage: `the run failed: ${(error as Error).message}` }));
    }
  }

  async #finish(job: Job, run: RunResult, interpreted: Interpreted = { state: run.state, error: run.shortMessage }): Promise<InvokeOutcome> {
    const now = Date.now();
    const state = this.#state;
    const { result, error, failed } = recordEnd(state, job.invocationId, run, interpreted, job.progress.startedMs !== null, now);
    if (failed) this.#supervisor.afterFailure(now);
    if (result) this.#result.set(state.resultBase64, result);
    job.finish({ state: interpreted.state, run, result: result ?? null, error: error ?? '', finishedMs: now });
    this.#touch(now);
    this.#supervisor.noteHealth(now);
    // The job and the service state, durable together before the writer's close() returns.
    await Promise.all([this.#persist({ kind: 'state', state }), ...this.#jobs.ended(job, this.#settings.jobsKeep)]);
    return { invocationId: job.invocationId, state: interpreted.state, ...(result ? { result } : {}), ...(error ? { error } : {}) };
  }

  /**
   * Start-up: the state and jobs as they were acknowledged before the restart (already validated).
   * What the state missed of its jobs is counted here, interrupted runs as failures (`countRestored`).
   */
  #restore(stored: StoredServiceState | undefined, jobs: JobRecord[], now: number): void {
    if (stored) Object.assign(this.#state, stateFromStored(stored));
    let interrupted: JobRecord[] = [];
    let ended = false;
    this.#supervisor.restored(now, () => {
      interrupted = this.#jobs.restore(jobs);
      ended = countRestored(this.#state, jobs, now);
    });
    if (stored) this.#touch(Math.max(stored.resultMs, stored.lastErrorMs, stored.lastControlMs ?? 0));
    if (!ended) return;
    // The jobs before the state: after a crash in between, their start numbers say what to count.
    for (const record of interrupted) this.#jobs.journal(this.#jobs.get(record.invocationId) as Job);
    this.#persistSoon({ kind: 'state', state: this.#state });
  }

  /** Nobody waits for this change: a failed write must not become an unhandled rejection. */
  #persistSoon(change: Parameters<Persist>[0]): void {
    this.#persist(change).catch(() => undefined);
  }

  #noteControl(op: string): number {
    const now = Date.now();
    this.#state.lastControlOp = op;
    this.#state.lastControlMs = now;
    this.#touch(now);
    return now;
  }

  #touch(now = Date.now()): void {
    this.#changedMs = Math.max(this.#changedMs, now);
  }
}
