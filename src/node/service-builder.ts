import { tmpdir } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { LoadedService } from '../manifest/index.js';
import { problemAt, type Problem, type Schemas } from '../protocol/schemas.js';
import type { ServiceDescriptor } from '../protocol/types.gen.js';
import type { DriverRunner } from '../runtime/driver-runner.js';
import type { InvocationIds } from '../runtime/invocation-id.js';
import { nativeProcAdapter } from '../runtime/native-proc-adapter.js';
import { LiveService } from '../runtime/live-service.js';
import type { ServiceSettings } from '../runtime/service-settings.js';
import { terminalAdapter } from '../runtime/terminal-adapter.js';
import { fsDescriptor, terminalDescriptor } from './builtin-services.js';
import { lookupUser, type UserIds } from './driver-users.js';
import type { ExportSpec } from './export-spec.js';
import { isInside } from './paths.js';
import type { RuntimeJournal } from './runtime-journal.js';
import type { NodeService } from './service-registry.js';
import type { WasmServices } from './wasm-services.js';

/** What building services needs of the node's options. */
export interface BuildOptions {
  nodeId: string;
  /** Absolute. */
  mount: string;
  fsService: boolean;
  exports: ExportSpec[];
  terminalIds: string[];
  /** Drivers without runtime.user run as this user when the node runs as root (SPEC §4). */
  driverUser?: string;
}

export interface ServiceBuilderOptions {
  options: BuildOptions;
  schemas: Schemas;
  wasm: WasmServices;
  runner: DriverRunner;
  ids: InvocationIds;
  journal: RuntimeJournal;
}

/**
 * Builds the node's services: a manifest service's settings (limits, input check, driver adapter
 * with its cwd and user ids), its runtime journaled and restored, and the built-in fs and terminal
 * services. Settings are computed apart from the runtime, so a reload can compute all of them
 * before it changes anything (reload-plan.ts).
 */
export class ServiceBuilder {
  #o: ServiceBuilderOptions;

  constructor(options: ServiceBuilderOptions) {
    this.#o = options;
  }

  /**
   * The built-in services the options ask for: the fs provider, one terminal per --terminal-id (its
   * commands run as the node's --driver-user, like any driver without runtime.user).
   */
  builtins(users: Map<string, UserIds>): NodeService[] {
    const { options } = this.#o;
    const loadedMs = Date.now();
    const builtins: NodeService[] = [];
    if (options.fsService) {
      const descriptor = fsDescriptor(
        options.nodeId,
        options.exports.map((e) => e.name),
      );
      builtins.push({ descriptor, source: BUILTIN_FS, hostKind: 'static_linked', treePath: 'fs', loadedMs });
    }
    for (const terminalId of options.terminalIds) {
      const descriptor = terminalDescriptor(options.nodeId, terminalId);
      const serviceId = descriptor.service_id;
      const { timeout_ms: timeoutMs, kill_grace_ms: killGraceMs } = descriptor.runtime;
      const adapter = terminalAdapter({
        nodeId: options.nodeId,
        serviceId,
        terminalId,
        cwd: driverCwd(undefined, options.mount),
        timeoutMs,
        killGraceMs,
        ...driverIds(options.driverUser, users),
      });
      builtins.push({
        descriptor,
        source: builtinTerminal(terminalId),
        hostKind: 'static_linked',
        treePath: `services/${serviceId}`,
        loadedMs,
        runtime: this.#runtime(serviceId, { limits: limitsOf(descriptor), jobsKeep: descriptor.runtime.jobs_keep, adapter }),
      });
    }
    return builtins;
  }

  /** A manifest service: with a runtime built on `settings` when it is runnable, else catalog-only. */
  fromManifest(loaded: LoadedService, settings: ServiceSettings | undefined): NodeService {
    const { descriptor } = loaded;
    const base = this.#manifestFields(loaded);
    if (!settings) return { ...base, treePath: null };
    return { ...base, treePath: `services/${descriptor.service_id}`, runtime: this.#runtime(descriptor.service_id, settings) };
  }

  /**
   * A changed manifest whose runtime stays (state, counters, config, jobs; SPEC §5), also when its
   * `runtime.type` changed: new descriptor, new settings from the next invocation.
   */
  update(service: NodeService & { runtime: LiveService }, loaded: LoadedService, settings: ServiceSettings): void {
    const { wasm, ...fields } = this.#manifestFields(loaded);
    Object.assign(service, fields, { wasm });
    // Now run by wasm workers: a persistent driver of its native days would otherwise stay up, unused.
    if (settings.adapter.runner) this.#o.runner.restartPersistent?.(loaded.descriptor.service_id, 'the service now runs as wasm');
    service.runtime.update(settings);
  }

  #manifestFields(loaded: LoadedService): Pick<NodeService, 'descriptor' | 'source' | 'hostKind' | 'loadedMs' | 'wasm'> {
    const wasm = this.#o.wasm.hostInfo(loaded);
    return {
      descriptor: loaded.descriptor,
      source: loaded.source,
      hostKind: wasm ? 'wasm_worker' : 'native_process',
      loadedMs: Date.now(),
      ...(wasm ? { wasm } : {}),
    };
  }

