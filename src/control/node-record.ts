import { createHash, randomBytes } from 'node:crypto';
import { offlineView } from '../protocol/catalog-event.js';
import { ProtocolError } from '../protocol/errors.js';
import type {
  EventKind,
  NodeJoinPayload,
  NodeJoinReply,
  NodeServiceUpsertPayload,
  NodeState,
  NodeSummary,
  PublicNode,
  ServiceDelta,
  ServiceDescriptor,
} from '../protocol/types.gen.js';
import type { NodeRecord } from './catalog-store.js';
import { entriesDelta, jsonBytes, serviceEntry, type ServiceEntry } from './delta.js';
import { sameSecret } from './token-store.js';
import type { EventRecord } from './event-log-history.js';
import type { ResolvedService } from './upsert-frame.js';

/**
 * What both catalog stores (files, etcd) decide the same way: the record a join, an upsert, a
 * refresh, an expiry or a delete leads to, and the views of a record. The stores differ only in how
 * they make the change durable and tell the watchers.
 */

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export function secretMatches(node: NodeRecord | undefined, secret: string): boolean {
  return node !== undefined && sameSecret(node.secret_sha256, hashSecret(secret));
}

/** A join's record (a fresh secret; what the payload leaves out kept from `existing`) and the event, if any. */
export function joinPlan(
  payload: NodeJoinPayload,
  existing: NodeRecord | undefined,
  now: number,
  leaseTtlMs: number,
): { next: NodeRecord; kind: EventKind | undefined; delta: ServiceDelta; reply: NodeJoinReply } {
  const nodeId = payload.node_id ?? `node-${randomBytes(4).toString('hex')}`;
  const secret = randomBytes(32).toString('base64url');
  const next: NodeRecord = {
    node_id: nodeId,
    node_name: payload.node_name ?? existing?.node_name ?? nodeId,
    platform: payload.platform ?? existing?.platform ?? {},
    labels: payload.labels ?? existing?.labels ?? {},
    services: existing?.services ?? [],
    state: 'online',
    lease_expires_at_ms: now + leaseTtlMs,
    last_seen_ms: now,
    joined_at_ms: existing?.joined_at_ms ?? now,
    updated_ms: now,
    seq: existing?.seq ?? 0,
    secret_sha256: hashSecret(secret),
  };
  // A node already online gets a new secret and no event.
  const kind = existing?.state === 'online' ? undefined : 'online';
  return { next, kind, delta: entriesDelta(next.services, next.services, now), reply: { node_id: nodeId, node_secret: secret, lease_ttl_ms: leaseTtlMs } };
}

/** The record after an event the journal's snapshot lacks (start-up replays them). */
export function replayed(node: NodeRecord, event: EventRecord): NodeRecord {
  const previous = new Map(node.services.map((e) => [e.service_id, e]));
  const offline = event.kind === 'offline';
  return {
    ...node,
    node_name: event.node_name,
    platform: event.platform,
    labels: event.labels,
    // An offline event shows the services offline; every other kind carries them as stored (an `online` upsert may have changed them too).
    services: offline ? node.services : storedEntries(event.services, (s, json) => serviceEntry(s, json, false, previous.get(s.service_id))),
    state: offline ? 'offline' : 'online',
    // Any other kind is the node's own doing (a join, an upsert, a refresh that brought it back): seen then.
    last_seen_ms: offline ? node.last_seen_ms : Math.max(node.last_seen_ms, event.timestamp_ms),
    updated_ms: event.timestamp_ms,
    seq: event.seq,
  };
}

/**
 * An upsert's record (the whole catalog replaced, all or nothing) and what it is: an event
 * (`upsert` when the catalog changed, `online` when only the node came back), a metadata-only
 * change (no event, but stored), or nothing but the lease.
 */
export function upsertPlan(
  node: NodeRecord,
  payload: Omit<NodeServiceUpsertPayload, 'services'>,
  incoming: readonly ResolvedService[],
  now: number,
  leaseTtlMs: number,
): { next: NodeRecord; delta: ServiceDelta; kind: EventKind | undefined; metadataChanged: boolean } {
  const previous = new Map(node.services.map((e) => [e.service_id, e]));
  const services = incoming.map((s) => ('known' in s ? s.known : serviceEntry(s.service, s.json, true, previous.get(s.service.service_id))));
  const ids = new Set<string>();
  for (const [index, { service_id: serviceId }] of services.entries()) {
    if (ids.has(serviceId))
      throw new ProtocolError('invalid_payload', `services/${index}/service_id: duplicate service_id ${serviceId}`, { field: `/services/${index}/service_id` });
    ids.add(serviceId);
  }
  const delta = entriesDelta(node.services, services, now);
  const next: NodeRecord = {
    ...node,
    ...(payload.node_name === undefined ? {} : { node_name: payload.node_name }),
    ...(payload.platform === undefined ? {} : { platform: payload.platform }),
    ...(payload.labels === undefined ? {} : { labels: payload.labels }),
    services: delta.changed ? services : node.services,
    state: 'online',
    last_seen_ms: now,
    lease_expires_at_ms: now + leaseTtlMs,
    updated_ms: delta.changed ? now : node.updated_ms,
  };
  const metadataChanged =
    next.node_name !== node.node_name ||
    JSON.stringify(next.platform) !== JSON.stringify(node.platform) ||
    JSON.stringify(next.labels) !== JSON.stringify(node.labels);
  // An unchanged upsert emits nothing (SPEC §6); a node coming back says so, with whatever its
  // upsert changed in the delta (a restarted node nearly always changes something: watchers
  // looking for `online` would otherwise never see it come back).
  const kind = node.state === 'offline' ? 'online' : delta.changed ? 'upsert' : undefined;
  return { next, delta, kind, metadataChanged };
}

