import { compactJsonLine } from '../errors/json-document.js';
import { INVOKE_FILE } from '../protocol/service-files.js';
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

/**
 * Driver ABI v1, spawn per call: stdin payload, stdout result, stderr diagnostics, exit code. With
 * `persistent`, the same spec goes to the service's PersistentDriver instead, its payload as a JSON line.
 */
export function nativeProcAdapter(options: NativeProcOptions, inherited: NodeJS.ProcessEnv = process.env): DriverAdapter {
  const env = serviceEnv({
    inherited,
    passthrough: options.envPassthrough,
    extra: options.env,
    identity: { nodeId: options.nodeId, serviceId: options.serviceId },
  });
  return {
    spec(raw, value, invocationId) {
      return {
        file: options.executablePath,
        args: options.args,
        cwd: options.cwd,
        env,
        invocationId,
        // Persistent: the payload goes into a request line, so it must be one line of JSON; made here, when
        // the job's turn comes, so that a payload that cannot be is refused (EINVAL) before any driver is involved.
        input: options.persistent ? Buffer.from(compactJsonLine(value, INVOKE_FILE, "a persistent driver's request line")) : raw,
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

/**
 * How much of a failed run's stderr the error text keeps (last_error.txt, the job's status.json
 * `error`): every copy is journaled, and a driver at its output cap would write megabytes per failure
 * (a NUL is six bytes in JSON). The whole stderr stays in jobs/<id>/stderr.txt.
 */
export const ERROR_STDERR_MAX_BYTES = 64 * 1024;

/** Exit 0 → the result is stdout; otherwise last_error.txt gets stderr, or what we know when we killed it. */
export function interpretRun(run: RunResult, invocationId: string): { state: RunState; result?: Buffer; error?: string } {
  if (run.state === 'ok') return { state: 'ok', result: run.stdout };
  const stderr = errorText(run.stderr, invocationId);
  // A failure the runner says no more of than its exit code (or, a persistent driver's ok:false, than
  // its error, which is the stderr): stderr alone says why. A wasm trap or its memory cap the runner
  // says more of: kept before stderr.
  const saysMore = !run.shortMessage.endsWith(` exited with code ${run.exitCode}`) && run.shortMessage.trim() !== stderr.trim();
  const plainExit = run.state === 'error' && !run.outputCapped && !run.spawnFailed && run.signal === null && !saysMore;
  if (plainExit && stderr.trim() !== '') return { state: run.state, error: stderr };
  return { state: run.state, error: stderr.trim() === '' ? run.shortMessage : `${run.shortMessage}\n${stderr}` };
}

/** stderr as error text: up to ERROR_STDERR_MAX_BYTES (whole characters), then how much more there is and where. */
function errorText(stderr: Buffer, invocationId: string): string {
  if (stderr.length <= ERROR_STDERR_MAX_BYTES) return stderr.toString('utf8');
  let end = ERROR_STDERR_MAX_BYTES;
  // Not inside a character: back to the start of the one the cut would split (UTF-8 continuation
  // bytes are 10xxxxxx; a character has at most three, so bytes that are not UTF-8 are cut anyway).
  while (end > ERROR_STDERR_MAX_BYTES - 3 && ((stderr[end] as number) & 0xc0) === 0x80) end--;
  return `${stderr.toString('utf8', 0, end)}\n… ${stderr.length - end} more bytes of stderr: the whole of it is in jobs/${invocationId}/stderr.txt while the job is kept (runtime.jobs_keep)\n`;
}