  /** A runnable manifest service's settings; `users` is /etc/passwd as read with the manifests. */
  settings(loaded: LoadedService, users: Map<string, UserIds>): ServiceSettings {
    const { descriptor, executablePath } = loaded;
    const { runtime } = descriptor;
    const { options, schemas, wasm } = this.#o;
    const input = descriptor.schema.input;
    const validate = input ? schemas.compile(input) : undefined;
    return {
      limits: limitsOf(descriptor),
      jobsKeep: runtime.jobs_keep,
      ...(validate ? { checkInput: (payload: unknown) => validate(payload, 'payload')[0]?.message.replace(/^payload: /, '') } : {}),
      adapter:
        runtime.type === 'wasm'
          ? wasm.adapter(loaded, options.nodeId)
          : nativeProcAdapter({
              nodeId: options.nodeId,
              serviceId: descriptor.service_id,
              executablePath: executablePath as string,
              args: runtime.args ?? [],
              cwd: driverCwd(manifestCwd(loaded), options.mount),
              env: runtime.env ?? {},
              envPassthrough: runtime.env_passthrough ?? [],
              timeoutMs: runtime.timeout_ms,
              killGraceMs: runtime.kill_grace_ms,
              maxOutputBytes: runtime.max_output_bytes,
              persistent: runtime.mode === 'persistent',
              ...driverIds(runtime.user ?? options.driverUser, users),
            }),
    };
  }

  #runtime(serviceId: string, settings: ServiceSettings): LiveService {
    const { runner, ids, journal } = this.#o;
    const restored = journal.takeRestored(serviceId);
    return new LiveService({ serviceId, runner, ids, settings, persist: journal.persistence(serviceId), ...(restored ? { restored } : {}) });
  }
}

const BUILTIN_FS = 'built-in fs provider';
const builtinTerminal = (terminalId: string): string => `built-in terminal provider (--terminal-id ${terminalId})`;

/** The service ids the built-ins take, so a manifest that claims one is named as a duplicate. */
export function builtinIds(options: Pick<BuildOptions, 'fsService' | 'terminalIds'>): Array<{ service_id: string; source: string }> {
  return [
    ...(options.fsService ? [{ service_id: 'fs', source: BUILTIN_FS }] : []),
    ...options.terminalIds.map((id) => ({ service_id: `terminal-${id}`, source: builtinTerminal(id) })),
  ];
}

/** A manifest service with a live directory: a native driver with its executable, or a checked wasm module. */
export function isRunnable(loaded: LoadedService): boolean {
  const { type } = loaded.descriptor.runtime;
  return type === 'native_proc' ? loaded.executablePath !== undefined : type === 'wasm' && loaded.moduleHash !== undefined;
}

/**
 * Splits services into those whose `runtime.cwd` lies outside the mount and problems naming the
 * others: checked with the manifests, so neither a start nor a reload gets as far as building one.
 */
export function checkCwd(services: LoadedService[], mount: string): { ok: LoadedService[]; problems: Problem[] } {
  const ok: LoadedService[] = [];
  const problems: Problem[] = [];
  for (const service of services) {
    const cwd = manifestCwd(service);
    if (cwd !== undefined && isInside(mount, cwd)) problems.push(problemAt(service.source, '/runtime/cwd', 'cwd', cwdInsideMount(cwd, mount)));
    else ok.push(service);
  }
  return { ok, problems };
}

function manifestCwd({ descriptor, source }: LoadedService): string | undefined {
  return descriptor.runtime.cwd === undefined ? undefined : resolve(dirname(source), descriptor.runtime.cwd);
}

const cwdInsideMount = (cwd: string, mount: string): string => `${cwd} lies inside the mount ${mount}: a driver working there would deadlock the node`;

/** A driver's working directory must lie outside the mount, or its first file access deadlocks us (SPEC §12). */
function driverCwd(wanted: string | undefined, mount: string): string {
  if (wanted !== undefined) {
    // checkCwd has refused such a manifest already; this guards against a caller that skipped it.
    if (isInside(mount, wanted)) throw new TypeError(`runtime.cwd ${cwdInsideMount(wanted, mount)}`);
    return wanted;
  }
  return isInside(mount, tmpdir()) ? '/' : tmpdir();
}

/**
 * Privileges are dropped only when the node runs as root; otherwise drivers run as the node does. An
 * unknown user is refused, never run as root instead (manifests' users are checked at load, as
 * problems; this catches the node's --driver-user for the terminals, which no manifest names).
 */
function driverIds(wanted: string | undefined, users: Map<string, UserIds>): { uid?: number; gid?: number } {
  if (wanted === undefined || process.getuid?.() !== 0) return {};
  const ids = lookupUser(users, wanted);
  if (!ids) throw new Error(`--driver-user ${JSON.stringify(wanted)}: no such user in /etc/passwd (nor a uid[:gid])`);
  return { uid: ids.uid, gid: ids.gid };
}

function limitsOf(descriptor: ServiceDescriptor): ServiceSettings['limits'] {
  const {
    max_concurrency: maxConcurrency,
    max_queue: maxQueue,
    max_input_bytes: maxInputBytes,
    timeout_ms: timeoutMs,
    kill_grace_ms: killGraceMs,
  } = descriptor.runtime;
  return { maxConcurrency, maxQueue, maxInputBytes, timeoutMs, killGraceMs };
}