/** A lease refresh: the lease extended; an offline node comes back (`online`). */
export function refreshPlan(node: NodeRecord, now: number, leaseTtlMs: number): { next: NodeRecord; kind: EventKind | undefined; delta: ServiceDelta } {
  const next: NodeRecord = { ...node, state: 'online', last_seen_ms: now, lease_expires_at_ms: now + leaseTtlMs };
  return { next, kind: node.state === 'offline' ? 'online' : undefined, delta: entriesDelta(node.services, node.services, now) };
}

/** Whether the node's lease has lapsed by `now` while it is online (SPEC §6: it turns offline). */
export function lapsed(node: NodeRecord | undefined, now: number): node is NodeRecord {
  return node !== undefined && node.state === 'online' && node.lease_expires_at_ms <= now;
}

/** The `offline` event's record: services kept (SPEC §6). */
export function offlinePlan(node: NodeRecord, now: number): { next: NodeRecord; delta: ServiceDelta } {
  return { next: { ...node, state: 'offline', updated_ms: now }, delta: entriesDelta(node.services, node.services, now) };
}

/** The `delete` event: every service removed. */
export function deleteDelta(node: NodeRecord, now: number): ServiceDelta {
  return entriesDelta(node.services, [], now);
}

export function noNode(nodeId: string): ProtocolError {
  return new ProtocolError('not_found', `no node ${nodeId}`, { field: '/node_id' });
}

export function toPublic(node: NodeRecord, view: 'published' | 'stored' = 'published'): PublicNode {
  const { secret_sha256: _secret, services: entries, node_id, node_name, platform, labels, ...rest } = node;
  const services = entries.map((e) => JSON.parse(e.json.toString()) as ServiceDescriptor);
  if (view === 'stored')
    return { node_id, node_name, platform, labels, services, service_hashes: Object.fromEntries(entries.map((e) => [e.service_id, e.hash])), ...rest };
  return { node_id, node_name, platform, labels, services: node.state === 'online' ? services : services.map(offlineView), ...rest };
}

export function summaries(nodes: Iterable<NodeRecord>): NodeSummary[] {
  return [...nodes]
    .sort((a, b) => (a.node_id < b.node_id ? -1 : 1))
    .map(({ services, secret_sha256: _secret, ...meta }) => ({ ...meta, service_count: services.length }));
}

/** One service of a node as `get` shows it (only that descriptor is parsed); undefined when either is unknown. */
export function publishedService(node: NodeRecord | undefined, serviceId: string): ServiceDescriptor | undefined {
  const entry = node?.services.find((e) => e.service_id === serviceId);
  if (!node || !entry) return undefined;
  const service = JSON.parse(entry.json.toString()) as ServiceDescriptor;
  return node.state === 'online' ? service : offlineView(service);
}

/** Nodes by their state; services by their own state (`offline` for every service of an offline node, as published). */
export function countNodes(nodes: Iterable<NodeRecord>): { nodes: Record<NodeState, number>; services: Map<string, number> } {
  const counts = { online: 0, offline: 0 };
  const services = new Map<string, number>();
  for (const node of nodes) {
    counts[node.state]++;
    for (const service of node.services) {
      const state = node.state === 'offline' ? 'offline' : service.state;
      services.set(state, (services.get(state) ?? 0) + 1);
    }
  }
  return { nodes: counts, services };
}

/** Entries of descriptors read back (journal, log, etcd): their JSON in one block (jsonBytes). */
export function storedEntries(
  services: readonly ServiceDescriptor[],
  entry: (service: ServiceDescriptor, json: Buffer, index: number) => ServiceEntry,
): ServiceEntry[] {
  const bytes = jsonBytes(services.map((s) => JSON.stringify(s)));
  return services.map((s, index) => entry(s, bytes[index] as Buffer, index));
}

