import type { EventKind, ServiceDelta, ServiceDescriptor, StoredNode } from '../../protocol/types.gen.js';
import type { NodeRecord } from '../catalog-store.js';
import { recordParts } from '../node-record.js';
import { gzipValue, OP_ID_FIELD, storedObject } from './guarded-txn.js';

/** The catalog's areas under the store's prefix, each `<area><id>`. */
export const NODES = 'nodes/';
export const LEASES = 'leases/';
export const TUNNELS = 'tunnels/';
export const SERVERS = 'servers/';

/** The pause before a background etcd step that failed (a listing, a registration, a tunnel key) is tried again. */
export const RETRY_MS = 500;

/**
 * Seqs per revision: a group commit writes several nodes' events in one revision, so an event's
 * seq is its revision × 1000 + its index in that transaction (at most 128 changes fit one), and
 * "everything up to revision r" is seq r × 1000 + 999. The same on every server (the index is in
 * the record), strictly increasing, and a seq names one event.
 */
const SEQS_PER_REVISION = 1000;
export const seqOf = (revision: bigint, index: number): number => Number(revision) * SEQS_PER_REVISION + index;
export const headSeqOf = (revision: bigint): number => seqOf(revision, SEQS_PER_REVISION - 1);
export const revisionOfSeq = (seq: number): bigint => BigInt(Math.floor(seq / SEQS_PER_REVISION));

/** An event as its node record carries it: the record written with it is the event's node. */
export interface StoredEvent {
  kind: EventKind;
  /** Its place among the events of its revision (a group commit); absent: 0. */
  index?: number;
  timestamp_ms: number;
  service_delta: ServiceDelta;
}

/** `<prefix>nodes/<node_id>`: the node record with, when the write was an event, that event. */
export interface NodeValue extends Pick<StoredNode, 'node_id' | 'node_name' | 'platform' | 'labels' | 'state' | 'joined_at_ms' | 'updated_ms'> {
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
export interface StoredLease {
  expires_at_ms: number;
  last_seen_ms: number;
  server_id: string;
}

/** `<prefix>servers/<server_id>`: a registered server, where its peers reach it and its peer secret's SHA-256. */
export interface StoredServer {
  url: string;
  secret_sha256: string;
}

/** A key's value as the mirror holds it, with its mod_revision (the guard of a write that depends on it). */
export interface Mirrored<T> {
  value: T;
  revision: bigint;
}

export function decodeNode(value: Buffer, nodeId: string): NodeValue | undefined {
  const object = storedObject(value)?.object;
  if (
    !object ||
    object.node_id !== nodeId ||
    !Array.isArray(object.services) ||
    (object.state !== 'online' && object.state !== 'offline') ||
    typeof object.secret_sha256 !== 'string'
  )
    return undefined;
  return object as unknown as NodeValue;
}

export function decodeLease(value: Buffer): StoredLease | undefined {
  const object = storedObject(value)?.object;
  if (!object || typeof object.expires_at_ms !== 'number' || typeof object.last_seen_ms !== 'number') return undefined;
  return { expires_at_ms: object.expires_at_ms, last_seen_ms: object.last_seen_ms, server_id: typeof object.server_id === 'string' ? object.server_id : '' };
}

export function decodeServer(value: Buffer): StoredServer | undefined {
  const object = storedObject(value)?.object;
  return object && typeof object.url === 'string' && typeof object.secret_sha256 === 'string'
    ? { url: object.url, secret_sha256: object.secret_sha256 }
    : undefined;
}

/** `<prefix>tunnels/<node_id>`: the server holding the node's tunnel. */
export function decodeTunnel(value: Buffer): string | undefined {
  const serverId = storedObject(value)?.object.server_id;
  return typeof serverId === 'string' ? serverId : undefined;
}

export function encodeTunnel(serverId: string): string {
  return JSON.stringify({ server_id: serverId });
}

/** A node record as etcd keeps it: gzipped, from the descriptors' own bytes (never one string of the whole catalog). */
export function encodeNode(node: NodeRecord, change: { event?: StoredEvent; deleted?: boolean }): (opId: string, index: number) => Buffer {
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
