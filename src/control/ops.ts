import type {
  NodeGetPayload,
  NodeJoinPayload,
  NodeRefPayload,
  NodeServiceUnwatchPayload,
  NodeServiceUpsertPayload,
  ProjectPayload,
  ProjectRefPayload,
  RelayPayload,
  RelayPeerPayload,
  RelayReplyPayload,
  RelaySessionPayload,
  ServiceDescriptor,
  ServiceDescriptorInput,
  SessionAttachPayload,
} from '../protocol/types.gen.js';
import { ProtocolError } from '../protocol/errors.js';
import { problemAt, SCHEMA_BASE, type Problem, type Schemas } from '../protocol/schemas.js';
import { foreignPaths, repeatedMountIds, withServiceDefaults } from '../protocol/service-defaults.js';
import type { CatalogStore } from './catalog-store.js';
import type { ConnectionPeer } from './connection-peer.js';
import { SerializedPayload } from './frames.js';
import type { ControlMetrics } from './metrics.js';
import { relaySession, type RelayHub } from './relay-hub.js';
import type { RelayPolicy } from './relay-policy.js';
import type { Principal, Role } from './principal.js';
import type { TokenStore } from './token-store.js';
import { jsonBytes } from './delta.js';
import { incomingServices, type IncomingService, type ResolvedService } from './upsert-frame.js';
import type { WatchHub, WatchRequest } from './watch-hub.js';
import { watchAccess, type WatchPolicy } from './watch-policy.js';
import { attachSession, holdsProjectToken, notInSession, refusal, sessionProject, type Action, type ProjectSession } from './policy.js';
import { noProject, toPublic, type Project, type ProjectStore } from './projects.js';
import { nodeAsSeen, summaryAsSeen, userSight } from './sight.js';
import { seesNode, type Sight } from '../protocol/visibility.js';

export interface OpContext {
  principal: Principal;
  schemas: Schemas;
  catalog: CatalogStore;
  tokens: TokenStore;
  metrics: ControlMetrics;
  watches: WatchHub;
  relays: RelayHub;
  relayPolicy: RelayPolicy;
  watchPolicy: WatchPolicy;
  projects: ProjectStore;
  /** This connection's project session, if it attached one. */
  session: ProjectSession | undefined;
  attach(session: ProjectSession): void;
  /** After a join, the connection speaks for the node it created, with the secret the join gave. */
  becomeNode(nodeId: string, secret: string): void;
  /** Closes the node's open connections but `except`: their credentials are gone (a new join replaced the secret). */
  dropNode(nodeId: string, except?: ConnectionPeer): void;
  /** The watch op answers before it replays (SPEC §6 order); then it returns ALREADY_REPLIED. */
  replyNow(payload: unknown): void;
  connection: ConnectionPeer;
}

/** Returned by an op that has sent its reply itself. */
export const ALREADY_REPLIED = Symbol('already replied');

export interface Op<P> {
  /** The definition in control-protocol.schema.json the payload must match. */
  schema: string;
  roles: readonly Role[];
  handle(context: OpContext, payload: P): Promise<unknown>;
}

const PROTOCOL_SCHEMA = `${SCHEMA_BASE}control-protocol.schema.json#/definitions/`;
const DESCRIPTOR_SCHEMA = `${SCHEMA_BASE}service-descriptor.schema.json`;
const INPUT_SCHEMA = PROTOCOL_SCHEMA + 'service_input';

/** A node acts only on its own node_id [beyond: the earlier system gave nodes the admin token]. */
function ownNode(context: OpContext, nodeId: string): void {
  const { principal } = context;
  if (principal.kind === 'node' && principal.nodeId !== nodeId) {
    throw new ProtocolError('forbidden', `node ${principal.nodeId} may not act on node ${nodeId}`, { field: '/node_id' });
  }
}

/**
 * A node's frame read after its connection began to close is not served. ws hands the receiver what
 * the socket still held when it goes (after a server stall: the lease refreshes the node sent
 * meanwhile, read once the dead peer was dropped); served, a refresh or upsert brought the node back
 * online with no tunnel until its lease ran out, and relay_ready routed relays to a dead connection
 * (ETIMEDOUT instead of EHOSTUNREACH). Its reply could not be sent anyway.
 */
