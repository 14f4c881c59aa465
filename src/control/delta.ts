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
 * Each text as UTF-8, all in one allocation of their own (each a view of it). One block per
 * upsert, not one per descriptor: small blocks kept long among the large short-lived ones of
 * every frame fragment the allocator's heap, which then never shrinks; and a small Buffer.from()
 * would be a slice of the shared 8 KiB pool, which it would keep alive as long as the catalog
 * keeps the descriptor.
 */
export function jsonBytes(texts: readonly string[]): Buffer[] {
  const block = Buffer.allocUnsafeSlow(texts.reduce((sum, text) => sum + Buffer.byteLength(text), 0));
  let offset = 0;
  return texts.map((text) => {
    const start = offset;
    offset += block.write(text, offset);
    return block.subarray(start, offset);
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
