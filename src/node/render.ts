/**
 * One render function per tree file: the only place where camelCase runtime state meets the
 * snake_case documents users read (SPEC §3, §5).
 */
import { arch, hostname, platform } from 'node:os';
import { SERVICE_FILES } from '../protocol/service-files.js';
import type {
  HostDocument,
  HostKind,
  InvokeFailure,
  JobStatus,
  NodeDocument,
  NodeLabels,
  NodePlatform,
  ServiceDescriptor,
  ServiceHealth,
  ServiceListEntry,
  ServiceMetrics,
  ServiceStatus,
  WasmHost,
} from '../protocol/types.gen.js';
import { ACHERON_VERSION } from '../protocol/version.js';
import type { SpawnerExit } from '../runtime/driver-spawner.js';
import type { Job } from '../runtime/job.js';
import type { InvokeOutcome } from '../runtime/live-service.js';
import type { ServiceView } from '../runtime/service-view.js';
import type { RuntimeConfig } from '../runtime/supervision.js';
import { json } from '../errors/json-document.js';
import { problemOfSource } from '../manifest/index.js';
import type { Problem } from '../protocol/schemas.js';
import type { ControlState } from './control-session.js';
import type { NodeService } from './service-registry.js';

export const LAST_ERROR_SUMMARY_CHARS = 256;

/** How the node names itself to the control server and in NODE.json. */
export function nodeIdentity(labels: NodeLabels): { node_name: string; platform: NodePlatform; labels: NodeLabels } {
  return { node_name: hostname(), platform: { os: platform(), arch: arch(), runtime_kind: 'node' }, labels };
}

export interface NodeFacts {
  nodeId: string;
  labels: NodeLabels;
  mount: string;
  startedMs: number;
  /** The control servers, tried in turn; none: standalone. */
  controlUrls: readonly string[];
  /** The control session, when --control-url runs one. */
  control: { state: ControlState; url: string | null; connectedMs: number | null; lastError: string | null } | undefined;
  /** Set once the driver spawner has exited. */
  driverSpawnerExit: SpawnerExit | undefined;
  services: readonly NodeService[];
  manifestErrors: number;
}

/** NODE.json (SPEC §3; docs/schemas/node-tree.schema.json). */
export function nodeDocument(node: NodeFacts): NodeDocument {
  const states: Record<string, number> = {};
  for (const s of servicesDocument(node.services)) states[s.state] = (states[s.state] ?? 0) + 1;
  const { node_name, platform: nodePlatform, labels } = nodeIdentity(node.labels);
  return {
    node_id: node.nodeId,
    node_name,
    labels,
    platform: nodePlatform,
    control: {
      state: node.control?.state ?? 'standalone',
      url: node.control?.url ?? null,
      urls: [...node.controlUrls],
      connected_ms: node.control?.connectedMs ?? null,
      last_error: node.control?.lastError ?? null,
    },
    driver_spawner: node.driverSpawnerExit
      ? { state: 'exited', exited_ms: node.driverSpawnerExit.exitedMs, error: node.driverSpawnerExit.reason }
      : { state: 'running', exited_ms: null, error: null },
    versions: { acheron: ACHERON_VERSION, node: process.version, abi: 'namespace-driver-v1' },
    mount: node.mount,
    pid: process.pid,
    started_ms: node.startedMs,
    services: node.services.length,
    services_by_state: states,
    manifest_errors: node.manifestErrors,
  };
}

/** SERVICES.json: executable services carry their probed/supervised state (SPEC §5). */
export function servicesDocument(services: readonly NodeService[]): ServiceListEntry[] {
  return services.map((s) => ({
    service_id: s.descriptor.service_id,
    kind: s.descriptor.kind,
    state: s.runtime ? s.runtime.view.supervisor.noteHealth() : s.descriptor.state,
    path: s.treePath,
  }));
}

/**
 * The catalog this node publishes (SPEC §5): descriptors with the live state of executable
 * services overlaid (state, mounts[].state, runtime.supervision_status); no per-invocation counters.
 * A service whose manifest the last reload found invalid (`problems`, SPEC §2) says so in
 * `supervision_status.manifest_error` while its previous good version runs: the changed catalog
 * is the catalog event of that problem, and the fix another.
 */
