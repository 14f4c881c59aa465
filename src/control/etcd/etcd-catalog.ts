import { randomBytes } from 'node:crypto';
import { GRPCOutOfRangeError, type IRangeResponse, type Lease } from 'etcd3';
import type { Logger } from 'pino';
import { SerialQueue } from '../../async/serial-queue.js';
import { ProtocolError } from '../../protocol/errors.js';
import type {
  EventKind,
  NodeJoinPayload,
  NodeJoinReply,
  NodeLabels,
  NodePlatform,
  NodeServiceUpsertPayload,
  NodeState,
  NodeSummary,
  PublicNode,
  ServiceDelta,
  ServiceDescriptor,
} from '../../protocol/types.gen.js';
import { CatalogEvent, fullBody } from '../catalog-event.js';
import type { CatalogStore, EventStream, NodeRecord } from '../catalog-store.js';
import type { ServiceEntry } from '../delta.js';
import { EventRing, type RetainedWindow } from '../event-ring.js';
import { newPeerSecret, type PeerServer, type ServerDirectory } from '../server-directory.js';
import { sameSecret } from '../token-store.js';
import {
  countNodes,
  deleteDelta,
  hashSecret,
  joinPlan,
  lapsed,
  noNode,
  offlinePlan,
  publishedService,
  readEntries,
  recordParts,
  refreshPlan,
  secretMatches,
  summaries,
  toPublic,
  upsertPlan,
} from '../node-record.js';
import type { ResolvedService } from '../upsert-frame.js';
import type { EtcdConnection } from './connection.js';
import { commitGuarded, gzipValue, OP_ID_FIELD, storedObject, type Guard, type Write } from './guarded-txn.js';
import { GroupCommit } from './group-commit.js';
import { PrefixWatch, type WatchCompactedError, type WatchedChange } from './prefix-watch.js';
import { RevisionWaiters } from './revision-waiters.js';

const NODES = 'nodes/';
const LEASES = 'leases/';
const TUNNELS = 'tunnels/';
const SERVERS = 'servers/';

/** Conflicting writes to one node (another server's sweep, say) before a change gives up with `conflict`. */
const MAX_ATTEMPTS = 16;
/** Revisions of history a starting server reads into its replay ring (bounded by etcd's compaction). */
const HISTORY_RINGS = 2;
const RETRY_MS = 500;

/**
 * Seqs per revision: a group commit writes several nodes' events in one revision, so an event's
 * seq is its revision × 1000 + its index in that transaction (at most 128 changes fit one), and
 * "everything up to revision r" is seq r × 1000 + 999. The same on every server (the index is in
 * the record), strictly increasing, and a seq names one event.
 */
const SEQS_PER_REVISION = 1000;
const seqOf = (revision: bigint, index: number): number => Number(revision) * SEQS_PER_REVISION + index;
const headSeqOf = (revision: bigint): number => seqOf(revision, SEQS_PER_REVISION - 1);
const revisionOfSeq = (seq: number): bigint => BigInt(Math.floor(seq / SEQS_PER_REVISION));

export interface EtcdCatalogOptions {
  /** Where the other servers reach this one (its WebSocket listener), for relays to the node tunnels it holds. */
  advertiseUrl: string;
  leaseTtlMs: number;
  offlineGraceMs: number;
  /** This server's id: `servers/<id>` and the owner of its nodes' `tunnels/<node_id>`. */
  serverId: string;
  /** The registration's etcd lease: a server that dies is noticed by the others this long after (whole seconds). */
  serverTtlMs: number;
  /** How long a write waits for this server's watch to show it (it is committed either way). */
  waitMs: number;
  /** How long start-up waits for the watch to catch up. */
  startTimeoutMs: number;
  ringCapacity: number;
  log: Logger;
}

/** An event as its node record carries it: the record written with it is the event's node. */
interface StoredEvent {
  kind: EventKind;
  /** Its place among the events of its revision (a group commit); absent: 0. */
  index?: number;
  timestamp_ms: number;
  service_delta: ServiceDelta;
}

/** `<prefix>nodes/<node_id>`: the node record with, when the write was an event, that event. */
interface StoredNode {
  node_id: string;
  node_name: string;
  platform: NodePlatform;
  labels: NodeLabels;
  state: NodeState;
  joined_at_ms: number;
  updated_ms: number;
  secret_sha256: string;
  /** A write that is no event: the seq of the node's last event. */
  seq?: number;
  event?: StoredEvent;
  /** A deleted node's last record (it carries the `delete` event); removed right after. */
  deleted?: true;
  service_hashes?: string[];
  services: ServiceDescriptor[];
}

