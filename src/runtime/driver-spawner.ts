import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { killOwnedProcesses, newDriverOwner } from './driver-owner.js';
import type { DriverRunner } from './driver-runner.js';
import { ENVIRONMENT_CACHE_SIZE } from './environment-cache.js';
import { PersistentDriver } from './persistent-driver.js';
import { DriverSocket } from './driver-socket.js';
import { RemoteDriverProcess } from './remote-driver-process.js';
import { forkSpawner } from './spawner-fork.js';
import { ANSWER_MARGIN_MS, SpawnerLink, type PendingRun } from './spawner-link.js';
import { outputlessRun, type DriverSpec, type RunResult } from './run-result.js';

/** How the spawner process ended: `driver spawner exited (SIGKILL)`, and when. */
export interface SpawnerExit {
  reason: string;
  exitedMs: number;
}

/**
 * Past the largest kill grace, what a spawner told to go may take: its own 1 s margin (spawner-main.ts),
 * its sweep of /proc, its exit; one just forked may still be loading (seconds on a loaded host). Only a
 * spawner that cannot go at all (stopped, hung) waits it out.
 */
const EXIT_SLACK_MS = 10_000;

/**
 * The daemon's side of the spawner process. Start it before mounting: its first fork must not
 * inherit /dev/fuse. If it dies every run fails with a clear error from then on; if it stops
 * answering (stopped, hung) while a run is past its timeout_ms and kill grace, it is killed and
 * replaced (spawner-fork.ts keeps /dev/fuse from the new one), and its runs end.
 *
 * Spawn-mode runs go to the spawner and come back as a RunResult. Persistent drivers are started by
 * the spawner too, but with their stdin and stdout on a connection to this process (an abstract
 * Unix socket; the connection proves itself with a secret only the spawner was told), so requests
 * and answers skip the spawner: one process hop less per invocation.
 */
