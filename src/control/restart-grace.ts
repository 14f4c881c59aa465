import type { NodeRecord } from './catalog-store.js';

/**
 * The longest pause between a node's reconnect attempts with its default options: the node's
 * `--reconnect-backoff-max-ms` (60000, src/cli/node-options.ts), which its jitter never passes
 * (Failover, src/protocol/control-urls.ts). The server cannot know a node's own options; these are
 * the defaults.
 */
export const NODE_LONGEST_RECONNECT_PAUSE_MS = 60_000;

/**
 * The grace period a node that was online gets when a control server starts again (SPEC §6: a fresh
 * grace after a restart). While no server answered, the node's reconnect backoff kept doubling, so
 * its pause now is about as long as the outage: the grace covers the time since the node was last
 * seen more than `--offline-grace-ms`, up to the longest pause, or every node would flap offline and
 * back after a restart that took longer than the grace. `lastAliveMs`, when known, is when the
 * previous run of the server was last up, and bounds that time: without it a server that
 * crash-looped kept a gone node online for ever, each start granting it the longest pause again.
 * The price: a live node whose every attempt missed the short runs of a long crash loop may show
 * offline until it reconnects.
 */
export function restartGraceMs(offlineGraceMs: number, lastSeenMs: number, nowMs: number, lastAliveMs?: number): number {
  const down = lastAliveMs === undefined ? Infinity : Math.max(0, nowMs - lastAliveMs);
  return offlineGraceMs + Math.min(Math.max(0, nowMs - lastSeenMs), down, NODE_LONGEST_RECONNECT_PAUSE_MS);
}

/**
 * At start-up (file store), every node that was online gets a fresh grace period (SPEC §6), long enough for
 * its grown backoff: no tunnel is open yet, so a node that does not come back within it turns
 * offline then, not at its lease end.
 */
export function grantRestartGrace(nodes: Iterable<NodeRecord>, offlineGraceMs: number, lastAliveMs: number | undefined, nowMs = Date.now()): void {
  for (const node of nodes)
    if (node.state === 'online') node.lease_expires_at_ms = nowMs + restartGraceMs(offlineGraceMs, node.last_seen_ms, nowMs, lastAliveMs);
}
