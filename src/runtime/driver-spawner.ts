import { fork, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { DriverRunner } from './driver-runner.js';
import { outputlessRun, type DriverSpec, type RunResult } from './run-result.js';
import type { SpawnerReply, SpawnerRequest } from './spawner-protocol.js';

interface Pending {
  spec: DriverSpec;
  resolve(result: RunResult): void;
}

/**
 * The daemon's side of the spawner process. Start it before mounting; it cannot be restarted after
 * (a new fork would inherit /dev/fuse), so if it dies every run fails with a clear error.
 */
export class DriverSpawner implements DriverRunner {
  #child: ChildProcess;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  /** Environments already sent to the spawner (one per service settings): sent once, then by id. */
  #envIds = new WeakMap<Record<string, string>, number>();
  #nextEnvId = 1;
  #exitReason: string | undefined;

  private constructor(child: ChildProcess, log: Logger) {
    this.#child = child;
    child.on('message', (reply: SpawnerReply) => {
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      pending?.resolve({ ...reply.result, stdout: Buffer.from(reply.result.stdout), stderr: Buffer.from(reply.result.stderr) });
    });
    child.on('exit', (code, signal) => {
      this.#exitReason = `driver spawner exited (${signal ?? `code ${code}`})`;
      if (this.#pending.size > 0 || code !== 0) log.error({ code, signal }, this.#exitReason);
      for (const [id, pending] of this.#pending) {
        this.#pending.delete(id);
        pending.resolve(failed(pending.spec, this.#exitReason));
      }
    });
  }

  static async start(log: Logger): Promise<DriverSpawner> {
    const child = fork(new URL('./spawner-main.js', import.meta.url), [], {
      // Its own process group: a kill -9 of the daemon's group leaves it alive just long enough to
      // see the link drop and kill its driver groups, which would otherwise run on as orphans.
      detached: true,
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: process.execArgv.filter((arg) => !arg.startsWith('--inspect')),
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return new DriverSpawner(child, log.child({ component: 'spawner' }));
  }

  run(spec: DriverSpec, signal?: AbortSignal): Promise<RunResult> {
    if (this.#exitReason) return Promise.resolve(failed(spec, this.#exitReason));
    const id = this.#nextId++;
    return new Promise<RunResult>((resolve) => {
      this.#pending.set(id, { spec, resolve });
      let envId = this.#envIds.get(spec.env);
      const first = envId === undefined;
      if (envId === undefined) this.#envIds.set(spec.env, (envId = this.#nextEnvId++));
      const { env, ...rest } = spec;
      this.#send({ type: 'run', id, spec: rest, envId, ...(first ? { env } : {}) });
      signal?.addEventListener('abort', () => this.#send({ type: 'cancel', id }), { once: true });
    });
  }

  restartPersistent(key: string, why: string): void {
    this.#send({ type: 'restart-persistent', key, why });
  }

  /** Disconnecting makes the spawner kill every driver group it still runs, then exit. */
  async close(): Promise<void> {
    if (this.#exitReason || !this.#child.connected) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.disconnect();
    await exited;
  }

  #send(request: SpawnerRequest): void {
    if (this.#child.connected) this.#child.send(request);
  }
}

function failed(spec: DriverSpec, why: string): RunResult {
  return outputlessRun({ state: 'error', spawnFailed: true, shortMessage: `${spec.file} could not be started: ${why}` });
}