/**
 * The entries of descriptors read back with their stored hashes (when they match in number), each
 * the `previous` entry of the same id when its JSON is the same (so equal descriptors are held once).
 */
export function readEntries(
  services: readonly ServiceDescriptor[],
  hashes: readonly string[] | undefined,
  previous?: ReadonlyMap<string, ServiceEntry>,
): ServiceEntry[] {
  const hashed = hashes?.length === services.length ? hashes : undefined;
  // A descriptor stored with the hash of the previous entry of its id is that entry (the hash is of
  // its canonical JSON): only the others are serialized again (a record read back from another
  // server mostly repeats what this one holds).
  const kept = services.map((s, index) => {
    const known = previous?.get(s.service_id);
    return known !== undefined && hashed !== undefined && known.hash === hashed[index] ? known : undefined;
  });
  const changed = services.flatMap((s, index) => (kept[index] ? [] : [{ s, index }]));
  const fresh = storedEntries(
    changed.map(({ s }) => s),
    (s, json, at) => {
      const known = previous?.get(s.service_id);
      if (known?.json.equals(json)) return known;
      const hash = hashed?.[(changed[at] as { index: number }).index];
      return hash === undefined ? serviceEntry(s, json, false) : { service_id: s.service_id, version: s.version, hash, json, validated: false, state: s.state };
    },
  );
  let next = 0;
  return kept.map((entry) => entry ?? (fresh[next++] as ServiceEntry));
}

const SERVICES = Buffer.from(',"services":[');
const COMMA = Buffer.from(',');
const END = Buffer.from(']}');

/**
 * A node's record as stored (journal line value, etcd value): `head` (its JSON object of the
 * other members) then `services` from the descriptors' own bytes, as parts that are never joined
 * into one string.
 */
export function recordParts(head: Record<string, unknown>, services: readonly ServiceEntry[]): Buffer[] {
  const text = JSON.stringify({ ...head, service_hashes: services.map((e) => e.hash) });
  const parts: Buffer[] = [Buffer.from(text.slice(0, -1)), SERVICES];
  services.forEach((e, index) => (index === 0 ? parts.push(e.json) : parts.push(COMMA, e.json)));
  parts.push(END);
  return parts;
}

/** A node in the journal: the record (the seq it reflects: legacy records lack it) and the descriptors' hashes. */
export interface JournalNode extends Omit<NodeRecord, 'services' | 'seq'> {
  services: ServiceDescriptor[];
  seq?: number;
  service_hashes?: string[];
  /** Written with a join's record before its event: a record still so after the replay lost its event to a kill -9. */
  event_pending?: true;
}

/**
 * A node's journal record, rendered from the node record when the journal writes it (at the
 * checkpoint, and again at each compaction) as parts that include the descriptors' own bytes: the
 * journal keeps this function, not a copy of the descriptors (StateJournal's JsonValue), and
 * writes the parts without joining them.
 */
export function journalRecord(node: NodeRecord, seq: number, eventPending = false): () => Buffer[] {
  return () => {
    const { services, ...meta } = node;
    return recordParts(eventPending ? { ...meta, seq, event_pending: true } : { ...meta, seq }, services);
  };
}

export function fromJournal(stored: JournalNode, seq: number): NodeRecord {
  const { services, seq: _seq, service_hashes: hashes, event_pending: _pending, ...meta } = stored;
  return { ...meta, seq, services: readEntries(services, hashes) };
}

/** Journals written before per-node seqs: the seq every node record reflected. */
const LEGACY_APPLIED_KEY = 'meta/applied_seq';
/** The event log's head at the last checkpoint: with every node deleted, no node record keeps a seq. */
export const HEAD_SEQ_KEY = 'meta/head_seq';

/** The nodes of the catalog's journal, the seq each reflects, and the highest seq the journal recorded. */
export function restoreNodes(values: ReadonlyMap<string, unknown>): {
  nodes: Map<string, NodeRecord>;
  seqOf: Map<string, number>;
  recorded: number;
  /** The nodes whose record was journaled by a join before its event (`event_pending`). */
  pending: string[];
} {
  const legacySeq = values.get(LEGACY_APPLIED_KEY);
  const nodes = new Map<string, NodeRecord>();
  const seqOf = new Map<string, number>();
  const pending: string[] = [];
  let recorded = Number(values.get(HEAD_SEQ_KEY)) || 0;
  for (const [key, value] of values) {
    if (!key.startsWith('node/') || value === null || typeof value !== 'object') continue;
    const stored = value as JournalNode;
    const seq = stored.seq ?? (typeof legacySeq === 'number' ? legacySeq : 0);
    nodes.set(stored.node_id, fromJournal(stored, seq));
    seqOf.set(stored.node_id, seq);
    if (stored.event_pending) pending.push(stored.node_id);
    recorded = Math.max(recorded, seq);
  }
  return { nodes, seqOf, recorded, pending };
}
