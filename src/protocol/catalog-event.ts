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

/**
 * One catalog event (SPEC §6): the upsert reply plus seq, kind and time. The payload of
 * `control.node_service_event` (with `watch_id` and `replay`), one line of the event log, and what
 * WorldFS and `acheron node watch` read.
 */
export interface CatalogEventPayload {
  seq: number;
  kind: EventKind;
  timestamp_ms: number;
  node_id: string;
  node_name: string;
  platform: NodePlatform;
  labels: NodeLabels;
  services: ServiceDescriptor[];
  service_delta: ServiceDelta;
}