/**
 * `<prefix>leases/<node_id>`: a deadline, not an etcd lease (etcd restarts lease TTLs on a leader
 * change), and the server that set it: the one holding the node's tunnel then.
 */
interface StoredLease {
  expires_at_ms: number;
  last_seen_ms: number;
  server_id: string;
}

interface Mirrored<T> {
  value: T;
  revision: bigint;
}

/** What one attempt of a node's change writes (nothing: nothing to do) and answers. */
interface NodeChange<R> {
  record?: { next: NodeRecord; event?: StoredEvent; deleted?: boolean };
  lease?: StoredLease | 'delete';
  /** Keys besides the node record that must be as the mirror saw them. */
  guards?: Guard[];
  result: R;
}

/** A node record being written: what it is, and once encoded, the bytes sent and its index in their transaction. */
interface Writing {
  next: NodeRecord;
  event?: StoredEvent;
  deleted?: boolean;
  sent?: { bytes: Buffer; index: number };
}

interface Listing {
  revision: bigint;
  nodes: Array<{ key: string; value: Buffer; revision: bigint }>;
  leases: Map<string, Mirrored<StoredLease>>;
  tunnels: Map<string, Mirrored<string>>;
  servers: Map<string, StoredServer>;
}

function decodeNode(value: Buffer, nodeId: string): StoredNode | undefined {
  const object = storedObject(value)?.object;
  if (
    !object ||
    object.node_id !== nodeId ||
    !Array.isArray(object.services) ||
    (object.state !== 'online' && object.state !== 'offline') ||
    typeof object.secret_sha256 !== 'string'
  )
    return undefined;
  return object as unknown as StoredNode;
}

function decodeLease(value: Buffer): StoredLease | undefined {
  const object = storedObject(value)?.object;
  if (!object || typeof object.expires_at_ms !== 'number' || typeof object.last_seen_ms !== 'number') return undefined;
  return { expires_at_ms: object.expires_at_ms, last_seen_ms: object.last_seen_ms, server_id: typeof object.server_id === 'string' ? object.server_id : '' };
}

/** `<prefix>servers/<server_id>`: a registered server, where its peers reach it and its peer secret's SHA-256. */
interface StoredServer {
  url: string;
  secret_sha256: string;
}

function decodeServer(value: Buffer): StoredServer | undefined {
  const object = storedObject(value)?.object;
  return object && typeof object.url === 'string' && typeof object.secret_sha256 === 'string'
    ? { url: object.url, secret_sha256: object.secret_sha256 }
    : undefined;
}

function decodeTunnel(value: Buffer): string | undefined {
  const serverId = storedObject(value)?.object.server_id;
  return typeof serverId === 'string' ? serverId : undefined;
}