export function publishedCatalog(services: readonly NodeService[], problems: readonly Problem[] = []): ServiceDescriptor[] {
  return services.map(({ descriptor, runtime, source }) => {
    if (!runtime) return descriptor;
    const { state: s, supervisor } = runtime.view;
    const state = supervisor.noteHealth();
    const problem = problemOfSource(problems, source);
    return {
      ...descriptor,
      state,
      mounts: descriptor.mounts.map((m) => ({ ...m, state })) as ServiceDescriptor['mounts'],
      runtime: {
        ...descriptor.runtime,
        supervision_status: {
          state,
          enabled: s.enabled,
          restarts_total: s.counters.restartsTotal,
          consecutive_failures: s.counters.consecutiveFailures,
          backoff_until_ms: supervisor.cooldownRemainingMs() > 0 ? s.cooldownUntilMs : null,
          last_transition_ms: s.lastTransitionMs,
          last_healthy_ms: s.lastHealthyMs,
          last_error: s.lastError.trim().slice(0, LAST_ERROR_SUMMARY_CHARS),
          ...(problem ? { manifest_error: problem.message.slice(0, LAST_ERROR_SUMMARY_CHARS) } : {}),
        },
      },
    };
  });
}

function runtimeSummary(descriptor: ServiceDescriptor): ServiceStatus['runtime'] {
  const { type, abi, mode } = descriptor.runtime;
  return { type, abi, mode: mode ?? 'spawn' };
}

export function renderStatus(view: ServiceView, descriptor: ServiceDescriptor, now = Date.now()): string {
  return json(statusDocument(view, descriptor, now));
}

/** status.json's document, also the `status` of an invocation's failure (renderOutcome). */
function statusDocument(view: ServiceView, descriptor: ServiceDescriptor, now: number): ServiceStatus {
  const { last, rejection, enabled, disabledReason } = view.state;
  const state = view.statusState(now);
  // The latest refusal shows with its errno until an invocation finishes after it.
  const rejected = rejection !== null && rejection.ms >= (last?.updatedMs ?? -1);
  return {
    service_id: view.serviceId,
    runtime: runtimeSummary(descriptor),
    state,
    ...(enabled ? {} : { reason: disabledReason }),
    ...(state === 'backoff' ? { retry_after_ms: view.supervisor.cooldownRemainingMs(now) } : {}),
    ...(rejected && rejection ? { errno: rejection.errno, error: rejection.message } : {}),
    running: view.jobs.started,
    queued: view.jobs.waiting,
    invocation_id: last?.invocationId ?? null,
    updated_ms: last?.updatedMs ?? null,
    duration_ms: last?.durationMs ?? null,
    exit_code: last?.exitCode ?? null,
    signal: last?.signal ?? null,
    result_format: last?.resultFormat ?? null,
    ...metricsDocument(view),
  };
}

export function metricsDocument(view: ServiceView): ServiceMetrics {
  const c = view.state.counters;
  return {
    invokes_total: c.invokesTotal,
    rejected_total: c.rejectedTotal,
    failures_total: c.failuresTotal,
    consecutive_failures: c.consecutiveFailures,
    timeouts_total: c.timeoutsTotal,
    consecutive_timeouts: c.consecutiveTimeouts,
    cancelled_total: c.cancelledTotal,
    last_duration_ms: c.lastDurationMs,
    last_started_ms: c.lastStartedMs,
    last_finished_ms: c.lastFinishedMs,
    last_exit_code: c.lastExitCode,
    latency_ms: view.latency(),
  };
}

export function renderMetrics(view: ServiceView): string {
  return json(metricsDocument(view));
}

export function renderHealth(view: ServiceView, now = Date.now()): string {
  const { state: s, supervisor } = view;
  const health: ServiceHealth = {
    state: supervisor.noteHealth(now),
    enabled: s.enabled,
    ...(s.enabled ? {} : { reason: s.disabledReason }),
    last_control_op: s.lastControlOp,
    last_control_ms: s.lastControlMs,
    restarts_total: s.counters.restartsTotal,
    cooldown_until_ms: s.cooldownUntilMs,
    cooldown_remaining_ms: supervisor.cooldownRemainingMs(now),
    supervision: supervisor.policy(),
    probe: { ok: supervisor.probeError === null, error: supervisor.probeError },
    metrics: metricsDocument(view),
    last_transition_ms: s.lastTransitionMs,
    last_healthy_ms: s.lastHealthyMs,
    last_error: s.lastError.trim().slice(0, LAST_ERROR_SUMMARY_CHARS),
  };
  return json(health);
}

