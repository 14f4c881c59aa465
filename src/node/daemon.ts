import { mkdir, readFile } from 'node:fs/promises';
import { arch, hostname, platform, tmpdir } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { clearStaleMount, findMount, watchForUnmount } from '../fuse/mount-table.js';
import { mountTree, type MountedTree } from '../fuse/mount.js';
import { diffServices, loadServices, resolveExecutable, type LoadedService } from '../manifest/index.js';
import { loadSchemas, SchemaError, type Problem, type Schemas } from '../protocol/schemas.js';
import type { ServiceDescriptor } from '../protocol/types.gen.js';
import { ACHERON_VERSION } from '../protocol/version.js';
import type { DriverRunner } from '../runtime/driver-runner.js';
import { killOwnedProcesses, ownerOnMount } from '../runtime/driver-owner.js';
import { DriverSpawner } from '../runtime/driver-spawner.js';
import { InvocationIds } from '../runtime/invocation-id.js';
import { nativeProcAdapter } from '../runtime/native-proc-adapter.js';
import { ServiceRuntime, type RuntimeChange, type ServiceSettings } from '../runtime/service-runtime.js';
import { StateJournal, type StateSync } from '../store/state-journal.js';
import type { RuntimeConfig } from '../runtime/supervision.js';
import { terminalAdapter } from '../runtime/terminal-adapter.js';
import { FsError } from '../vfs/errors.js';
import { fsDescriptor, terminalDescriptor } from './builtin-services.js';
import { buildExportsDirectory, checkExports, type ExportSpec } from './fs-provider.js';
import { NodeControlSession } from './control-session.js';
import { checkDriverUsers, lookupUser, readPasswd, type UserIds } from './driver-users.js';
import { MountLock } from '../fuse/mount-lock.js';
import { Dispatcher } from '../vfs/dispatch.js';
import { RelayServer } from './relay-server.js';
import { buildNodeTree } from './node-tree.js';
import { isInside } from './paths.js';
import { json, parseJsonDocument } from '../vfs/json-document.js';
import { groupRestored, jobKey, serviceKey } from './persisted-state.js';
import { ServiceRegistry, type NodeService } from './service-registry.js';
import { WasmServices } from './wasm-services.js';

export interface NodeDaemonOptions {
  nodeId: string;
  mount: string;
  serviceManifests: string[];
  servicesDirs: string[];
  exports: ExportSpec[];
  fsService: boolean;
  terminalIds: string[];
  labels: Record<string, string>;
  shutdownGraceMs: number;
  /** Runtime state is journaled to `<stateFile>.runtime-services.json`. */
  stateFile: string;
  stateSync: StateSync;
  /** The FUSE loop's polling window after a reply (µs; 0 = off); see BusyPoll. */
  busyPollUs?: number;
  /** 0: reload on SIGHUP only. */
  manifestReloadIntervalMs: number;
  /** The control servers, tried in turn (servers of one store); none: standalone. */
  controlUrls?: readonly string[];
  /** Read when the node must join: the token itself or a file holding it. */
  joinToken?: string;
  joinTokenFile?: string;
  reconnectBackoffMs: number;
  reconnectBackoffMaxMs: number;
  /** Drivers without runtime.user run as this user when the node runs as root (SPEC §4). */
  driverUser?: string;
}

/** A manifest problem at start-up: fatal, with every problem named. */
export class ManifestLoadError extends Error {
  readonly problems: Problem[];

  constructor(problems: Problem[]) {
    super(problems.map((p) => p.message).join('\n'));
    this.problems = problems;
  }
}
Object.defineProperty(ManifestLoadError.prototype, 'name', { value: 'ManifestLoadError', enumerable: false, configurable: true, writable: true });

type RestoredServices = ReturnType<typeof groupRestored>['services'];

const CONFIG_SCHEMA = 'https://acheron.dev/schemas/service-config.schema.json';

/**
 * The node daemon: loads services, restores their journaled state, forks the driver spawner
 * (before mounting, SPEC §12), mounts the node tree, reloads manifests while running and stops
 * cleanly on request or when someone unmounts it from outside.
 */