function openConnection(context: OpContext, op: string): void {
  if (!context.connection.isOpen) throw new ProtocolError('unavailable', `${op}: the connection closed before it was served`);
}

/**
 * The project, when this connection may perform `action` on it (SPEC §8); `forbidden` with the
 * reason otherwise. A user names only the project of its session: any other id is `not_found`,
 * whether a project has it or not.
 */
function allowed(context: OpContext, projectId: string, action: Action): Project {
  if (context.principal.kind === 'user' && context.session?.projectId !== projectId) throw notInSession(projectId);
  // A user's session is of one project: deleted since, it is gone, also when one was made again under its id.
  const project = context.principal.kind === 'user' && context.session ? sessionProject(context.projects, context.session) : context.projects.find(projectId);
  if (!project) throw noProject(projectId);
  const why = refusal(project, action, context.principal, context.session);
  if (why) throw new ProtocolError('forbidden', why);
  return project;
}

/**
 * What this connection may read of the catalog (SPEC §8 `read`, sight.ts): all for admins and
 * nodes (their own is checked by ownNode); for a user, the nodes its project session mounts, when
 * `read` allows, and of those the services whose permissions admit the session.
 */
function readSight(context: OpContext): Sight {
  if (context.principal.kind !== 'user') return undefined;
  if (!context.session)
    throw new ProtocolError('forbidden', 'catalog reads by users need a project session: control.session_attach {project_id, project_token?} first');
  allowed(context, context.session.projectId, 'read');
  return userSight(context.principal, context.session, context.projects);
}

/**
 * The upsert's descriptors ready to store. A stored one (upsert-frame.ts) is taken as it is; every
 * other gets SPEC §2's defaults (src/protocol/service-defaults.ts, as the node applies them to its
 * manifests) and must then match the descriptor schema, with its endpoints and mount paths under
 * the node's own `/nodes/<node_id>/` and no `mount_id` twice. The first problem is the error, naming the field.
 */
