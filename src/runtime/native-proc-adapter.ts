import { serviceEnv } from './driver-env.js';
import type { RunResult, RunState } from './run-result.js';
import type { DriverAdapter } from './service-settings.js';

export interface NativeProcOptions {
  nodeId: string;
  serviceId: string;
  executablePath: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  envPassthrough: string[];
  timeoutMs: number;
  killGraceMs: number;
  maxOutputBytes: number;
  uid?: number;
  gid?: number;
  /** runtime.mode "persistent": requests go to one long-lived driver per service. */
  persistent?: boolean;
}

/** Driver ABI v1, spawn per call: stdin payload, stdout result, stderr diagnostics, exit code. */
export function nativeProcAdapter(options: NativeProcOptions, inherited: NodeJS.ProcessEnv = process.env): DriverAdapter {
  const env = serviceEnv({
    inherited,
    passthrough: options.envPassthrough,
    extra: options.env,
    identity: { nodeId: options.nodeId, serviceId: options.serviceId },
  });
  return {
    spec(raw, _value, invocationId) {
      return {
        file: options.executablePath,
        args: options.args,
        cwd: options.cwd,
        env,
        invocationId,
        input: raw,
        timeoutMs: options.timeoutMs,
        killGraceMs: options.killGraceMs,
        maxOutputBytes: options.maxOutputBytes,
        ...(options.uid === undefined ? {} : { uid: options.uid }),
        ...(options.gid === undefined ? {} : { gid: options.gid }),
        ...(options.persistent ? { persistentKey: options.serviceId } : {}),
      };
    },
    interpret: interpretRun,
  };
}

/** Exit 0 → the result is stdout; otherwise last_error.txt gets stderr, or what we know when we killed it. */
export function interpretRun(run: RunResult): { state: RunState; result?: Buffer; error?: string } {
  if (run.state === 'ok') return { state: 'ok', result: run.stdout };
  const stderr = run.stderr.toString('utf8');
  const plainExit = run.state === 'error' && !run.outputCapped && !run.spawnFailed && run.signal === null;
  if (plainExit && stderr.trim() !== '') return { state: run.state, error: stderr };
  return { state: run.state, error: stderr.trim() === '' ? run.shortMessage : `${run.shortMessage}\n${stderr}` };
}
