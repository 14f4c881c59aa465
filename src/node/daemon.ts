import { mkdir } from 'node:fs/promises';
import { arch, hostname, platform, tmpdir } from 'node:os';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { Logger } from 'pino';
import { clearStaleMount, findMount } from '../fuse/mount-table.js';
import { mountTree, type MountedTree } from '../fuse/mount.js';
import { loadServices, type LoadedService } from '../manifest/index.js';
import { loadSchemas, type Problem, type Schemas } from '../protocol/schemas.js';
import { DriverSpawner } from '../runtime/driver-spawner.js';
import { InvocationIds } from '../runtime/invocation-id.js';
import { nativeProcAdapter } from '../runtime/native-proc-adapter.js';
import { ServiceRuntime } from '../runtime/service-runtime.js';
import { terminalAdapter } from '../runtime/terminal-adapter.js';
import type { DriverRunner } from '../runtime/driver-runner.js';
import { fsDescriptor, terminalDescriptor } from './builtin-services.js';
import { buildExportsDirectory, checkExports, type ExportSpec } from './fs-provider.js';
import { buildNodeTree } from './node-tree.js';
import { ServiceRegistry, type NodeService } from './service-registry.js';
import { ACHERON_VERSION } from '../protocol/version.js';

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
  controlUrl?: string;
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

const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';

/**
 * The node daemon: loads services, forks the driver spawner (before mounting, SPEC §12), mounts the
 * node tree and stops cleanly on request or when someone unmounts it from outside.
 */
export class NodeDaemon {
  readonly options: NodeDaemonOptions;
  readonly registry = new ServiceRegistry();
  readonly done: Promise<void>;
  #log: Logger;
  #spawner: DriverSpawner;
  #mounted: MountedTree | undefined;
  #problems: Problem[] = [];
  #startedMs = Date.now();
  #stopping: Promise<void> | undefined;
  #resolveDone!: () => void;
  #watchTimer: NodeJS.Timeout | undefined;