export class DriverSpawner implements DriverRunner {
  #link: SpawnerLink;
  /** A replacement being forked: runs and launches wait for it. */
  #replacing: Promise<void> | undefined;
  #mount: string;
  #socket: DriverSocket;
  #nextId = 1;
  #persistent = new Map<string, PersistentDriver>();
  /** An id per environment object (one per service settings). */
  #envIds = new WeakMap<Record<string, string>, number>();
  #nextEnvId = 1;
  #environmentCacheSize: number;
  #exit: SpawnerExit | undefined;
  #isClosing = false;
  /** The largest kill_grace_ms of anything started: the spawner stays that long after the disconnect. */
  #maxKillGraceMs = 0;
  #log: Logger;
  #resolveLost!: () => void;
  /** Settles if the spawner process exits before close() (kill -9, a crash): no driver can start from then on. */
  readonly lost: Promise<void> = new Promise((resolve) => (this.#resolveLost = resolve));
  /** The sweeps for the drivers of spawners that are gone (resolved at once after a clean stop). */
  #swept: Promise<unknown> = Promise.resolve();

  private constructor(o: { child: ChildProcess; owner: string; mount: string; socket: DriverSocket; environmentCacheSize: number; log: Logger }) {
    this.#log = o.log;
    this.#socket = o.socket;
    this.#mount = o.mount;
    this.#environmentCacheSize = o.environmentCacheSize;
    this.#link = this.#attach(o.child, o.owner);
  }

  /**
   * `mount` names the node in the mark every driver carries (driver-owner.ts); start only once the
   * mount is locked, and after `killOwnedProcesses` has swept what a dead daemon on it left.
   */
  static async start(log: Logger, mount: string, options: { environmentCacheSize?: number } = {}): Promise<DriverSpawner> {
    const environmentCacheSize = options.environmentCacheSize ?? ENVIRONMENT_CACHE_SIZE;
    const owner = newDriverOwner(mount);
    let spawner: DriverSpawner | undefined;
    const socket = await DriverSocket.listen((launchId, stream, connection, rest) => {
      const remote = spawner && spawner.#link.launches.get(launchId);
      if (remote) remote.attach(stream, connection, rest);
      else connection.destroy();
    });
    const child = await forkSpawner(owner, environmentCacheSize).catch((error: unknown) => {
      socket.close();
      throw error;
    });
    spawner = new DriverSpawner({ child, owner, mount, socket, environmentCacheSize, log: log.child({ component: 'spawner' }) });
    return spawner;
  }

  async run(spec: DriverSpec, signal?: AbortSignal): Promise<RunResult> {
    if (spec.persistentKey !== undefined) {
      let driver = this.#persistent.get(spec.persistentKey);
      if (!driver) this.#persistent.set(spec.persistentKey, (driver = new PersistentDriver(spec, (s) => this.#launch(s))));
      return driver.run(spec, signal);
    }
    await this.#replacing;
    if (this.#exit) return failed(spec, this.#exit.reason);
    this.#maxKillGraceMs = Math.max(this.#maxKillGraceMs, spec.killGraceMs);
    const link = this.#link;
    const id = this.#nextId++;
    return new Promise<RunResult>((resolve) => {
      const sentMs = Date.now();
      const pending: PendingRun = { spec, sentMs, resolve };
      link.pending.set(id, pending);
      link.send({ type: 'run', id, ...link.specFields(spec, this.#envId(spec)) });
      this.#watch(link, id, pending, spec.timeoutMs + spec.killGraceMs);
      signal?.addEventListener('abort', () => link.send({ type: 'cancel', id }), { once: true });
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
    this.#socket.close();
    await this.#replacing;
    const { child } = this.#link;
    if (!this.#exit && child.connected) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      const waitMs = this.#maxKillGraceMs + EXIT_SLACK_MS;
      const timer = setTimeout(() => {
        this.#log.error({ waited_ms: waitMs }, 'the driver spawner did not exit when told to: killed (SIGKILL)');
        child.kill('SIGKILL');
      }, waitMs);
      await exited;
      clearTimeout(timer);
    }
    await this.#swept;
  }

  #attach(child: ChildProcess, owner: string): SpawnerLink {
    const link = new SpawnerLink(child, owner, this.#environmentCacheSize);
    child.on('exit', (code, signal) => {
      const reason = `driver spawner exited (${signal ?? `code ${code}`})`;
      if (!link.isReplaced) {
        this.#exit = { reason, exitedMs: Date.now() };
        if (link.pending.size > 0 || code !== 0) this.#log.error({ code, signal }, reason);
        if (!this.#isClosing) this.#resolveLost();
      }
      // A spawner that died (kill -9, a crash, replaced) left its drivers running with nobody to stop them.
      const swept = killOwnedProcesses((mark) => mark === owner).then(
        (killed) => killed > 0 && this.#log.error({ killed }, 'killed the driver processes the dead spawner left behind'),
        (error: unknown) => this.#log.error({ err: error }, 'could not look for the driver processes the dead spawner left behind'),
      );
      this.#swept = Promise.all([this.#swept, swept]);
      // Sent to the spawner: it may have been running.
      link.endAll((pending) => failed(pending.spec, reason, 'did not finish'), `could not be kept running: ${reason}`);
    });
    return link;
  }

  /**
   * By `afterMs` (its timeout_ms and kill grace) the spawner should have ended the run. If not, one
   * that answers a ping is working (a driver's pipes drain, a loaded host): asked again later. One
   * that does not (stopped, hung) will not carry out the kill either: it is replaced.
   */
  #watch(link: SpawnerLink, id: number, pending: PendingRun, afterMs: number): void {
    pending.watchdog = setTimeout(() => {
      void link.answers().then((answers) => {
        if (!link.pending.has(id)) return;
        if (answers) this.#watch(link, id, pending, ANSWER_MARGIN_MS);
        else this.#replace(link);
      });
    }, afterMs);
  }

  /**
   * Kills a spawner that did not answer (SIGKILL works on a stopped one; its exit sweeps its drivers)
   * and forks another for later runs. Its runs end now, those past timeout_ms as `timeout`: nothing
   * else would free their places in the queue.
   */
  #replace(link: SpawnerLink): void {
    if (link.isReplaced || this.#isClosing) return;
    link.isReplaced = true;
    const why = `the driver spawner (pid ${link.child.pid}) did not answer within ${link.answerMarginMs} ms, so it was killed and replaced; the process may still run`;
    this.#log.error({ pid: link.child.pid, runs: link.pending.size }, 'the driver spawner did not answer: killed (SIGKILL) and replaced');
    const now = Date.now();
    link.endAll(
      (p) => (now >= p.sentMs + p.spec.timeoutMs ? timedOut(p, why, now) : failed(p.spec, why, 'did not finish')),
      `could not be kept running: ${why}`,
    );
    link.child.kill('SIGKILL');
    const owner = newDriverOwner(this.#mount);
    this.#replacing = forkSpawner(owner, this.#environmentCacheSize)
      .then(
        (child) => {
          this.#link = this.#attach(child, owner);
          this.#log.warn({ pid: child.pid }, 'started a new driver spawner');
        },
        (error: unknown) => {
          this.#exit = { reason: `the driver spawner could not be replaced: ${(error as Error).message}`, exitedMs: Date.now() };
          this.#log.error({ err: error }, this.#exit.reason);
          this.#resolveLost();
        },
      )
      .finally(() => (this.#replacing = undefined));
  }

  #launch(spec: DriverSpec): RemoteDriverProcess {
    const launchId = this.#nextId++;
    let link: SpawnerLink | undefined;
    let earlyGraceMs: number | undefined;
    const remote = new RemoteDriverProcess((graceMs) => (link ? link.send({ type: 'terminate', launchId, graceMs }) : (earlyGraceMs = graceMs)));
    const start = (): void => {
      if (this.#exit) return remote.gone(`could not be started: ${this.#exit.reason}`);
      link = this.#link;
      link.launches.set(launchId, remote);
      this.#maxKillGraceMs = Math.max(this.#maxKillGraceMs, spec.killGraceMs);
      link.send({ type: 'launch', launchId, socketPath: this.#socket.path, hello: this.#socket.hello(launchId), ...link.specFields(spec, this.#envId(spec)) });
      if (earlyGraceMs !== undefined) remote.terminate(earlyGraceMs);
    };
    if (this.#replacing) void this.#replacing.then(start);
    else start();
    return remote;
  }

  #envId(spec: DriverSpec): number {
    let envId = this.#envIds.get(spec.env);
    if (envId === undefined) this.#envIds.set(spec.env, (envId = this.#nextEnvId++));
    return envId;
  }
}

/** A run past its timeout_ms whose kill the spawner did not carry out. */
function timedOut(pending: PendingRun, why: string, now: number): RunResult {
  const { spec } = pending;
  return outputlessRun({
    state: 'timeout',
    startedMs: pending.sentMs,
    durationMs: now - pending.sentMs,
    shortMessage: `${spec.file} timed out after ${spec.timeoutMs} ms: ${why}`,
  });
}

function failed(spec: DriverSpec, why: string, what = 'could not be started'): RunResult {
  return outputlessRun({ state: 'error', spawnFailed: true, shortMessage: `${spec.file} ${what}: ${why}` });
}
