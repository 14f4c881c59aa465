/**
 * The spawner process: forked by the daemon before it mounts, so no driver inherits /dev/fuse
 * (libfuse 2 opens it without close-on-exec; SPEC §12). When its link to the daemon drops, it
 * kills every driver group it started and exits.
 */
import { runDriver } from './run-driver.js';
import type { SpawnerReply, SpawnerRequest } from './spawner-protocol.js';

const running = new Map<number, AbortController>();

process.on('message', (message: SpawnerRequest) => {
  if (message.type === 'cancel') {
    running.get(message.id)?.abort();
    return;
  }
  const controller = new AbortController();
  running.set(message.id, controller);
  void runDriver(message.spec, controller.signal).then((result) => {
    running.delete(message.id);
    const reply: SpawnerReply = { type: 'result', id: message.id, result };
    if (process.connected) process.send?.(reply);
  });
});

process.on('disconnect', () => {
  for (const controller of running.values()) controller.abort();
  // runDriver escalates to SIGKILL after each spec's grace; give the groups that long at most.
  setTimeout(() => process.exit(0), 2000).unref();
  if (running.size === 0) process.exit(0);
});
// The daemon handles signals; a Ctrl-C on the terminal must not kill drivers under it first.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
