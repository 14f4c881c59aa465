import type { DriverSpec, RunResult } from './run-result.js';

/** Runs drivers: the forked DriverSpawner in the daemon, runDriver itself in unit tests. */
export interface DriverRunner {
  run(spec: DriverSpec, signal?: AbortSignal): Promise<RunResult>;
  /** Persistent drivers: restart (control/restart) or stop (service removed) the one under `key`. */
  restartPersistent?(key: string, why: string): void;
}

/**
 * A runner with a queue of its own (the wasm pool's workers): it calls `started` when the driver
 * actually starts, and never for a run that ended while it waited (cancelled, the pool closing).
 */
export interface QueuingRunner {
  run(spec: DriverSpec, signal: AbortSignal, started: () => void): Promise<RunResult>;
}
