import { execa } from 'execa';
import { signalGroup, terminateGroup } from './process-group.js';
import type { DriverSpec, RunResult, RunState } from './run-result.js';

/** After the main process exits, its output pipes are closed once quiet this long (a setsid grandchild may hold them)... */
const PIPE_QUIET_MS = 100;
/** ...and this long after the exit at the latest: a grandchild that keeps writing does not hold the invocation. */
const PIPE_DRAIN_MAX_MS = 2000;
/** A check this late after it was queued may have had the loop held up after its poll: it waits for another. */
const HELD_UP_MS = 10;

/** Why a run was stopped, the first reason winning: its timeout, a cancel, or its output past max_output_bytes. */
type StopReason = 'timeout' | 'cancelled' | 'capped';

/**
 * Runs one driver to completion: no shell, its own process group, stdin = payload then EOF, output
 * capped, `timeoutMs` enforced by SIGTERM then SIGKILL of the whole group. The first termination
 * reason wins (execa's habit). The only execa importer in the project.
 */
export async function runDriver(spec: DriverSpec, signal?: AbortSignal): Promise<RunResult> {
  const startedMs = Date.now();
  const started = performance.now();
  let reason: StopReason | undefined;
  const timers: NodeJS.Timeout[] = [];

  const subprocess = execa(spec.file, spec.args, {
    cwd: spec.cwd,
    env: { ...spec.env, ACHERON_INVOCATION_ID: spec.invocationId },
    extendEnv: false,
    input: spec.input,
    encoding: 'buffer',
    stripFinalNewline: false,
    detached: true,
    reject: false,
    maxBuffer: spec.maxOutputBytes,
    cleanup: true,
    ...(spec.uid === undefined ? {} : { uid: spec.uid }),
    ...(spec.gid === undefined ? {} : { gid: spec.gid }),
  });
  const pid = subprocess.pid;
  let drain: PipeDrain | undefined;
  const terminate = (why: StopReason): void => {
    if (drain) return; // it has exited: the run is over, whatever its pipes still bring
    reason ??= why;
    timers.push(terminateGroup(pid, spec.killGraceMs));
  };

  timers.push(setTimeout(() => terminate('timeout'), spec.timeoutMs));
  const onAbort = (): void => terminate('cancelled');
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  // A grandchild that escaped the group may hold our pipes open: stop waiting for them once they are quiet.
  subprocess.once('exit', () => (drain = new PipeDrain(subprocess)));
  // At max_output_bytes execa stops reading (it destroys the stream: closed, never ended) but leaves
  // the driver running: one that stops writing then would run on to its timeout.
  for (const stream of [subprocess.stdout, subprocess.stderr])
    stream?.once('close', () => {
      if (!stream.readableEnded) terminate('capped');
    });

  const result = await subprocess;
  for (const timer of timers) clearTimeout(timer);
  drain?.stop();
  signal?.removeEventListener('abort', onAbort);
  // Whatever the driver left behind in its group is a stray: the invocation is over.
  signalGroup(pid, 'SIGKILL');

  const stdout = toBuffer(result.stdout);
  const stderr = toBuffer(result.stderr);
  const exitCode = typeof result.exitCode === 'number' ? result.exitCode : null;
  const exitSignal = result.signal ?? null;
  const outputCapped = result.isMaxBuffer === true || reason === 'capped';
  const spawnFailed = pid === undefined || (exitCode === null && exitSignal === null && !outputCapped && reason === undefined && result.failed);
  const state: RunState = reason === 'timeout' || reason === 'cancelled' ? reason : exitCode === 0 && !outputCapped ? 'ok' : 'error';
  return {
    state,
    exitCode,
    signal: exitSignal,
    stdout,
    stderr,
    outputCapped,
    spawnFailed,
    startedMs,
    durationMs: Math.round(performance.now() - started),
    shortMessage: describe({
      state,
      spec,
      exitCode,
      exitSignal,
      // The stream that reached the cap (each has its own): named, as the wasm runtime names it.
      cappedOn: !outputCapped ? undefined : stdout.length >= spec.maxOutputBytes ? 'stdout' : stderr.length >= spec.maxOutputBytes ? 'stderr' : undefined,
      outputCapped,
      spawnFailed,
      cause: result.originalMessage ?? result.shortMessage,
    }),
  };
}

/**
 * Closes a driver's output pipes once PIPE_QUIET_MS pass without output, or PIPE_DRAIN_MAX_MS after
 * the exit. Quiet is judged after a poll of the event loop (setImmediate), so output that arrived
 * while the loop was held up (a busy spawner) is read first instead of cut off; and when the loop
 * was held up between that poll and the check (another callback of the same check phase), the
 * check waits for one more poll before it decides.
 */
class PipeDrain {
  readonly #subprocess: Pick<ReturnType<typeof execa>, 'stdout' | 'stderr'>;
  readonly #deadline = performance.now() + PIPE_DRAIN_MAX_MS;
  #outputSeen = false;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;

  constructor(subprocess: Pick<ReturnType<typeof execa>, 'stdout' | 'stderr'>) {
    this.#subprocess = subprocess;
    const onData = (): void => void (this.#outputSeen = true);
    subprocess.stdout?.on('data', onData);
    subprocess.stderr?.on('data', onData);
    this.#wait();
  }

  /** The run is over: nothing more to close. */
  stop(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
  }

  #wait(): void {
    this.#timer = setTimeout(() => this.#checkAfterPoll(false), PIPE_QUIET_MS);
  }

  #checkAfterPoll(again: boolean): void {
    const queued = performance.now();
    this.#immediate = setImmediate(() => this.#check(queued, again));
  }

  /**
   * `queued`: when this check was queued; the loop's poll for I/O came between then and now. Once
   * per quiet window (a spawner whose every turn is slow must not wait out PIPE_DRAIN_MAX_MS).
   */
  #check(queued: number, again: boolean): void {
    const now = performance.now();
    if (!again && now - queued > HELD_UP_MS && now < this.#deadline) {
      this.#checkAfterPoll(true);
      return;
    }
    if (this.#outputSeen && now < this.#deadline) {
      this.#outputSeen = false;
      this.#wait();
      return;
    }
    this.#subprocess.stdout?.destroy();
    this.#subprocess.stderr?.destroy();
  }
}

function toBuffer(output: unknown): Buffer {
  if (output instanceof Uint8Array) return Buffer.from(output.buffer, output.byteOffset, output.byteLength);
  if (typeof output === 'string') return Buffer.from(output);
  return Buffer.alloc(0);
}

function describe(o: {
  state: RunState;
  spec: DriverSpec;
  exitCode: number | null;
  exitSignal: string | null;
  outputCapped: boolean;
  cappedOn: 'stdout' | 'stderr' | undefined;
  spawnFailed: boolean;
  cause: string | undefined;
}): string {
  const what = o.spec.file;
  if (o.state === 'ok') return `${what} exited 0`;
  if (o.state === 'timeout') return `${what} timed out after ${o.spec.timeoutMs} ms and was killed`;
  if (o.state === 'cancelled') return `${what} was cancelled`;
  if (o.spawnFailed) return `${what} could not be started: ${oneLine(o.cause ?? 'spawn failed')}`;
  if (o.outputCapped) return `${what} exceeded max_output_bytes (${o.spec.maxOutputBytes})${o.cappedOn ? ` on ${o.cappedOn}` : ''} and was killed`;
  if (o.exitSignal) return `${what} was killed by ${o.exitSignal}`;
  return `${what} exited with code ${o.exitCode}`;
}

function oneLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? '';
}
