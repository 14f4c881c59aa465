import type { DriverSpec, RunResult } from './run-result.js';

/** Messages between the daemon and its spawner process (Node IPC, advanced serialization). */
export type SpawnerRequest =
  | { type: 'run'; id: number; spec: DriverSpec }
  | { type: 'cancel'; id: number }
  | { type: 'restart-persistent'; key: string; why: string };
export type SpawnerReply = { type: 'result'; id: number; result: RunResult };
