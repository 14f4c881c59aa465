/**
 * The spawner process: forked by the daemon before it mounts, so no driver inherits /dev/fuse
 * (libfuse 2 opens it without close-on-exec; SPEC §12). It starts spawn-mode drivers and runs them
 * to completion, and starts persistent drivers on a socket to the daemon, which then talks to them
 * directly. When its link to the daemon drops, it kills every driver group it started, then every
 * process still carrying its owner mark (driver-owner.ts), and exits.
 */
import { connect, type Socket } from 'node:net';
import { startDriverProcess } from './driver-process.js';
import { DRIVER_OWNER_VAR, killOwnedProcesses } from './driver-owner.js';
import { EnvironmentCache } from './environment-cache.js';
import { terminateGroup } from './process-group.js';
import { runDriver } from './run-driver.js';
import { outputlessRun, type DriverSpec, type RunResult } from './run-result.js';
import { fromWireSpec, toWireResult, type SpawnerReply, type SpawnerRequest, type SpecFields } from './spawner-protocol.js';

/** Set by the daemon at fork; every driver gets it too. */
const owner = process.env[DRIVER_OWNER_VAR] ?? '';

const running = new Map<number, { controller: AbortController; killGraceMs: number; done: Promise<unknown> }>();
/** A persistent driver, from the launch request until it exits. */
interface Launched {
  pid: number | undefined;
  killGraceMs: number;
  /** A terminate that came before the process existed: applied as soon as it does. */
  terminateGraceMs?: number;
  exited: Promise<string>;
}
/** Persistent drivers by launch id, from the launch request until they exit. */
const launched = new Map<number, Launched>();
/** Environments by id, the same few the daemon's mirror says we hold (environment-cache.ts); its size is our argument. */
const environments = new EnvironmentCache<Record<string, string>>(Number(process.argv[2]));
/** Set once the daemon is gone: nothing new starts after that. */
let closing = false;

/** The spec, or undefined for an environment we do not hold (a daemon bug: never run with an empty one). */
function specOf(message: SpecFields): DriverSpec | undefined {
  const env = message.env ? { ...message.env, [DRIVER_OWNER_VAR]: owner } : environments.get(message.envId);
  if (env === undefined) return undefined;
  environments.hold(message.envId, env);
  return fromWireSpec(message.spec, env);
}

function unknownEnvironment(message: SpecFields): string {
  return `could not be started: the driver spawner does not hold environment ${message.envId}`;
}

function reply(message: SpawnerReply): void {
  // A daemon killed a moment ago still looks connected until the link's end is read, and a send
  // without a callback then fails as an uncaught EPIPE, which would kill us before we kill the
  // drivers. The disconnect that follows does the cleaning up.
  if (process.connected) process.send?.(message, () => undefined);
}

/**
 * Two connections to the daemon become the driver's stdin and its stdout, each named by its hello
 * line. This side never reads, so every byte after the hello is the driver's (the sockets start paused).
 */
function launch(launchId: number, socketPath: string, hello: string, spec: DriverSpec): void {
  let settle!: (how: string) => void;
  let settled = false;
  const entry: Launched = { pid: undefined, killGraceMs: spec.killGraceMs, exited: new Promise((resolve) => (settle = resolve)) };
  launched.set(launchId, entry);
  void entry.exited.then((how) => {
    settled = true;
    launched.delete(launchId);
    reply({ type: 'exited', launchId, how });
  });
  void Promise.allSettled([connectAs(socketPath, `${hello} stdin\n`), connectAs(socketPath, `${hello} stdout\n`)]).then(([stdin, stdout]) => {
    const sockets = stdin.status === 'fulfilled' && stdout.status === 'fulfilled' ? { stdin: stdin.value, stdout: stdout.value } : undefined;
    // The daemon may have died meanwhile (a connection failed, or the link dropped): a driver started
    // now would have nobody to answer and nobody left to stop it.
    if (!sockets || closing || settled) {
      for (const s of [stdin, stdout]) if (s.status === 'fulfilled') s.value.destroy();
      const failure = [stdin, stdout].find((s): s is PromiseRejectedResult => s.status === 'rejected');
      settle(`could not be started: ${failure ? `the node's driver socket failed: ${(failure.reason as Error).message}` : 'the node is gone'}`);
      return;
    }
    const { child, exited } = startDriverProcess(spec, sockets);
    // The child holds its own copies of the sockets now.
    sockets.stdin.destroy();
    sockets.stdout.destroy();
    entry.pid = child.pid;
    if (entry.terminateGraceMs !== undefined) terminateGroup(entry.pid, entry.terminateGraceMs);
    void exited.then(settle);
  });
}

/** A paused connection to the daemon that has written its hello line. */
function connectAs(socketPath: string, hello: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    socket.pause();
    // Kept for the socket's life: a later error must not be an uncaught one in the spawner.
    socket.on('error', reject);
    socket.once('connect', () => socket.write(hello, (error) => (error ? reject(error) : resolve(socket))));
  });
}

function terminate(launchId: number, graceMs: number): void {
  const entry = launched.get(launchId);
  if (entry?.pid === undefined) {
    if (entry) entry.terminateGraceMs = graceMs;
    return;
  }
  terminateGroup(entry.pid, graceMs);
}

function run(id: number, spec: DriverSpec): void {
  const controller = new AbortController();
  const done = runDriver(spec, controller.signal).then((result: RunResult) => {
    running.delete(id);
    reply({ type: 'result', id, result: toWireResult(result) });
  });
  running.set(id, { controller, killGraceMs: spec.killGraceMs, done });
}

process.on('message', (message: SpawnerRequest) => {
  if (closing) return;
  switch (message.type) {
    case 'cancel':
      running.get(message.id)?.controller.abort();
      return;
    case 'terminate':
      terminate(message.launchId, message.graceMs);
      return;
    case 'launch': {
      const spec = specOf(message);
      if (spec) launch(message.launchId, message.socketPath, message.hello, spec);
      else reply({ type: 'exited', launchId: message.launchId, how: unknownEnvironment(message) });
      return;
    }
    case 'run': {
      const spec = specOf(message);
      if (spec) run(message.id, spec);
      else
        reply({
          type: 'result',
          id: message.id,
          result: toWireResult(outputlessRun({ state: 'error', spawnFailed: true, shortMessage: `${message.spec.file} ${unknownEnvironment(message)}` })),
        });
    }
  }
});

process.on('disconnect', () => {
  closing = true;
  // Every group gets SIGTERM now and SIGKILL after its own grace: stay until then, or a driver that
  // ignores SIGTERM outlives the node.
  const graceMs = Math.max(0, ...[...running.values(), ...launched.values()].map((r) => r.killGraceMs));
  for (const { controller } of running.values()) controller.abort();
  for (const [id, entry] of launched) terminate(id, entry.killGraceMs);
  const ended = Promise.all([...running.values()].map((r) => r.done).concat([...launched.values()].map((l) => l.exited)));
  const deadline = new Promise((resolve) => setTimeout(resolve, graceMs + 1000));
  // Then whatever still carries our mark: children that left their driver's group, a launch that
  // raced the link's end.
  void Promise.race([ended, deadline])
    .then(() => (owner === '' ? 0 : killOwnedProcesses((mark) => mark === owner)))
    .finally(() => process.exit(0));
});
// The daemon handles signals; a Ctrl-C on the terminal must not kill drivers under it first.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
