import type { NodeSummary, PublicNode, ServiceDelta, ServiceDescriptor, UpdatedEntry, DeltaEntry } from '../protocol/types.gen.js';
import { admits, admitsUser, seesNode, type ServicePermissions, type Sight, type UserSight } from '../protocol/visibility.js';
import { deltaBody, fullBody, type CatalogEvent, type EventNode, type StoredService } from './catalog-event.js';
import type { EventShape } from './frames.js';
import { holdsProjectToken, refusal, sessionProject, type ProjectSession } from './policy.js';
import type { Principal } from './principal.js';
import type { ProjectStore } from './projects.js';

/**
 * The control server's side of SPEC §8's visibility rule (src/protocol/visibility.ts): a user
 * session's sight read from its project (live, so a project change, a new project token included,
 * applies at once), and what catalog replies and watch events show it. Hidden services are left
 * out of both; node meta stays.
 */

/** A user session's sight; admins and nodes have none (they see everything; a node reads only its own node, see ops.ts). */
export function userSight(principal: Extract<Principal, { kind: 'user' }>, session: ProjectSession, projects: ProjectStore): UserSight {
  return {
    get hasProjectToken() {
      const project = sessionProject(projects, session);
      return project !== undefined && holdsProjectToken(project, session);
    },
    mounts: (nodeId) => sessionProject(projects, session)?.mounts.some((m) => m.node_id === nodeId) ?? false,
    refusal: (action) => {
      const project = sessionProject(projects, session);
      return project ? refusal(project, action, principal, session) : `no project ${session.projectId}`;
    },
  };
}

/** A stored descriptor's permissions, parsed once per descriptor (the catalog and the events share its bytes). */
const permissionsByJson = new WeakMap<Buffer, ServicePermissions>();
function permissionsOf(service: StoredService): ServicePermissions {
  let permissions = permissionsByJson.get(service.json);
  if (!permissions) {
    permissions = (JSON.parse(service.json.toString()) as ServiceDescriptor).permissions;
    permissionsByJson.set(service.json, permissions);
  }
  return permissions;
}

/** `control.node_get` as the session may see it: the services (and their hashes) it may not see left out. */
export function nodeAsSeen(node: PublicNode, sight: Sight): PublicNode {
  if (sight === undefined || node.services.every((s) => admits(sight, s.permissions))) return node;
  const services = node.services.filter((s) => admits(sight, s.permissions));
  const hashes = node.service_hashes;
  return {
    ...node,
    services,
    ...(hashes === undefined ? {} : { service_hashes: Object.fromEntries(services.map((s) => [s.service_id, hashes[s.service_id] as string])) }),
  };
}

/** A `control.node_list` entry as the session may see it: `service_count` counts what it sees. */
export function summaryAsSeen(summary: NodeSummary, services: readonly StoredService[], sight: Sight): NodeSummary {
  if (sight === undefined) return summary;
  return { ...summary, service_count: services.filter((s) => admits(sight, permissionsOf(s))).length };
}

/** What an event shows the sessions of one kind (with or without the project token), when that differs from the event. */
interface Seen {
  node: EventNode;
  delta: ServiceDelta;
  bytes: Partial<Record<EventShape, WeakRef<Buffer>>>;
}
/** Per event, for sessions without ([0]) and with ([1]) the project token: what they see, or null when that is the event itself. */
const seenByEvent = new WeakMap<CatalogEvent, [Seen | null | undefined, Seen | null | undefined]>();

/**
 * The frame body of `event` in `shape` for the session, or undefined when the session sees all of
 * it (then the bytes every watcher shares serve). Computed once per event for each of the two
 * kinds of user session, so the fan-out's cost per watcher is a lookup.
 */
export function eventBodyAsSeen(event: CatalogEvent, shape: EventShape, sight: Sight): Buffer | undefined {
  if (sight === undefined) return undefined;
  let pair = seenByEvent.get(event);
  if (!pair) seenByEvent.set(event, (pair = [undefined, undefined]));
  const holdsToken = sight.hasProjectToken;
  const index = holdsToken ? 1 : 0;
  let seen = pair[index];
  if (seen === undefined) pair[index] = seen = eventAsSeen(event, holdsToken);
  if (seen === null) return undefined;
  const cached = seen.bytes[shape]?.deref();
  if (cached) return cached;
  const bytes = (shape === 'delta' ? deltaBody : fullBody)(seen.node, seen.delta);
  seen.bytes[shape] = new WeakRef(bytes);
  return bytes;
}

/**
 * Whether a watch of `sight` gets `event` at all (SPEC §8): the project's nodes, while `observe`
 * allows watching and `read` the catalog metadata the event carries (as `node_get` needs it).
 */
export function seesEvent(event: CatalogEvent, sight: Sight): boolean {
  return seesNode(sight, event.node_id, 'observe') && sight?.refusal('read') === undefined;
}

const byId = (a: DeltaEntry, b: DeltaEntry): number => (a.service_id < b.service_id ? -1 : a.service_id > b.service_id ? 1 : 0);
const plain = (e: DeltaEntry): DeltaEntry => ({ service_id: e.service_id, version: e.version, hash: e.hash });

/**
 * The event as a user session sees it, or null when it sees all of it. Hidden services are left
 * out of the catalog and the delta; a service whose permissions changed moves: newly shown, it is
 * `added`; newly hidden, `removed` (with what the session last saw of it). Whether a service was
 * shown before the event comes from the node's services before it (`before`); an event that does
 * not know them (the first of its node read back from the log at start-up) shows no removal it
 * cannot prove the session saw, and takes an update's permissions as unchanged.
 */
function eventAsSeen(event: CatalogEvent, hasProjectToken: boolean): Seen | null {
  const admitted = (s: StoredService): boolean => admitsUser(permissionsOf(s), hasProjectToken);
  const { node, delta } = event;
  const services = node.services.filter(admitted);
  const nowShown = new Set(services.map((s) => s.service_id));
  const before = event.kind === 'delete' ? node.services : event.before;
  const beforeById = before && new Map(before.map((s) => [s.service_id, s]));
  const wasShown = (id: string): boolean => {
    const previous = beforeById?.get(id);
    return previous !== undefined && admitted(previous);
  };
  const added: DeltaEntry[] = delta.added.filter((e) => nowShown.has(e.service_id));
  const updated: UpdatedEntry[] = [];
  const removed: DeltaEntry[] = delta.removed.filter((e) => wasShown(e.service_id));
  for (const entry of delta.updated) {
    const was = beforeById ? wasShown(entry.service_id) : nowShown.has(entry.service_id);
    const now = nowShown.has(entry.service_id);
    if (was && now) updated.push(entry);
    else if (now) added.push(plain(entry));
    else if (was) removed.push({ service_id: entry.service_id, version: entry.previous_version, hash: entry.previous_hash });
  }
  const same =
    services.length === node.services.length &&
    added.length === delta.added.length &&
    updated.length === delta.updated.length &&
    removed.length === delta.removed.length;
  if (same) return null;
  const changed = added.length + updated.length + removed.length > 0;
  return {
    node: { ...node, services },
    delta: { ...delta, changed: delta.changed && changed, added: added.sort(byId), updated, removed: removed.sort(byId) },
    bytes: {},
  };
}
