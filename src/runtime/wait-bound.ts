import { FsError } from '../errors/errno.js';

/** Beyond timeout_ms + kill grace: the pipes' drain, the spawner's hop, a persistent restart, the journal. */
export const WAIT_SLACK_MS = 2000;

/** A writer's bound once its run started: the run's timeout_ms + kill_grace_ms, plus the slack. */
export function runBoundMs(run: { timeoutMs: number; killGraceMs: number }): number {
  return run.timeoutMs + run.killGraceMs + WAIT_SLACK_MS;
}

/** What a job tells its writer's bound as it goes. */
export interface WaitClock {
  /** The job has its place among max_concurrency: the queue's bound is over. */
  placed(): void;
  /** The driver started; `boundMs` from now the writer gets ETIMEDOUT. */
  started(boundMs: number): void;
}

/**
 * SPEC §3: a writer waits at most queue time + timeout_ms + kill grace (plus WAIT_SLACK_MS for the
 * pipes, the spawner and the journal); past that its close() gets ETIMEDOUT while the run goes on,
 * and its outcome is recorded when it ends. Queue time is bounded too (`queueBoundMs`, 0: the job
 * has a place at once): the runs ahead, each stopped at its own bound, unless something below them
 * is stuck (a stopped spawner); then a queued writer gets ETIMEDOUT as well and its job stays queued.
 */
export function waitAtMost<T>(invocationId: string, queueBoundMs: number, run: (clock: WaitClock) => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timeout = (message: string, ms: number): NodeJS.Timeout => setTimeout(() => reject(new FsError('ETIMEDOUT', message)), ms);
    const whatNext = `it goes on, and jobs/${invocationId}/status.json will show how it ended`;
    const queueTimer =
      queueBoundMs > 0
        ? timeout(
            `invocation ${invocationId} is still queued ${queueBoundMs} ms after its commit, behind runs that should have ended by then (each within timeout_ms + kill_grace_ms + ${WAIT_SLACK_MS} ms): something below the drivers is stuck (a stopped spawner, a hung disk); ${whatNext}`,
            queueBoundMs,
          )
        : undefined;
    let runTimer: NodeJS.Timeout | undefined;
    const clock: WaitClock = {
      placed: () => clearTimeout(queueTimer),
      started: (boundMs) => {
        runTimer = timeout(
          `invocation ${invocationId} is still running ${boundMs} ms after it started (timeout_ms + kill_grace_ms + ${WAIT_SLACK_MS} ms); ${whatNext}`,
          boundMs,
        );
      },
    };
    const settle = (): void => {
      clearTimeout(queueTimer);
      clearTimeout(runTimer);
    };
    run(clock).then(
      (outcome) => {
        settle();
        resolve(outcome);
      },
      (error: unknown) => {
        settle();
        reject(error as Error);
      },
    );
  });
}
