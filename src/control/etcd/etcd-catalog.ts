import { randomBytes } from 'node:crypto';
import type {
  NodeJoinPayload,
  NodeJoinReply,
  NodeServiceUpsertPayload,
  NodeState,
  NodeSummary,
  PublicNode,
  ServiceDelta,
  ServiceDescriptor,
} from '../../protocol/types.gen.js';
import { upsertReplyBody } from '../catalog-event.js';
import type { CatalogStore, EventStream, NodeRecord } from '../catalog-store.js';
import type { ServiceEntry } from '../delta.js';
import { countNodes, deleteDelta, joinPlan, noNode, publishedService, secretMatches, summaries, toPublic, upsertPlan } from '../node-record.js';
import type { ServerDirectory } from '../server-directory.js';
import type { ResolvedService } from '../upsert-frame.js';
import { CatalogFeed } from './catalog-feed.js';
import { decodeNode, NODES, revisionOfSeq } from './catalog-layout.js';
import { CatalogMirror } from './catalog-mirror.js';
import { EtcdEventStream } from './etcd-event-stream.js';
import type { EtcdConnection } from './connection.js';
import { commitGuarded } from './guarded-txn.js';
import { LeaseExpiry, leaseOf, refreshChange } from './lease-expiry.js';
import { NodeChanges } from './node-changes.js';
import { ServerRegistration, type ServerRegistrationOptions } from './server-registration.js';

export interface EtcdCatalogOptions extends ServerRegistrationOptions {
  leaseTtlMs: number;
  offlineGraceMs: number;
  /** How long start-up waits for the watch to catch up. */
  startTimeoutMs: number;
  ringCapacity: number;
}

/**
 * The catalog, leases and event stream in etcd, shared by every server on the same prefix
 * (docs/control-protocol.md "Storage"). Each node's record is one key written by guarded
 * transactions (several nodes' changes go together: `GroupCommit`); a write that is an event carries
 * it with its index in the transaction, so the event's `seq` is the write's revision × 1000 + that
 * index, the same on every server, and the revision history of `nodes/` is the event history. Each server
 * follows the whole prefix with one watch (in revision order): its in-memory catalog, its replay
 * ring and its watchers are fed from that watch only, so every server sees every change in the same
 * order whichever server made it. A change is planned from the mirror and guarded by the mod_revision
 * the mirror saw, so nothing another server wrote meanwhile is lost (the change is planned again),
 * and it returns once this server's watch has it (read-your-writes).
 *
 * Leases are deadlines in `leases/<node_id>`, written by the server holding the node's tunnel. That
 * server registers `servers/<id>` and `tunnels/<node_id>` under an etcd lease of its own: when it
 * dies, etcd drops them, and the surviving servers start the node's grace period; every server
 * sweeps lapsed leases, and the guarded `offline` write succeeds once.
 *
 * The parts, one file each: the key layout and codec (`catalog-layout.ts`), the mirror
 * (`catalog-mirror.ts`), the listing and watch that feed it (`catalog-feed.ts`), the writes
 * (`node-changes.ts`), this server's registration and tunnels (`server-registration.ts`, which is
 * also the store's `ServerDirectory`), grace periods and the offline sweep (`lease-expiry.ts`), and
 * the event stream over the feed's replay ring (`etcd-event-stream.ts`).
 */
export class EtcdCatalog implements CatalogStore {
  readonly leaseTtlMs: number;
  /** The events this server delivers, from its watch (`EtcdEventStream`). */
  readonly events: EventStream;
  /** This server's registration, and where the other servers and their tunnels are. */
  readonly servers: ServerDirectory;
  #connection: EtcdConnection;
  #options: EtcdCatalogOptions;
  #mirror: CatalogMirror;
  #secretListeners: Array<(nodeId: string) => void> = [];
  #feed: CatalogFeed;
  #changes: NodeChanges;
  #registration: ServerRegistration;
  #expiry: LeaseExpiry;
  #closed = false;

