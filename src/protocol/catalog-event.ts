import type { NodeLabels, NodePlatform, ServiceDescriptor } from './types.gen.js';

/** SPEC §6 service_delta entries: `hash` is "0x" + the first 8 bytes of SHA-256 of the canonical JSON. */
export interface DeltaEntry {
  service_id: string;
  version: string;
  hash: string;
}

export interface UpdatedEntry extends DeltaEntry {
  previous_version: string;
  previous_hash: string;
}

export interface ServiceDelta {
  changed: boolean;
  timestamp_ms: number;
  added: DeltaEntry[];
  updated: UpdatedEntry[];
  removed: DeltaEntry[];
}

export type EventKind = 'upsert' | 'offline' | 'online' | 'delete';

/** What both shapes of an event say of it and its node. */
interface EventFacts {
  seq: number;
  kind: EventKind;
  timestamp_ms: number;
  node_id: string;
  node_name: string;
  platform: NodePlatform;
  labels: NodeLabels;
  service_delta: ServiceDelta;
}

/**
 * One catalog event (SPEC §6) in the full shape: the upsert reply plus seq, kind and time; the
 * node's whole catalog after the event (an offline node's services marked offline). The payload of
 * `control.node_service_event` for a watch without `include` (with `watch_id` and `replay`), and one
 * line of the event log.
 */
export interface CatalogEventPayload extends EventFacts {
  services: ServiceDescriptor[];
}

/**
 * The same event in the delta shape (a watch with `include: "delta"`): instead of the whole catalog,
 * the descriptors of the services in `service_delta.added` and then `.updated` (each list in its
 * order), as stored: a client marks an offline node's services offline itself (`offlineView`).
 */
export interface CatalogDeltaPayload extends EventFacts {
  changed_services: ServiceDescriptor[];
}

/** How an offline node's services are shown (SPEC §6: kept in the catalog, state offline). */
export function offlineView(service: ServiceDescriptor): ServiceDescriptor {
  return { ...service, state: 'offline', mounts: service.mounts.map((m) => ({ ...m, state: 'offline' })) };
}
