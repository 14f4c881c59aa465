import { FsError } from '../errors/errno.js';
import { serviceEnv } from './driver-env.js';
import type { RunResult, RunState } from './run-result.js';
import type { DriverAdapter } from './service-settings.js';

export const TERMINAL_DEFAULT_MAX_OUTPUT_BYTES = 131072;

/**
 * The built-in `terminal-<id>` provider (SPEC §4): `{"argv":[...]}` or `{"command":"..."}` (run by
 * /bin/sh -c), optional `cwd` and `max_output_bytes`. A command that ran is a successful invocation
 * whose result carries its exit code; only spawn failures, timeouts and cancels are errors.
 */
export function terminalAdapter(options: {
  nodeId: string;
  serviceId: string;
  terminalId: string;
  cwd: string;
  timeoutMs: number;
  killGraceMs: number;
  /** Whom commands run as (the node's --driver-user when it runs as root); unset: as the node. */
  uid?: number;
  gid?: number;
}): DriverAdapter {
  const env = serviceEnv({ inherited: process.env, passthrough: [], extra: {}, identity: { nodeId: options.nodeId, serviceId: options.serviceId } });
  return {
    spec(_raw, value, invocationId) {
      const { argv, command, cwd, max_output_bytes: maxOutput } = value;
      let file: string;
      let args: string[];
      if (Array.isArray(argv) && argv.length > 0 && argv.every((a) => typeof a === 'string')) {
        [file, ...args] = argv as [string, ...string[]];
      } else if (typeof command === 'string' && command !== '') {
        file = '/bin/sh';
        args = ['-c', command];
      } else {
        throw new FsError('EINVAL', 'terminal payload needs "argv" (non-empty array of strings) or "command" (non-empty string)');
      }
      if (cwd !== undefined && typeof cwd !== 'string') throw new FsError('EINVAL', 'terminal payload: /cwd must be a string');
      if (maxOutput !== undefined && !(Number.isInteger(maxOutput) && (maxOutput as number) > 0)) {
        throw new FsError('EINVAL', 'terminal payload: /max_output_bytes must be a positive integer');
      }
      return {
        file,
        args,
        cwd: (cwd as string | undefined) ?? options.cwd,
        env,
        invocationId,
        input: Buffer.alloc(0),
        timeoutMs: options.timeoutMs,
        killGraceMs: options.killGraceMs,
        maxOutputBytes: (maxOutput as number | undefined) ?? TERMINAL_DEFAULT_MAX_OUTPUT_BYTES,
        ...(options.uid === undefined ? {} : { uid: options.uid }),
        ...(options.gid === undefined ? {} : { gid: options.gid }),
      };
    },
    interpret(run: RunResult): { state: RunState; result?: Buffer; error?: string } {
      if (run.spawnFailed || run.state === 'timeout' || run.state === 'cancelled') {
        return { state: run.state === 'ok' ? 'error' : run.state, error: run.shortMessage };
      }
      const result = {
        service: 'terminal',
        terminal_id: options.terminalId,
        operation: 'exec',
        ok: run.exitCode === 0,
        state: run.signal || run.outputCapped ? 'terminated' : 'exited',
        exit_code: run.exitCode,
        stdout: run.stdout.toString('utf8'),
        stderr: run.stderr.toString('utf8'),
      };
      return { state: 'ok', result: Buffer.from(JSON.stringify(result) + '\n') };
    },
  };
}