function resolveDescriptors(context: OpContext, nodeId: string, services: readonly IncomingService[]): ResolvedService[] {
  const fresh = services.map((incoming, index) => {
    if ('known' in incoming) return incoming;
    const at = `/services/${index}`;
    const fail = (problem: Problem): never => {
      throw new ProtocolError('invalid_payload', problem.message, { field: problem.json_path });
    };
    const inputProblem = context.schemas.problems(INPUT_SCHEMA, incoming.value, 'payload', at)[0];
    if (inputProblem) fail(inputProblem);
    const input = incoming.value as ServiceDescriptorInput;
    const service = withServiceDefaults(input, nodeId);
    const problem = context.schemas.problems(DESCRIPTOR_SCHEMA, service, 'payload', at)[0];
    if (problem) fail(problem);
    const descriptor = service as ServiceDescriptor;
    const foreign = foreignPaths(descriptor, nodeId)[0];
    if (foreign)
      fail(
        problemAt('payload', at + foreign.pointer, 'node_path', `${foreign.path} is not under /nodes/${nodeId}/: a node publishes only paths of its own tree`),
      );
    const repeated = repeatedMountIds(descriptor)[0];
    if (repeated)
      fail(problemAt('payload', at + repeated.pointer, 'duplicate', `mount_id "${repeated.mountId}" is already used by ${at}/mounts/${repeated.first}`));
    return { service: descriptor, text: JSON.stringify(descriptor) };
  });
  const bytes = jsonBytes(fresh.flatMap((s) => ('text' in s ? [s.text] : [])));
  let next = 0;
  return fresh.map((s) => ('text' in s ? { service: s.service, json: bytes[next++] as Buffer } : s));
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
    const joined = await context.catalog.join(payload).catch(async (error: unknown) => {
      // Nothing joined (all or nothing): the single-use token is given back, so the node may try again.
      if (context.principal.kind === 'joiner') await context.tokens.returnJoin(payload.join_token).catch(() => undefined);
      throw error;
    });
    // A joining node's connection now speaks for it; an admin provisioning a node stays admin.
    if (context.principal.kind === 'joiner') context.becomeNode(joined.node_id, joined.node_secret);
    // A join of a known node id gives it a new secret: connections made with the old one end.
    context.dropNode(joined.node_id, context.connection);
    return joined;
  }),
  'control.node_service_upsert': op<NodeServiceUpsertPayload>('node_service_upsert', ['node', 'admin'], async (context, payload) => {
    openConnection(context, 'control.node_service_upsert');
    const services = resolveDescriptors(context, payload.node_id, incomingServices(payload));
    ownNode(context, payload.node_id);
    const { delta, body } = await context.catalog.upsert(payload, services);
    context.metrics.upserts.inc({ changed: String(delta.changed) });
    return new SerializedPayload(body);
  }),
  'control.node_lease_refresh': op<NodeRefPayload>('node_ref', ['node', 'admin'], async (context, payload) => {
    openConnection(context, 'control.node_lease_refresh');
    ownNode(context, payload.node_id);
    const { leaseExpiresAtMs } = await context.catalog.refresh(payload.node_id);
    return { node_id: payload.node_id, lease_expires_at_ms: leaseExpiresAtMs, lease_ttl_ms: context.catalog.leaseTtlMs };
  }),
  'control.node_service_get': op<NodeRefPayload>('node_ref', ['node', 'admin'], async (context, payload) => {
    ownNode(context, payload.node_id);
    const node = context.catalog.get(payload.node_id);
    return { node_id: node.node_id, node_name: node.node_name, platform: node.platform, labels: node.labels, services: node.services };
  }),
  'control.node_list': op<Record<string, never>>('empty', ['admin', 'user'], async (context) => {
    const sight = readSight(context);
    return {
      nodes: context.catalog
        .list()
        .filter((node) => seesNode(sight, node.node_id, 'read'))
        .map((node) => summaryAsSeen(node, context.catalog.storedServices(node.node_id) ?? [], sight)),
    };
  }),
  'control.node_get': op<NodeGetPayload>('node_get', ['admin', 'node', 'user'], async (context, payload) => {
    ownNode(context, payload.node_id);
    // A node outside the user's project is absent, not forbidden (SPEC §8: hidden means absent).
    const sight = readSight(context);
    if (!seesNode(sight, payload.node_id, 'read')) throw new ProtocolError('not_found', `no node ${payload.node_id}`, { field: '/node_id' });
    return nodeAsSeen(context.catalog.get(payload.node_id, payload.view ?? 'published'), sight);
  }),
  'control.node_delete': op<NodeRefPayload>('node_ref', ['admin'], async (context, payload) => {
    const node = await context.catalog.delete(payload.node_id);
    return { node_id: node.node_id, deleted: true };
  }),
  'control.node_service_watch': op<WatchRequest>('node_service_watch', ['admin', 'user'], async (context, payload) => {
    const access = watchAccess(context.principal, context.watchPolicy, context.session, context.projects, payload.purpose);
    if ('refused' in access) throw new ProtocolError('forbidden', access.refused);
    await context.watches.watch(context.connection, payload, access, (ack) => context.replyNow(ack));
    return ALREADY_REPLIED;
  }),
  'control.project_upsert': op<ProjectPayload>('project', ['admin', 'user'], async (context, payload) => {
    // Users change only the project of their session, where its admin action allows; any other id,
    // known or not, gets one answer (ids are not for probing), as does their session's project once
    // deleted, made again under its id or not.
    if (context.principal.kind !== 'admin') {
      const { session } = context;
      const existing = session?.projectId === payload.project_id ? sessionProject(context.projects, session) : undefined;
      const why = existing
        ? refusal(existing, 'admin', context.principal, session)
        : `project ${payload.project_id} is not this session's: attach a session to project ${payload.project_id} first (control.session_attach); only admins create projects`;
      if (why) throw new ProtocolError('forbidden', why);
      // A project admin changes the project's policy, not its reach: the nodes are the fleet admins' to give.
      const had = new Set(existing?.mounts.map((m) => m.node_id));
      const added = [...new Set(payload.mounts?.map((m) => m.node_id).filter((id) => !had.has(id)))];
      if (added.length > 0)
        throw new ProtocolError('forbidden', `only admins add nodes to a project: ${added.join(', ')} not in project ${payload.project_id}`, {
          field: '/payload/mounts',
        });
    }
    return context.projects.upsert(payload);
  }),
  'control.project_get': op<ProjectRefPayload>('project_ref', ['admin', 'user'], async (context, payload) => {
    return toPublic(allowed(context, payload.project_id, 'read'));
  }),
  'control.project_list': op<Record<string, never>>('empty', ['admin'], async (context) => ({ projects: context.projects.list() })),
  'control.project_delete': op<ProjectRefPayload>('project_ref', ['admin', 'user'], async (context, payload) => {
    allowed(context, payload.project_id, 'admin');
    await context.projects.delete(payload.project_id);
    return { project_id: payload.project_id, deleted: true };
  }),
  'control.project_token_rotate': op<ProjectRefPayload>('project_ref', ['admin', 'user'], async (context, payload) => {
    allowed(context, payload.project_id, 'admin');
    return { project_id: payload.project_id, token: await context.projects.rotateToken(payload.project_id) };
  }),
  'control.session_attach': op<SessionAttachPayload>('session_attach', ['user', 'admin'], async (context, payload) => {
    const { project_id: projectId, project_token: token } = payload;
    const { project, session, actions } = attachSession(projectId, context.projects.find(projectId), token, context.principal);
    context.attach(session);
    // The project's nodes only to a session that may read the catalog (they are catalog metadata);
    // what each action answers, so clients (and the debug page) can explain a refusal up front.
    const nodes = actions.read === 'allowed' ? project.mounts.map((m) => m.node_id) : [];
    return { project_id: projectId, has_project_token: holdsProjectToken(project, session), nodes, actions };
  }),
  'control.node_service_unwatch': op<NodeServiceUnwatchPayload>('node_service_unwatch', ['admin', 'user'], async (context, payload) => {
    context.watches.unwatch(context.connection, payload.watch_id);
    return { watch_id: payload.watch_id, enabled: false };
  }),
  'control.metrics': op<Record<string, never>>('empty', ['admin'], async (context) => context.metrics.json()),
  // WorldFS (SPEC §9): the reply is the node's outcome, an errno by name when it failed.
  'control.relay': op<RelayPayload>('relay', ['admin', 'user'], async (context, payload) => {
    return context.relayPolicy.refusal(context.principal, context.session, payload) ?? context.relays.forward(payload, relaySession(context.connection));
  }),
  // A relay another server of the store forwards here, where the node's tunnel is: that server checked the policy.
  'control.relay_peer': op<RelayPeerPayload>('relay_peer', ['peer'], async (context, payload) =>
    context.relays.forward(payload.relay, payload.session, { via: relaySession(context.connection) }),
  ),
  'control.relay_session_gone': op<RelaySessionPayload>('relay_session', ['peer'], async (context, payload) => {
    context.relays.sessionGone(payload.session);
    return {};
  }),
  // The node's connection serves relays from now on (it has finished the handshake and its set-up).
  'control.relay_ready': op<NodeRefPayload>('node_ref', ['node'], async (context, payload) => {
    openConnection(context, 'control.relay_ready');
    ownNode(context, payload.node_id);
    context.relays.tunnelReady(payload.node_id, context.connection);
    return {};
  }),
  'control.relay_reply': op<RelayReplyPayload>('relay_reply', ['node'], async (context, payload) => {
    const { relay_id: relayId, ...outcome } = payload;
    const nodeId = context.principal.kind === 'node' ? context.principal.nodeId : '';
    if (!context.relays.complete(nodeId, relayId, outcome))
      throw new ProtocolError('not_found', `no relayed operation ${relayId} is waiting for node ${nodeId}`, { field: '/relay_id' });
    // The requester waits for this outcome, the node only for this acknowledgement, and each reply
    // is a socket write: the requester's goes out first.
    await new Promise((resolve) => setImmediate(resolve));
    return {};
  }),
};
