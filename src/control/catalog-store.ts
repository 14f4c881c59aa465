import type {
  NodeJoinPayload,
  NodeJoinReply,
  NodeMeta,
  NodeServiceUpsertPayload,
  NodeState,
  NodeSummary,
  PublicNode,
  ServiceDelta,
  ServiceDescriptor,
} from '../protocol/types.gen.js';
import type { CatalogEvent } from './catalog-event.js';
import type { ServiceEntry } from './delta.js';
import type { RetainedWindow } from './event-ring.js';
import type { ResolvedService } from './upsert-frame.js';

/** One node as the control server keeps it: descriptors as their JSON, the secret only as a hash. */
export interface NodeRecord extends NodeMeta {
  services: ServiceEntry[];
  secret_sha256: string;
}

/**
 * Every node's catalog, lease and credentials (SPEC §6), as the ops, policy and metrics see them:
 * reads are synchronous (from memory), changes resolve once they are durable and this server's
 * watchers have been told. Two implementations: files in the data dir (file-catalog.ts) and etcd
 * (etcd/etcd-catalog.ts).
 */
export interface CatalogStore {
  readonly leaseTtlMs: number;
  list(): NodeSummary[];
  /** The node with its services as published (an offline node's marked offline) or, `stored`, as stored and with their hashes. */
  get(nodeId: string, view?: 'published' | 'stored'): PublicNode;
  /** The node's state; undefined when it is unknown. */
  nodeState(nodeId: string): NodeState | undefined;
  /** One service of a node as `get` shows it; undefined when either is unknown. */
  service(nodeId: string, serviceId: string): ServiceDescriptor | undefined;
  /** The node's stored descriptors (see upsert-frame.ts). */
  storedServices(nodeId: string): readonly ServiceEntry[] | undefined;
  count(): { nodes: Record<NodeState, number>; services: Map<string, number> };
  verifyNode(nodeId: string, secret: string): Promise<boolean>;
  /**
   * Called with a node id when another server of a shared store replaced the node's secret (a join
   * again there): this server's connections made with the old one must end. The files store has one
   * server, whose join closes them itself (ops.ts `dropNode`).
   */
  onSecretReplaced(listener: (nodeId: string) => void): void;
  /** A join token buys a node id and a secret; joining again (a lost state file) replaces the secret. */
  join(payload: NodeJoinPayload): Promise<NodeJoinReply>;
  /**
   * Replaces the node's whole catalog (validated before this call, all or nothing). An unchanged
   * catalog writes no event and returns `changed: false`. `body` is the reply payload, serialized
   * in the shape the upsert asked for (`include`), the event's own bytes when there is one.
   */
  upsert(payload: Omit<NodeServiceUpsertPayload, 'services'>, incoming: readonly ResolvedService[]): Promise<{ delta: ServiceDelta; body: Buffer }>;
  /** Lease refresh: extends the lease; an offline node comes back online. */
  refresh(nodeId: string): Promise<{ leaseExpiresAtMs: number; cameOnline: boolean }>;
  /** A tunnel of the node opened on this server; `answers` tells whether its peer still answers (a ping's pong). */
  tunnelOpened(nodeId: string, answers: () => Promise<boolean>): void;
  /** The node's last tunnel on this server closed: its lease now ends at most `graceMs` from now (unless it is on another server). */
  tunnelClosed(nodeId: string, graceMs: number): void;
  /** Nodes whose lease lapsed turn offline, services kept (SPEC §6); returns their ids. */
  expireLeases(): Promise<string[]>;
  delete(nodeId: string): Promise<PublicNode>;
  close(): Promise<void>;
}

/**
 * The event stream of a catalog (SPEC §6 Events) as the watch machinery sees it: events in seq
 * order, once each, after they are durable; a ring of recent ones for replay.
 */
export interface EventStream {
  /** The last seq this server has delivered (every event up to it has reached the listeners). */
  readonly headSeq: number;
  /** The seq of the last event delivered here (etcd: headSeq also moves with revisions that are no event). */
  readonly lastEventSeq: number;
  readonly ringCapacity: number;
  /** Every event with a seq above this, up to headSeq, is in `retained()`: a watch may resume from here on. */
  readonly retainedAfter: number;
  retained(): readonly CatalogEvent[];
  window(): RetainedWindow;
  /** Called with each event once it is durable, in seq order. */
  onEvent(listener: (event: CatalogEvent) => void): void;
  /** Called when events were lost to this server (etcd history compacted past it): running watches must start over. */
  onGap(listener: (message: string) => void): void;
  /**
   * Resolves once every event up to `seq` has been delivered here, or once it is clear that will
   * not happen soon (a seq beyond the store's head: the watch start then refuses it).
   */
  reach(seq: number): Promise<void>;
}
