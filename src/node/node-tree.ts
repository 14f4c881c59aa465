import { configFileOf, INVOKE_FILE, JOB_FILES, SERVICE_FILES, type JobFileKind, type ServiceFileKind } from '../protocol/service-files.js';
import type { Job } from '../runtime/job.js';
import type { RuntimeConfig } from '../runtime/supervision.js';
import type { LiveService } from '../runtime/live-service.js';
import { commitFile } from '../vfs/commit-file.js';
import { directory, tableDirectory, tableFromPaths } from '../vfs/directory.js';
import { FsError } from '../errors/errno.js';
import { ctlFile, snapshotFile, type Rendered } from '../vfs/files.js';
import type { VNode } from '../vfs/node.js';
import {
  renderConfig,
  renderHealth,
  renderHost,
  renderJobStatus,
  renderMetrics,
  renderOutcome,
  renderReadme,
  renderResult,
  renderSchema,
  renderStatus,
  renderTemplate,
} from './render.js';
import type { NodeService, ServiceRegistry } from './service-registry.js';

export interface NodeTreeSources {
  mountPoint: string;
  registry: ServiceRegistry;
  /** NODE.json, SERVICES.json and ERRORS.json documents, rendered on every open. */
  nodeDocument(): Rendered;
  servicesDocument(): Rendered;
  errorsDocument(): Rendered;
  /** The `fs/` directory of the built-in fs provider, when enabled. */
  exports?: VNode;
  /** Checks a config.json document; throws FsError('EINVAL') naming the field. */
  parseConfig(text: string, serviceId: string): RuntimeConfig;
  /** Logs a refused config.json (invalid, too big, a hole), once per refusal. */
  configRefused(error: FsError, serviceId: string): void;
}

/**
 * The node tree (SPEC §3): the service file table bound to VFS blocks. `services/` is computed from
 * the registry on every lookup, so reloads show at once; a service's directory is built once per
 * runtime and answers ENOENT after the service is removed.
 */
export function buildNodeTree(sources: NodeTreeSources): VNode {
  const serviceDirs = new WeakMap<LiveService, VNode>();
  const serviceDir = (service: NodeService & { runtime: LiveService }): VNode => {
    let dir = serviceDirs.get(service.runtime);
    if (!dir) {
      dir = buildServiceDirectory(service, sources);
      serviceDirs.set(service.runtime, dir);
    }
    return dir;
  };
  const services = directory({
    list: () => sources.registry.executableIds(),
    get: (name) => {
      const service = sources.registry.get(name);
      return service?.runtime ? serviceDir(service as NodeService & { runtime: LiveService }) : undefined;
    },
    mtimeMs: () => sources.registry.changedMs,
  });
  return tableDirectory(
    [
      ['NODE.json', snapshotFile(sources.nodeDocument)],
      ['SERVICES.json', snapshotFile(sources.servicesDocument)],
      ['ERRORS.json', snapshotFile(sources.errorsDocument)],
      ['services', services],
      ...(sources.exports ? [['fs', sources.exports] as const] : []),
    ],
    () => sources.registry.changedMs,
  );
}

