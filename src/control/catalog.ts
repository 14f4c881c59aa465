import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { offlineView } from '../protocol/catalog-event.js';
import type { NodeJoinPayload, NodeLabels, NodePlatform, NodeServiceUpsertPayload, ServiceDescriptor } from '../protocol/types.gen.js';
import { ProtocolError } from '../protocol/errors.js';
import { StateJournal } from '../store/state-journal.js';
import { entriesDelta, jsonBytes, serviceEntry, type ServiceDelta, type ServiceEntry } from './delta.js';
import { fullBody } from './catalog-event.js';
import type { CatalogEvent, EventKind, EventLog, EventRecord } from './event-log.js';
import type { ResolvedService } from './upsert-frame.js';
import { sameSecret } from './token-store.js';

export type NodeState = 'online' | 'offline';

interface NodeMeta {
  node_id: string;
  node_name: string;
  platform: NodePlatform;
  labels: NodeLabels;
  state: NodeState;
  lease_expires_at_ms: number;
  last_seen_ms: number;
  joined_at_ms: number;
  updated_ms: number;
  /**
   * The record reflects every event of this node up to this seq and none after it: a client that
   * read it applies the delta events of the node with a greater seq (docs/control-protocol.md).
   */
  seq: number;
}

/** One node as the control server keeps it: descriptors as their JSON, the secret only as a hash. */
interface NodeRecord extends NodeMeta {
  services: ServiceEntry[];
  secret_sha256: string;
}

export interface PublicNode extends NodeMeta {
  services: ServiceDescriptor[];
  /** With the stored view: each service's hash, as service_delta gives it. */
  service_hashes?: Record<string, string>;
}

export type NodeSummary = NodeMeta & { service_count: number };

/** A node in the journal: the record (the seq it reflects: legacy records lack it) and the descriptors' hashes. */
interface JournalNode extends Omit<NodeRecord, 'services' | 'seq'> {
  services: ServiceDescriptor[];
  seq?: number;
  service_hashes?: string[];
}

const nodeKey = (nodeId: string): string => `node/${nodeId}`;
/** Journals written before per-node seqs: the seq every node record reflected. */
const LEGACY_APPLIED_KEY = 'meta/applied_seq';
const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/**
 * Every node's catalog, leases and credentials behind one storage interface. The event log is
 * the write-ahead log (SPEC §6): a change that watchers see is durable once its event is, and is
 * applied here in the same step. The journal holds a snapshot: each node's record with the seq
 * it reflects, rewritten for the nodes that changed at each checkpoint (before the event log
 * archives a file) and at close; what is not an event (a join's secret, metadata-only changes) is
 * written to it before the reply. Start-up loads the snapshot and replays the events after it,
 * so what was acknowledged survives a kill -9.
 */
export class Catalog {
  #nodes = new Map<string, NodeRecord>();
  #journal: StateJournal;
  #events: EventLog;
  /** Nodes changed by events since the last checkpoint. */
  #dirty = new Set<string>();
  /** The tail of each node's mutation queue (see #serial). */
  #tails = new Map<string, Promise<unknown>>();
  readonly leaseTtlMs: number;

  private constructor(journal: StateJournal, events: EventLog, leaseTtlMs: number) {
    this.#journal = journal;
    this.#events = events;
    this.leaseTtlMs = leaseTtlMs;
  }

