import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { NodeJoinPayload, NodeLabels, NodePlatform, NodeServiceUpsertPayload, ServiceDescriptor } from '../protocol/types.gen.js';
import { ProtocolError } from '../protocol/errors.js';
import { StateJournal } from '../store/state-journal.js';
import { serviceDelta, type ServiceDelta } from './delta.js';
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
const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/**
 * Every node's catalog, leases and credentials behind one storage interface (a journal on disk):
 * what is acknowledged to a peer has been fdatasync'd first, so a kill -9 of the server loses none
 * of it (SPEC §6 Storage).
 */
export class Catalog {
  #nodes = new Map<string, NodeRecord>();
  #journal: StateJournal;
  readonly leaseTtlMs: number;

  private constructor(journal: StateJournal, leaseTtlMs: number) {
    this.#journal = journal;
    this.leaseTtlMs = leaseTtlMs;
  }

  static async open(path: string, options: { leaseTtlMs: number; offlineGraceMs: number; log: Logger }): Promise<Catalog> {
    const { journal, restored } = await StateJournal.open(path, { sync: 'always', log: options.log });
    const catalog = new Catalog(journal, options.leaseTtlMs);
    const now = Date.now();
    for (const [key, value] of restored.values) {
      if (!key.startsWith('node/') || value === null || typeof value !== 'object') continue;
      const node = value as NodeRecord;
      // After a server restart every known node gets a fresh grace period (SPEC §6).
      if (node.state === 'online') node.lease_expires_at_ms = Math.max(node.lease_expires_at_ms, now + options.offlineGraceMs);
      catalog.#nodes.set(node.node_id, node);
    }
    return catalog;
  }

  list(): PublicNode[] {
    return [...this.#nodes.values()].sort((a, b) => (a.node_id < b.node_id ? -1 : 1)).map(toPublic);
  }

  get(nodeId: string): PublicNode {
    return toPublic(this.#require(nodeId));
  }

  /** A join token buys a node id and a secret; joining again (a lost state file) replaces the secret. */
  async join(payload: NodeJoinPayload, now = Date.now()): Promise<{ node_id: string; node_secret: string; lease_ttl_ms: number }> {
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
    await this.#save(node);
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
  async upsert(payload: NodeServiceUpsertPayload, now = Date.now()): Promise<{ node: PublicNode; delta: ServiceDelta; cameOnline: boolean }> {
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
    if (delta.changed || metadataChanged || cameOnline) await this.#save(next);
    else this.#nodes.set(next.node_id, next); // lease and last-seen only: no need to sync
    return { node: toPublic(next), delta, cameOnline };
  }

  /** Lease refresh: extends the lease; an offline node comes back online. */
  async refresh(nodeId: string, now = Date.now()): Promise<{ node: PublicNode; cameOnline: boolean }> {
    const node = this.#require(nodeId);
    const cameOnline = node.state === 'offline';
    const next = { ...node, state: 'online' as const, last_seen_ms: now, lease_expires_at_ms: now + this.leaseTtlMs };
    if (cameOnline) await this.#save(next);
    else this.#nodes.set(nodeId, next);
    return { node: toPublic(next), cameOnline };
  }

  /** A node's tunnel closed: its lease now ends at most `graceMs` from now. */
  shortenLease(nodeId: string, graceMs: number, now = Date.now()): void {
    const node = this.#nodes.get(nodeId);
    if (node && node.state === 'online') node.lease_expires_at_ms = Math.min(node.lease_expires_at_ms, now + graceMs);
  }

  /** Nodes whose lease lapsed turn offline, services kept (SPEC §6); returns them. */
  async expireLeases(now = Date.now()): Promise<PublicNode[]> {
    const expired: PublicNode[] = [];
    for (const node of this.#nodes.values()) {
      if (node.state === 'online' && node.lease_expires_at_ms <= now) {
        const next = { ...node, state: 'offline' as const, updated_ms: now };
        await this.#save(next);
        expired.push(toPublic(next));
      }
    }
    return expired;
  }

  async delete(nodeId: string): Promise<PublicNode> {
    const node = this.#require(nodeId);
    this.#nodes.delete(nodeId);
    await this.#journal.delete(nodeKey(nodeId));
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
