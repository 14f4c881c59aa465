import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { outputlessRun, type DriverSpec, type RunResult, type RunState } from './run-result.js';
import { WASM_PAGE_BYTES } from './wasm-module.js';
import type { WasmCallMessage, WasmCallReply, WasmPreopen, WasmWorkerMessage } from './wasm-protocol.js';

/** A compiled module and how to run it; the rest (args, env, stdin, limits) comes with the DriverSpec. */
export interface WasmProgram {
  module: WebAssembly.Module;
  /** The memory each instance is given (HOST_MEMORY), in pages: its initial size and its maximum. */
  initialPages: number;
  maxPages: number;
  /** The WASI functions the module imports (read at load: a module sent to a worker is a new object there every time). */
  wasiImports: string[];
  preopens: WasmPreopen[];
}

/** How one call is run besides its spec. */
export interface WasmRunOptions {
  signal?: AbortSignal;
  /** Whose call it is: services waiting for a worker take turns (default: one anonymous service). */
  service?: string;
  /** Called when a worker takes the call, before the module starts: its `timeoutMs` counts from then. */
  started?: () => void;
}

type Waiter = (slot: PoolWorker | undefined) => void;

/** Workers on a machine of this size: enough to keep every core busy, few enough to stay small. */
export const WASM_POOL_DEFAULT_SIZE = Math.min(4, Math.max(2, availableParallelism()));

interface PoolWorker {
  worker: Worker;
  /** The call it runs now; its reply or its death settles it. */
  settle: ((outcome: WasmCallReply | { died: string }) => void) | undefined;
}

/**
 * The daemon's wasm workers (SPEC §4 `runtime.type: "wasm"`): a bounded pool of worker threads, one
 * call at a time each, shared by every wasm service. The daemon's event loop never runs guest code, so
 * FUSE and the other services go on while a module computes. A call past its `timeoutMs`, or
 * cancelled, terminates its worker (about 3 ms, also inside an infinite loop); a new one is started
 * when needed. Calls beyond the pool's size wait for a worker, the waiting services taking turns
 * (each one's calls in arrival order), so a service with many calls queued does not hold up another
 * for all of them; `timeoutMs` counts from the start on a worker.
 */
export class WasmPool {
  readonly size: number;
  #log: Logger | undefined;
  #worker: { url: URL; execArgv: string[] | undefined };
  #idle: PoolWorker[] = [];
  /** Workers alive or still terminating: never more than `size`. */
  #count = 0;
  /**
   * Calls waiting for a worker, by service, the services in turn (a served one goes to the back):
   * handed a free worker, or undefined to retry.
   */
  #waiting = new Map<string, Waiter[]>();
  #closed = false;

  /**
   * `worker` replaces the worker's script and its Node options (default: wasm-worker.js beside this
   * file, with this process's options): tests run the built worker without their TypeScript loader.
   */
  constructor(options: { size?: number; log?: Logger; worker?: { url: URL; execArgv?: string[] } } = {}) {
    this.size = options.size ?? WASM_POOL_DEFAULT_SIZE;
    this.#worker = { url: options.worker?.url ?? new URL('./wasm-worker.js', import.meta.url), execArgv: options.worker?.execArgv };
    if (!Number.isInteger(this.size) || this.size < 1) throw new TypeError(`WasmPool size must be a positive integer, got ${this.size}`);
    this.#log = options.log;
    // Node 20 crashes (SIGSEGV) after some thousand WASI runs while V8's fast API calls are on
    // (nodejs/node#46777); the flag must be set before any worker runs wasm. The workers also wrap
    // every WASI import in JavaScript, which alone held in 20 000 runs.
    setFlagsFromString('--no-turbo-fast-api-calls');
  }

