import type { DriverSpec, RunResult } from './run-result.js';

/** Messages between the daemon and its spawner process (Node IPC, advanced serialization). */
export type SpawnerRequest =
  /** `env` travels once per environment object; later runs name it by `envId` only. */
  | { type: 'run'; id: number; spec: Omit<DriverSpec, 'env'>; envId: number; env?: Record<string, string> }
  | { type: 'cancel'; id: number }
  | { type: 'restart-persistent'; key: string; why: string };
export type SpawnerReply = { type: 'result'; id: number; result: RunResult };
