import type { RelayPayload, ServiceRuntime } from './types.gen.js';

// What the server pushes to a node (RelayRequest) and the node's answer as the requester gets it
// (RelayOutcome) are generated from docs/schemas/control-replies.schema.json into types.gen.ts.

/** The longest path (and rename target) a relay carries, as the protocol schema says: Linux's PATH_MAX. */
export const RELAY_PATH_MAX = 4096;

/** Bodies travel in chunks of at most this many bytes (SPEC §6). */
export const RELAY_CHUNK_BYTES = 256 * 1024;

/** How long a relayed operation other than an invoke may wait for the node's answer (then ETIMEDOUT). */
export const RELAY_WAIT_MS = 60_000;
/** The largest wait a requester may state (`timeout_ms` in the schema). */
export const RELAY_WAIT_MAX_MS = 86_400_000;

/**
 * The longest the server may take to answer a relay (then ETIMEDOUT), what a requester waits for
 * (plus its slack): the relay's `timeout_ms`, else RELAY_WAIT_MS, but for an invoke that states none
 * the server's invokeWaitMs of the descriptor it holds, which the requester may not see (no `read`).
 */
export function relayWaitCeilingMs(relay: Pick<RelayPayload, 'op' | 'timeout_ms'>): number {
  return relay.timeout_ms ?? (relay.op === 'invoke' ? RELAY_WAIT_MAX_MS : RELAY_WAIT_MS);
}

/**
 * How long a relayed invoke may wait (SPEC §3 bound, seen from afar): every invocation queued ahead
 * of it and its own run each take at most timeout_ms + kill_grace_ms, max_concurrency at a time;
 * RELAY_WAIT_MS more covers the node's own slack and the network. From the catalog's descriptor, so
 * a config.json override of timeout_ms is not in it (docs/worldfs.md).
 */
export function invokeWaitMs(runtime: Pick<ServiceRuntime, 'timeout_ms' | 'kill_grace_ms' | 'max_queue' | 'max_concurrency'>): number {
  const runs = Math.ceil(runtime.max_queue / Math.max(1, runtime.max_concurrency)) + 1;
  return Math.min(RELAY_WAIT_MAX_MS, runs * (runtime.timeout_ms + runtime.kill_grace_ms) + RELAY_WAIT_MS);
}
