import type { ServiceDescriptor } from './types.gen.js';

// The event shapes (CatalogEventPayload, CatalogDeltaPayload, ServiceDelta, ...) are generated from
// docs/schemas/control-replies.schema.json into types.gen.ts.

/** How an offline node's services are shown (SPEC §6: kept in the catalog, state offline). */
export function offlineView(service: ServiceDescriptor): ServiceDescriptor {
  return { ...service, state: 'offline', mounts: service.mounts.map((m) => ({ ...m, state: 'offline' })) };
}