export function renderConfig(view: ServiceView): Buffer {
  return Buffer.from(json(view.state.config));
}

export function renderJobStatus(view: ServiceView, job: Job): string {
  const { progress } = job;
  const status: JobStatus = {
    invocation_id: job.invocationId,
    service_id: view.serviceId,
    state: progress.state,
    queued_ms: job.queuedMs,
    started_ms: progress.startedMs,
    finished_ms: progress.finishedMs,
    duration_ms: progress.durationMs,
    exit_code: progress.exitCode,
    signal: progress.signal,
    request_bytes: job.request.length,
    error: progress.error.trim(),
  };
  return json(status);
}

/** result.json: the last successful result, or the idle document (identity kept) before any or after reset. */
export function renderResult(view: ServiceView): Buffer {
  return view.result ?? Buffer.from(json({ service_id: view.serviceId, state: 'idle' }));
}

/**
 * What an O_RDWR transaction reads back: its own result, or its own end state, id and error with
 * the status it left (whose `state` is the service's: running, backoff, another run's outcome).
 */
export function renderOutcome(view: ServiceView, descriptor: ServiceDescriptor, outcome: InvokeOutcome): Buffer {
  if (outcome.state === 'ok') return outcome.result && outcome.result.toString('utf8').trim() !== '' ? outcome.result : Buffer.from('{}\n');
  const failure: InvokeFailure = {
    error: (outcome.error ?? '').trim(),
    state: outcome.state,
    invocation_id: outcome.invocationId,
    status: statusDocument(view, descriptor, Date.now()),
  };
  return Buffer.from(json(failure));
}

/** `config`: config.json, whose timeout_ms and max_output_bytes are the limits in force (a wasm host's `limits` show them). */
export function renderHost(descriptor: ServiceDescriptor, hostKind: HostKind, wasm?: WasmHost, config: RuntimeConfig = {}): string {
  if (wasm) {
    const { timeout_ms = wasm.limits.timeout_ms, max_output_bytes = wasm.limits.max_output_bytes } = config;
    wasm = { ...wasm, limits: { ...wasm.limits, timeout_ms, max_output_bytes } };
  }
  const host: HostDocument = {
    schema: 1,
    contract: 'acheron.namespace-driver',
    abi: 'namespace-driver-v1',
    host_kind: hostKind,
    runtime_kind: descriptor.runtime.type,
    features: { supervision: true, hot_reload: hostKind !== 'static_linked', dynamic_mounts: false },
    ...(wasm ? { wasm } : {}),
  };
  return json(host);
}

export function renderSchema(descriptor: ServiceDescriptor): string {
  const control = Object.fromEntries(SERVICE_FILES.map((f) => [f.path, { mode: f.mode.toString(8).padStart(4, '0'), does: f.description }]));
  return json({ service_id: descriptor.service_id, control, schema: descriptor.schema });
}

export function renderTemplate(descriptor: ServiceDescriptor): string {
  const example = (descriptor.schema as { example?: unknown }).example;
  return json(example === undefined ? {} : example);
}

export function renderReadme(descriptor: ServiceDescriptor, mountPath: string): string {
  if (typeof descriptor.help_md === 'string') return descriptor.help_md.endsWith('\n') ? descriptor.help_md : descriptor.help_md + '\n';
  const dir = `${mountPath}/services/${descriptor.service_id}`;
  const files = SERVICE_FILES.map((f) => `| \`${f.path}\` | ${f.mode.toString(8).padStart(4, '0')} | ${f.description} |`).join('\n');
  return `# ${descriptor.service_id}

Kind \`${descriptor.kind}\`, version ${descriptor.version}, runtime \`${descriptor.runtime.type}\`.

Invoke by writing one JSON object; the writer's close() returns once it has finished:

    cat ${dir}/TEMPLATE.json > ${dir}/control/invoke.json
    cat ${dir}/status.json ${dir}/result.json
    acheron invoke ${descriptor.service_id} '{}'     # the same, with a real exit code

| file | mode | what it does |
|---|---|---|
${files}
`;
}