  private constructor(options: NodeDaemonOptions, log: Logger, spawner: DriverSpawner) {
    this.options = options;
    this.#log = log;
    this.#spawner = spawner;
    this.done = new Promise((resolveDone) => (this.#resolveDone = resolveDone));
  }

  static async start(options: NodeDaemonOptions, log: Logger): Promise<NodeDaemon> {
    const mount = resolve(options.mount);
    const exports = options.fsService ? await checkExports(options.exports, mount) : [];
    const schemas = await loadSchemas();
    const builtins = builtinServices(options, exports);
    const { services, problems } = await loadServices({
      manifestFiles: options.serviceManifests,
      servicesDirs: options.servicesDirs,
      nodeId: options.nodeId,
      reserved: builtins.map((b) => ({ service_id: b.descriptor.service_id, source: b.source })),
      schemas,
    });
    if (problems.length > 0) throw new ManifestLoadError(problems);

    if ((await clearStaleMount(mount)) === 'cleared') log.warn({ mount }, 'cleared a stale mount left by a dead daemon');
    await mkdir(mount, { recursive: true });
    // Forked before the mount exists, so no driver can inherit /dev/fuse.
    const spawner = await DriverSpawner.start(log);
    const daemon = new NodeDaemon({ ...options, mount }, log, spawner);
    try {
      const ids = new InvocationIds();
      daemon.registry.replace([
        ...builtins.map((b) => b.bind(spawner, ids)),
        ...services.map((s) => manifestService(s, { nodeId: options.nodeId, mount, runner: spawner, ids, schemas })),
      ]);
      const tree = buildNodeTree({
        mountPoint: mount,
        registry: daemon.registry,
        nodeDocument: () => ({ data: json(daemon.nodeDocument()), mtimeMs: daemon.#startedMs }),
        servicesDocument: () => ({ data: json(daemon.servicesDocument()), mtimeMs: daemon.registry.changedMs }),
        errorsDocument: () => ({ data: json(daemon.#problems), mtimeMs: daemon.registry.changedMs }),
        ...(options.fsService ? { exports: buildExportsDirectory(exports) } : {}),
      });
      daemon.#mounted = await mountTree(tree, { mountPoint: mount, log: log.child({ component: 'fuse' }) });
    } catch (error) {
      await spawner.close();
      throw error;
    }
    daemon.#watchExternalUnmount();
    log.info({ node_id: options.nodeId, mount, services: daemon.registry.executableIds().length }, 'node tree is live');
    return daemon;
  }

  nodeDocument(): Record<string, unknown> {
    return {
      node_id: this.options.nodeId,
      node_name: hostname(),
      labels: this.options.labels,
      platform: { os: platform(), arch: arch(), runtime_kind: 'node' },
      control: { state: this.options.controlUrl ? 'disconnected' : 'standalone', url: this.options.controlUrl ?? null },
      versions: { acheron: ACHERON_VERSION, node: process.version, abi: 'namespace-driver-v1' },
      mount: this.options.mount,
      pid: process.pid,
      started_ms: this.#startedMs,
      services: this.registry.list().length,
    };
  }

  servicesDocument(): Array<Record<string, unknown>> {
    return this.registry.list().map((s) => ({ service_id: s.descriptor.service_id, kind: s.descriptor.kind, state: s.descriptor.state, path: s.treePath }));
  }

  /** Stops taking invocations, waits up to the grace period, kills the rest, unmounts. Idempotent. */
  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info({ reason }, 'stopping');
      clearInterval(this.#watchTimer);
      const runtimes = this.registry.list().flatMap((s) => (s.runtime ? [s.runtime] : []));
      await Promise.all(runtimes.map((rt) => rt.drain(this.options.shutdownGraceMs)));
      await this.#spawner.close();
      // After an external umount there is nothing left to unmount (fusermount would fail).
      if (await findMount(this.options.mount)) await this.#mounted?.unmount();
      this.#log.info('stopped');
      this.#resolveDone();
    })();
    return this.#stopping;
  }

  // fuse-native keeps serving after an external `umount`: notice it and exit (SPEC §1).
  #watchExternalUnmount(): void {
    this.#watchTimer = setInterval(() => {
      void findMount(this.options.mount).then((entry) => {
        if (!entry) void this.stop('the mount was unmounted from outside');
      }, () => undefined);
    }, 1000);
  }
}

interface Builtin {
  descriptor: NodeService['descriptor'];
  source: string;
  bind(runner: DriverRunner, ids: InvocationIds): NodeService;
}

function builtinServices(options: NodeDaemonOptions, exports: ExportSpec[]): Builtin[] {
  const builtins: Builtin[] = [];
  if (options.fsService) {
    const descriptor = fsDescriptor(options.nodeId, exports.map((e) => e.name));
    builtins.push({ descriptor, source: 'built-in fs provider', bind: () => ({ descriptor, source: 'built-in fs provider', hostKind: 'static_linked', treePath: 'fs' }) });
  }
  for (const terminalId of options.terminalIds) {
    const descriptor = terminalDescriptor(options.nodeId, terminalId);
    const source = `built-in terminal provider (--terminal-id ${terminalId})`;
    builtins.push({
      descriptor,
      source,
      bind: (runner, ids) => ({
        descriptor, source, hostKind: 'static_linked', treePath: `services/${descriptor.service_id}`,
        runtime: new ServiceRuntime({
          serviceId: descriptor.service_id, runner, ids, limits: limitsOf(descriptor),
          adapter: terminalAdapter({ nodeId: options.nodeId, serviceId: descriptor.service_id, terminalId, cwd: driverCwd(undefined, options.mount), timeoutMs: descriptor.runtime.timeout_ms, killGraceMs: descriptor.runtime.kill_grace_ms }),
        }),
      }),
    });
  }
  return builtins;
}

function manifestService(loaded: LoadedService, context: { nodeId: string; mount: string; runner: DriverRunner; ids: InvocationIds; schemas: Schemas }): NodeService {
  const { descriptor, source, executablePath } = loaded;
  const serviceId = descriptor.service_id;
  if (descriptor.runtime.type !== 'native_proc' || executablePath === undefined) {
    return { descriptor, source, hostKind: 'native_process', treePath: null };
  }
  const { runtime } = descriptor;
  const input = descriptor.schema.input;
  const validate = input ? context.schemas.compile(input) : undefined;
  const cwd = runtime.cwd === undefined ? undefined : resolve(dirname(source), runtime.cwd);
  return {
    descriptor, source, hostKind: 'native_process', treePath: `services/${serviceId}`,
    runtime: new ServiceRuntime({
      serviceId, runner: context.runner, ids: context.ids, limits: limitsOf(descriptor),
      ...(validate ? { checkInput: (payload: unknown) => validate(payload, 'payload')[0]?.message.replace(/^payload: /, '') } : {}),
      adapter: nativeProcAdapter({
        nodeId: context.nodeId, serviceId, executablePath, args: runtime.args ?? [], cwd: driverCwd(cwd, context.mount),
        env: runtime.env ?? {}, envPassthrough: runtime.env_passthrough ?? [], timeoutMs: runtime.timeout_ms,
        killGraceMs: runtime.kill_grace_ms, maxOutputBytes: runtime.max_output_bytes,
      }),
    }),
  };
}

function limitsOf(descriptor: NodeService['descriptor']): { maxConcurrency: number; maxQueue: number; maxInputBytes: number } {
  const { max_concurrency: maxConcurrency, max_queue: maxQueue, max_input_bytes: maxInputBytes } = descriptor.runtime;
  return { maxConcurrency, maxQueue, maxInputBytes };
}

/** A driver's working directory must lie outside the mount, or its first file access deadlocks us (SPEC §12). */
function driverCwd(wanted: string | undefined, mount: string): string {
  const inside = (path: string): boolean => {
    const rel = relative(mount, path);
    return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
  };
  if (wanted !== undefined) {
    if (inside(wanted)) throw new TypeError(`runtime.cwd ${wanted} lies inside the mount ${mount}`);
    return wanted;
  }
  return inside(tmpdir()) ? '/' : tmpdir();
}
