import type { LoadedService } from './load.js';

/** What a reload changes, by service id. */
export interface ServicesDiff {
  added: string[];
  removed: string[];
  /** In both, with a different descriptor, executable or module path, or module content. */
  changed: string[];
}

/** Compares two loads by canonical JSON, so key order in a rewritten manifest is not a change. */
export function diffServices(previous: LoadedService[], next: LoadedService[]): ServicesDiff {
  const before = new Map(previous.map((service) => [service.descriptor.service_id, fingerprint(service)]));
  const after = new Map(next.map((service) => [service.descriptor.service_id, fingerprint(service)]));
  const added: string[] = [];
  const changed: string[] = [];
  for (const [serviceId, print] of after) {
    const old = before.get(serviceId);
    if (old === undefined) added.push(serviceId);
    else if (old !== print) changed.push(serviceId);
  }
  const removed = [...before.keys()].filter((serviceId) => !after.has(serviceId));
  return { added, removed, changed };
}

function fingerprint(service: LoadedService): string {
  return canonicalJson({
    descriptor: service.descriptor,
    executablePath: service.executablePath ?? null,
    modulePath: service.modulePath ?? null,
    moduleHash: service.moduleHash ?? null,
  });
}

/** JSON with object keys sorted at every depth. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}
