import type { RelayPayload, RelayReplyPayload, ServiceDescriptor } from './types.gen.js';

/**
 * WorldFS relay (SPEC §9): what the server pushes to a node's tunnel as `control.relay_request`:
 * the operation, the relay id to answer with, and the requesting session (handles are per session).
 */
export type RelayRequest = Omit<RelayPayload, 'node_id'> & { relay_id: string; session: string };

/** The node's answer, passed on to the requester unchanged (without the relay id). */
export type RelayOutcome = Omit<RelayReplyPayload, 'relay_id'>;

/** Bodies travel in chunks of at most this many bytes (SPEC §6). */
export const RELAY_CHUNK_BYTES = 256 * 1024;

/**
 * Whether a service's `permissions` admit a user session (SPEC §8): `allow_roles` contains `user`,
 * `*` or `all`; otherwise a `deny` / `deny-by-default` default refuses; `require_project_token`
 * refuses a session without the project token. WorldFS hides what this refuses; the server
 * refuses to relay to it.
 */
export function admitsUser(permissions: ServiceDescriptor['permissions'], hasProjectToken: boolean): boolean {
  if (permissions.require_project_token === true && !hasProjectToken) return false;
  if ((permissions.allow_roles ?? []).some((role) => role === 'user' || role === '*' || role === 'all')) return true;
  return !/^deny/.test(permissions.default);
}
