import type { Logger } from 'pino';
import { CatalogEvent } from '../catalog-event.js';
import type { NodeRecord } from '../catalog-store.js';
import type { ServiceEntry } from '../delta.js';
import { readEntries } from '../node-record.js';
import {
  decodeLease,
  decodeNode,
  decodeServer,
  decodeTunnel,
  LEASES,
  NODES,
  SERVERS,
  seqOf,
  TUNNELS,
  type Mirrored,
  type StoredEvent,
  type StoredLease,
  type NodeValue,
  type StoredServer,
} from './catalog-layout.js';
import type { EtcdConnection } from './connection.js';
import type { WatchedChange } from './prefix-watch.js';

/** Every key of the catalog's areas as of one revision. */
export interface Listing {
  revision: bigint;
  nodes: Array<{ key: string; value: Buffer; revision: bigint }>;
  leases: Map<string, Mirrored<StoredLease>>;
  tunnels: Map<string, Mirrored<string>>;
  servers: Map<string, StoredServer>;
}

/** A node record being written: what it is, and once encoded, the bytes sent and its index in their transaction. */
export interface Writing {
  next: NodeRecord;
  event?: StoredEvent;
  deleted?: boolean;
  sent?: { bytes: Buffer; index: number };
}

/** A tunnel key the watch saw go, and the server it named. */
export interface ClosedTunnel {
  nodeId: string;
  serverId: string | undefined;
}

/**
 * This server's copy of the catalog's four areas, fed by a listing and then by the watch in
 * revision order: the node records (as `NodeRecord`s with their leases merged in), the leases, which
 * server holds each tunnel, and the registered servers.
 */
export class CatalogMirror {
  #connection: EtcdConnection;
  #log: Logger;
  #nodes = new Map<string, NodeRecord>();
  /** mod_revision of each `nodes/<id>` key the mirror holds (tombstones included): the guard of the next write. */
  #revisionOf = new Map<string, bigint>();
  #leases = new Map<string, Mirrored<StoredLease>>();
  /** Which server holds each node's tunnel. */
  #tunnels = new Map<string, Mirrored<string>>();
  #servers = new Map<string, StoredServer>();
  /**
   * The record this server is writing for a node, and the bytes it sent: when the watch brings back
   * exactly those, the record is taken as written (not decoded again); otherwise its entries
   * (validated here) are kept where another server's record has the same descriptors.
   */
  #writing = new Map<string, Writing>();
  /** Told the id of a node whose secret changed under the mirror (a join again, here or on another server). */
  #secretReplaced: (nodeId: string) => void;

  constructor(connection: EtcdConnection, log: Logger, secretReplaced: (nodeId: string) => void) {
    this.#connection = connection;
    this.#log = log;
    this.#secretReplaced = secretReplaced;
  }

  get nodes(): ReadonlyMap<string, NodeRecord> {
    return this.#nodes;
  }

  /** The mod_revision of the node's key as last seen; undefined: never seen. */
  revisionOf(nodeId: string): bigint | undefined {
    return this.#revisionOf.get(nodeId);
  }

  lease(nodeId: string): Mirrored<StoredLease> | undefined {
    return this.#leases.get(nodeId);
  }

  /** The server holding the node's tunnel. */
  tunnelServer(nodeId: string): string | undefined {
    return this.#tunnels.get(nodeId)?.value;
  }

  server(serverId: string): StoredServer | undefined {
    return this.#servers.get(serverId);
  }

  /** This server writes `writing` for the node now (undefined: it is done): the watch takes those bytes back as written. */
  writing(nodeId: string, writing: Writing | undefined): void {
    if (writing) this.#writing.set(nodeId, writing);
    else this.#writing.delete(nodeId);
  }

  /** A listing as the whole mirror. */
  adopt(listing: Listing): void {
    const previous = this.#nodes;
    this.#leases = listing.leases;
    this.#tunnels = listing.tunnels;
    this.#servers = listing.servers;
    this.#nodes = new Map();
    this.#revisionOf = new Map();
    for (const { key, value, revision } of listing.nodes) {
      this.#revisionOf.set(key, revision);
      const stored = decodeNode(value, key);
      if (!stored) this.#log.warn({ key: this.#connection.key(NODES + key), bytes: value.length }, 'etcd value is not a node record: ignored');
      else if (!stored.deleted) this.#nodes.set(key, this.#record(stored, revision, previous.get(key)));
    }
    for (const [nodeId, before] of previous) {
      const now = this.#nodes.get(nodeId);
      if (now && now.secret_sha256 !== before.secret_sha256) this.#secretReplaced(nodeId);
    }
  }

  /** Changes of one revision, in order; each event goes to `onEvent` as its record is applied. Returns the tunnel keys that went. */
  apply(changes: WatchedChange[], onEvent: (event: CatalogEvent) => void): ClosedTunnel[] {
    const closedTunnels: ClosedTunnel[] = [];
    for (const change of changes) {
      const key = change.key.slice(this.#connection.prefix.length);
      if (key.startsWith(NODES)) this.#applyNode(key.slice(NODES.length), change, onEvent);
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
    return closedTunnels;
  }

  /** The node as this server keeps it: its lease merged in, descriptors shared with what it held (or is writing) where they are the same. */
  #record(stored: NodeValue, revision: bigint, previous: NodeRecord | undefined): NodeRecord {
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

  #applyNode(nodeId: string, change: WatchedChange, onEvent: (event: CatalogEvent) => void): void {
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
    const previous = this.#nodes.get(nodeId);
    const before = previous?.services;
    if (read.deleted) this.#nodes.delete(nodeId);
    else this.#nodes.set(nodeId, record);
    if (previous && !read.deleted && previous.secret_sha256 !== record.secret_sha256) this.#secretReplaced(nodeId);
    if (stored)
      onEvent(
        new CatalogEvent(record.seq, {
          kind: stored.kind,
          timestamp_ms: stored.timestamp_ms,
          node: record,
          delta: stored.service_delta,
          ...(before ? { before } : {}),
        }),
      );
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
}
