import type { NodeJoinPayload, NodeRefPayload, NodeServiceUnwatchPayload, NodeServiceUpsertPayload } from '../protocol/types.gen.js';
import { ProtocolError } from '../protocol/errors.js';
import type { Catalog } from './catalog.js';
import type { ControlConnection } from './connection.js';
import type { ControlMetrics } from './metrics.js';
import type { Principal, Role } from './principal.js';
import type { TokenStore } from './token-store.js';
import type { WatchHub, WatchRequest } from './watch-hub.js';
import { watchRefusal, type WatchPolicy } from './watch-policy.js';

export interface OpContext {
  principal: Principal;
  catalog: Catalog;
  tokens: TokenStore;
  metrics: ControlMetrics;
  watches: WatchHub;
  watchPolicy: WatchPolicy;
  /** After a join, the connection speaks for the node it created. */
  becomeNode(nodeId: string): void;
  /** The watch op answers before it replays (SPEC §6 order); then it returns ALREADY_REPLIED. */
  replyNow(payload: unknown): void;
  connection: ControlConnection;
}

/** Returned by an op that has sent its reply itself. */
export const ALREADY_REPLIED = Symbol('already replied');

export interface Op<P> {
  /** The definition in control-protocol.schema.json the payload must match. */
  schema: string;
  roles: readonly Role[];
  handle(context: OpContext, payload: P): Promise<unknown>;
}

const PROTOCOL_SCHEMA = 'https://acheron.dev/schemas/control-protocol.schema.json#/definitions/';

/** A node acts only on its own node_id [beyond: the earlier system gave nodes the admin token]. */
function ownNode(context: OpContext, nodeId: string): void {
  const { principal } = context;
  if (principal.kind === 'node' && principal.nodeId !== nodeId) {
    throw new ProtocolError('forbidden', `node ${principal.nodeId} may not act on node ${nodeId}`, { field: '/node_id' });
  }
}

function op<P>(definition: string, roles: readonly Role[], handle: Op<P>['handle']): Op<P> {
  return { schema: PROTOCOL_SCHEMA + definition, roles, handle };
}

/** Every op the server answers (SPEC §6), with who may call it; unknown types get `unknown_op`. */
export const OPS: Record<string, Op<never>> = {
  'control.node_join': op<NodeJoinPayload>('node_join', ['joiner', 'admin'], async (context, payload) => {
    if (context.principal.kind === 'joiner' && !(await context.tokens.consumeJoin(payload.join_token))) {
      throw new ProtocolError('unauthorized', 'join_token is unknown, used or expired', { field: '/join_token' });
    }
    const joined = await context.catalog.join(payload);
    context.becomeNode(joined.node_id);
    return joined;
  }),
  'control.node_service_upsert': op<NodeServiceUpsertPayload>('node_service_upsert', ['node', 'admin'], async (context, payload) => {
    ownNode(context, payload.node_id);
    const { node, delta } = await context.catalog.upsert(payload);
    context.metrics.upserts.inc({ changed: String(delta.changed) });
    return { node_id: node.node_id, node_name: node.node_name, platform: node.platform, labels: node.labels, services: node.services, service_delta: delta };
  }),
  'control.node_lease_refresh': op<NodeRefPayload>('node_ref', ['node', 'admin'], async (context, payload) => {
    ownNode(context, payload.node_id);
    const { node } = await context.catalog.refresh(payload.node_id);
    return { node_id: node.node_id, lease_expires_at_ms: node.lease_expires_at_ms, lease_ttl_ms: context.catalog.leaseTtlMs };
  }),
  'control.node_service_get': op<NodeRefPayload>('node_ref', ['node', 'admin'], async (context, payload) => {
    ownNode(context, payload.node_id);
    const node = context.catalog.get(payload.node_id);
    return { node_id: node.node_id, node_name: node.node_name, platform: node.platform, labels: node.labels, services: node.services };
  }),
  'control.node_list': op<Record<string, never>>('empty', ['admin'], async (context) => ({
    nodes: context.catalog.list().map(({ services, ...node }) => ({ ...node, service_count: services.length })),
  })),
  'control.node_get': op<NodeRefPayload>('node_ref', ['admin', 'node'], async (context, payload) => {
    ownNode(context, payload.node_id);
    return context.catalog.get(payload.node_id);
  }),
  'control.node_delete': op<NodeRefPayload>('node_ref', ['admin'], async (context, payload) => {
    const node = await context.catalog.delete(payload.node_id);
    return { node_id: node.node_id, deleted: true };
  }),
  'control.node_service_watch': op<WatchRequest>('node_service_watch', ['admin', 'user'], async (context, payload) => {
    const refusal = watchRefusal(context.principal, context.watchPolicy);
    if (refusal) throw new ProtocolError('forbidden', refusal);
    context.watches.watch(context.connection, payload, () => true, (ack) => context.replyNow(ack));
    return ALREADY_REPLIED;
  }),
  'control.node_service_unwatch': op<NodeServiceUnwatchPayload>('node_service_unwatch', ['admin', 'user'], async (context, payload) => {
    context.watches.unwatch(context.connection, payload.watch_id);
    return { watch_id: payload.watch_id, enabled: false };
  }),
  'control.metrics': op<Record<string, never>>('empty', ['admin'], async (context) => context.metrics.json()),
};
