import { diffServices, problemOfSource, type LoadedService, type ServicesDiff } from '../manifest/index.js';
import type { Problem } from '../protocol/schemas.js';
import type { LiveService } from '../runtime/live-service.js';
import type { ServiceSettings } from '../runtime/service-settings.js';
import { isRunnable } from './service-builder.js';
import type { NodeService } from './service-registry.js';

/** One service of the registry after a reload, in registry order. */
export type PlannedService =
  /** Unchanged (or a built-in): the very same service, runtime and all. */
  | { kind: 'keep'; service: NodeService }
  /** Changed and still runnable (of either runtime type): its runtime (state, counters, jobs) stays and takes new settings. */
  | { kind: 'update'; service: NodeService & { runtime: LiveService }; loaded: LoadedService; settings: ServiceSettings }
  /** New, or now catalog-only: built afresh; catalog-only without settings. */
  | { kind: 'create'; loaded: LoadedService; settings?: ServiceSettings };

export interface ReloadPlan {
  /**
   * The manifests in force afterwards: a file that fails now keeps its previous good version, and so
   * does every file of a services directory that cannot be read now.
   */
  loaded: LoadedService[];
  problems: Problem[];
  problemsChanged: boolean;
  diff: ServicesDiff;
  /** The registry afterwards; equal to the current one when `diff` is empty. */
  services: PlannedService[];
  /** Runtimes that leave: removed services, and changed ones that are now catalog-only. */
  retire: LiveService[];
}

export interface CurrentServices {
  builtins: readonly NodeService[];
  loaded: readonly LoadedService[];
  problems: readonly Problem[];
  /** The registry as it is: the built-ins, then a service per loaded manifest. */
  services: readonly NodeService[];
}

/**
 * What a reload will do, computed whole before anything changes: every new service's settings are
 * made here (`settingsOf` may throw, and then nothing has changed), so applying the plan cannot fail
 * half-way. Changes nothing itself. A renamed service (another `service_id`) is one removed and one
 * added: the old runtime retires with its journal entries, the new one starts empty.
 */
export function planReload(
  current: CurrentServices,
  fresh: { services: LoadedService[]; problems: Problem[] },
  settingsOf: (loaded: LoadedService) => ServiceSettings,
): ReloadPlan {
  const { problems } = fresh;
  const problemsChanged = JSON.stringify(problems) !== JSON.stringify(current.problems);
  const kept = current.loaded.filter(
    (s) => problemOfSource(problems, s.source) !== undefined && !fresh.services.some((n) => n.descriptor.service_id === s.descriptor.service_id),
  );
  const next = [...fresh.services, ...kept];
  const diff = diffServices([...current.loaded], next);
  const keep = (service: NodeService): PlannedService => ({ kind: 'keep', service });
  if (diff.added.length + diff.removed.length + diff.changed.length === 0) {
    return { loaded: [...current.loaded], problems, problemsChanged, diff, services: current.services.map(keep), retire: [] };
  }
  const byId = new Map(current.services.map((service) => [service.descriptor.service_id, service]));
  const services = current.builtins.map(keep);
  const retire: LiveService[] = [];
  for (const loaded of next) {
    const service = byId.get(loaded.descriptor.service_id);
    if (service && !diff.changed.includes(loaded.descriptor.service_id)) services.push(keep(service));
    else if (service?.runtime && isRunnable(loaded)) {
      services.push({ kind: 'update', service: service as NodeService & { runtime: LiveService }, loaded, settings: settingsOf(loaded) });
    } else {
      if (service?.runtime) retire.push(service.runtime);
      services.push({ kind: 'create', loaded, ...(isRunnable(loaded) ? { settings: settingsOf(loaded) } : {}) });
    }
  }
  for (const serviceId of diff.removed) {
    const runtime = byId.get(serviceId)?.runtime;
    if (runtime) retire.push(runtime);
  }
  return { loaded: next, problems, problemsChanged, diff, services, retire };
}