export function buildServiceDirectory(
  service: NodeService & { runtime: LiveService },
  sources: Pick<NodeTreeSources, 'mountPoint' | 'parseConfig' | 'configRefused'>,
): VNode {
  const rt = service.runtime;
  const { view } = rt;
  // Read at every use: a reload replaces the descriptor while the runtime (and this directory) stay.
  const descriptor = () => service.descriptor;
  const alive = (): void => {
    if (view.isRemoved) throw new FsError('ENOENT', `service ${view.serviceId} has been removed`);
  };
  const live =
    (render: () => Buffer | string, changedMs: () => number = () => view.changedMs) =>
    (): Rendered => {
      alive();
      return { data: render(), mtimeMs: changedMs() };
    };
  const control = (action: () => Promise<unknown> | unknown) =>
    ctlFile(
      async () => {
        alive();
        await action();
      },
      () => view.state.lastControlMs ?? service.loadedMs,
    );
  /** A document of the service: rendered at open, and ENOENT at a read once the service is removed. */
  const document = (render: () => Buffer | string, changedMs?: () => number) => snapshotFile(live(render, changedMs), 0o444, alive);
  const loadedMs = () => service.loadedMs;
  const fixed = (render: () => string) => document(render, loadedMs);

  /** A refused config.json: recorded (last_error.txt, status.json) and logged, as node-tree.md says. */
  const refuseConfig = (error: FsError): void => {
    rt.recordRejection(error);
    sources.configRefused(error, view.serviceId);
  };

  const files: Record<ServiceFileKind, VNode> = {
    readme: fixed(() => renderReadme(descriptor(), sources.mountPoint)),
    schema: fixed(() => renderSchema(descriptor())),
    template: fixed(() => renderTemplate(descriptor())),
    host: document(
      () => renderHost(descriptor(), service.hostKind, service.wasm, view.state.config),
      () => Math.max(service.loadedMs, view.state.lastControlMs ?? 0),
    ),
    invoke: commitFile({
      file: INVOKE_FILE,
      get maxBytes() {
        return view.maxInputBytes;
      },
      limitName: 'runtime.max_input_bytes',
      admit: () => rt.admit(),
      alive,
      commit: async (payload) => renderOutcome(view, descriptor(), await rt.invoke(payload)),
      record: (error) => rt.recordRejection(error),
      changedMs: () => view.changedMs,
    }),
    reset: control(() => rt.control('reset')),
    enable: control(() => rt.control('enable')),
    disable: control(() => rt.control('disable')),
    restart: control(() => rt.control('restart')),
    cancel: control(() => rt.cancel()),
    config: commitFile({
      // As the parser names it, so every refusal reads `<errno>: services/<id>/config.json: <why>`.
      file: configFileOf(view.serviceId),
      maxBytes: CONFIG_MAX_BYTES,
      limitName: 'the config.json limit',
      admit: alive,
      alive,
      commit: async (payload) => {
        alive();
        let config: RuntimeConfig;
        try {
          config = sources.parseConfig(payload.toString('utf8'), view.serviceId);
        } catch (error) {
          // Found at the writer's close() or, for an unfinished prefix, at release, where nobody
          // hears it (bash drops close errors too): last_error.txt and status.json say it, as for invokes.
          if (error instanceof FsError) refuseConfig(error);
          throw error;
        }
        await rt.setConfig(config);
        return renderConfig(view);
      },
      record: refuseConfig,
      changedMs: () => view.state.lastControlMs ?? service.loadedMs,
      current: () => renderConfig(view),
    }),
    result: document(
      () => renderResult(view),
      () => view.state.resultMs,
    ),
    status: document(() => renderStatus(view, descriptor())),
    last_error: document(
      () => view.state.lastError,
      () => view.state.lastErrorMs,
    ),
    metrics: document(() => renderMetrics(view)),
    health: document(() => renderHealth(view)),
    jobs: jobsDirectory(rt, alive),
  };
  const changedMs = (): number => view.changedMs;
  return tableDirectory(
    tableFromPaths(
      SERVICE_FILES.map((f) => [f.path, files[f.kind]] as const),
      changedMs,
    ),
    changedMs,
  );
}

const CONFIG_MAX_BYTES = 64 * 1024;

/** jobs/<invocation_id>/: computed from the runtime on every lookup; a pruned job is gone (ENOENT). */
function jobsDirectory(rt: LiveService, alive: () => void): VNode {
  const { view } = rt;
  const dirs = new WeakMap<Job, VNode>();
  const jobDir = (job: Job): VNode => {
    const changed = () => job.progress.finishedMs ?? job.progress.startedMs ?? job.queuedMs;
    const file = (render: () => Buffer | string) =>
      snapshotFile(
        () => {
          alive();
          return { data: render(), mtimeMs: changed() };
        },
        0o444,
        alive,
      );
    const files: Record<JobFileKind, VNode> = {
      request: file(() => job.request),
      result: file(() => job.progress.result ?? ''),
      status: file(() => renderJobStatus(view, job)),
      stderr: file(() => job.progress.stderr),
      cancel: ctlFile(async () => {
        alive();
        rt.cancel(job.invocationId);
      }, changed),
    };
    return tableDirectory(
      JOB_FILES.map((f) => [f.path, files[f.kind]] as const),
      changed,
    );
  };
  return directory({
    list: () => view.jobs.list().map((job) => job.invocationId),
    get: (name) => {
      const job = view.jobs.get(name);
      if (!job) return undefined;
      let dir = dirs.get(job);
      if (!dir) dirs.set(job, (dir = jobDir(job)));
      return dir;
    },
    mtimeMs: () => view.changedMs,
  });
}
