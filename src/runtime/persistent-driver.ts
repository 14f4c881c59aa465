import { setTimeout as sleep } from 'node:timers/promises';
import { compactJson } from '../errors/json-document.js';
import { launchLocal, type DriverProcess, type LaunchDriver } from './driver-process.js';
import { outputlessRun, type DriverSpec, type RunResult, type RunState } from './run-result.js';

interface Pending {
  resolve(result: RunResult): void;
  timer: NodeJS.Timeout;
  startedMs: number;
  started: number;
}

/** Restart delays after a driver that dies young: doubling up to the cap, reset once it lived a while. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;
const STABLE_AFTER_MS = 2000;
/**
 * A driver that exits closes its stdout too, and its exit (with its stderr) may be reported a moment
 * later: EOF on stdout counts as "closed its stdout" only if no exit follows within this.
 */
const EXIT_AFTER_EOF_MS = 1000;

/**
 * `runtime.mode: "persistent"` (SPEC §4): one long-lived driver per service speaking JSON lines,
 * `{"id","payload"}` in and `{"id","ok","result"|"error"}` out, several requests in flight. A
 * request past its timeout (or cancelled once sent) kills and restarts the process, failing the
 * others with a clear error; a driver that dies, or closes its stdout, is restarted on the next
 * request, with backoff if it dies young.
 * `launch` starts the process: here (pipes), or through the spawner (DriverSpawner), which hands
 * the daemon the driver's stdin and stdout so requests never pass through the spawner.
 */
export class PersistentDriver {
  #spec: DriverSpec;
  #launch: LaunchDriver;
  #child: DriverProcess | undefined;
  #pending = new Map<string, Pending>();
  #nextId = 1;
  /** stdout bytes after the last newline: the start of an answer still arriving. */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** stdout lines of the current process that were not JSON: named when it dies. */
  #ignoredLines = 0;
  #backoffMs = 0;
  #notBeforeMs = 0;
  #childStartedMs = 0;

  constructor(spec: DriverSpec, launch: LaunchDriver = launchLocal) {
    this.#spec = spec;
    this.#launch = launch;
  }

  /**
   * Whether two specs start the same process; a different one (a reload) restarts it. Compared by
   * value: every reload of a changed manifest builds a new environment object, equal to the old one
   * unless the environment itself changed, and editing `timeout_ms` or `help_md` must not restart.
   */
  static sameProcess(a: DriverSpec, b: DriverSpec): boolean {
    return a.file === b.file && a.cwd === b.cwd && a.uid === b.uid && a.gid === b.gid && sameList(a.args, b.args) && sameEnv(a.env, b.env);
  }

