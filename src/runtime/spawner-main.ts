/**
 * The spawner process: forked by the daemon before it mounts, so no driver inherits /dev/fuse
 * (libfuse 2 opens it without close-on-exec; SPEC §12). When its link to the daemon drops, it
 * kills every driver group it started and exits.
 */
import { PersistentDriver } from './persistent-driver.js';
import { runDriver } from './run-driver.js';
import type { DriverSpec, RunResult } from './run-result.js';
import type { SpawnerReply, SpawnerRequest } from './spawner-protocol.js';

const running = new Map<number, { controller: AbortController; killGraceMs: number }>();
const persistent = new Map<string, PersistentDriver>();
/** Environments by id, each kept as one object (persistent drivers compare them by identity); the daemon sends each before its first use. */
const environments = new Map<number, Record<string, string>>();

function run(spec: DriverSpec, signal: AbortSignal): Promise<RunResult> {
  if (spec.persistentKey === undefined) return runDriver(spec, signal);
  let driver = persistent.get(spec.persistentKey);
  if (!driver) persistent.set(spec.persistentKey, (driver = new PersistentDriver(spec)));
  return driver.run(spec, signal);
}

process.on('message', (message: SpawnerRequest) => {
  if (message.type === 'cancel') {
    running.get(message.id)?.controller.abort();
    return;
  }
  if (message.type === 'restart-persistent') {
    persistent.get(message.key)?.restart(message.why);
    return;
  }
  if (message.env) environments.set(message.envId, message.env);
  const env = environments.get(message.envId) ?? {};
  const controller = new AbortController();
  running.set(message.id, { controller, killGraceMs: message.spec.killGraceMs });
  void run({ ...message.spec, env }, controller.signal).then((result) => {
    running.delete(message.id);
    const reply: SpawnerReply = { type: 'result', id: message.id, result };
    if (process.connected) process.send?.(reply);
  });
});

process.on('disconnect', () => {
  // Every group gets SIGTERM now and SIGKILL after its own grace: stay until then, or a driver that
  // ignores SIGTERM outlives the node.
  const graceMs = Math.max(0, ...[...running.values()].map((r) => r.killGraceMs), ...[...persistent.values()].map((d) => d.killGraceMs));
  for (const { controller } of running.values()) controller.abort();
  const stopped = Promise.all([...persistent.values()].map((driver) => driver.stop('the node daemon stopped')));
  setTimeout(() => process.exit(0), graceMs + 1000).unref();
  void stopped.then(() => {
    if (running.size === 0) process.exit(0);
  });
});
// The daemon handles signals; a Ctrl-C on the terminal must not kill drivers under it first.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
