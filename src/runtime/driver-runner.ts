import type { DriverSpec, RunResult } from './run-result.js';

/** Runs drivers: the forked DriverSpawner in the daemon, runDriver itself in unit tests. */
export interface DriverRunner {
  run(spec: DriverSpec, signal?: AbortSignal): Promise<RunResult>;
  /** Persistent drivers: restart (control/restart) or stop (service removed) the one under `key`. */
  restartPersistent?(key: string, why: string): void;
}