/** A node record as etcd keeps it: gzipped, from the descriptors' own bytes (never one string of the whole catalog). */
function encodeNode(node: NodeRecord, change: { event?: StoredEvent; deleted?: boolean }): (opId: string, index: number) => Buffer {
  return (opId, index) => {
    const { services, lease_expires_at_ms: _expires, last_seen_ms: _seen, seq, ...meta } = node;
    const head = {
      [OP_ID_FIELD]: opId,
      ...meta,
      ...(change.event ? { event: { ...change.event, index } } : { seq }),
      ...(change.deleted ? { deleted: true } : {}),
    };
    return gzipValue(recordParts(head, services));
  };
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
 */
export class EtcdCatalog implements CatalogStore, EventStream, ServerDirectory {
  readonly leaseTtlMs: number;
  readonly ringCapacity: number;
  #connection: EtcdConnection;
  #options: EtcdCatalogOptions;
  #log: Logger;
  #nodes = new Map<string, NodeRecord>();
  /** mod_revision of each `nodes/<id>` key the mirror holds (tombstones included): the guard of the next write. */
  #revisionOf = new Map<string, bigint>();
  #leases = new Map<string, Mirrored<StoredLease>>();
  /** Which server holds each node's tunnel. */
  #tunnels = new Map<string, Mirrored<string>>();
  #servers = new Map<string, StoredServer>();
  readonly serverId: string;
  readonly peerToken: string;
  #peerSecret = newPeerSecret();
  /**
   * The record this server is writing for a node, and the bytes it sent: when the watch brings back
   * exactly those, the record is taken as written (not decoded again); otherwise its entries
   * (validated here) are kept where another server's record has the same descriptors.
   */
  #writing = new Map<string, Writing>();
  /** Nodes whose tunnel is on this server. */
  #ownTunnels = new Set<string>();
  #ring: EventRing;
  #queue = new SerialQueue<string>();
  #commits: GroupCommit;
  #watch: PrefixWatch | undefined;
  /** How far the watch has applied the prefix's history, and the writes and resumes waiting for it. */
  #applied = new RevisionWaiters();
  #registration: Lease | undefined;
  #registrationProblem: string | undefined;
  #startedMs = Date.now();
  #ready = false;
  #closed = false;

  private constructor(connection: EtcdConnection, options: EtcdCatalogOptions) {
    this.#connection = connection;
    this.#options = options;
    this.#log = options.log;
    this.leaseTtlMs = options.leaseTtlMs;
    this.ringCapacity = options.ringCapacity;
    this.serverId = options.serverId;
    this.peerToken = `server.${options.serverId}.${this.#peerSecret}`;
    this.#ring = new EventRing(options.ringCapacity);
    this.#commits = new GroupCommit(connection);
  }

  /**
   * Reads the catalog as it was a little while ago (so the replay ring starts with that history),
   * follows every change since, registers this server and returns once the watch is past the
   * registration: the catalog is then current.
   */
  static async open(connection: EtcdConnection, options: EtcdCatalogOptions): Promise<EtcdCatalog> {
    const catalog = new EtcdCatalog(connection, options);
    const head = BigInt((await connection.read('reading the catalog head', (client) => client.get(connection.key(SERVERS)).exec())).header.revision);
    const from = head - BigInt(HISTORY_RINGS * options.ringCapacity);
    let listing: Listing;
    try {
      listing = await catalog.#list(from > 0n ? from : 1n);
    } catch (error) {
      // That history is compacted: the ring starts empty at the head.
      if (!(error instanceof ProtocolError && error.cause instanceof GRPCOutOfRangeError)) throw error;
      listing = await catalog.#list(head);
    }
    catalog.#adopt(listing);
    // Revision 1 is etcd's empty start: a listing there misses no event, so every seq may be resumed from.
    catalog.#ring = new EventRing(options.ringCapacity, [], headSeqOf(listing.revision), listing.revision <= 1n ? 0 : headSeqOf(listing.revision));
    catalog.#follow(listing.revision + 1n);
    try {
      const registered = await catalog.#register();
      if (!(await catalog.#waitFor(registered, options.startTimeoutMs)))
        throw new Error(`the etcd watch did not reach revision ${registered} (this server's registration) within ${options.startTimeoutMs} ms`);
    } catch (error) {
      await catalog.close();
      throw error;
    }
    catalog.#ready = true;
    // Nodes with no tunnel anywhere whose lease a server now gone set (it died while none watched): their grace period starts now.
    for (const node of catalog.#nodes.values())
      if (node.state === 'online' && !catalog.#tunnels.has(node.node_id)) catalog.#startGrace(node.node_id, undefined);
    return catalog;
  }

  // ---- reads (from the mirror) ----

  list(): NodeSummary[] {
    return summaries(this.#nodes.values());
  }

  get(nodeId: string, view: 'published' | 'stored' = 'published'): PublicNode {
    const node = this.#nodes.get(nodeId);
    if (!node) throw noNode(nodeId);
    return toPublic(node, view);
  }

  service(nodeId: string, serviceId: string): ServiceDescriptor | undefined {
    return publishedService(this.#nodes.get(nodeId), serviceId);
  }

  storedServices(nodeId: string): readonly ServiceEntry[] | undefined {
    return this.#nodes.get(nodeId)?.services;
  }

  count(): { nodes: Record<NodeState, number>; services: Map<string, number> } {
    return countNodes(this.#nodes.values());
  }

  /** From the mirror; a node it does not know (yet), or a secret it does not (yet) have, is read from etcd. */
  async verifyNode(nodeId: string, secret: string): Promise<boolean> {
    if (secretMatches(this.#nodes.get(nodeId), secret)) return true;
    const kv = (await this.#connection.read(`checking the secret of node ${nodeId}`, (client) => client.get(this.#key(NODES, nodeId)).exec())).kvs[0];
    const stored = kv && decodeNode(kv.value, nodeId);
    return stored !== undefined && !stored.deleted && secretMatches({ secret_sha256: stored.secret_sha256 } as NodeRecord, secret);
  }

  // ---- EventStream ----

  get headSeq(): number {
    return this.#ring.head;
  }

  get retainedAfter(): number {
    return this.#ring.retainedAfter;
  }

  retained(): readonly CatalogEvent[] {
    return this.#ring.retained();
  }

  window(): RetainedWindow {
    return this.#ring.window();
  }

  onEvent(listener: (event: CatalogEvent) => void): void {
    this.#ring.onEvent(listener);
  }

  onGap(listener: (message: string) => void): void {
    this.#ring.onGap(listener);
  }

  /** A seq another server delivered (its revision's) reaches this server's watch within milliseconds; one beyond etcd's head never does. */
  async reach(seq: number): Promise<void> {
    if (this.#ring.head < seq) await this.#waitFor(revisionOfSeq(seq), this.#options.waitMs);
  }

  // ---- changes ----

  async join(payload: NodeJoinPayload): Promise<NodeJoinReply> {
    const nodeId = payload.node_id ?? `node-${randomBytes(4).toString('hex')}`;
    const { result } = await this.#change(nodeId, `joining node ${nodeId}`, (existing, now) => {
      const { next, kind, delta, reply } = joinPlan({ ...payload, node_id: nodeId }, existing, now, this.leaseTtlMs);
      return { record: { next, ...(kind ? { event: { kind, timestamp_ms: now, service_delta: delta } } : {}) }, lease: this.#leaseOf(next), result: reply };
    });
    return result;
  }

  async upsert(payload: Omit<NodeServiceUpsertPayload, 'services'>, incoming: readonly ResolvedService[]): Promise<{ delta: ServiceDelta; body: Buffer }> {
    const { result, revision } = await this.#change(payload.node_id, `upserting the catalog of node ${payload.node_id}`, (node, now) => {
      if (!node) throw noNode(payload.node_id);
      const { next, delta, kind, metadataChanged } = upsertPlan(node, payload, incoming, now, this.leaseTtlMs);
      const record = kind || metadataChanged ? { next, ...(kind ? { event: { kind, timestamp_ms: now, service_delta: delta } } : {}) } : undefined;
      return { ...(record ? { record } : {}), lease: this.#leaseOf(next), result: { next, delta, isEvent: kind !== undefined } };
    });
    // The event's own bytes when this server's watch has it (shared with every watcher's frame).
    const event = result.isEvent ? this.#ring.retained().findLast((e) => e.node_id === payload.node_id && revisionOfSeq(e.seq) === revision) : undefined;
    return { delta: result.delta, body: event?.body ?? fullBody(result.next, result.delta) };
  }

  async refresh(nodeId: string): Promise<{ leaseExpiresAtMs: number; cameOnline: boolean }> {
    const { result } = await this.#change(nodeId, `refreshing the lease of node ${nodeId}`, (node, now) => {
      if (!node) throw noNode(nodeId);
      const { next, kind, delta } = refreshPlan(node, now, this.leaseTtlMs);
      return {
        ...(kind ? { record: { next, event: { kind, timestamp_ms: now, service_delta: delta } } } : {}),
        lease: this.#leaseOf(next),
        result: { leaseExpiresAtMs: next.lease_expires_at_ms, cameOnline: kind !== undefined },
      };
    });
    return result;
  }

  tunnelOpened(nodeId: string): void {
    this.#ownTunnels.add(nodeId);
    void this.#putTunnel(nodeId);
  }

  /**
   * The tunnel key goes (if it is still this server's), then the grace period starts unless the
   * node is back meanwhile: here (a new tunnel: registered again) or on another server (which set
   * the lease since).
   */
  tunnelClosed(nodeId: string): void {
    this.#ownTunnels.delete(nodeId);
    if (this.#closed) return;
    const key = this.#key(TUNNELS, nodeId);
    void this.#connection
      .write(`closing the tunnel of node ${nodeId}`, (client) => client.if(key, 'Value', '==', this.#tunnelValue()).then(client.delete().key(key)).commit())
      .then(
        async (result) => {
          if (result.succeeded) await this.#waitFor(BigInt(result.header.revision), this.#options.waitMs);
          if (this.#ownTunnels.has(nodeId)) void this.#putTunnel(nodeId);
          // A deletion of ours reaches the watch, where #apply starts the grace; a key already gone does not.
          else if (!result.succeeded) this.#startGrace(nodeId, this.#options.serverId);
        },
        (error: unknown) => this.#log.warn({ err: error, node_id: nodeId }, "could not remove a closed tunnel from etcd; the node's lease runs out by itself"),
      );
  }

  /** Every server sweeps; the guarded write of each `offline` succeeds once. None in the first grace period after this server started (SPEC §6: a fresh grace after a restart). */
  async expireLeases(): Promise<string[]> {
    if (this.#closed || Date.now() < this.#startedMs + this.#options.offlineGraceMs) return [];
    const candidates = [...this.#nodes.values()].filter((n) => lapsed(n, Date.now()));
    const expired = await Promise.all(
      candidates.map(async ({ node_id: nodeId }) => {
        try {
          const { result } = await this.#change(nodeId, `marking node ${nodeId} offline`, (node, now) => {
            if (!lapsed(node, now)) return { result: false };
            const { next, delta } = offlinePlan(node, now);
            return {
              record: { next, event: { kind: 'offline', timestamp_ms: now, service_delta: delta } },
              guards: [{ key: this.#key(LEASES, nodeId), modRevision: this.#leases.get(nodeId)?.revision ?? 0n }],
              result: true,
            };
          });
          return result ? nodeId : undefined;
        } catch (error) {
          this.#log.warn({ err: error, node_id: nodeId }, 'could not mark a node offline; the next sweep tries again');
          return undefined;
        }
      }),
    );
    return expired.filter((nodeId): nodeId is string => nodeId !== undefined);
  }

  async delete(nodeId: string): Promise<PublicNode> {
    const { result: node, revision } = await this.#change(nodeId, `deleting node ${nodeId}`, (current, now) => {
      if (!current) throw noNode(nodeId);
      return {
        record: { next: current, event: { kind: 'delete', timestamp_ms: now, service_delta: deleteDelta(current, now) }, deleted: true },
        lease: 'delete',
        result: current,
      };
    });
    // The tombstone has carried its event; the key goes (a join over a tombstone left by a failure here works all the same).
    const key = this.#key(NODES, nodeId);
    void commitGuarded(this.#connection, `removing the record of deleted node ${nodeId}`, [{ key, modRevision: revision }], [{ key, delete: true }]).catch(
      (error: unknown) => this.#log.warn({ err: error, node_id: nodeId }, "could not remove a deleted node's last record; it is ignored"),
    );
    return toPublic(node);
  }

  // ---- ServerDirectory ----

  tunnelElsewhere(nodeId: string): PeerServer | undefined {
    const serverId = this.#tunnels.get(nodeId)?.value;
    const server = serverId === undefined || serverId === this.serverId ? undefined : this.#servers.get(serverId);
    return server && serverId !== undefined ? { serverId, url: server.url } : undefined;
  }

  verifyPeer(serverId: string, secret: string): boolean {
    const server = serverId === this.serverId ? undefined : this.#servers.get(serverId);
    return server !== undefined && sameSecret(server.secret_sha256, hashSecret(secret));
  }

  /** Why this server cannot serve its nodes: its registration is lost (others may take its nodes for gone). */
  problem(): string | undefined {
    return this.#registrationProblem;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#applied.close();
    await this.#watch?.close();
    // Its tunnels go with the registration: the other servers start those nodes' grace periods.
    await this.#registration?.revoke().catch(() => undefined);
  }

  // ---- internals ----

  #key(area: string, id: string): string {
    return this.#connection.key(area + id);
  }

  #leaseOf(node: NodeRecord): StoredLease {
    return { expires_at_ms: node.lease_expires_at_ms, last_seen_ms: node.last_seen_ms, server_id: this.#options.serverId };
  }

  #tunnelValue(): string {
    return JSON.stringify({ server_id: this.#options.serverId });
  }

  /**
   * One change of a node as one guarded transaction on its record (and lease), planned from the
   * mirror; after a conflict, planned again once the mirror has what changed. Resolves once this
   * server's watch has the write.
   */
  #change<R>(nodeId: string, what: string, plan: (node: NodeRecord | undefined, now: number) => NodeChange<R>): Promise<{ result: R; revision: bigint }> {
    return this.#queue.run(nodeId, async () => {
      const nodeKey = this.#key(NODES, nodeId);
      // A node this server has not seen yet may have joined through another one a moment ago: catch up with it first.
      if (!this.#revisionOf.has(nodeId)) {
        const kv = (await this.#connection.read(what, (client) => client.get(nodeKey).exec())).kvs[0];
        if (kv) await this.#waitFor(BigInt(kv.mod_revision), this.#options.waitMs);
      }
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const change = plan(this.#nodes.get(nodeId), Date.now());
        const writes: Write[] = [];
        const writing: Writing | undefined = change.record && { ...change.record };
        if (writing) {
          const encode = encodeNode(writing.next, writing);
          writes.push({
            key: nodeKey,
            encoded: (opId, index) => {
              const bytes = encode(opId, index);
              writing.sent = { bytes, index };
              return bytes;
            },
          });
        }
        if (change.lease === 'delete') writes.push({ key: this.#key(LEASES, nodeId), delete: true });
        else if (change.lease) writes.push({ key: this.#key(LEASES, nodeId), value: { ...change.lease } });
        if (writes.length === 0) return { result: change.result, revision: 0n };
        const guards = [{ key: nodeKey, modRevision: this.#revisionOf.get(nodeId) ?? 0n }, ...(change.guards ?? [])];
        if (writing) this.#writing.set(nodeId, writing);
        try {
          const outcome = await this.#commits.commit(what, guards, writes);
          if (outcome.committed) {
            if (!(await this.#waitFor(outcome.revision, this.#options.waitMs))) {
              this.#log.warn({ node_id: nodeId, revision: String(outcome.revision) }, "a change is committed in etcd but not yet seen by this server's watch");
            }
            return { result: change.result, revision: outcome.revision };
          }
          this.#log.debug(
            { node_id: nodeId, attempt, changed_at: String(outcome.changedAt ?? outcome.revision) },
            `${what}: the node changed meanwhile; planning again`,
          );
          await this.#waitFor(outcome.changedAt ?? outcome.revision, this.#options.waitMs);
        } finally {
          if (writing) this.#writing.delete(nodeId);
        }
      }
      throw new ProtocolError('conflict', `${what}: the node changed under it ${MAX_ATTEMPTS} times in a row; try again`);
    });
  }

  /**
   * The tunnel of the server that set the node's lease is gone (`closedBy`; undefined: whichever
   * server set it, if that one is no longer registered or was this server's previous run under the
   * same id): the lease ends at most a grace period from now. Not when the node has a tunnel, or
   * another server set the lease since (the node is there); guarded, so a refresh or a new tunnel
   * meanwhile wins.
   */
  #startGrace(nodeId: string, closedBy: string | undefined): void {
    if (this.#closed) return;
    void this.#change(nodeId, `starting the grace period of node ${nodeId}`, (node, now) => {
      const lease = this.#leases.get(nodeId);
      if (node?.state !== 'online' || !lease || this.#tunnels.has(nodeId) || this.#ownTunnels.has(nodeId)) return { result: undefined };
      const owner = lease.value.server_id;
      const ownerGone = closedBy === undefined ? owner === this.#options.serverId || !this.#servers.has(owner) : owner === closedBy;
      if (!ownerGone) return { result: undefined };
      const expires = Math.min(lease.value.expires_at_ms, now + this.#options.offlineGraceMs);
      if (expires === lease.value.expires_at_ms) return { result: undefined };
      return {
        lease: { ...lease.value, expires_at_ms: expires },
        guards: [
          { key: this.#key(LEASES, nodeId), modRevision: lease.revision },
          { key: this.#key(TUNNELS, nodeId), modRevision: 0n },
        ],
        result: undefined,
      };
    }).catch((error: unknown) => this.#log.warn({ err: error, node_id: nodeId }, "could not start a node's grace period; its lease runs out by itself"));
  }

  /** `tunnels/<node_id>` → this server, under its registration; tried again while the tunnel is open and etcd does not take it. */
  async #putTunnel(nodeId: string): Promise<void> {
    while (!this.#closed && this.#ownTunnels.has(nodeId)) {
      try {
        const lease = this.#registration;
        if (!lease || this.#registrationProblem) return; // re-registering puts every tunnel again
        const leaseId = await lease.grant();
        await this.#connection.write(`registering the tunnel of node ${nodeId}`, (client) =>
          client.put(this.#key(TUNNELS, nodeId)).value(this.#tunnelValue()).lease(leaseId).exec(),
        );
        return;
      } catch {
        // Logged by the connection.
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  /** `servers/<id>` under a fresh etcd lease (kept alive by etcd3); resolves with the put's revision. */
  async #register(): Promise<bigint> {
    const lease = this.#connection.client.lease(Math.max(1, Math.ceil(this.#options.serverTtlMs / 1000)));
    this.#registration = lease;
    lease.on('lost', (error: Error) => {
      if (this.#closed || this.#registration !== lease) return;
      this.#registrationProblem = `this server's registration in etcd was lost (${error.message}); registering again`;
      this.#log.warn({ err: error }, 'etcd registration lost: registering again');
      void this.#reregister();
    });
    const leaseId = await this.#connection.write('registering this server', () => lease.grant());
    const registration = {
      server_id: this.#options.serverId,
      url: this.#options.advertiseUrl,
      secret_sha256: hashSecret(this.#peerSecret),
      started_ms: this.#startedMs,
    };
    const put = await this.#connection.write('registering this server', (client) =>
      client.put(this.#key(SERVERS, this.#options.serverId)).value(JSON.stringify(registration)).lease(leaseId).exec(),
    );
    return BigInt(put.header.revision);
  }

  async #reregister(): Promise<void> {
    while (!this.#closed) {
      try {
        await this.#register();
        this.#registrationProblem = undefined;
        for (const nodeId of this.#ownTunnels) void this.#putTunnel(nodeId);
        this.#log.info('registered in etcd again');
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  /** Every key of the catalog's areas as of one revision. */
  async #list(at: bigint): Promise<Listing> {
    const read = (area: string): Promise<IRangeResponse> =>
      this.#connection.read(`listing ${area}`, (client) => client.getAll().prefix(this.#connection.key(area)).revision(String(at)).exec());
    const [nodes, leases, tunnels, servers] = await Promise.all([read(NODES), read(LEASES), read(TUNNELS), read(SERVERS)]);
    const id = (key: Buffer, area: string): string => key.toString('utf8').slice(this.#connection.key(area).length);
    const mirrored = <T>(kvs: IRangeResponse['kvs'], area: string, decode: (value: Buffer) => T | undefined): Map<string, Mirrored<T>> => {
      const map = new Map<string, Mirrored<T>>();
      for (const kv of kvs) {
        const value = decode(kv.value);
        if (value !== undefined) map.set(id(kv.key, area), { value, revision: BigInt(kv.mod_revision) });
      }
      return map;
    };
    return {
      revision: at,
      nodes: nodes.kvs.map((kv) => ({ key: id(kv.key, NODES), value: kv.value, revision: BigInt(kv.mod_revision) })),
      leases: mirrored(leases.kvs, LEASES, decodeLease),
      tunnels: mirrored(tunnels.kvs, TUNNELS, decodeTunnel),
      servers: new Map([...mirrored(servers.kvs, SERVERS, decodeServer)].map(([serverId, { value }]) => [serverId, value])),
    };
  }

  /** A listing as the whole mirror. */
  #adopt(listing: Listing): void {
    const previous = this.#nodes;
    this.#leases = listing.leases;
    this.#tunnels = listing.tunnels;
    this.#servers = listing.servers;
    this.#nodes = new Map();
    this.#revisionOf = new Map();
    for (const { key, value, revision } of listing.nodes) {
      this.#revisionOf.set(key, revision);
      const stored = decodeNode(value, key);
      if (!stored) this.#log.warn({ key: this.#key(NODES, key), bytes: value.length }, 'etcd value is not a node record: ignored');
      else if (!stored.deleted) this.#nodes.set(key, this.#record(stored, revision, previous.get(key)));
    }
    this.#applied.reached(listing.revision);
  }

  /** The node as this server keeps it: its lease merged in, descriptors shared with what it held (or is writing) where they are the same. */
  #record(stored: StoredNode, revision: bigint, previous: NodeRecord | undefined): NodeRecord {
    const { services, service_hashes: hashes, seq, event, deleted: _deleted, ...meta } = stored;
    const known = new Map<string, ServiceEntry>();
    for (const entry of previous?.services ?? []) known.set(entry.service_id, entry);
    for (const entry of this.#writing.get(stored.node_id)?.next.services ?? []) known.set(entry.service_id, entry);
    const lease = this.#leases.get(stored.node_id)?.value;
    return {
      node_id: meta.node_id,
      node_name: meta.node_name,
      platform: meta.platform,
      labels: meta.labels,
      state: meta.state,
      lease_expires_at_ms: lease?.expires_at_ms ?? 0,
      last_seen_ms: lease?.last_seen_ms ?? 0,
      joined_at_ms: meta.joined_at_ms,
      updated_ms: meta.updated_ms,
      seq: event ? seqOf(revision, event.index ?? 0) : (seq ?? 0),
      services: readEntries(services, hashes, known),
      secret_sha256: meta.secret_sha256,
    };
  }

  #follow(from: bigint): void {
    this.#watch = new PrefixWatch(this.#connection, this.#connection.prefix, from, {
      changes: (changes, revision) => this.#apply(changes, revision),
      compacted: (error) => void this.#relist(error),
      state: (connected, cause) =>
        this.#log[connected ? 'info' : 'warn'](
          { err: cause },
          connected ? 'etcd catalog watch connected' : 'etcd catalog watch disconnected; it resumes by itself',
        ),
    });
  }

  /** Changes in revision order: the mirror follows, each event goes to the ring and the listeners. */
  #apply(changes: WatchedChange[], revision: bigint): void {
    const closedTunnels: Array<{ nodeId: string; serverId: string | undefined }> = [];
    for (const change of changes) {
      const key = change.key.slice(this.#connection.prefix.length);
      if (key.startsWith(NODES)) this.#applyNode(key.slice(NODES.length), change);
      else if (key.startsWith(LEASES)) this.#applyLease(key.slice(LEASES.length), change);
      else if (key.startsWith(TUNNELS)) {
        const nodeId = key.slice(TUNNELS.length);
        const value = change.value && decodeTunnel(change.value);
        if (value !== undefined) this.#tunnels.set(nodeId, { value, revision: change.modRevision });
        else {
          closedTunnels.push({ nodeId, serverId: this.#tunnels.get(nodeId)?.value });
          this.#tunnels.delete(nodeId);
        }
      } else if (key.startsWith(SERVERS)) {
        const server = change.value && decodeServer(change.value);
        if (server) this.#servers.set(key.slice(SERVERS.length), server);
        else this.#servers.delete(key.slice(SERVERS.length));
      }
    }
    this.#ring.advance(headSeqOf(revision));
    this.#applied.reached(revision);
    if (!this.#ready) return;
    // A tunnel gone with its server (its registration expired): every survivor starts the grace period; one does it.
    // Under this server's own id but not among its tunnels: left by its previous run (killed, started again under the same id).
    // Among its tunnels: its own registration lapsed while the node is still here, and re-registering puts it back.
    for (const { nodeId, serverId } of closedTunnels) {
      const gone = serverId === this.#options.serverId ? !this.#ownTunnels.has(nodeId) : serverId !== undefined && !this.#servers.has(serverId);
      if (gone) this.#startGrace(nodeId, serverId);
    }
  }

  #applyNode(nodeId: string, change: WatchedChange): void {
    if (!change.value) {
      this.#nodes.delete(nodeId);
      this.#revisionOf.delete(nodeId);
      return;
    }
    this.#revisionOf.set(nodeId, change.modRevision);
    const read = this.#readNode(nodeId, change.value, change.modRevision);
    if (!read) {
      this.#log.warn({ key: change.key, bytes: change.value.length }, 'etcd value is not a node record: ignored');
      this.#nodes.delete(nodeId);
      return;
    }
    const { record, event: stored } = read;
    const before = this.#nodes.get(nodeId)?.services;
    if (read.deleted) this.#nodes.delete(nodeId);
    else this.#nodes.set(nodeId, record);
    if (!stored) return;
    const event = new CatalogEvent(record.seq, {
      kind: stored.kind,
      timestamp_ms: stored.timestamp_ms,
      node: record,
      delta: stored.service_delta,
      ...(before ? { before } : {}),
    });
    this.#ring.add(event);
    try {
      this.#ring.publish(event);
    } catch (error) {
      this.#log.error({ err: error, seq: event.seq }, 'fanning out an event failed');
    }
  }

  /** A node's value from the watch: this server's own write as it wrote it (the same bytes), anything else decoded; undefined when it is no node record. */
  #readNode(nodeId: string, value: Buffer, revision: bigint): { record: NodeRecord; event?: StoredEvent; deleted?: boolean } | undefined {
    const writing = this.#writing.get(nodeId);
    if (writing?.sent?.bytes.equals(value)) {
      const {
        next,
        deleted,
        sent: { index },
      } = writing;
      const event = writing.event && { ...writing.event, index };
      const lease = this.#leases.get(nodeId)?.value;
      const record = {
        ...next,
        lease_expires_at_ms: lease?.expires_at_ms ?? 0,
        last_seen_ms: lease?.last_seen_ms ?? 0,
        seq: event ? seqOf(revision, index) : next.seq,
      };
      return { record, ...(event ? { event } : {}), ...(deleted ? { deleted } : {}) };
    }
    const stored = decodeNode(value, nodeId);
    return (
      stored && {
        record: this.#record(stored, revision, this.#nodes.get(nodeId)),
        ...(stored.event ? { event: stored.event } : {}),
        ...(stored.deleted ? { deleted: true } : {}),
      }
    );
  }

  #applyLease(nodeId: string, change: WatchedChange): void {
    const lease = change.value && decodeLease(change.value);
    if (lease) this.#leases.set(nodeId, { value: lease, revision: change.modRevision });
    else this.#leases.delete(nodeId);
    const node = this.#nodes.get(nodeId);
    if (node) this.#nodes.set(nodeId, { ...node, lease_expires_at_ms: lease?.expires_at_ms ?? 0, last_seen_ms: lease?.last_seen_ms ?? 0 });
  }

  /** The watch's history was compacted (this server was cut off from etcd that long): list again; running watches must start over. */
  async #relist(error: WatchCompactedError): Promise<void> {
    this.#log.warn({ err: error }, "etcd history compacted past this server's catalog watch: listing the catalog again");
    this.#watch = undefined;
    while (!this.#closed) {
      try {
        const head = BigInt(
          (await this.#connection.read('reading the catalog head', (client) => client.get(this.#connection.key(SERVERS)).exec())).header.revision,
        );
        const listing = await this.#list(head);
        if (this.#closed) return;
        this.#adopt(listing);
        this.#ring.restart(headSeqOf(listing.revision), `etcd compacted the history this server had not yet read (${error.message}), so events were missed`);
        this.#follow(listing.revision + 1n);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  #waitFor(revision: bigint, timeoutMs: number): Promise<boolean> {
    return this.#applied.waitFor(revision, timeoutMs);
  }
}
