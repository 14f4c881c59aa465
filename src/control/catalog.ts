import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { NodeJoinPayload, NodeLabels, NodePlatform, NodeServiceUpsertPayload, ServiceDescriptor } from '../protocol/types.gen.js';
import { ProtocolError } from '../protocol/errors.js';
import { StateJournal } from '../store/state-journal.js';
import { serviceDelta, type ServiceDelta } from './delta.js';
import type { CatalogEvent, EventKind, EventLog } from './event-log.js';
import { sameSecret } from './token-store.js';

export type NodeState = 'online' | 'offline';

/** One node as the control server keeps it (persisted; the secret only as a hash). */
export interface NodeRecord {
  node_id: string;
  node_name: string;
  platform: NodePlatform;
  labels: NodeLabels;
  services: ServiceDescriptor[];
  state: NodeState;
  lease_expires_at_ms: number;
  last_seen_ms: number;
  joined_at_ms: number;
  updated_ms: number;
  secret_sha256: string;
}

export type PublicNode = Omit<NodeRecord, 'secret_sha256'>;

const nodeKey = (nodeId: string): string => `node/${nodeId}`;
/** The seq of the last event the catalog journal reflects: start-up replays the log past it. */
const APPLIED_KEY = 'meta/applied_seq';
const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/**
 * Every node's catalog, leases and credentials behind one storage interface (a journal on disk):
 * what is acknowledged to a peer has been fdatasync'd first, so a kill -9 of the server loses none
 * of it (SPEC §6 Storage). Every change that watchers see is first an event in the event log (the
 * write-ahead log); the journal records which seq it reflects, and start-up replays the rest.
 */
export class Catalog {
  #nodes = new Map<string, NodeRecord>();
  #journal: StateJournal;
  #events: EventLog;
  #appliedSeq = 0;
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
    for (const [key, value] of restored.values) {
      if (key === APPLIED_KEY && typeof value === 'number') catalog.#appliedSeq = value;
      if (!key.startsWith('node/') || value === null || typeof value !== 'object') continue;
      catalog.#nodes.set((value as NodeRecord).node_id, value as NodeRecord);
    }
    // A crash between the event and the journal write: the event log wins.
    for (const event of events.retained()) if (event.seq > catalog.#appliedSeq) await catalog.#replay(event);
    const now = Date.now();
    // After a server restart every known node gets a fresh grace period (SPEC §6).
    for (const node of catalog.#nodes.values()) {
      if (node.state === 'online') node.lease_expires_at_ms = Math.max(node.lease_expires_at_ms, now + options.offlineGraceMs);
    }
    return catalog;
  }

