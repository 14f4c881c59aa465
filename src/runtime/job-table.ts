import { FsError } from '../errors/errno.js';
import { Job, type JobRecord } from './job.js';
import { Limiter } from './limiter.js';
import type { ServiceStateView } from './service-state.js';
import { runTimes, type ServiceSettings } from './service-settings.js';
import type { RuntimeConfig } from './supervision.js';
import { runBoundMs, WAIT_SLACK_MS, type WaitClock, waitAtMost } from './wait-bound.js';

/**
 * What persistence is told after each change; `always` sync makes invoke wait for it. `state` is the
 * live record itself: the journal serializes it as it is when it writes.
 */
export type RuntimeChange = { kind: 'state'; state: ServiceStateView } | { kind: 'job'; job: JobRecord } | { kind: 'job-removed'; invocationId: string };

export type Persist = (change: RuntimeChange) => Promise<void>;

/** What readers of a service's jobs get. */
export type JobsView = Pick<JobTable, 'list' | 'get' | 'running' | 'queued' | 'started' | 'waiting'>;

/**
 * The jobs of one service (jobs/): queued and running ones in the queue (`Limiter`), finished ones
 * pruned to `jobs_keep`, each journaled when it starts and when it ends.
 */
export class JobTable {
  #jobs = new Map<string, Job>();
  #limiter: Limiter;
  #persist: Persist;

  constructor(concurrency: number, persist: Persist) {
    this.#limiter = new Limiter(concurrency);
    this.#persist = persist;
  }

  /** Places of `max_concurrency` taken (what admission counts), also by a job waiting in one for a wasm worker. */
  get running(): number {
    return this.#limiter.running;
  }

  /** Jobs waiting for a place (what admission holds to `max_queue`). */
  get queued(): number {
    return this.#limiter.queued;
  }

  /** Jobs whose driver runs now (status.json `running`). */
  get started(): number {
    return this.#count('running');
  }

  /** Jobs not running yet (status.json `queued`): waiting for a place, or in one for a wasm worker. */
  get waiting(): number {
    return this.#count('queued');
  }

  #count(state: 'queued' | 'running'): number {
    let count = 0;
    for (const job of this.#jobs.values()) if (job.progress.state === state) count++;
    return count;
  }

  /** In invocation order: queued, running and the last `jobs_keep` finished. */
  list(): Job[] {
    return [...this.#jobs.values()];
  }

  get(invocationId: string): Job | undefined {
    return this.#jobs.get(invocationId);
  }

  setConcurrency(concurrency: number): void {
    this.#limiter.setConcurrency(concurrency);
  }

  /**
   * Lists `job` at once and runs `run` when a slot is free, in arrival order. A job whose `run` fails
   * before it started (refused when its turn came: the service disabled or cooling down meanwhile,
   * the adapter refused its payload) never ran: it ends `cancelled`, saying why, and is kept and
   * pruned like any finished job (`keep`: jobs_keep), so an id once listed never turns into ENOENT
   * while fewer than `keep` jobs finished after it. The writer still gets the error.
   * The writer's wait is bounded (wait-bound.ts): in the queue, by the runs ahead, each taking at
   * most the service's run limit now (`settings`, `config`) plus slack; from its start, by `run`.
   */
  schedule<T>(job: Job, run: (clock: WaitClock) => Promise<T>, settings: Pick<ServiceSettings, 'limits' | 'jobsKeep'>, config: RuntimeConfig): Promise<T> {
    const queueBoundMs = this.#limiter.waitBoundMs(runBoundMs(runTimes(settings.limits, config)));
    return waitAtMost(job.invocationId, queueBoundMs, (clock) =>
      this.#queued(
        job,
        () => {
          clock.placed();
          return run(clock);
        },
        settings.jobsKeep,
      ),
    );
  }

  async #queued<T>(job: Job, run: () => Promise<T>, keep: number): Promise<T> {
    this.#jobs.set(job.invocationId, job);
    try {
      return await this.#limiter.schedule(run);
    } catch (error) {
      if (job.progress.state === 'queued') {
        job.refusedAtTurn(error instanceof FsError ? `${error.errno}: ${error.message}` : (error as Error).message);
        // The writer gets the refusal, not a failed journal write's error.
        await Promise.all(this.ended(job, keep)).catch(() => undefined);
      }
      throw error;
    }
  }

  /**
   * Journals a job nobody waits for: at its start (so after a kill -9 it shows as interrupted
   * instead of vanishing), or ended as interrupted at start-up. A failed write must not become an
   * unhandled rejection.
   */
  journal(job: Job): void {
    this.#persist({ kind: 'job', job: job.record() }).catch(() => undefined);
  }

  /** An ended job: finished ones beyond `keep` are pruned; the job and the prunings are journaled. */
  ended(job: Job, keep: number): Promise<void>[] {
    // Those that never ran (refused at their turn, cancelled while queued) go first, but not this one: a
    // deep queue refused after a failure must not push that failure's run, and those before it, out of jobs/.
    const order = (j: Job): number => (j === job ? 2 : j.progress.startedMs === null ? 0 : 1);
    const finished = this.list()
      .filter((j) => j.isFinished)
      .sort((a, b) => order(a) - order(b));
    const pruned = finished.slice(0, Math.max(0, finished.length - keep)).map((old) => old.invocationId);
    for (const invocationId of pruned) this.#jobs.delete(invocationId);
    return [
      ...(this.#jobs.has(job.invocationId) ? [this.#persist({ kind: 'job', job: job.record() })] : []),
      ...pruned.map((invocationId) => this.#persist({ kind: 'job-removed', invocationId })),
    ];
  }

  /** Kills running jobs (`invocationId` undefined), or that one job; how many were cancelled. */
  cancel(invocationId?: string): number {
    let cancelled = 0;
    for (const job of this.#jobs.values()) {
      if ((invocationId === undefined ? job.progress.state === 'running' : job.invocationId === invocationId) && job.cancel()) cancelled++;
    }
    return cancelled;
  }

  /** Every queued and running job: the service is leaving or the node stopping. */
  cancelAll(): void {
    for (const job of this.#jobs.values()) job.cancel();
  }

  /**
   * Waits for the queue to empty, cancelling everything at `deadline` (epoch ms) or once `cut` aborts,
   * then for the cancelled runs only as long as their kill may take: a run nothing ends (a stopped
   * spawner never answers) must not keep the node from unmounting. Returns the jobs left unfinished.
   */
  async drain(deadline: number, cut?: AbortSignal): Promise<Job[]> {
    const idle = (): boolean => this.#limiter.running === 0 && this.#limiter.queued === 0;
    const pause = (): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, 20));
    while (!idle() && Date.now() < deadline && !cut?.aborted) await pause();
    this.cancelAll();
    const unfinished = (): Job[] => this.list().filter((job) => !job.isFinished);
    // The bound a writer gets past timeout_ms: the kill grace, then the pipes and the spawner's hop.
    const killedBy = Date.now() + Math.max(0, ...unfinished().map((job) => job.killGraceMs)) + WAIT_SLACK_MS;
    while (!idle() && Date.now() < killedBy) await pause();
    return idle() ? [] : unfinished();
  }

  /** Start-up: the journaled jobs; returns those the daemon's death interrupted (now ended as such). */
  restore(records: readonly JobRecord[]): JobRecord[] {
    const sorted = [...records].sort((a, b) => (a.invocationId < b.invocationId ? -1 : 1));
    for (const record of sorted) this.#jobs.set(record.invocationId, Job.fromRecord(record));
    return sorted.filter((record) => Job.wasInterrupted(record));
  }
}
