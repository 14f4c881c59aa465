import { FsError } from '../errors/errno.js';

/** Beyond timeout_ms + kill grace: the pipes' drain, the spawner's hop, a persistent restart, the journal. */
export const WAIT_SLACK_MS = 2000;

/**
 * SPEC §3: a writer waits at most queue time + timeout_ms + kill grace (plus WAIT_SLACK_MS for the
 * pipes, the spawner and the journal); past that its close() gets ETIMEDOUT while the run goes on,
 * and its outcome is recorded when it ends. `run` calls `started` with the bound once the job runs.
 */
export function waitAtMost<T>(invocationId: string, run: (started: (boundMs: number) => void) => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const started = (boundMs: number): void => {
      timer = setTimeout(
        () =>
          reject(
            new FsError(
              'ETIMEDOUT',
              `invocation ${invocationId} is still running ${boundMs} ms after it started (timeout_ms + kill_grace_ms + ${WAIT_SLACK_MS} ms); it goes on, and jobs/${invocationId}/status.json will show how it ended`,
            ),
          ),
        boundMs,
      );
    };
    run(started).then(
      (outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error);
      },
    );
  });
}