  async #replay(event: CatalogEvent): Promise<void> {
    const node = this.#nodes.get(event.node_id);
    if (event.kind === 'delete') {
      this.#nodes.delete(event.node_id);
      await this.#journal.delete(nodeKey(event.node_id));
    } else if (node) {
      await this.#save({ ...node, node_name: event.node_name, platform: event.platform, labels: event.labels, services: event.kind === 'upsert' ? event.services : node.services, state: event.kind === 'offline' ? 'offline' : 'online', updated_ms: event.timestamp_ms });
    }
    this.#appliedSeq = event.seq;
    await this.#journal.set(APPLIED_KEY, event.seq);
  }

  /** Event first (durable, then fanned out), then the journal: the order of a write-ahead log. */
  async #commit(node: NodeRecord, kind: EventKind, delta: ServiceDelta, now: number): Promise<void> {
    const view = toPublic(node);
    const event = await this.#events.append({
      kind, timestamp_ms: now, node_id: node.node_id, node_name: node.node_name, platform: node.platform, labels: node.labels,
      services: view.services, service_delta: delta,
    });
    if (kind === 'delete') {
      this.#nodes.delete(node.node_id);
      await this.#journal.delete(nodeKey(node.node_id));
    } else await this.#save(node);
    this.#appliedSeq = event.seq;
    await this.#journal.set(APPLIED_KEY, event.seq);
  }

  list(): PublicNode[] {
    return [...this.#nodes.values()].sort((a, b) => (a.node_id < b.node_id ? -1 : 1)).map(toPublic);
  }

  get(nodeId: string): PublicNode {
    return toPublic(this.#require(nodeId));
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
      secret_sha256: hashSecret(secret),
    };
    if (existing?.state === 'online') await this.#save(node);
    else await this.#commit(node, 'online', serviceDelta(node.services, node.services, now), now);
    return { node_id: nodeId, node_secret: secret, lease_ttl_ms: this.leaseTtlMs };
  }

  verifyNode(nodeId: string, secret: string): boolean {
    const node = this.#nodes.get(nodeId);
    return node !== undefined && sameSecret(node.secret_sha256, hashSecret(secret));
  }

  /**
   * Replaces the node's whole catalog (validated before this call, all or nothing). An unchanged
   * catalog writes nothing and returns `changed: false`.
   */
  upsert(payload: NodeServiceUpsertPayload): Promise<{ node: PublicNode; delta: ServiceDelta; cameOnline: boolean }> {
    return this.#serial(payload.node_id, (now) => this.#upsert(payload, now));
  }

  async #upsert(payload: NodeServiceUpsertPayload, now: number): Promise<{ node: PublicNode; delta: ServiceDelta; cameOnline: boolean }> {
    const node = this.#require(payload.node_id);
    const ids = new Set<string>();
    for (const [index, service] of payload.services.entries()) {
      if (ids.has(service.service_id)) throw new ProtocolError('invalid_payload', `services/${index}/service_id: duplicate service_id ${service.service_id}`, { field: `/services/${index}/service_id` });
      ids.add(service.service_id);
    }
    const delta = serviceDelta(node.services, payload.services, now);
    const cameOnline = node.state === 'offline';
    const next: NodeRecord = {
      ...node,
      ...(payload.node_name === undefined ? {} : { node_name: payload.node_name }),
      ...(payload.platform === undefined ? {} : { platform: payload.platform }),
      ...(payload.labels === undefined ? {} : { labels: payload.labels }),
      services: delta.changed ? payload.services : node.services,
      state: 'online',
      last_seen_ms: now,
      lease_expires_at_ms: now + this.leaseTtlMs,
      updated_ms: delta.changed ? now : node.updated_ms,
    };
    const metadataChanged = next.node_name !== node.node_name || JSON.stringify(next.platform) !== JSON.stringify(node.platform) || JSON.stringify(next.labels) !== JSON.stringify(node.labels);
    // An unchanged upsert emits nothing (SPEC §6); a node coming back says so.
    if (delta.changed) await this.#commit(next, 'upsert', delta, now);
    else if (cameOnline) await this.#commit(next, 'online', delta, now);
    else if (metadataChanged) await this.#save(next);
    else this.#nodes.set(next.node_id, next); // lease and last-seen only: no need to sync
    return { node: toPublic(next), delta, cameOnline };
  }

  /** Lease refresh: extends the lease; an offline node comes back online. */
  refresh(nodeId: string): Promise<{ node: PublicNode; cameOnline: boolean }> {
    return this.#serial(nodeId, (now) => this.#refresh(nodeId, now));
  }

  async #refresh(nodeId: string, now: number): Promise<{ node: PublicNode; cameOnline: boolean }> {
    const node = this.#require(nodeId);
    const cameOnline = node.state === 'offline';
    const next = { ...node, state: 'online' as const, last_seen_ms: now, lease_expires_at_ms: now + this.leaseTtlMs };
    if (cameOnline) await this.#commit(next, 'online', serviceDelta(node.services, node.services, now), now);
    else this.#nodes.set(nodeId, next);
    return { node: toPublic(next), cameOnline };
  }

  /** A node's tunnel closed: its lease now ends at most `graceMs` from now. */
  shortenLease(nodeId: string, graceMs: number, now = Date.now()): void {
    const node = this.#nodes.get(nodeId);
    if (node && node.state === 'online') node.lease_expires_at_ms = Math.min(node.lease_expires_at_ms, now + graceMs);
  }

  /** Nodes whose lease lapsed turn offline, services kept (SPEC §6); each in its own turn, re-checked there. */
  async expireLeases(): Promise<PublicNode[]> {
    const lapsed = [...this.#nodes.values()].filter((n) => n.state === 'online' && n.lease_expires_at_ms <= Date.now());
    const expired = await Promise.all(lapsed.map((candidate) => this.#serial(candidate.node_id, async (now) => {
      const node = this.#nodes.get(candidate.node_id);
      if (!node || node.state !== 'online' || node.lease_expires_at_ms > now) return undefined;
      const next = { ...node, state: 'offline' as const, updated_ms: now };
      await this.#commit(next, 'offline', serviceDelta(node.services, node.services, now), now);
      return toPublic(next);
    })));
    return expired.filter((node): node is PublicNode => node !== undefined);
  }

  delete(nodeId: string): Promise<PublicNode> {
    return this.#serial(nodeId, (now) => this.#delete(nodeId, now));
  }

  async #delete(nodeId: string, now: number): Promise<PublicNode> {
    const node = this.#require(nodeId);
    await this.#commit(node, 'delete', serviceDelta(node.services, [], now), now);
    return toPublic(node);
  }

  count(): { nodes: Record<NodeState, number>; services: Record<NodeState, number> } {
    const nodes = { online: 0, offline: 0 };
    const services = { online: 0, offline: 0 };
    for (const node of this.#nodes.values()) {
      nodes[node.state]++;
      services[node.state] += node.services.length;
    }
    return { nodes, services };
  }

  close(): Promise<void> {
    return this.#journal.close();
  }

  #require(nodeId: string): NodeRecord {
    const node = this.#nodes.get(nodeId);
    if (!node) throw new ProtocolError('not_found', `no node ${nodeId}`, { field: '/node_id' });
    return node;
  }

  async #save(node: NodeRecord): Promise<void> {
    this.#nodes.set(node.node_id, node);
    await this.#journal.set(nodeKey(node.node_id), node);
  }
}

/** Services of an offline node are kept, marked offline (SPEC §6). */
function toPublic(node: NodeRecord): PublicNode {
  const { secret_sha256: _secret, ...rest } = node;
  if (node.state === 'online') return rest;
  return { ...rest, services: rest.services.map((s) => ({ ...s, state: 'offline', mounts: s.mounts.map((m) => ({ ...m, state: 'offline' })) as ServiceDescriptor['mounts'] })) };
}