export class NodeDaemon {
  readonly options: NodeDaemonOptions;
  readonly registry = new ServiceRegistry();
  readonly done: Promise<void>;
  #log: Logger;
  #schemas: Schemas;
  #journal: StateJournal;
  #restored: RestoredServices;
  #spawner: DriverSpawner | undefined;
  #ids = new InvocationIds();
  #builtins: NodeService[] = [];
  #loaded: LoadedService[] = [];
  #mounted: MountedTree | undefined;
  #problems: Problem[] = [];
  #startedMs = Date.now();
  #stopping: Promise<void> | undefined;
  #reloading: Promise<void> | undefined;
  #reloadAgain: Promise<void> | undefined;
  #resolveDone!: () => void;
  #timers: NodeJS.Timeout[] = [];
  #stopWatchingMount: () => void = () => undefined;
  #lock: MountLock;
  #control: NodeControlSession | undefined;
  #relay: RelayServer | undefined;
  #users = new Map<string, UserIds>();
  #wasm: WasmServices;

  private constructor(options: NodeDaemonOptions, log: Logger, schemas: Schemas, journal: StateJournal, restored: RestoredServices, lock: MountLock, wasm: WasmServices) {
    this.options = options;
    this.#lock = lock;
    this.#log = log;
    this.#schemas = schemas;
    this.#journal = journal;
    this.#restored = restored;
    this.#wasm = wasm;
    this.done = new Promise((resolveDone) => (this.#resolveDone = resolveDone));
  }

  static async start(options: NodeDaemonOptions, log: Logger): Promise<NodeDaemon> {
    const mount = resolve(options.mount);
    const exports = options.fsService ? await checkExports(options.exports, mount) : [];
    const schemas = await loadSchemas();
    const users = await readPasswd();
    const loadedFirst = await loadServices({ ...loadOptions(options, schemas), reserved: builtinIds(options) });
    const userCheck = checkDriverUsers(loadedFirst.services, users, options.driverUser);
    const wasm = new WasmServices(log.child({ component: 'wasm' }));
    const wasmCheck = await wasm.check(userCheck.ok, mount);
    const first = { services: wasmCheck.ok, problems: [...loadedFirst.problems, ...userCheck.problems, ...wasmCheck.problems] };
    if (first.problems.length > 0) throw new ManifestLoadError(first.problems);

    const lock = await MountLock.acquire(mount);
    let journal: StateJournal;
    let daemon: NodeDaemon;
    try {
      if ((await clearStaleMount(mount)) === 'cleared') log.warn({ mount }, 'cleared a stale mount left by a dead daemon');
      await mkdir(mount, { recursive: true });
      const opened = await StateJournal.open(`${options.stateFile}.runtime-services.json`, { sync: options.stateSync, log: log.child({ component: 'journal' }) });
      journal = opened.journal;
      const grouped = groupRestored(opened.restored.values);
      for (const problem of grouped.problems) log.error({ path: journal.path }, `state journal: ${problem}`);
      daemon = new NodeDaemon({ ...options, mount }, log, schemas, journal, grouped.services, lock, wasm);
      daemon.#users = users;
    } catch (error) {
      await lock.release();
      throw error;
    }
    try {
      // Drivers of a daemon that died here together with its spawner are still running: we hold the
      // mount's lock, so whatever carries this mount's mark is theirs.
      const orphans = await killOwnedProcesses((owner) => ownerOnMount(owner, mount));
      if (orphans > 0) log.warn({ killed: orphans }, 'killed the driver processes a dead daemon on this mount left behind');
      // Forked before the mount exists, so no driver can inherit /dev/fuse.
      daemon.#spawner = await DriverSpawner.start(log, mount);
      daemon.#builtins = daemon.#builtinServices();
      daemon.#loaded = first.services;
      daemon.registry.replace([...daemon.#builtins, ...first.services.map((s) => daemon.#manifestService(s))]);
      await daemon.#forgetAbsent();
      await daemon.#probe();
      const tree = buildNodeTree({
        mountPoint: mount,
        registry: daemon.registry,
        nodeDocument: () => ({ data: json(daemon.nodeDocument()), mtimeMs: daemon.#startedMs }),
        servicesDocument: () => ({ data: json(daemon.servicesDocument()), mtimeMs: daemon.registry.changedMs }),
        errorsDocument: () => ({ data: json(daemon.#problems), mtimeMs: daemon.registry.changedMs }),
        parseConfig: (text, serviceId) => daemon.#parseConfig(text, serviceId),
        ...(options.fsService ? { exports: buildExportsDirectory(exports) } : {}),
      });
      daemon.#mounted = await mountTree(tree, { mountPoint: mount, busyPollUs: options.busyPollUs, log: log.child({ component: 'fuse' }) });
      // WorldFS operations run against the same tree, without FUSE (SPEC §9 Relay).
      daemon.#relay = new RelayServer(new Dispatcher(tree), log.child({ component: 'relay' }));
    } catch (error) {
      await daemon.#wasm.close();
      await daemon.#spawner?.close();
      await journal.close();
      await lock.release();
      throw error;
    }
    daemon.#startTimers();
    daemon.#startControlSession();
    log.info({ node_id: options.nodeId, mount, services: daemon.registry.executableIds().length }, 'node tree is live');
    return daemon;
  }

  nodeDocument(): Record<string, unknown> {
    const states: Record<string, number> = {};
    for (const s of this.servicesDocument()) states[String(s.state)] = (states[String(s.state)] ?? 0) + 1;
    return {
      node_id: this.options.nodeId,
      node_name: hostname(),
      labels: this.options.labels,
      platform: { os: platform(), arch: arch(), runtime_kind: 'node' },
      control: {
        state: this.#control?.state ?? 'standalone',
        url: this.#control?.url ?? null,
        urls: this.options.controlUrls ?? [],
        connected_ms: this.#control?.connectedMs ?? null,
        last_error: this.#control?.lastError ?? null,
      },
      versions: { acheron: ACHERON_VERSION, node: process.version, abi: 'namespace-driver-v1' },
      mount: this.options.mount,
      pid: process.pid,
      started_ms: this.#startedMs,
      services: this.registry.list().length,
      services_by_state: states,
      manifest_errors: this.#problems.length,
    };
  }

  /** SERVICES.json: executable services carry their probed/supervised state (SPEC §5). */
  servicesDocument(): Array<Record<string, unknown>> {
    return this.registry.list().map((s) => ({
      service_id: s.descriptor.service_id,
      kind: s.descriptor.kind,
      state: s.runtime ? s.runtime.noteHealth() : s.descriptor.state,
      path: s.treePath,
    }));
  }

  /**
   * The catalog this node publishes (SPEC §5): descriptors with the live state of executable
   * services overlaid (state, mounts[].state, runtime.supervision_status); no per-invocation counters.
   */
  publishedCatalog(): ServiceDescriptor[] {
    return this.registry.list().map(({ descriptor, runtime: rt }) => {
      if (!rt) return descriptor;
      const state = rt.noteHealth();
      return {
        ...descriptor,
        state,
        mounts: descriptor.mounts.map((m) => ({ ...m, state })) as ServiceDescriptor['mounts'],
        runtime: {
          ...descriptor.runtime,
          supervision_status: {
            state, enabled: rt.enabled, restarts_total: rt.counters.restartsTotal, consecutive_failures: rt.counters.consecutiveFailures,
            backoff_until_ms: rt.cooldownRemainingMs() > 0 ? rt.cooldownUntilMs : null, last_transition_ms: rt.lastTransitionMs,
            last_healthy_ms: rt.lastHealthyMs, last_error: rt.lastError.trim().slice(0, 256),
          },
        },
      };
    });
  }

  /**
   * Re-reads the manifests: added services appear, removed ones disappear, changed ones keep their
   * runtime state; a file that fails validation keeps its previous good version running and its
   * problems go to ERRORS.json and the log. A call during a reload may follow a change that reload
   * read too early, so one more runs after it, shared by every call meanwhile: no SIGHUP is lost.
   */
  reload(reason: string): Promise<void> {
    if (this.#reloading) return (this.#reloadAgain ??= this.#reloading.catch(() => undefined).then(() => {
      this.#reloadAgain = undefined;
      return this.reload(reason);
    }));
    this.#reloading = this.#reload(reason).finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  async #reload(reason: string): Promise<void> {
    if (this.#stopping) return;
    const fresh = await loadServices({ ...loadOptions(this.options, this.#schemas), reserved: builtinIds(this.options) });
    this.#users = await readPasswd();
    const userCheck = checkDriverUsers(fresh.services, this.#users, this.options.driverUser);
    const wasmCheck = await this.#wasm.check(userCheck.ok, this.options.mount);
    const loaded = wasmCheck.ok;
    const problems = [...fresh.problems, ...userCheck.problems, ...wasmCheck.problems];
    const failedFiles = new Set(problems.map((p) => p.file));
    // The previous good version of a service whose manifest now fails keeps running.
    const kept = this.#loaded.filter((s) => failedFiles.has(s.source) && !loaded.some((n) => n.descriptor.service_id === s.descriptor.service_id));
    const next = [...loaded, ...kept];
    const diff = diffServices(this.#loaded, next);
    this.#wasm.retain(next);
    const problemsChanged = JSON.stringify(problems) !== JSON.stringify(this.#problems);
    this.#problems = problems;
    if (problemsChanged) for (const p of problems) this.#log.error({ file: p.file, json_path: p.json_path, rule: p.rule, reason }, `manifest reload: ${p.message}`);
    if (diff.added.length + diff.removed.length + diff.changed.length === 0) {
      if (problemsChanged) this.registry.replace(this.registry.list());
      // A driver can appear or lose its executable bit without any manifest change.
      await this.#probe();
      return;
    }
    const services: NodeService[] = [...this.#builtins];
    for (const loadedService of next) {
      const id = loadedService.descriptor.service_id;
      const current = this.registry.get(id);
      if (current && !diff.changed.includes(id)) services.push(current);
      else if (current?.runtime && isRunnable(loadedService) && loadedService.descriptor.runtime.type === current.descriptor.runtime.type) {
        // Changed in place: same runtime (state, counters, jobs), new settings.
        Object.assign(current, { descriptor: loadedService.descriptor, source: loadedService.source, loadedMs: Date.now(), wasm: this.#wasm.hostInfo(loadedService) });
        current.runtime.update(this.#settings(loadedService));
        services.push(current);
      } else {
        if (current?.runtime) await this.#retire(current.runtime);
        services.push(this.#manifestService(loadedService));
      }
    }
    for (const id of diff.removed) {
      const gone = this.registry.get(id);
      if (gone?.runtime) await this.#retire(gone.runtime);
    }
    this.#loaded = next;
    this.registry.replace(services);
    await this.#probe();
    this.#log.info({ reason, added: diff.added, removed: diff.removed, changed: diff.changed }, 'manifests reloaded');
  }

  /** Stops taking invocations, waits up to the grace period, kills the rest, unmounts. Idempotent. */
  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info({ reason }, 'stopping');
      for (const timer of this.#timers) clearInterval(timer);
      this.#stopWatchingMount();
      await this.#reloading?.catch(() => undefined);
      const runtimes = this.registry.list().flatMap((s) => (s.runtime ? [s.runtime] : []));
      await Promise.all(runtimes.map((rt) => rt.drain(this.options.shutdownGraceMs)));
      await this.#wasm.close();
      await this.#spawner?.close();
      await this.#control?.stop();
      this.#relay?.close();
      await this.#journal.close().catch((error: unknown) => this.#log.error({ err: error }, 'state journal: final flush failed'));
      // After an external umount there is nothing left to unmount (fusermount would fail).
      if (await findMount(this.options.mount)) await this.#mounted?.unmount();
      await this.#lock.release();
      this.#log.info('stopped');
      this.#resolveDone();
    })();
    return this.#stopping;
  }

  #startTimers(): void {
    // fuse-native keeps serving after an external `umount`: notice it and exit (SPEC §1).
    this.#stopWatchingMount = watchForUnmount(this.options.mount, () => void this.stop('the mount was unmounted from outside'));
    if (this.options.manifestReloadIntervalMs > 0) {
      this.#timers.push(setInterval(() => {
        void this.reload('interval').catch((error: unknown) => this.#log.error({ err: error }, 'manifest reload failed'));
      }, this.options.manifestReloadIntervalMs));
    }
  }

  #startControlSession(): void {
    const { options } = this;
    if (!options.controlUrls?.length) return;
    this.#control = new NodeControlSession({
      urls: options.controlUrls,
      nodeId: options.nodeId,
      stateFile: options.stateFile,
      joinToken: async () => options.joinToken ?? (options.joinTokenFile ? (await readFile(options.joinTokenFile, 'utf8')).trim() : undefined),
      catalog: () => this.publishedCatalog(),
      node: { node_name: hostname(), platform: { os: platform(), arch: arch(), runtime_kind: 'node' }, labels: options.labels },
      backoffMs: options.reconnectBackoffMs,
      backoffMaxMs: options.reconnectBackoffMaxMs,
      log: this.#log.child({ component: 'control' }),
      ...(this.#relay ? { relay: this.#relay } : {}),
    });
    this.#control.start();
  }

  /** Checks every executable service the way execution resolves it; a change is logged once. */
  async #probe(): Promise<void> {
    await Promise.all(this.registry.list().map(async (service) => {
      const rt = service.runtime;
      const loaded = this.#loaded.find((l) => l.descriptor.service_id === service.descriptor.service_id);
      if (!rt || !loaded?.executablePath) return;
      const found = await resolveExecutable(loaded.executablePath, process.env.PATH);
      const error = 'error' in found ? found.error : null;
      if (error !== rt.probeError) {
        if (error) this.#log.warn({ service_id: rt.serviceId, error }, 'probe: driver cannot be run');
        else if (rt.probeError) this.#log.info({ service_id: rt.serviceId }, 'probe: driver is runnable again');
        rt.probeError = error;
        rt.noteHealth();
      }
    }));
  }

  #parseConfig(text: string, serviceId: string): RuntimeConfig {
    let value: unknown;
    try {
      value = parseJsonDocument(text, `services/${serviceId}/config.json`);
    } catch (error) {
      this.#log.warn({ service_id: serviceId }, (error as Error).message);
      throw error;
    }
    try {
      return this.#schemas.validate<RuntimeConfig>(CONFIG_SCHEMA, value, `services/${serviceId}/config.json`);
    } catch (error) {
      if (!(error instanceof SchemaError)) throw error;
      // The writer only sees EINVAL: the log says which field.
      this.#log.warn({ service_id: serviceId, problems: error.problems.map((p) => p.message) }, 'config.json rejected');
      throw new FsError('EINVAL', error.message, { cause: error });
    }
  }

  #persistence(serviceId: string, rt: () => ServiceRuntime): (change: RuntimeChange) => Promise<void> {
    const write = (change: RuntimeChange): Promise<void> => {
      switch (change.kind) {
        case 'state':
          // The state as it is when written: with --state-sync batch once per batch, not per change.
          return this.#journal.setLatest(serviceKey(serviceId), () => rt().snapshot());
        case 'job':
          return this.#journal.set(jobKey(serviceId, change.job.invocationId), change.job);
        case 'job-removed':
          return this.#journal.delete(jobKey(serviceId, change.invocationId));
      }
    };
    // Some writes nobody waits for: a failure (a full disk) must still reach the log.
    return (change) => write(change).catch((error: unknown) => {
      this.#log.error({ err: error, service_id: serviceId, change: change.kind }, 'state journal: write failed; this change is not durable');
      throw error;
    });
  }

  #newRuntime(serviceId: string, settings: ServiceSettings): ServiceRuntime {
    const rt: ServiceRuntime = new ServiceRuntime({
      serviceId, runner: this.#spawner as DriverRunner, ids: this.#ids, settings,
      persist: this.#persistence(serviceId, () => rt),
    });
    const restored = this.#restored.get(serviceId);
    if (restored) rt.restore(restored.state, restored.jobs);
    this.#restored.delete(serviceId);
    return rt;
  }

  /** A removed (or replaced) service: open handles get ENOENT, its journal entries go. */
  async #retire(rt: ServiceRuntime): Promise<void> {
    rt.remove();
    await Promise.all([this.#journal.delete(serviceKey(rt.serviceId)), ...rt.jobs().map((job) => this.#journal.delete(jobKey(rt.serviceId, job.invocationId)))]);
  }

  /** Journal entries of services that are no longer loaded are dropped at start-up. */
  async #forgetAbsent(): Promise<void> {
    for (const [serviceId, entry] of this.#restored) {
      await this.#journal.delete(serviceKey(serviceId));
      for (const job of entry.jobs) await this.#journal.delete(jobKey(serviceId, job.invocationId));
    }
    this.#restored.clear();
  }

  #builtinServices(): NodeService[] {
    const { options } = this;
    const loadedMs = Date.now();
    const builtins: NodeService[] = [];
    if (options.fsService) {
      const descriptor = fsDescriptor(options.nodeId, options.exports.map((e) => e.name));
      builtins.push({ descriptor, source: 'built-in fs provider', hostKind: 'static_linked', treePath: 'fs', loadedMs });
    }
    for (const terminalId of options.terminalIds) {
      const descriptor = terminalDescriptor(options.nodeId, terminalId);
      const serviceId = descriptor.service_id;
      builtins.push({
        descriptor, source: `built-in terminal provider (--terminal-id ${terminalId})`, hostKind: 'static_linked', treePath: `services/${serviceId}`, loadedMs,
        runtime: this.#newRuntime(serviceId, {
          limits: limitsOf(descriptor), jobsKeep: descriptor.runtime.jobs_keep,
          adapter: terminalAdapter({ nodeId: options.nodeId, serviceId, terminalId, cwd: driverCwd(undefined, options.mount), timeoutMs: descriptor.runtime.timeout_ms, killGraceMs: descriptor.runtime.kill_grace_ms }),
        }),
      });
    }
    return builtins;
  }

  #manifestService(loaded: LoadedService): NodeService {
    const { descriptor, source } = loaded;
    const serviceId = descriptor.service_id;
    const wasm = this.#wasm.hostInfo(loaded);
    const base = { descriptor, source, hostKind: wasm ? 'wasm_worker' as const : 'native_process' as const, loadedMs: Date.now(), ...(wasm ? { wasm } : {}) };
    if (!isRunnable(loaded)) return { ...base, treePath: null };
    return { ...base, treePath: `services/${serviceId}`, runtime: this.#newRuntime(serviceId, this.#settings(loaded)) };
  }

  /** Privileges are dropped only when the node runs as root; otherwise drivers run as the node does. */
  #driverIds(serviceUser: string | undefined): { uid?: number; gid?: number } {
    const wanted = serviceUser ?? this.options.driverUser;
    if (wanted === undefined || process.getuid?.() !== 0) return {};
    const ids = lookupUser(this.#users, wanted);
    return ids ? { uid: ids.uid, gid: ids.gid } : {};
  }

  #settings(loaded: LoadedService): ServiceSettings {
    const { descriptor, source, executablePath } = loaded;
    const { runtime } = descriptor;
    const input = descriptor.schema.input;
    const nodeId = this.options.nodeId;
    const validate = input ? this.#schemas.compile(input) : undefined;
    const cwd = runtime.cwd === undefined ? undefined : resolve(dirname(source), runtime.cwd);
    return {
      limits: limitsOf(descriptor),
      jobsKeep: runtime.jobs_keep,
      ...(validate ? { checkInput: (payload: unknown) => validate(payload, 'payload')[0]?.message.replace(/^payload: /, '') } : {}),
      adapter: runtime.type === 'wasm' ? this.#wasm.adapter(loaded, nodeId) : nativeProcAdapter({
        nodeId, serviceId: descriptor.service_id, executablePath: executablePath as string, args: runtime.args ?? [],
        cwd: driverCwd(cwd, this.options.mount), env: runtime.env ?? {}, envPassthrough: runtime.env_passthrough ?? [],
        timeoutMs: runtime.timeout_ms, killGraceMs: runtime.kill_grace_ms, maxOutputBytes: runtime.max_output_bytes,
        persistent: runtime.mode === 'persistent',
        ...this.#driverIds(runtime.user),
      }),
    };
  }
}

function loadOptions(options: NodeDaemonOptions, schemas: Schemas) {
  return { manifestFiles: options.serviceManifests, servicesDirs: options.servicesDirs, nodeId: options.nodeId, schemas };
}

function builtinIds(options: NodeDaemonOptions): Array<{ service_id: string; source: string }> {
  return [
    ...(options.fsService ? [{ service_id: 'fs', source: 'built-in fs provider' }] : []),
    ...options.terminalIds.map((id) => ({ service_id: `terminal-${id}`, source: `built-in terminal provider (--terminal-id ${id})` })),
  ];
}

/** A manifest service with a live directory: a native driver with its executable, or a checked wasm module. */
function isRunnable(loaded: LoadedService): boolean {
  const { type } = loaded.descriptor.runtime;
  return type === 'native_proc' ? loaded.executablePath !== undefined : type === 'wasm' && loaded.moduleHash !== undefined;
}

function limitsOf(descriptor: ServiceDescriptor): ServiceSettings['limits'] {
  const { max_concurrency: maxConcurrency, max_queue: maxQueue, max_input_bytes: maxInputBytes } = descriptor.runtime;
  return { maxConcurrency, maxQueue, maxInputBytes };
}

/** A driver's working directory must lie outside the mount, or its first file access deadlocks us (SPEC §12). */
function driverCwd(wanted: string | undefined, mount: string): string {
  const inside = (path: string): boolean => isInside(mount, path);
  if (wanted !== undefined) {
    if (inside(wanted)) throw new TypeError(`runtime.cwd ${wanted} lies inside the mount ${mount}`);
    return wanted;
  }
  return inside(tmpdir()) ? '/' : tmpdir();
}