  /** Runs `program` with the spec's args, env, stdin and limits; one RunResult for every outcome. */
  async run(program: WasmProgram, spec: DriverSpec, options: WasmRunOptions = {}): Promise<RunResult> {
    const { signal } = options;
    const notStarted = (state: RunState, shortMessage: string, spawnFailed = false): RunResult => outputlessRun({ state, shortMessage, spawnFailed });
    if (signal?.aborted) return notStarted('cancelled', `${spec.file} was cancelled`);
    let slot: PoolWorker;
    try {
      slot = await this.#acquire(options.service ?? '', signal);
    } catch (error) {
      return signal?.aborted
        ? notStarted('cancelled', `${spec.file} was cancelled`)
        : notStarted('error', `${spec.file} could not be started: ${(error as Error).message}`, true);
    }
    // Cancelled while its worker was starting: the abort listener below would never hear of it.
    if (signal?.aborted) {
      this.#release(slot);
      return notStarted('cancelled', `${spec.file} was cancelled`);
    }
    try {
      options.started?.();
    } catch (error) {
      // The caller refuses the run after all (its service was disabled while it waited): the worker goes on to the next.
      this.#release(slot);
      throw error;
    }
    const startedMs = Date.now();
    const started = performance.now();
    const end = (state: RunState, shortMessage: string): RunResult =>
      outputlessRun({ state, shortMessage, startedMs, durationMs: Math.round(performance.now() - started) });
    // A Buffer is often a view into a larger one (Node's 8 KiB pool): structured cloning copies the
    // whole backing store, so the payload goes alone, in a copy of its own that is transferred.
    const input = new Uint8Array(spec.input);
    const call: WasmCallMessage = {
      type: 'call',
      module: program.module,
      initialPages: program.initialPages,
      maxPages: program.maxPages,
      wasiImports: program.wasiImports,
      preopens: program.preopens,
      args: [spec.file, ...spec.args],
      env: { ...spec.env, ACHERON_INVOCATION_ID: spec.invocationId },
      input,
      maxOutputBytes: spec.maxOutputBytes,
    };
    const outcome = await new Promise<WasmCallReply | { died: string } | { stopped: 'timeout' | 'cancelled' }>((resolve) => {
      const stop = (why: 'timeout' | 'cancelled'): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        slot.settle = undefined;
        this.#discard(slot);
        resolve({ stopped: why });
      };
      const onAbort = (): void => stop('cancelled');
      const timer = setTimeout(() => stop('timeout'), spec.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      slot.settle = (result) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        slot.settle = undefined;
        resolve(result);
      };
      slot.worker.postMessage(call, [input.buffer]);
    });
    if ('stopped' in outcome) {
      return outcome.stopped === 'timeout'
        ? end('timeout', `${spec.file} timed out after ${spec.timeoutMs} ms and was stopped`)
        : end('cancelled', `${spec.file} was cancelled`);
    }
    if ('died' in outcome) {
      this.#discard(slot);
      return end('error', `${spec.file}: its wasm worker died: ${outcome.died}`);
    }
    this.#release(slot);
    return toRunResult(outcome, spec, program, { startedMs, durationMs: Math.round(performance.now() - started) });
  }

  /** Terminates the idle workers; a call still running finishes, then its worker goes too. */
  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle.splice(0);
    for (const waiter of [...this.#waiting.values()].flat()) waiter(undefined);
    this.#waiting.clear();
    await Promise.all(idle.map((slot) => slot.worker.terminate()));
  }

  async #acquire(service: string, signal?: AbortSignal): Promise<PoolWorker> {
    for (;;) {
      if (this.#closed) throw new Error('the wasm pool is closed (the node is stopping)');
      if (signal?.aborted) throw new Error('cancelled');
      const idle = this.#idle.pop();
      if (idle) return idle;
      if (this.#count < this.size) return this.#spawn();
      const handed = await new Promise<PoolWorker | undefined>((resolve) => {
        const queue = this.#waiting.get(service) ?? [];
        const onAbort = (): void => {
          queue.splice(queue.indexOf(wake), 1);
          if (queue.length === 0) this.#waiting.delete(service);
          resolve(undefined);
        };
        const wake = (slot: PoolWorker | undefined): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        };
        queue.push(wake);
        this.#waiting.set(service, queue);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      if (handed) return handed;
    }
  }

  /** A new worker, once it has loaded node:wasi and says it is ready. */
  async #spawn(): Promise<PoolWorker> {
    this.#count++;
    const worker = new Worker(this.#worker.url, this.#worker.execArgv ? { execArgv: this.#worker.execArgv } : {});
    const slot: PoolWorker = { worker, settle: undefined };
    // Node's Worker keeps listeners of its own (they start its message port): remove only ours.
    let onMessage: (message: WasmWorkerMessage) => void = () => undefined;
    let onError: (error: Error) => void = () => undefined;
    let onExit: (code: number) => void = () => undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        onMessage = (message) => (message.type === 'ready' ? resolve() : reject(new Error(`unexpected first message ${message.type}`)));
        onError = reject;
        onExit = (code) => reject(new Error(`the wasm worker exited with code ${code} while starting`));
        worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      });
    } catch (error) {
      this.#discard(slot);
      throw error;
    } finally {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    }
    worker.on('message', (message: WasmWorkerMessage) => message.type === 'done' && slot.settle?.(message));
    // Without an 'error' listener an uncaught exception in a worker would end the daemon.
    worker.on('error', (error) => {
      this.#log?.error({ err: error }, 'wasm worker failed');
      slot.settle?.({ died: error.message });
    });
    worker.on('exit', (code) => slot.settle?.({ died: `exited with code ${code}` }));
    return slot;
  }

  #release(slot: PoolWorker): void {
    if (this.#closed) {
      this.#discard(slot);
      return;
    }
    if (!this.#wakeNext(slot)) this.#idle.push(slot);
  }

  /** Hands `slot` (undefined: a place to spawn in) to the first call of the service whose turn it is. */
  #wakeNext(slot: PoolWorker | undefined): boolean {
    const turn = this.#waiting.entries().next();
    if (turn.done) return false;
    const [service, queue] = turn.value;
    const wake = queue.shift() as Waiter;
    this.#waiting.delete(service);
    if (queue.length > 0) this.#waiting.set(service, queue);
    wake(slot);
    return true;
  }

  /** Terminates a worker (stuck, dead or no longer wanted); its place is free once it is gone. */
  #discard(slot: PoolWorker): void {
    slot.settle = undefined;
    void slot.worker
      .terminate()
      .catch(() => undefined)
      .finally(() => {
        this.#count--;
        this.#wakeNext(undefined);
      });
  }
}