  async run(spec: DriverSpec, signal?: AbortSignal): Promise<RunResult> {
    if (!PersistentDriver.sameProcess(spec, this.#spec)) this.restart('its settings changed');
    // The latest kill_grace_ms and max_output_bytes (config.json, a reload) apply from now on.
    this.#spec = spec;
    const startedMs = Date.now();
    const started = performance.now();
    const wait = this.#notBeforeMs - startedMs;
    // A listener added to an aborted signal never fires: a cancel before the request is sent (or
    // during the backoff) must end it here, unsent, without touching a process another request started.
    if (wait > 0) await sleep(Math.min(wait, spec.timeoutMs), undefined, { signal }).catch(() => undefined);
    if (signal?.aborted) {
      return result({ state: 'cancelled', startedMs, started, message: 'the request was cancelled before it was sent to the persistent driver' });
    }
    // The backoff took all of timeout_ms: never sent (a process started only to be killed would say it did not answer).
    if (wait >= spec.timeoutMs) {
      const message = `${spec.file} (persistent) was still waiting out its restart backoff after timeout_ms (${spec.timeoutMs} ms): the request was never sent`;
      return result({ state: 'timeout', startedMs, started, message });
    }
    const child = this.#ensureStarted();
    const id = String(this.#nextId++);
    // The input is already one line of JSON (the adapter made it, refusing a payload that cannot be).
    const line = `{"id":${JSON.stringify(id)},"invocation_id":${JSON.stringify(spec.invocationId)},"payload":${spec.input.toString('utf8')}}\n`;
    return new Promise<RunResult>((resolve) => {
      const end = (state: RunState, message: string): void => {
        this.#settle(id, result({ state, startedMs, started, message }));
        if (state === 'timeout') this.restart(`request ${id} timed out`);
        // control/cancel and a stop abort all their jobs in one synchronous loop: restarting after it
        // lets each request it cancelled end `cancelled` by its own listener, not `error` by the
        // restart. Not a process that replaced this one meanwhile.
        else queueMicrotask(() => this.#child === child && this.restart(`request ${id} was cancelled`));
      };
      // A restart backoff waited above counts toward timeout_ms.
      const timer = setTimeout(
        () => end('timeout', `${spec.file} (persistent) did not answer request ${id} within ${spec.timeoutMs} ms; the driver was restarted`),
        Math.max(0, spec.timeoutMs - (Date.now() - startedMs)),
      );
      this.#pending.set(id, { resolve, timer, startedMs, started });
      signal?.addEventListener('abort', () => this.#pending.has(id) && end('cancelled', `request ${id} was cancelled; the persistent driver was restarted`), {
        once: true,
      });
      child.write(line);
    });
  }

  /** Kills the process (its whole group); requests in flight fail naming `why`. */
  restart(why: string): void {
    const child = this.#child;
    this.#child = undefined;
    child?.terminate(this.#spec.killGraceMs);
    this.#failAll(`the persistent driver was restarted: ${why}`);
  }

  /** Like restart, but resolves once the process has exited (after SIGKILL if it ignored SIGTERM). */
  async stop(why: string): Promise<void> {
    const child = this.#child;
    this.restart(why);
    await child?.exited;
  }

  #ensureStarted(): DriverProcess {
    if (this.#child) return this.#child;
    const spec = this.#spec;
    const child = this.#launch(spec);
    this.#child = child;
    this.#childStartedMs = Date.now();
    this.#dropPartial();
    this.#ignoredLines = 0;
    child.onStdout((chunk) => this.#onStdout(child, chunk));
    void child.exited.then((how) => this.#lost(child, how));
    void child.stdoutEnded.then(() => {
      // No answer can come any more: without this the requests in flight would wait out timeout_ms.
      const timer = setTimeout(() => {
        if (this.#child !== child) return;
        child.terminate(this.#spec.killGraceMs);
        this.#lost(child, 'closed its stdout but kept running; it was stopped');
      }, EXIT_AFTER_EOF_MS);
      void child.exited.then(() => clearTimeout(timer));
    });
    return child;
  }

  /** The process is gone on its own (or made useless by it): fail its requests; the next run starts another, after a backoff if it died young. */
  #lost(child: DriverProcess, how: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    const lived = Date.now() - this.#childStartedMs;
    this.#backoffMs = lived > STABLE_AFTER_MS ? 0 : Math.min(MAX_BACKOFF_MS, Math.max(FIRST_BACKOFF_MS, this.#backoffMs * 2));
    this.#notBeforeMs = Date.now() + this.#backoffMs;
    const ignored = this.#ignoredLines > 0 ? ` (${this.#ignoredLines} stdout line(s) that were not JSON objects were ignored)` : '';
    this.#failAll(`${this.#spec.file} (persistent) ${how}${ignored}`);
  }

  /** Splits stdout into answer lines on the newline byte; the cap counts bytes, as for spawn mode. */
  #onStdout(child: DriverProcess, chunk: Buffer): void {
    let start = 0;
    let newline: number;
    // What a replaced process still drains must not be glued onto its successor's first answer.
    while (this.#child === child && (newline = chunk.indexOf(0x0a, start)) >= 0) {
      const line = this.#take(chunk.subarray(start, newline));
      start = newline + 1;
      if (line.length > this.#spec.maxOutputBytes) this.#overflow();
      else this.#onAnswer(line.toString('utf8'));
    }
    if (this.#child !== child || start === chunk.length) return;
    this.#partial.push(chunk.subarray(start));
    this.#partialBytes += chunk.length - start;
    if (this.#partialBytes > this.#spec.maxOutputBytes) this.#overflow();
  }

  /** The pending start of a line plus its end. */
  #take(end: Buffer): Buffer {
    const line = this.#partial.length === 0 ? end : Buffer.concat([...this.#partial, end]);
    this.#dropPartial();
    return line;
  }

  #dropPartial(): void {
    this.#partial = [];
    this.#partialBytes = 0;
  }

  #overflow(): void {
    this.#dropPartial();
    this.restart(`an answer exceeded max_output_bytes (${this.#spec.maxOutputBytes})`);
  }

  #onAnswer(line: string): void {
    let answer: { id?: unknown; ok?: unknown; result?: unknown; error?: unknown };
    try {
      answer = JSON.parse(line) as typeof answer;
    } catch {
      this.#ignoredLines++;
      return;
    }
    // `null` parses too, and reading its id threw in a socket's data handler: that ended the daemon.
    if (answer === null || typeof answer !== 'object') {
      this.#ignoredLines++;
      return;
    }
    const id = typeof answer.id === 'string' || typeof answer.id === 'number' ? String(answer.id) : undefined;
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!pending || id === undefined) return;
    const answered = `${this.#spec.file} (persistent) answered request ${id}`;
    // Serialized again: JSON.parse took the line at any depth, and a throw here would end the daemon
    // (this runs in a socket's data handler), so a value nested too deeply is the driver's failure.
    const stored = answer.ok === true ? compactJson(answer.result ?? {}) : undefined;
    if (stored !== undefined) {
      this.#settle(id, {
        ...result({ state: 'ok', startedMs: pending.startedMs, started: pending.started, message: answered }),
        stdout: Buffer.from(stored + '\n'),
      });
      return;
    }
    const error =
      answer.ok === true
        ? `${answered} with a result nested too deeply to be stored`
        : typeof answer.error === 'string'
          ? answer.error
          : answer.error === undefined
            ? `${answered} with ok:false and no error`
            : (compactJson(answer.error) ?? `${answered} with ok:false and an error nested too deeply to be shown`);
    this.#settle(id, { ...result({ state: 'error', startedMs: pending.startedMs, started: pending.started, message: error }), stderr: Buffer.from(error) });
  }

  #settle(id: string, outcome: RunResult): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(outcome);
  }

  #failAll(message: string): void {
    for (const [id, pending] of this.#pending) {
      this.#settle(id, result({ state: 'error', startedMs: pending.startedMs, started: pending.started, message }));
    }
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

/** One shared object per service settings, so identity settles it until a reload builds a new one. */
function sameEnv(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => Object.hasOwn(b, name) && a[name] === b[name]);
}

function result(o: { state: RunState; startedMs: number; started: number; message: string }): RunResult {
  return outputlessRun({ state: o.state, startedMs: o.startedMs, durationMs: Math.round(performance.now() - o.started), shortMessage: o.message });
}