  static async open(path: string, events: EventLog, options: { leaseTtlMs: number; offlineGraceMs: number; log: Logger }): Promise<Catalog> {
    const { journal, restored } = await StateJournal.open(path, { sync: 'always', log: options.log });
    const catalog = new Catalog(journal, events, options.leaseTtlMs);
    const legacySeq = restored.values.get(LEGACY_APPLIED_KEY);
    const seqOf = new Map<string, number>();
    for (const [key, value] of restored.values) {
      if (!key.startsWith('node/') || value === null || typeof value !== 'object') continue;
      const stored = value as JournalNode;
      const seq = stored.seq ?? (typeof legacySeq === 'number' ? legacySeq : 0);
      catalog.#nodes.set(stored.node_id, fromJournal(stored, seq));
      seqOf.set(stored.node_id, seq);
    }
    for (const event of events.takeUnarchived()) catalog.#recover(event, seqOf);
    // Each descriptor held once: the journal's copy for compaction and the events read back from disk use the catalog's strings.
    for (const [nodeId, node] of catalog.#nodes) if (!catalog.#dirty.has(nodeId)) journal.keepJson(nodeKey(nodeId), journalRecord(node, seqOf.get(nodeId) ?? 0));
    for (const event of events.retained()) {
      const node = catalog.#nodes.get(event.node_id);
      if (node) event.share(new Map(node.services.map((e) => [e.service_id, e])));
    }
    const now = Date.now();
    // After a server restart every known node gets a fresh grace period (SPEC §6).
    for (const node of catalog.#nodes.values()) {
      if (node.state === 'online') node.lease_expires_at_ms = Math.max(node.lease_expires_at_ms, now + options.offlineGraceMs);
    }
    events.setCheckpoint(() => catalog.checkpoint());
    return catalog;
  }

  /** An event the snapshot lacks; a node the journal does not know never finished its join. */
  #recover(event: EventRecord, seqOf: Map<string, number>): void {
    const node = this.#nodes.get(event.node_id);
    if (!node || event.seq <= (seqOf.get(event.node_id) ?? 0)) return;
    seqOf.set(event.node_id, event.seq);
    this.#dirty.add(event.node_id);
    if (event.kind === 'delete') {
      this.#nodes.delete(event.node_id);
      return;
    }
    const previous = new Map(node.services.map((e) => [e.service_id, e]));
    this.#nodes.set(event.node_id, {
      ...node, node_name: event.node_name, platform: event.platform, labels: event.labels,
      services: event.kind === 'upsert' ? storedEntries(event.services, (s, json) => serviceEntry(s, json, false, previous.get(s.service_id))) : node.services,
      state: event.kind === 'offline' ? 'offline' : 'online', updated_ms: event.timestamp_ms, seq: event.seq,
    });
  }

  /** The event, then (in the step that makes it durable) the change here. */
  #commit(node: NodeRecord, kind: EventKind, delta: ServiceDelta, now: number): Promise<CatalogEvent> {
    return this.#events.append({ kind, timestamp_ms: now, node, delta }, (event) => {
      node.seq = event.seq;
      if (kind === 'delete') this.#nodes.delete(node.node_id);
      else this.#nodes.set(node.node_id, node);
      this.#dirty.add(node.node_id);
    });
  }

  /**
   * Writes the nodes changed since the last checkpoint to the journal; resolves with the seq the
   * journal now reflects. Synchronous up to the writes, so the snapshot is of one moment.
   */
  async checkpoint(): Promise<number> {
    const seq = this.#events.headSeq;
    const ids = [...this.#dirty];
    this.#dirty.clear();
    const writes = ids.map((id) => {
      const node = this.#nodes.get(id);
      return node ? this.#journal.setJson(nodeKey(id), journalRecord(node, seq)) : this.#journal.delete(nodeKey(id));
    });
    try {
      await Promise.all(writes);
    } catch (error) {
      for (const id of ids) this.#dirty.add(id);
      throw error;
    }
    return seq;
  }

  list(): NodeSummary[] {
    return [...this.#nodes.values()].sort((a, b) => (a.node_id < b.node_id ? -1 : 1)).map(({ services, secret_sha256: _secret, ...meta }) => ({ ...meta, service_count: services.length }));
  }

  /** The node with its services as published (an offline node's marked offline) or, `stored`, as stored and with their hashes. */
  get(nodeId: string, view: 'published' | 'stored' = 'published'): PublicNode {
    return toPublic(this.#require(nodeId), view);
  }

  /**
   * Mutations of one node run one at a time, each from the state the previous one left: two upserts
   * a node sends without waiting would otherwise both diff against the old catalog, and the second
   * could be dropped as unchanged (a lost update). Different nodes proceed in parallel, so their
   * events share fdatasyncs (group commit). The time is taken when the turn comes, so one node's
   * event timestamps follow its seq order.
   */
  #serial<T>(nodeId: string, task: (now: number) => Promise<T>): Promise<T> {
    const run = (this.#tails.get(nodeId) ?? Promise.resolve()).then(() => task(Date.now()));
    const tail = run.catch(() => undefined);
    this.#tails.set(nodeId, tail);
    void tail.then(() => {
      if (this.#tails.get(nodeId) === tail) this.#tails.delete(nodeId);
    });
    return run;
  }

  /** A join token buys a node id and a secret; joining again (a lost state file) replaces the secret. */
  join(payload: NodeJoinPayload): Promise<{ node_id: string; node_secret: string; lease_ttl_ms: number }> {
    return this.#serial(payload.node_id ?? '', (now) => this.#join(payload, now));
  }

  async #join(payload: NodeJoinPayload, now: number): Promise<{ node_id: string; node_secret: string; lease_ttl_ms: number }> {
    const nodeId = payload.node_id ?? `node-${randomBytes(4).toString('hex')}`;
    const secret = randomBytes(32).toString('base64url');
    const existing = this.#nodes.get(nodeId);
    const node: NodeRecord = {
      node_id: nodeId,
      node_name: payload.node_name ?? existing?.node_name ?? nodeId,
      platform: payload.platform ?? existing?.platform ?? {},
      labels: payload.labels ?? existing?.labels ?? {},
      services: existing?.services ?? [],
      state: 'online',
      lease_expires_at_ms: now + this.leaseTtlMs,
      last_seen_ms: now,
      joined_at_ms: existing?.joined_at_ms ?? now,
      updated_ms: now,
      seq: existing?.seq ?? 0,
      secret_sha256: hashSecret(secret),
    };
    // The secret is no event: the journal has it before the node does.
    if (existing?.state !== 'online') await this.#commit(node, 'online', entriesDelta(node.services, node.services, now), now);
    await this.#save(node);
    return { node_id: nodeId, node_secret: secret, lease_ttl_ms: this.leaseTtlMs };
  }

  /** One service of a node as `get` shows it (only that descriptor is parsed); undefined when either is unknown. */
  service(nodeId: string, serviceId: string): ServiceDescriptor | undefined {
    const node = this.#nodes.get(nodeId);
    const entry = node?.services.find((e) => e.service_id === serviceId);
    if (!node || !entry) return undefined;
    const service = JSON.parse(entry.json.toString()) as ServiceDescriptor;
    return node.state === 'online' ? service : offlineView(service);
  }

  /** The node's stored descriptors (see upsert-frame.ts). */
  storedServices(nodeId: string): readonly ServiceEntry[] | undefined {
    return this.#nodes.get(nodeId)?.services;
  }

  verifyNode(nodeId: string, secret: string): boolean {
    const node = this.#nodes.get(nodeId);
    return node !== undefined && sameSecret(node.secret_sha256, hashSecret(secret));
  }

  /**
   * Replaces the node's whole catalog (validated before this call, all or nothing). An unchanged
   * catalog writes nothing and returns `changed: false`. `body` is the reply payload, serialized
   * (the event's own bytes when there is one).
   */
  upsert(payload: Omit<NodeServiceUpsertPayload, 'services'>, incoming: readonly ResolvedService[]): Promise<{ delta: ServiceDelta; body: Buffer }> {
    return this.#serial(payload.node_id, (now) => this.#upsert(payload, incoming, now));
  }

  async #upsert(payload: Omit<NodeServiceUpsertPayload, 'services'>, incoming: readonly ResolvedService[], now: number): Promise<{ delta: ServiceDelta; body: Buffer }> {
    const node = this.#require(payload.node_id);
    const previous = new Map(node.services.map((e) => [e.service_id, e]));
    const services = incoming.map((s) => ('known' in s ? s.known : serviceEntry(s.service, s.json, true, previous.get(s.service.service_id))));
    const ids = new Set<string>();
    for (const [index, { service_id: serviceId }] of services.entries()) {
      if (ids.has(serviceId)) throw new ProtocolError('invalid_payload', `services/${index}/service_id: duplicate service_id ${serviceId}`, { field: `/services/${index}/service_id` });
      ids.add(serviceId);
    }
    const delta = entriesDelta(node.services, services, now);
    const cameOnline = node.state === 'offline';
    const next: NodeRecord = {
      ...node,
      ...(payload.node_name === undefined ? {} : { node_name: payload.node_name }),
      ...(payload.platform === undefined ? {} : { platform: payload.platform }),
      ...(payload.labels === undefined ? {} : { labels: payload.labels }),
      services: delta.changed ? services : node.services,
      state: 'online',
      last_seen_ms: now,
      lease_expires_at_ms: now + this.leaseTtlMs,
      updated_ms: delta.changed ? now : node.updated_ms,
    };
    const metadataChanged = next.node_name !== node.node_name || JSON.stringify(next.platform) !== JSON.stringify(node.platform) || JSON.stringify(next.labels) !== JSON.stringify(node.labels);
    // An unchanged upsert emits nothing (SPEC §6); a node coming back says so.
    if (delta.changed || cameOnline) return { delta, body: (await this.#commit(next, delta.changed ? 'upsert' : 'online', delta, now)).body };
    if (metadataChanged) await this.#save(next);
    else this.#nodes.set(next.node_id, next); // lease and last-seen only: no need to sync
    return { delta, body: fullBody(next, delta) };
  }

  /** Lease refresh: extends the lease; an offline node comes back online. */
  refresh(nodeId: string): Promise<{ leaseExpiresAtMs: number; cameOnline: boolean }> {
    return this.#serial(nodeId, (now) => this.#refresh(nodeId, now));
  }

  async #refresh(nodeId: string, now: number): Promise<{ leaseExpiresAtMs: number; cameOnline: boolean }> {
    const node = this.#require(nodeId);
    const cameOnline = node.state === 'offline';
    const next = { ...node, state: 'online' as const, last_seen_ms: now, lease_expires_at_ms: now + this.leaseTtlMs };
    if (cameOnline) await this.#commit(next, 'online', entriesDelta(node.services, node.services, now), now);
    else this.#nodes.set(nodeId, next);
    return { leaseExpiresAtMs: next.lease_expires_at_ms, cameOnline };
  }

  /** A node's tunnel closed: its lease now ends at most `graceMs` from now. */
  shortenLease(nodeId: string, graceMs: number, now = Date.now()): void {
    const node = this.#nodes.get(nodeId);
    if (node && node.state === 'online') node.lease_expires_at_ms = Math.min(node.lease_expires_at_ms, now + graceMs);
  }

  /** Nodes whose lease lapsed turn offline, services kept (SPEC §6); each in its own turn, re-checked there. */
  async expireLeases(): Promise<string[]> {
    const lapsed = [...this.#nodes.values()].filter((n) => n.state === 'online' && n.lease_expires_at_ms <= Date.now());
    const expired = await Promise.all(lapsed.map((candidate) => this.#serial(candidate.node_id, async (now) => {
      const node = this.#nodes.get(candidate.node_id);
      if (!node || node.state !== 'online' || node.lease_expires_at_ms > now) return undefined;
      await this.#commit({ ...node, state: 'offline', updated_ms: now }, 'offline', entriesDelta(node.services, node.services, now), now);
      return node.node_id;
    })));
    return expired.filter((nodeId): nodeId is string => nodeId !== undefined);
  }

  delete(nodeId: string): Promise<PublicNode> {
    return this.#serial(nodeId, (now) => this.#delete(nodeId, now));
  }

  async #delete(nodeId: string, now: number): Promise<PublicNode> {
    const node = this.#require(nodeId);
    await this.#commit(node, 'delete', entriesDelta(node.services, [], now), now);
    return toPublic(node);
  }

  /** Nodes by their state; services by their own state (`offline` for every service of an offline node, as published). */
  count(): { nodes: Record<NodeState, number>; services: Map<string, number> } {
    const nodes = { online: 0, offline: 0 };
    const services = new Map<string, number>();
    for (const node of this.#nodes.values()) {
      nodes[node.state]++;
      for (const service of node.services) {
        const state = node.state === 'offline' ? 'offline' : service.state;
        services.set(state, (services.get(state) ?? 0) + 1);
      }
    }
    return { nodes, services };
  }

  /** A last checkpoint, so the next start has no events to replay. */
  async close(): Promise<void> {
    await this.checkpoint();
    await this.#journal.close();
  }

  #require(nodeId: string): NodeRecord {
    const node = this.#nodes.get(nodeId);
    if (!node) throw new ProtocolError('not_found', `no node ${nodeId}`, { field: '/node_id' });
    return node;
  }

  /** What is not an event goes to the journal at once: the whole record, as of the current head. */
  async #save(node: NodeRecord): Promise<void> {
    this.#nodes.set(node.node_id, node);
    this.#dirty.delete(node.node_id);
    await this.#journal.setJson(nodeKey(node.node_id), journalRecord(node, this.#events.headSeq));
  }
}

