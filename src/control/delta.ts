import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { ServiceDescriptor } from '../protocol/types.gen.js';

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

/**
 * `"0x"` + 16 hex digits: the first 8 bytes of SHA-256 over the RFC 8785 canonical JSON of the
 * entry (SPEC §6), so key order does not matter.
 */
export function serviceHash(service: ServiceDescriptor): string {
  return '0x' + createHash('sha256').update(canonicalize(service) ?? '').digest('hex').slice(0, 16);
}

/** Hashes of a catalog array, kept while the array lives: a stored catalog is hashed once, not per upsert. */
const hashed = new WeakMap<readonly ServiceDescriptor[], Map<string, { version: string; hash: string }>>();

function entries(services: readonly ServiceDescriptor[]): Map<string, { version: string; hash: string }> {
  let map = hashed.get(services);
  if (!map) {
    map = new Map(services.map((s) => [s.service_id, { version: s.version, hash: serviceHash(s) }]));
    hashed.set(services, map);
  }
  return map;
}

/** What changed between two catalogs of one node; service order does not matter. */
export function serviceDelta(previous: readonly ServiceDescriptor[], next: readonly ServiceDescriptor[], now = Date.now()): ServiceDelta {
  const before = entries(previous);
  const after = entries(next);
  const added: DeltaEntry[] = [];
  const updated: UpdatedEntry[] = [];
  const removed: DeltaEntry[] = [];
  for (const [serviceId, entry] of after) {
    const old = before.get(serviceId);
    if (!old) added.push({ service_id: serviceId, ...entry });
    else if (old.hash !== entry.hash) updated.push({ service_id: serviceId, ...entry, previous_version: old.version, previous_hash: old.hash });
  }
  for (const [serviceId, entry] of before) if (!after.has(serviceId)) removed.push({ service_id: serviceId, ...entry });
  const byId = (a: DeltaEntry, b: DeltaEntry): number => (a.service_id < b.service_id ? -1 : a.service_id > b.service_id ? 1 : 0);
  return { changed: added.length + updated.length + removed.length > 0, timestamp_ms: now, added: added.sort(byId), updated: updated.sort(byId), removed: removed.sort(byId) };
}
