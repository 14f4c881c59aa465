import { offlineView, type CatalogDeltaPayload } from '../protocol/catalog-event.js';
import type { NodeLabels, NodePlatform, ServiceDescriptor } from '../protocol/types.gen.js';

/** One node as WorldFS shows it: `control.node_get`, kept current by delta events. */
export interface WorldNode {
  node_id: string;
  node_name: string;
  platform: NodePlatform;
  labels: NodeLabels;
  /** As published: an offline node's services marked offline. */
  services: ServiceDescriptor[];
  state: 'online' | 'offline';
  lease_expires_at_ms: number;
  last_seen_ms: number;
  joined_at_ms: number;
  updated_ms: number;
}

/** `control.node_get {view: "stored"}`: the node with its services as stored, their hashes and the seq it reflects. */
export interface StoredNode extends Omit<WorldNode, 'services'> {
  services: ServiceDescriptor[];
  service_hashes: Record<string, string>;
  seq: number;
}

/** What became of a delta event (see `apply`). */
export type Applied = 'applied' | 'stale' | 'unknown node' | 'mismatch';

interface Mirrored {
  node: WorldNode;
  seq: number;
  /** The stored descriptors by service_id, with their hashes (those of service_delta). */
  stored: Map<string, { service: ServiceDescriptor; hash: string }>;
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

  nodeIds(): string[] {
    return [...this.#nodes.keys()].sort();
  }

  node(nodeId: string): WorldNode | undefined {
    return this.#nodes.get(nodeId)?.node;
  }

  has(nodeId: string): boolean {
    return this.#nodes.has(nodeId);
  }

  /** A node as read: replaces what the mirror had of it. */
  set(read: StoredNode): void {
    const { services, service_hashes: hashes, seq, ...meta } = read;
    const stored = new Map(services.map((service) => [service.service_id, { service, hash: hashes[service.service_id] ?? '' }]));
    this.#nodes.set(read.node_id, { node: view(meta, stored), seq, stored });
  }

  delete(nodeId: string): void {
    this.#nodes.delete(nodeId);
  }

  /** Lease and last-seen times (not events): re-read from node_list. */
  touch(nodeId: string, times: Pick<WorldNode, 'lease_expires_at_ms' | 'last_seen_ms'>): void {
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
    if (event.seq <= mirrored.seq) return 'stale';
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
      this.#nodes.delete(event.node_id);
      return 'applied';
    }
    for (const entry of [...delta.added, ...delta.updated])
      stored.set(entry.service_id, { service: changed.get(entry.service_id) as ServiceDescriptor, hash: entry.hash });
    for (const entry of delta.removed) stored.delete(entry.service_id);
    const { node } = mirrored;
    mirrored.seq = event.seq;
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
      },
      stored,
    );
    return 'applied';
  }
}

/** The node as shown: its stored services, marked offline when it is. */
function view(meta: Omit<WorldNode, 'services'>, stored: Map<string, { service: ServiceDescriptor }>): WorldNode {
  const services = [...stored.values()].map((s) => s.service);
  return { ...meta, services: meta.state === 'offline' ? services.map(offlineView) : services };
}
