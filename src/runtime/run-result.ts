/** What the spawner runs: everything is resolved by the daemon, nothing is looked up here. */
export interface DriverSpec {
  file: string;
  args: string[];
  cwd: string;
  /** The service's environment, one shared object per service (see serviceEnv). */
  env: Record<string, string>;
  /** Added to the environment as ACHERON_INVOCATION_ID (persistent drivers get it per request). */
  invocationId: string;
  /** Spawn mode: the driver's stdin, the writer's exact bytes. With `persistentKey`: the payload as one line of compact JSON, its request line's `payload`. */
  input: Buffer;
  timeoutMs: number;
  /** Between SIGTERM and SIGKILL of the driver's process group. */
  killGraceMs: number;
  /** Cap for stdout and for stderr, each. */
  maxOutputBytes: number;
  uid?: number;
  gid?: number;
  /** runtime.mode "persistent": the long-lived driver this request goes to (the service id). */
  persistentKey?: string;
}

export type RunState = 'ok' | 'error' | 'timeout' | 'cancelled';

/** One shape for every outcome (execa's result/error): runDriver never rejects because a driver failed. */
export interface RunResult {
  state: RunState;
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  outputCapped: boolean;
  spawnFailed: boolean;
  startedMs: number;
  durationMs: number;
  /** One line saying what happened: the first line of last_error.txt, CLI output. */
  shortMessage: string;
}

/** An outcome with no process output: never started, cancelled while queued, or a persistent driver's answer. */
export function outputlessRun(o: { state: RunState; shortMessage: string; spawnFailed?: boolean; startedMs?: number; durationMs?: number }): RunResult {
  return {
    state: o.state,
    exitCode: null,
    signal: null,
    stdout: Buffer.alloc(0),
    stderr: Buffer.alloc(0),
    outputCapped: false,
    spawnFailed: o.spawnFailed ?? false,
    startedMs: o.startedMs ?? Date.now(),
    durationMs: o.durationMs ?? 0,
    shortMessage: o.shortMessage,
  };
}
