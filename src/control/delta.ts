import { serviceHash } from '../protocol/service-hash.js';
import type { DeltaEntry, ServiceDelta, ServiceDescriptor, UpdatedEntry } from '../protocol/types.gen.js';

export { serviceHash };

/**
 * One stored descriptor as the catalog keeps it: its JSON as UTF-8 bytes (what the wire, the event
 * log and the journal carry, so it is serialized once), and its hash. The bytes live outside the
 * JavaScript heap, so 20 KiB of descriptors per node do not grow the heap V8 sizes its collections
 * by; they are the one copy that the catalog, the journal and the events share. `validated`: this
 * process checked it against the schema, so the same JSON in a later upsert needs no second
 * validation.
 */
export interface ServiceEntry extends DeltaEntry {
  json: Buffer;
  validated: boolean;
  /** The service's own state (its descriptor's `state`), counted by acheron_services. */
  state: string;
}

/**
 * Each text as UTF-8 in an allocation of its own. Not a slice of a shared block: a block lives as
 * long as any of its descriptors, so a node whose descriptors change one at a time would keep
 * every old block (the catalog's descriptors held twice). Not a small Buffer.from() either: that
 * is a slice of the shared 8 KiB pool, which it would keep alive as long as the catalog keeps it.
 */
export function jsonBytes(texts: readonly string[]): Buffer[] {
  return texts.map((text) => {
    const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
    bytes.write(text);
    return bytes;
  });
}

/**
 * The entry of `service`, whose JSON.stringify is `json`. Equal JSON means an equal canonical
 * form, so when `previous` has the same JSON its entry (and hash) is reused: an upsert that
 * changes one descriptor out of twenty canonicalizes and hashes one.
 */
export function serviceEntry(service: ServiceDescriptor, json: Buffer, validated: boolean, previous?: ServiceEntry): ServiceEntry {
  if (previous?.json.equals(json)) return previous.validated || !validated ? previous : { ...previous, validated };
  return { service_id: service.service_id, version: service.version, hash: serviceHash(service), json, validated, state: service.state };
}

/** What changed between two catalogs of one node; service order does not matter. */
export function entriesDelta(previous: readonly DeltaEntry[], next: readonly DeltaEntry[], now = Date.now()): ServiceDelta {
  const before = new Map(previous.map((e) => [e.service_id, e]));
  const after = new Map(next.map((e) => [e.service_id, e]));
  const added: DeltaEntry[] = [];
  const updated: UpdatedEntry[] = [];
  const removed: DeltaEntry[] = [];
  const plain = (e: DeltaEntry): DeltaEntry => ({ service_id: e.service_id, version: e.version, hash: e.hash });
  for (const [serviceId, entry] of after) {
    const old = before.get(serviceId);
    if (!old) added.push(plain(entry));
    else if (old.hash !== entry.hash) updated.push({ ...plain(entry), previous_version: old.version, previous_hash: old.hash });
  }
  for (const [serviceId, entry] of before) if (!after.has(serviceId)) removed.push(plain(entry));
  const byId = (a: DeltaEntry, b: DeltaEntry): number => (a.service_id < b.service_id ? -1 : a.service_id > b.service_id ? 1 : 0);
  return {
    changed: added.length + updated.length + removed.length > 0,
    timestamp_ms: now,
    added: added.sort(byId),
    updated: updated.sort(byId),
    removed: removed.sort(byId),
  };
}

/** The delta between two catalogs given as descriptors (each hashed). */
export function serviceDelta(previous: readonly ServiceDescriptor[], next: readonly ServiceDescriptor[], now = Date.now()): ServiceDelta {
  const hashed = (services: readonly ServiceDescriptor[]): DeltaEntry[] =>
    services.map((s) => ({ service_id: s.service_id, version: s.version, hash: serviceHash(s) }));
  return entriesDelta(hashed(previous), hashed(next), now);
}
