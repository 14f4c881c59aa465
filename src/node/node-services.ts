import type { Logger } from 'pino';
import { resolveExecutable, type LoadedService } from '../manifest/index.js';
import type { Problem } from '../protocol/schemas.js';
import type { LiveService } from '../runtime/live-service.js';
import { driverSearchPath } from '../runtime/driver-env.js';
import type { DriverSpawner } from '../runtime/driver-spawner.js';
import type { NodeManifests } from './node-manifests.js';
import { planReload, type ReloadPlan } from './reload-plan.js';
import type { RuntimeJournal } from './runtime-journal.js';
import { isRunnable, type ServiceBuilder } from './service-builder.js';
import { ServiceRegistry, type NodeService } from './service-registry.js';
import type { WasmServices } from './wasm-services.js';

export interface NodeServicesOptions {
  builder: ServiceBuilder;
  journal: RuntimeJournal;
  wasm: WasmServices;
  /** Loads and checks the manifests again (loadNodeManifests). */
  /** `incumbents`: each running service's manifest file (a new file claiming its id is the duplicate). */
  load: (incumbents: ReadonlyMap<string, string>) => Promise<NodeManifests>;
  /** What every driver but a wasm module starts through; the probe asks whether it is still there. */
  spawner: Pick<DriverSpawner, 'exit'>;
  log: Logger;
}

/**
 * The node's services while it runs: the registry the tree shows, the manifests behind it and the
 * problems of the last load (ERRORS.json). Reloads apply a plan (reload-plan.ts) computed whole
 * first; a probe checks every driver the way execution resolves it.
 */
export class NodeServices {
  readonly registry = new ServiceRegistry();
  #o: NodeServicesOptions;
  #builtins: NodeService[];
  #loaded: LoadedService[];
  #problems: Problem[] = [];
  #reloading: Promise<void> | undefined;
  #reloadAgain: Promise<void> | undefined;
  /** Why the reload after the running one runs: a SIGHUP among its callers wins. */
  #reloadAgainReason: string | undefined;
  #closed = false;

  /** Builds the services of a start-up load that had no problems. */
  constructor(options: NodeServicesOptions, first: NodeManifests) {
    this.#o = options;
    const { builder } = options;
    this.#builtins = builder.builtins(first.users);
    this.#loaded = first.services;
    this.registry.replace([
      ...this.#builtins,
      ...first.services.map((s) => builder.fromManifest(s, isRunnable(s) ? builder.settings(s, first.users) : undefined)),
    ]);
  }

  get problems(): readonly Problem[] {
    return this.#problems;
  }

  runtimes(): LiveService[] {
    return this.registry.list().flatMap((s) => (s.runtime ? [s.runtime] : []));
  }

  /**
   * Re-reads the manifests: added services appear, removed ones disappear, changed ones keep their
   * runtime state; a file that fails validation keeps its previous good version running and its
   * problems go to ERRORS.json and the log. A call during a reload may follow a change that reload
   * read too early, so one more runs after it, shared by every call meanwhile: no SIGHUP is lost.
   */
  reload(reason: string): Promise<void> {
    if (this.#reloading) {
      // The reload after it answers a SIGHUP among its callers as a SIGHUP (logged even when nothing changed).
      if (reason === 'SIGHUP' || this.#reloadAgainReason === undefined) this.#reloadAgainReason = reason;
      return (this.#reloadAgain ??= this.#reloading
        .catch(() => undefined)
        .then(() => {
          const again = this.#reloadAgainReason as string;
          [this.#reloadAgain, this.#reloadAgainReason] = [undefined, undefined];
          return this.reload(again);
        }));
    }
    this.#reloading = this.#reload(reason).finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  /** No reload starts any more; waits for the one running. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#reloading?.catch(() => undefined);
  }

  /**
   * Checks every executable service the way execution resolves it, and that the driver spawner its
   * runs go through is still there (it cannot be forked again after the mount); a change is logged once.
   */
  async probe(): Promise<void> {
    const { log, spawner } = this.#o;
    const spawnerGone = spawner.exit && `${spawner.exit.reason}: no driver can start until the node restarts`;
    await Promise.all(
      this.registry.list().map(async (service) => {
        const serviceId = service.descriptor.service_id;
        const supervisor = service.runtime?.view.supervisor;
        if (!supervisor) return;
        const loaded = this.#loaded.find((l) => l.descriptor.service_id === serviceId);
        // Wasm modules run in the node's own worker threads; native drivers and terminals through the spawner.
        const error = spawnerGone && service.hostKind !== 'wasm_worker' ? spawnerGone : await driverError(loaded);
        const before = supervisor.probeError;
        if (!supervisor.noteProbe(error)) return;
        if (error) log.warn({ service_id: serviceId, error }, 'probe: driver cannot be run');
        else if (before) log.info({ service_id: serviceId }, 'probe: driver is runnable again');
      }),
    );
  }

  async #reload(reason: string): Promise<void> {
    if (this.#closed) return;
    const fresh = await this.#o.load(new Map(this.#loaded.map((l) => [l.descriptor.service_id, l.source])));
    const current = { builtins: this.#builtins, loaded: this.#loaded, problems: this.#problems, services: this.registry.list() };
    await this.#apply(
      planReload(current, fresh, (loaded) => this.#o.builder.settings(loaded, fresh.users)),
      reason,
    );
  }

  /** Applies a whole plan at once; the journal's deletions of retired services and the probe follow. */
  async #apply(plan: ReloadPlan, reason: string): Promise<void> {
    const { builder, journal, wasm, log } = this.#o;
    wasm.retain(plan.loaded);
    if (plan.problemsChanged) {
      for (const p of plan.problems) log.error({ file: p.file, json_path: p.json_path, rule: p.rule, reason }, `manifest reload: ${p.message}`);
      // The all-clear, once, as each new set of problems is: whoever acted on the error line sees the fix took.
      if (plan.problems.length === 0) log.info({ reason }, 'manifest reload: no problems any more (ERRORS.json is [])');
    }
    this.#problems = plan.problems;
    const { added, removed, changed } = plan.diff;
    if (added.length + removed.length + changed.length === 0) {
      if (plan.problemsChanged) this.registry.replace(this.registry.list());
      // A driver can appear or lose its executable bit without any manifest change.
      await this.probe();
      // An operator's SIGHUP is answered, so they know it arrived; the periodic rescan stays quiet.
      if (reason === 'SIGHUP') log.info({ reason, added, removed, changed }, 'manifests reloaded: nothing changed');
      return;
    }
    for (const rt of plan.retire) rt.remove();
    this.registry.replace(
      plan.services.map((step) => {
        if (step.kind === 'keep') return step.service;
        if (step.kind === 'create') return builder.fromManifest(step.loaded, step.settings);
        builder.update(step.service, step.loaded, step.settings);
        return step.service;
      }),
    );
    this.#loaded = plan.loaded;
    // Queued in the journal before any write of a runtime built meanwhile for the same service id.
    await Promise.all(
      plan.retire.map((rt) =>
        journal.forget(
          rt.view.serviceId,
          rt.view.jobs.list().map((job) => job.invocationId),
        ),
      ),
    );
    await this.probe();
    log.info({ reason, added, removed, changed }, 'manifests reloaded');
  }
}

/** Why the native driver of `loaded` cannot be run now (missing, not executable, not in PATH); null for anything else. */
async function driverError(loaded: LoadedService | undefined): Promise<string | null> {
  if (!loaded?.executablePath) return null;
  const found = await resolveExecutable(loaded.executablePath, driverSearchPath(loaded.descriptor.runtime.env));
  return 'error' in found ? found.error : null;
}
