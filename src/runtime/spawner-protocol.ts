import type { DriverSpec, RunResult } from './run-result.js';

/** A spec without its environment: `env` travels once per environment object, later ones name it by `envId`. */
export interface SpecFields {
  spec: Omit<DriverSpec, 'env'>;
  envId: number;
  env?: Record<string, string>;
}

/** Messages between the daemon and its spawner process (Node IPC, advanced serialization). */
export type SpawnerRequest =
  | ({ type: 'run'; id: number } & SpecFields)
  | { type: 'cancel'; id: number }
  /**
   * Start a persistent driver whose stdin and stdout are a connection to `socketPath` (the
   * daemon's), which first carries `hello` (one line naming the launch, with the daemon's secret).
   */
  | ({ type: 'launch'; launchId: number; socketPath: string; hello: string } & SpecFields)
  | { type: 'terminate'; launchId: number; graceMs: number };

export type SpawnerReply =
  | { type: 'result'; id: number; result: RunResult }
  /** A launched driver is gone; `how` as DriverProcess.exited says it. */
  | { type: 'exited'; launchId: number; how: string };