  private constructor(connection: EtcdConnection, options: EtcdCatalogOptions) {
    this.#connection = connection;
    this.#options = options;
    this.leaseTtlMs = options.leaseTtlMs;
    const { log } = options;
    const startedMs = Date.now();
    const isClosed = (): boolean => this.#closed;
    this.#mirror = new CatalogMirror(connection, log, (nodeId) => this.#secretListeners.forEach((listener) => listener(nodeId)));
    this.#feed = new CatalogFeed(connection, this.#mirror, options.ringCapacity, log, (closed) => this.#expiry.tunnelsClosed(closed));
    this.#changes = new NodeChanges(connection, this.#mirror, this.#feed, options.waitMs, log);
    this.#registration = new ServerRegistration(options, {
      connection,
      mirror: this.#mirror,
      feed: this.#feed,
      startedMs,
      isClosed,
      tunnelGone: (nodeId) => this.#expiry.startGrace(nodeId, options.serverId),
      heldThroughLapse: (nodeId, answers) => void this.#expiry.heldThroughLapse(nodeId, answers),
    });
    this.#expiry = new LeaseExpiry({
      connection,
      mirror: this.#mirror,
      changes: this.#changes,
      registration: this.#registration,
      startedMs,
      offlineGraceMs: options.offlineGraceMs,
      leaseTtlMs: options.leaseTtlMs,
      isClosed,
      log,
    });
    this.events = new EtcdEventStream(this.#feed, options.ringCapacity, options.waitMs);
    this.servers = this.#registration;
  }

  /**
   * Reads the catalog as it was a little while ago (so the replay ring starts with that history),
   * follows every change since, registers this server and returns once the watch is past the
   * registration: the catalog is then current.
   */
  static async open(connection: EtcdConnection, options: EtcdCatalogOptions): Promise<EtcdCatalog> {
    const catalog = new EtcdCatalog(connection, options);
    await catalog.#feed.start();
    try {
      const registered = await catalog.#registration.register();
      if (!(await catalog.#feed.waitFor(registered, options.startTimeoutMs)))
        throw new Error(`the etcd watch did not reach revision ${registered} (this server's registration) within ${options.startTimeoutMs} ms`);
    } catch (error) {
      await catalog.close();
      throw error;
    }
    catalog.#expiry.start();
    return catalog;
  }

  // ---- reads (from the mirror) ----

  list(): NodeSummary[] {
    return summaries(this.#mirror.nodes.values());
  }

  get(nodeId: string, view: 'published' | 'stored' = 'published'): PublicNode {
    const node = this.#mirror.nodes.get(nodeId);
    if (!node) throw noNode(nodeId);
    return toPublic(node, view);
  }

  nodeState(nodeId: string): NodeState | undefined {
    return this.#mirror.nodes.get(nodeId)?.state;
  }

  service(nodeId: string, serviceId: string): ServiceDescriptor | undefined {
    return publishedService(this.#mirror.nodes.get(nodeId), serviceId);
  }

  storedServices(nodeId: string): readonly ServiceEntry[] | undefined {
    return this.#mirror.nodes.get(nodeId)?.services;
  }

  count(): { nodes: Record<NodeState, number>; services: Map<string, number> } {
    return countNodes(this.#mirror.nodes.values());
  }

  onSecretReplaced(listener: (nodeId: string) => void): void {
    this.#secretListeners.push(listener);
  }

  /** From the mirror; a node it does not know (yet), or a secret it does not (yet) have, is read from etcd. */
  async verifyNode(nodeId: string, secret: string): Promise<boolean> {
    if (secretMatches(this.#mirror.nodes.get(nodeId), secret)) return true;
    const kv = (await this.#connection.read(`checking the secret of node ${nodeId}`, (client) => client.get(this.#connection.key(NODES + nodeId)).exec()))
      .kvs[0];
    const stored = kv && decodeNode(kv.value, nodeId);
    return stored !== undefined && !stored.deleted && secretMatches({ secret_sha256: stored.secret_sha256 } as NodeRecord, secret);
  }

  // ---- changes ----

  async join(payload: NodeJoinPayload): Promise<NodeJoinReply> {
    const nodeId = payload.node_id ?? `node-${randomBytes(4).toString('hex')}`;
    const { result } = await this.#changes.run(nodeId, `joining node ${nodeId}`, (existing, now) => {
      const { next, kind, delta, reply } = joinPlan({ ...payload, node_id: nodeId }, existing, now, this.leaseTtlMs);
      return {
        record: { next, ...(kind ? { event: { kind, timestamp_ms: now, service_delta: delta } } : {}) },
        lease: leaseOf(next, this.#options.serverId),
        result: reply,
      };
    });
    return result;
  }

  async upsert(payload: Omit<NodeServiceUpsertPayload, 'services'>, incoming: readonly ResolvedService[]): Promise<{ delta: ServiceDelta; body: Buffer }> {
    const { result, revision } = await this.#changes.run(payload.node_id, `upserting the catalog of node ${payload.node_id}`, (node, now) => {
      if (!node) throw noNode(payload.node_id);
      const { next, delta, kind, metadataChanged } = upsertPlan(node, payload, incoming, now, this.leaseTtlMs);
      const record = kind || metadataChanged ? { next, ...(kind ? { event: { kind, timestamp_ms: now, service_delta: delta } } : {}) } : undefined;
      return { ...(record ? { record } : {}), lease: leaseOf(next, this.#options.serverId), result: { next, delta, isEvent: kind !== undefined } };
    });
    // The event's own bytes when this server's watch has it (shared with every watcher's frame).
    const event = result.isEvent ? this.#feed.ring.retained().findLast((e) => e.node_id === payload.node_id && revisionOfSeq(e.seq) === revision) : undefined;
    return { delta: result.delta, body: upsertReplyBody(payload.include, event, result.next, result.delta) };
  }

  /** A refresh etcd has not taken is remembered: the sweep refreshes the lease of a node still asking instead of taking it for gone. */
  async refresh(nodeId: string): Promise<{ leaseExpiresAtMs: number; cameOnline: boolean }> {
    this.#expiry.refreshAsked(nodeId);
    try {
      const { result } = await this.#changes.run(nodeId, `refreshing the lease of node ${nodeId}`, (node, now) => {
        if (!node) throw noNode(nodeId);
        return refreshChange(node, now, this.leaseTtlMs, this.#options.serverId, (next, cameOnline) => ({
          leaseExpiresAtMs: next.lease_expires_at_ms,
          cameOnline,
        }));
      });
      this.#expiry.refreshTaken(nodeId);
      return result;
    } catch (error) {
      this.#expiry.refreshRefused(nodeId);
      throw error;
    }
  }

  tunnelOpened(nodeId: string, answers: () => Promise<boolean>): void {
    this.#registration.tunnelOpened(nodeId, answers);
  }

  tunnelClosed(nodeId: string): void {
    this.#registration.tunnelClosed(nodeId);
    this.#expiry.tunnelClosed(nodeId);
  }

  expireLeases(): Promise<string[]> {
    return this.#expiry.expire();
  }

  async delete(nodeId: string): Promise<PublicNode> {
    const { result: node, revision } = await this.#changes.run(nodeId, `deleting node ${nodeId}`, (current, now) => {
      if (!current) throw noNode(nodeId);
      return {
        record: { next: current, event: { kind: 'delete', timestamp_ms: now, service_delta: deleteDelta(current, now) }, deleted: true },
        lease: 'delete',
        result: current,
      };
    });
    // The tombstone has carried its event; the key goes (a join over a tombstone left by a failure here works all the same).
    const key = this.#connection.key(NODES + nodeId);
    void commitGuarded(this.#connection, `removing the record of deleted node ${nodeId}`, [{ key, modRevision: revision }], [{ key, delete: true }]).catch(
      (error: unknown) => this.#options.log.warn({ err: error, node_id: nodeId }, "could not remove a deleted node's last record; it is ignored"),
    );
    return toPublic(node);
  }

  /** Why this server cannot serve its nodes: its registration is lost (others may take its nodes for gone). */
  problem(): string | undefined {
    return this.#registration.problem();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#feed.close();
    await this.#registration.revoke();
  }
}
