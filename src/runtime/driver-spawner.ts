import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { DRIVER_OWNER_VAR, killOwnedProcesses, newDriverOwner } from './driver-owner.js';
import type { DriverRunner } from './driver-runner.js';
import { ENVIRONMENT_CACHE_SIZE, EnvironmentCache } from './environment-cache.js';
import { PersistentDriver } from './persistent-driver.js';
import { RemoteDriverProcess } from './remote-driver-process.js';
import { outputlessRun, type DriverSpec, type RunResult } from './run-result.js';
import { fromWireResult, toWireSpec, type SpawnerReply, type SpawnerRequest, type SpecFields } from './spawner-protocol.js';

interface Pending {
  spec: DriverSpec;
  resolve(result: RunResult): void;
}

/** How the spawner process ended: `driver spawner exited (SIGKILL)`, and when. */
export interface SpawnerExit {
  reason: string;
  exitedMs: number;
}

/** A connection that has not named its launch within this many bytes, or this long, is not the spawner's. */
const MAX_HELLO_BYTES = 256;
const HELLO_TIMEOUT_MS = 5000;
/**
 * Past the largest kill grace, what a spawner told to go may take: its own 1 s margin (spawner-main.ts),
 * its sweep of /proc, its exit; one just forked may still be loading (seconds on a loaded host). Only a
 * spawner that cannot go at all (stopped, hung) waits it out.
 */
const EXIT_SLACK_MS = 10_000;

/**
 * The daemon's side of the spawner process. Start it before mounting; it cannot be restarted after
 * (a new fork would inherit /dev/fuse), so if it dies every run fails with a clear error.
 *
 * Spawn-mode runs go to the spawner and come back as a RunResult. Persistent drivers are started by
 * the spawner too, but with their stdin and stdout on a connection to this process (an abstract
 * Unix socket; the connection proves itself with a secret only the spawner was told), so requests
 * and answers skip the spawner: one process hop less per invocation.
 */
