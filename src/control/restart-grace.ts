/**
 * The longest pause between a node's reconnect attempts with its default options: the node's
 * `--reconnect-backoff-max-ms` (60000, src/cli/node-options.ts) jittered up to 1.5× (Failover,
 * src/protocol/control-urls.ts). The server cannot know a node's own options; these are the defaults.
 */
export const NODE_LONGEST_RECONNECT_PAUSE_MS = 90_000;

/**
 * The grace period a node that was online gets when a control server starts again (SPEC §6: a fresh
 * grace after a restart). While no server answered, the node's reconnect backoff kept doubling, so
 * its pause now is about as long as the time since it was last seen: the grace covers that much more
 * than `--offline-grace-ms`, up to the longest pause, or every node would flap offline and back
 * after a restart that took longer than the grace.
 */
export function restartGraceMs(offlineGraceMs: number, lastSeenMs: number, nowMs: number): number {
  return offlineGraceMs + Math.min(Math.max(0, nowMs - lastSeenMs), NODE_LONGEST_RECONNECT_PAUSE_MS);
}
