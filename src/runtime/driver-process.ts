import type { Socket } from 'node:net';
import { execa, type ResultPromise } from 'execa';
import { terminateGroup } from './process-group.js';
import type { DriverSpec } from './run-result.js';

const STDERR_TAIL_BYTES = 4096;

/**
 * A long-lived driver process (SPEC §4 persistent mode), wherever it was started: in this process,
 * or by the spawner with its stdin and stdout on a socket to this process (DriverSpawner).
 */
export interface DriverProcess {
  /** Writes to the driver's stdin. */
  write(data: string): void;
  /** Every chunk the driver writes to stdout, as bytes (a chunk may end inside a UTF-8 character). */
  onStdout(listener: (chunk: Buffer) => void): void;
  /** Resolves once the process is gone, saying how: `exited with code 1: <last stderr lines>`. */
  readonly exited: Promise<string>;
  /** Resolves at EOF on its stdout: it exited, or closed fd 1 while it may run on. */
  readonly stdoutEnded: Promise<void>;
  /** SIGTERM to its process group now, SIGKILL after `graceMs`. */
  terminate(graceMs: number): void;
}

export type LaunchDriver = (spec: DriverSpec) => DriverProcess;

/**
 * Starts a persistent driver with execa: no shell, its own process group, the service's
 * environment. Its stdin and stdout are pipes to this process, or `sockets`, which the child
 * inherits (the spawner hands a driver straight to the daemon that way: one connection each, so
 * that a driver closing its stdout is seen as EOF). `exited` quotes the last three lines of stderr.
 */
export function startDriverProcess(spec: DriverSpec, sockets?: { stdin: Socket; stdout: Socket }): { child: ResultPromise; exited: Promise<string> } {
  const child = execa(spec.file, spec.args, {
    cwd: spec.cwd,
    env: spec.env,
    extendEnv: false,
    detached: true,
    buffer: false,
    reject: false,
    cleanup: true,
    stdin: sockets?.stdin ?? 'pipe',
    stdout: sockets?.stdout ?? 'pipe',
    stderr: 'pipe',
    encoding: 'utf8',
    ...(spec.uid === undefined ? {} : { uid: spec.uid }),
    ...(spec.gid === undefined ? {} : { gid: spec.gid }),
  });
  let stderrTail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => (stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES)));
  const exited = child.then((outcome) => {
    const how = outcome.signal
      ? `killed by ${outcome.signal}`
      : outcome.failed && outcome.exitCode === undefined
        ? `could not be started: ${outcome.originalMessage ?? outcome.shortMessage}`
        : `exited with code ${outcome.exitCode}`;
    const lastLines = stderrTail
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .slice(-3);
    return `${how}${lastLines.length > 0 ? `: ${lastLines.join(' | ')}` : ''}`;
  });
  return { child, exited };
}

/** A persistent driver as a child of this process, talking over pipes. */
export const launchLocal: LaunchDriver = (spec) => {
  const { child, exited } = startDriverProcess(spec);
  child.stdin?.on('error', () => undefined);
  return {
    write: (data) => void child.stdin?.write(data),
    onStdout: (listener) => void child.stdout?.on('data', listener),
    exited,
    stdoutEnded: new Promise((resolve) => child.stdout?.once('end', resolve)),
    terminate: (graceMs) => void terminateGroup(child.pid, graceMs),
  };
};
