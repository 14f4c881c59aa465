import { offlineView } from '../protocol/catalog-event.js';
import { hasLiveFiles } from '../protocol/service-files.js';
import type { CatalogDeltaPayload, PublicNode, ServiceDescriptor, StoredNode } from '../protocol/types.gen.js';

// A node as WorldFS shows it is a `PublicNode` (control.node_get, as published) whose `seq` is the
// last event applied; it is read as a `StoredNode` (view "stored") and kept current by delta events.

/** What became of a delta event (see `apply`). */
export type Applied = 'applied' | 'stale' | 'unknown node' | 'mismatch';

/**
 * A stored descriptor, its hash (that of service_delta) and its incarnation: one runtime of the
 * service on the node, whose handles it answers until a reload retires it (node/reload-plan.ts).
 */
interface Stored {
  service: ServiceDescriptor;
  hash: string;
  incarnation: object;
}

interface Mirrored {
  /** As published: an offline node's services marked offline; `seq`: the last event it reflects. */
  node: PublicNode;
  /** By service_id. */
  stored: Map<string, Stored>;
}

/**
 * The node keeps a service's runtime across a reload that changes it only while it keeps live
 * files; a service added, or made catalog-only, gets a new one, and the handles of the old answer
 * ENOENT (docs/node-tree.md). The same here: a new incarnation, else the one before.
 */
function incarnationAfter(service: ServiceDescriptor, before: Stored | undefined): object {
  return before && hasLiveFiles(before.service) && hasLiveFiles(service) ? before.incarnation : {};
}

/**
 * The catalog as a WorldFS mount mirrors it (SPEC §9): nodes read once with `control.node_get
 * {view: "stored"}` (descriptors, hashes, seq), then delta events applied to them (docs/control-protocol.md, Events). An event
 * applies to the state its node had before it: every updated or removed service must be there
 * with the event's previous hash, every added one absent. One that does not fit means the mirror
 * missed something: the caller reads everything again.
 */
export class CatalogMirror {
  #nodes = new Map<string, Mirrored>();
  /** What the mirror this one replaces held of each node not read here yet: its reads keep those incarnations. */
  readonly #before = new Map<string, Map<string, Stored>>();

  /**
   * `before`: the mirror a full read replaces. A read cannot tell a service removed and added
   * again since, so one it still holds keeps its incarnation: files open on it stay usable.
   */
  constructor(before?: CatalogMirror) {
    if (before) for (const [nodeId, mirrored] of before.#nodes) this.#before.set(nodeId, mirrored.stored);
  }

  nodeIds(): string[] {
    return [...this.#nodes.keys()].sort();
  }

  node(nodeId: string): PublicNode | undefined {
    return this.#nodes.get(nodeId)?.node;
  }

  /** The service's incarnation (see `Stored`): another object once it was retired; undefined while it is not in the catalog. */
  incarnation(nodeId: string, serviceId: string): object | undefined {
    return this.#nodes.get(nodeId)?.stored.get(serviceId)?.incarnation;
  }

  has(nodeId: string): boolean {
    return this.#nodes.has(nodeId);
  }

  /** A node as read: replaces what the mirror had of it. */
  set(read: StoredNode): void {
    const { services, service_hashes: hashes, ...meta } = read;
    const held = this.#nodes.get(read.node_id)?.stored ?? this.#before.get(read.node_id);
    this.#before.delete(read.node_id);
    const stored = new Map(
      services.map((service) => {
        const incarnation = incarnationAfter(service, held?.get(service.service_id));
        return [service.service_id, { service, hash: hashes[service.service_id] ?? '', incarnation }];
      }),
    );
    this.#nodes.set(read.node_id, { node: view(meta, stored), stored });
  }

  delete(nodeId: string): void {
    this.#nodes.delete(nodeId);
    this.#before.delete(nodeId);
  }

  /** Lease and last-seen times (not events): re-read from node_list. */
  touch(nodeId: string, times: Pick<PublicNode, 'lease_expires_at_ms' | 'last_seen_ms'>): void {
    const mirrored = this.#nodes.get(nodeId);
    if (mirrored) mirrored.node = { ...mirrored.node, ...times };
  }

  /**
   * One delta event: `stale` when the node's read already reflects it, `unknown node` when the
   * mirror has no such node (the caller reads it), `mismatch` when it does not fit.
   */
  apply(event: CatalogDeltaPayload): Applied {
    const mirrored = this.#nodes.get(event.node_id);
    if (!mirrored) return event.kind === 'delete' ? 'stale' : 'unknown node';
    if (event.seq <= mirrored.node.seq) return 'stale';
    const { stored } = mirrored;
    const delta = event.service_delta;
    const changed = new Map(event.changed_services.map((service) => [service.service_id, service]));
    const holds = (id: string, hash: string): boolean => stored.get(id)?.hash === hash;
    const fits =
      delta.removed.every((e) => holds(e.service_id, e.hash)) &&
      delta.updated.every((e) => holds(e.service_id, e.previous_hash)) &&
      delta.added.every((e) => !stored.has(e.service_id)) &&
      [...delta.added, ...delta.updated].every((e) => changed.has(e.service_id));
    if (!fits) return 'mismatch';
    if (event.kind === 'delete') {
      this.delete(event.node_id);
      return 'applied';
    }
    for (const entry of [...delta.added, ...delta.updated]) {
      const service = changed.get(entry.service_id) as ServiceDescriptor;
      stored.set(entry.service_id, { service, hash: entry.hash, incarnation: incarnationAfter(service, stored.get(entry.service_id)) });
    }
    for (const entry of delta.removed) stored.delete(entry.service_id);
    const { node } = mirrored;
    mirrored.node = view(
      {
        node_id: node.node_id,
        node_name: event.node_name,
        platform: event.platform,
        labels: event.labels,
        state: event.kind === 'offline' ? 'offline' : 'online',
        lease_expires_at_ms: node.lease_expires_at_ms,
        last_seen_ms: node.last_seen_ms,
        joined_at_ms: node.joined_at_ms,
        updated_ms: event.timestamp_ms,
        seq: event.seq,
      },
      stored,
    );
    return 'applied';
  }
}

/** The node as shown: its stored services, marked offline when it is. */
function view(meta: Omit<PublicNode, 'services' | 'service_hashes'>, stored: Map<string, Stored>): PublicNode {
  const services = [...stored.values()].map((s) => s.service);
  return { ...meta, services: meta.state === 'offline' ? services.map(offlineView) : services };
}

/**
 * The queued events of a node read as not_found that still apply. The answer reflects every event
 * the connection brought before it (the server changes its catalog and sends the event in one
 * step): up to the last delete queued they are settled (applied to a node the mirror lacks, they
 * would only read it again, endlessly); after it they are of the node joined again (sent after the
 * answer, queued before the read ended) and read it again. With no delete queued (the session may
 * not see the node, or its delete came first) they are dropped.
 */
export function afterGone(events: readonly CatalogDeltaPayload[]): CatalogDeltaPayload[] {
  const deleted = events.findLastIndex((event) => event.kind === 'delete');
  return deleted < 0 ? [] : events.slice(deleted + 1);
}
