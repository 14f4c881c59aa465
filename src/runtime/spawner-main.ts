/**
 * The spawner process: forked by the daemon before it mounts, so no driver inherits /dev/fuse
 * (libfuse 2 opens it without close-on-exec; SPEC §12). It starts spawn-mode drivers and runs them
 * to completion, and starts persistent drivers on a socket to the daemon, which then talks to them
 * directly. When its link to the daemon drops, it kills every driver group it started and exits.
 */
import { connect } from 'node:net';
import { startDriverProcess } from './driver-process.js';
import { terminateGroup } from './process-group.js';
import { runDriver } from './run-driver.js';
import type { DriverSpec } from './run-result.js';
import { fromWireSpec, toWireResult, type SpawnerReply, type SpawnerRequest, type SpecFields } from './spawner-protocol.js';

const running = new Map<number, { controller: AbortController; killGraceMs: number }>();
/** Persistent drivers by launch id, until they exit. */
interface Launched {
  pid: number | undefined;
  killGraceMs: number;
  /** A terminate that came before the process existed: applied as soon as it does. */
  terminateGraceMs?: number;
  exited: Promise<string>;
}
/** Persistent drivers by launch id, from the launch request until they exit. */
const launched = new Map<number, Launched>();
/** Environments by id, each kept as one object; the daemon sends each before its first use. */
const environments = new Map<number, Record<string, string>>();

function specOf(message: SpecFields): DriverSpec {
  if (message.env) environments.set(message.envId, message.env);
  return fromWireSpec(message.spec, environments.get(message.envId) ?? {});
}

function reply(message: SpawnerReply): void {
  if (process.connected) process.send?.(message);
}

/**
 * The daemon's connection becomes the driver's stdin and stdout. The hello line goes first, and
 * this side never reads, so every byte after it is the driver's (the socket starts paused).
 */
function launch(launchId: number, socketPath: string, hello: string, spec: DriverSpec): void {
  let settle!: (how: string) => void;
  const entry: Launched = { pid: undefined, killGraceMs: spec.killGraceMs, exited: new Promise((resolve) => (settle = resolve)) };
  launched.set(launchId, entry);
  void entry.exited.then((how) => {
    launched.delete(launchId);
    reply({ type: 'exited', launchId, how });
  });
  const socket = connect({ path: socketPath });
  socket.pause();
  socket.once('error', (error) => settle(`could not be started: the node's driver socket failed: ${error.message}`));
  socket.once('connect', () => {
    socket.write(hello, () => {
      const { child, exited } = startDriverProcess(spec, socket);
      // The child holds its own copy of the socket now.
      socket.destroy();
      entry.pid = child.pid;
      if (entry.terminateGraceMs !== undefined) terminateGroup(entry.pid, entry.terminateGraceMs);
      void exited.then(settle);
    });
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

process.on('message', (message: SpawnerRequest) => {
  switch (message.type) {
    case 'cancel':
      running.get(message.id)?.controller.abort();
      return;
    case 'terminate':
      terminate(message.launchId, message.graceMs);
      return;
    case 'launch':
      launch(message.launchId, message.socketPath, message.hello, specOf(message));
      return;
    case 'run': {
      const spec = specOf(message);
      const controller = new AbortController();
      running.set(message.id, { controller, killGraceMs: spec.killGraceMs });
      void runDriver(spec, controller.signal).then((result) => {
        running.delete(message.id);
        reply({ type: 'result', id: message.id, result: toWireResult(result) });
      });
    }
  }
});

process.on('disconnect', () => {
  // Every group gets SIGTERM now and SIGKILL after its own grace: stay until then, or a driver that
  // ignores SIGTERM outlives the node.
  const graceMs = Math.max(0, ...[...running.values(), ...launched.values()].map((r) => r.killGraceMs));
  for (const { controller } of running.values()) controller.abort();
  for (const [id, entry] of launched) terminate(id, entry.killGraceMs);
  setTimeout(() => process.exit(0), graceMs + 1000).unref();
  void Promise.all([...launched.values()].map((driver) => driver.exited)).then(() => {
    if (running.size === 0) process.exit(0);
  });
});
// The daemon handles signals; a Ctrl-C on the terminal must not kill drivers under it first.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