export class DriverSpawner implements DriverRunner {
  #child: ChildProcess;
  #server: Server;
  #socketPath: string;
  #secret = randomBytes(16).toString('hex');
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #launches = new Map<number, RemoteDriverProcess>();
  #persistent = new Map<string, PersistentDriver>();
  /** An id per environment object (one per service settings). */
  #envIds = new WeakMap<Record<string, string>, number>();
  #nextEnvId = 1;
  /** Mirrors the spawner's bounded cache: an id it holds travels alone, any other with its environment. */
  #heldEnvs: EnvironmentCache<true>;
  #exit: SpawnerExit | undefined;
  #isClosing = false;
  /** The largest kill_grace_ms of anything started: the spawner stays that long after the disconnect. */
  #maxKillGraceMs = 0;
  #log: Logger;
  #resolveLost!: () => void;
  /** Settles if the spawner process exits before close() (kill -9, a crash): no driver can start from then on. */
  readonly lost: Promise<void> = new Promise((resolve) => (this.#resolveLost = resolve));
  /** The sweep for the spawner's drivers once it is gone (resolved at once after a clean stop). */
  #swept: Promise<unknown> = Promise.resolve();

  private constructor(child: ChildProcess, server: Server, socketPath: string, owner: string, environmentCacheSize: number, log: Logger) {
    this.#child = child;
    this.#log = log;
    this.#heldEnvs = new EnvironmentCache(environmentCacheSize);
    this.#server = server;
    this.#socketPath = socketPath;
    server.on('connection', (socket) => this.#onConnection(socket));
    child.on('message', (reply: SpawnerReply) => {
      if (reply.type === 'exited') {
        this.#launches.get(reply.launchId)?.gone(reply.how);
        this.#launches.delete(reply.launchId);
        return;
      }
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      pending?.resolve(fromWireResult(reply.result));
    });
    child.on('exit', (code, signal) => {
      const reason = `driver spawner exited (${signal ?? `code ${code}`})`;
      this.#exit = { reason, exitedMs: Date.now() };
      if (this.#pending.size > 0 || code !== 0) log.error({ code, signal }, reason);
      if (!this.#isClosing) this.#resolveLost();
      // A spawner that died (kill -9, a crash) left its drivers running with nobody to stop them.
      this.#swept = killOwnedProcesses((mark) => mark === owner).then(
        (killed) => killed > 0 && log.error({ killed }, 'killed the driver processes the dead spawner left behind'),
        (error: unknown) => log.error({ err: error }, 'could not look for the driver processes the dead spawner left behind'),
      );
      for (const [id, pending] of this.#pending) {
        this.#pending.delete(id);
        // Sent to the spawner: it may have been running.
        pending.resolve(failed(pending.spec, reason, 'did not finish'));
      }
      for (const launch of this.#launches.values()) launch.gone(`could not be kept running: ${reason}`);
      this.#launches.clear();
    });
  }

  /**
   * `mount` names the node in the mark every driver carries (driver-owner.ts); start only once the
   * mount is locked, and after `killOwnedProcesses` has swept what a dead daemon on it left.
   */
  static async start(log: Logger, mount: string, options: { environmentCacheSize?: number } = {}): Promise<DriverSpawner> {
    const environmentCacheSize = options.environmentCacheSize ?? ENVIRONMENT_CACHE_SIZE;
    const owner = newDriverOwner(mount);
    // Abstract (no file to clean up after a kill -9); only this process's own spawner knows the secret.
    const socketPath = `\0acheron-drivers-${process.pid}-${randomBytes(8).toString('hex')}`;
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, resolve);
    });
    const child = fork(new URL('./spawner-main.js', import.meta.url), [String(environmentCacheSize)], {
      // Its own process group: a kill -9 of the daemon's group leaves it alive just long enough to
      // see the link drop and kill its driver groups, which would otherwise run on as orphans.
      detached: true,
      serialization: 'json',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, [DRIVER_OWNER_VAR]: owner },
      execArgv: process.execArgv.filter((arg) => !arg.startsWith('--inspect')),
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return new DriverSpawner(child, server, socketPath, owner, environmentCacheSize, log.child({ component: 'spawner' }));
  }

  run(spec: DriverSpec, signal?: AbortSignal): Promise<RunResult> {
    if (spec.persistentKey !== undefined) {
      let driver = this.#persistent.get(spec.persistentKey);
      if (!driver) this.#persistent.set(spec.persistentKey, (driver = new PersistentDriver(spec, (s) => this.#launch(s))));
      return driver.run(spec, signal);
    }
    if (this.#exit) return Promise.resolve(failed(spec, this.#exit.reason));
    this.#maxKillGraceMs = Math.max(this.#maxKillGraceMs, spec.killGraceMs);
    const id = this.#nextId++;
    return new Promise<RunResult>((resolve) => {
      this.#pending.set(id, { spec, resolve });
      this.#send({ type: 'run', id, ...this.#specFields(spec) });
      signal?.addEventListener('abort', () => this.#send({ type: 'cancel', id }), { once: true });
    });
  }

  restartPersistent(key: string, why: string): void {
    this.#persistent.get(key)?.restart(why);
  }

  /** How the spawner process ended (also by close()), once it has. */
  get exit(): SpawnerExit | undefined {
    return this.#exit;
  }

  /**
   * Disconnecting makes the spawner kill every driver group it still runs, then exit. One that does not
   * (stopped, hung) would keep the node mounted: it is killed, and its exit sweeps its drivers.
   */
  async close(): Promise<void> {
    this.#isClosing = true;
    this.#server.close();
    if (!this.#exit && this.#child.connected) {
      const exited = new Promise((resolve) => this.#child.once('exit', resolve));
      this.#child.disconnect();
      const waitMs = this.#maxKillGraceMs + EXIT_SLACK_MS;
      const timer = setTimeout(() => {
        this.#log.error({ waited_ms: waitMs }, 'the driver spawner did not exit when told to: killed (SIGKILL)');
        this.#child.kill('SIGKILL');
      }, waitMs);
      await exited;
      clearTimeout(timer);
    }
    await this.#swept;
  }

  #launch(spec: DriverSpec): RemoteDriverProcess {
    const launchId = this.#nextId++;
    const remote = new RemoteDriverProcess((graceMs) => this.#send({ type: 'terminate', launchId, graceMs }));
    if (this.#exit) {
      remote.gone(`could not be started: ${this.#exit.reason}`);
      return remote;
    }
    this.#launches.set(launchId, remote);
    this.#maxKillGraceMs = Math.max(this.#maxKillGraceMs, spec.killGraceMs);
    this.#send({ type: 'launch', launchId, socketPath: this.#socketPath, hello: `${this.#secret} ${launchId}`, ...this.#specFields(spec) });
    return remote;
  }

  /** A new connection is a launched driver's stdin or stdout once its first line names the launch with our secret, and which. */
  #onConnection(socket: Socket): void {
    // Anyone on the host can connect to an abstract socket: one that does not say who it is goes.
    socket.setTimeout(HELLO_TIMEOUT_MS, () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const newline = head.indexOf(0x0a);
      if (newline < 0) {
        if (head.length > MAX_HELLO_BYTES) socket.destroy();
        return;
      }
      socket.off('data', onData);
      socket.setTimeout(0);
      const [secret = '', id, stream] = head.subarray(0, newline).toString('utf8').split(' ');
      const remote = sameSecret(secret, this.#secret) ? this.#launches.get(Number(id)) : undefined;
      if (!remote || (stream !== 'stdin' && stream !== 'stdout')) {
        socket.destroy();
        return;
      }
      remote.attach(stream, socket, head.subarray(newline + 1));
    };
    socket.on('error', () => undefined);
    socket.on('data', onData);
  }

  /** Called once per message sent, in order: the mirror of the spawner's cache stays exact. */
  #specFields(spec: DriverSpec): SpecFields {
    let envId = this.#envIds.get(spec.env);
    if (envId === undefined) this.#envIds.set(spec.env, (envId = this.#nextEnvId++));
    const held = this.#heldEnvs.get(envId) !== undefined;
    this.#heldEnvs.hold(envId, true);
    const { env, ...rest } = spec;
    return { spec: toWireSpec(rest), envId, ...(held ? {} : { env }) };
  }

  #send(request: SpawnerRequest): void {
    if (this.#child.connected) this.#child.send(request);
  }
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function failed(spec: DriverSpec, why: string, what = 'could not be started'): RunResult {
  return outputlessRun({ state: 'error', spawnFailed: true, shortMessage: `${spec.file} ${what}: ${why}` });
}