function toPublic(node: NodeRecord, view: 'published' | 'stored' = 'published'): PublicNode {
  const { secret_sha256: _secret, services: entries, node_id, node_name, platform, labels, ...rest } = node;
  const services = entries.map((e) => JSON.parse(e.json.toString()) as ServiceDescriptor);
  if (view === 'stored') return { node_id, node_name, platform, labels, services, service_hashes: Object.fromEntries(entries.map((e) => [e.service_id, e.hash])), ...rest };
  return { node_id, node_name, platform, labels, services: node.state === 'online' ? services : services.map(offlineView), ...rest };
}

const SERVICES = Buffer.from(',"services":[');
const COMMA = Buffer.from(',');
const END = Buffer.from(']}');

/**
 * A node's journal record, rendered from the node record when the journal writes it (at the
 * checkpoint, and again at each compaction) as parts that include the descriptors' own bytes: the
 * journal keeps this function, not a copy of the descriptors (StateJournal's JsonValue), and
 * writes the parts without joining them.
 */
function journalRecord(node: NodeRecord, seq: number): () => Buffer[] {
  return () => {
    const { services, ...meta } = node;
    const head = JSON.stringify({ ...meta, seq, service_hashes: services.map((e) => e.hash) });
    const parts: Buffer[] = [Buffer.from(head.slice(0, -1)), SERVICES];
    services.forEach((e, index) => (index === 0 ? parts.push(e.json) : parts.push(COMMA, e.json)));
    parts.push(END);
    return parts;
  };
}

function fromJournal(stored: JournalNode, seq: number): NodeRecord {
  const { services, seq: _seq, service_hashes: hashes, ...meta } = stored;
  const hashed = hashes?.length === services.length ? hashes : undefined;
  return {
    ...meta,
    seq,
    services: storedEntries(services, (s, json, index) => {
      const hash = hashed?.[index];
      return hash === undefined ? serviceEntry(s, json, false) : { service_id: s.service_id, version: s.version, hash, json, validated: false, state: s.state };
    }),
  };
}

/** Entries of descriptors read back (journal, log): their JSON in one block (jsonBytes). */
function storedEntries(services: readonly ServiceDescriptor[], entry: (service: ServiceDescriptor, json: Buffer, index: number) => ServiceEntry): ServiceEntry[] {
  const bytes = jsonBytes(services.map((s) => JSON.stringify(s)));
  return services.map((s, index) => entry(s, bytes[index] as Buffer, index));
}
