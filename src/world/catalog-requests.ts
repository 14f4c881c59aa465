import type { Logger } from 'pino';
import type { ControlClient } from '../protocol/control-client.js';
import { ProtocolError } from '../protocol/errors.js';
import { SchemaError } from '../protocol/schemas.js';
import type { CatalogDeltaPayload, PublicNode, SessionAttachReply, StoredNode, WatchAck } from '../protocol/types.gen.js';
import { afterGone, type CatalogMirror } from './catalog-mirror.js';

// The requests a WorldFS catalog makes on a connection besides its reads of nodes (world-catalog.ts).

/** Every event a WorldFS mount follows: delta events, named as the mount's watch in the server's metrics and debug page. */
const WATCH = { include: 'delta', purpose: 'worldfs' } as const;

/** A watch from now on, without replay: the catalog is read after it starts, so nothing falls between. Resolves to its id. */
export async function watchFromNow(client: ControlClient): Promise<string> {
  return (await client.request<WatchAck>('control.node_service_watch', { replay_limit: 0, ...WATCH })).watch_id;
}

/** A watch from after `position` on this connection, its id; undefined when the server cannot resume from there (read everything instead). */
export async function resumeWatch(client: ControlClient, position: number, log: Logger): Promise<string | undefined> {
  try {
    return (await client.request<WatchAck>('control.node_service_watch', { since_seq: position, ...WATCH })).watch_id;
  } catch (error) {
    if (!(error instanceof ProtocolError && error.code === 'resync_required')) throw error;
    log.warn({ reason: error.message, since_seq: position }, 'cannot resume the watch here: reading the catalog again');
    return undefined;
  }
}

/**
 * Ends the connection's watch before another starts (its events follow the sight of the session it
 * started under, and the new watch's events would come twice). One the server ended is not_found: done already.
 */
export async function unwatch(client: ControlClient, watchId: string | undefined): Promise<void> {
  if (watchId === undefined) return;
  await client.request('control.node_service_unwatch', { watch_id: watchId }).catch((error: unknown) => {
    if (!(error instanceof ProtocolError && error.code === 'not_found')) throw error;
  });
}

/** A refusal of the session (its project token rotated, its project changed): the connection stays usable. */
export function isSessionRefusal(error: unknown): error is ProtocolError {
  return error instanceof ProtocolError && (error.code === 'forbidden' || error.code === 'not_found' || error.code === 'unauthorized');
}

/**
 * Reads one node into `into` unless the catalog was read again since (`current()` is another
 * mirror: the answer is dropped), and resolves to the events queued meanwhile that still apply: all
 * of them, or, the node gone (not_found), those its absence does not settle (afterGone).
 */
export async function readNode(
  client: ControlClient,
  nodeId: string,
  events: CatalogDeltaPayload[],
  into: CatalogMirror,
  current: () => CatalogMirror,
): Promise<CatalogDeltaPayload[]> {
  try {
    const node = await client.request<StoredNode>('control.node_get', { node_id: nodeId, view: 'stored' });
    if (into === current()) into.set(node);
    return events;
  } catch (error) {
    if (!(error instanceof ProtocolError && error.code === 'not_found')) throw error;
    if (into === current()) into.delete(nodeId);
    return afterGone(events);
  }
}

/** Attaches the project session on a connection; `withProjectToken` false: without the project token (WorldCatalogOptions.attach). */
export type Attach = (client: ControlClient, withProjectToken?: boolean) => Promise<SessionAttachReply | undefined>;

/**
 * The project session attached again on a live connection (its project changed), and its grant. The
 * project token refused (rotated, until its file has the new one): attached without it, so the grant
 * says what a session without the token may do, as the server now treats this one; the next
 * connection, with the new token, sees that its sight differs and reads everything again.
 */
export async function attachAgain(attach: Attach | undefined, client: ControlClient, log: Logger): Promise<SessionAttachReply | undefined> {
  try {
    return await attach?.(client);
  } catch (error) {
    if (!(error instanceof ProtocolError && error.code === 'unauthorized')) throw error;
    log.warn({ err: error.message }, 'the project token was refused: attached without it until its file holds the new one');
    return await attach?.(client, false);
  }
}

/**
 * The project token file holds a new token: the session attached with it on the live connection,
 * and its grant. Refused (a typo, a token of before), the server keeps the session it had and so
 * does the mount: undefined, said in the log (while the server still accepts the token before, it
 * is as if nothing changed; once rotated away, the session is one without the token).
 */
export async function attachNewToken(
  attach: Attach | undefined,
  client: ControlClient,
  log: Logger,
): Promise<{ grant: SessionAttachReply | undefined } | undefined> {
  try {
    return { grant: await attach?.(client) };
  } catch (error) {
    if (!(error instanceof ProtocolError && error.code === 'unauthorized')) throw error;
    log.warn({ err: error.message }, 'the new project token was refused: the session stays as it was attached');
    return undefined;
  }
}

/** Only the times: state and services come from events, which are ordered; a list may be older. */
export async function refreshLeases(client: ControlClient, mirror: () => CatalogMirror, log: Logger): Promise<void> {
  try {
    const { nodes } = await client.request<{ nodes: Array<Pick<PublicNode, 'node_id' | 'lease_expires_at_ms' | 'last_seen_ms'>> }>('control.node_list');
    for (const listed of nodes) mirror().touch(listed.node_id, listed);
  } catch (error) {
    // The connection is going down; the next one reads everything again. A malformed list is the server's fault: say so.
    if (error instanceof SchemaError) log.error({ problems: error.problems.map((p) => p.message) }, `bad node_list reply: ${error.message}`);
  }
}

/** The node a malformed `control.node_service_event` names, when it names one. */
export function eventNodeId(frame: unknown): string | undefined {
  const { type, payload } = (typeof frame === 'object' && frame !== null ? frame : {}) as { type?: unknown; payload?: { node_id?: unknown } };
  const nodeId = type === 'control.node_service_event' && typeof payload === 'object' && payload !== null ? payload.node_id : undefined;
  return typeof nodeId === 'string' && nodeId.length > 0 ? nodeId : undefined;
}