function toRunResult(reply: WasmCallReply, spec: DriverSpec, program: WasmProgram, time: { startedMs: number; durationMs: number }): RunResult {
  const what = spec.file;
  const capped = reply.outputCapped !== null;
  const state: RunState = reply.exitCode === 0 && !capped && reply.failure === null ? 'ok' : 'error';
  let shortMessage: string;
  if (reply.notStarted) shortMessage = `${what} could not be started: ${reply.failure ?? 'unknown reason'}`;
  else if (capped) shortMessage = `${what} exceeded max_output_bytes (${spec.maxOutputBytes}) on ${reply.outputCapped} and was stopped`;
  else if (reply.failure !== null) shortMessage = `${what} trapped: ${reply.failure}`;
  else shortMessage = reply.exitCode === 0 ? `${what} exited 0` : `${what} exited with code ${reply.exitCode}`;
  // Not after the output cap: the run was stopped for its output, whatever its memory did.
  if (state === 'error' && reply.atMemoryCap && !capped) {
    shortMessage += ` (its memory had reached the maximum of ${program.maxPages * WASM_PAGE_BYTES} bytes: runtime.wasm.max_memory_bytes or the module's own limit)`;
  }
  return {
    state,
    exitCode: reply.exitCode,
    signal: null,
    stdout: Buffer.from(reply.stdout.buffer, reply.stdout.byteOffset, reply.stdout.byteLength),
    stderr: Buffer.from(reply.stderr.buffer, reply.stderr.byteOffset, reply.stderr.byteLength),
    outputCapped: capped,
    spawnFailed: reply.notStarted,
    startedMs: time.startedMs,
    durationMs: time.durationMs,
    shortMessage,
  };
}
