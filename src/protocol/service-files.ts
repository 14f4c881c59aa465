import type { ServiceDescriptor } from './types.gen.js';
/**
 * The file surface of one executable service (SPEC §3): one table, read by the node tree, the
 * generated README and SCHEMA.json, and later WorldFS. No other file spells these names.
 */
export type ServiceFileKind =
  | 'readme'
  | 'schema'
  | 'template'
  | 'host'
  | 'invoke'
  | 'reset'
  | 'enable'
  | 'disable'
  | 'restart'
  | 'cancel'
  | 'config'
  | 'result'
  | 'status'
  | 'last_error'
  | 'metrics'
  | 'health'
  | 'jobs';

export interface ServiceFile {
  /** Relative to the service directory; one level of subdirectory at most. */
  path: string;
  /** 0o755: a directory. */
  mode: 0o444 | 0o644 | 0o200 | 0o755;
  kind: ServiceFileKind;
  description: string;
}

/** The invoke file, as messages about a payload name it (both trees, every refusal). */
export const INVOKE_FILE = 'control/invoke.json';

/** A service's config.json from the tree's root, as every refusal of it is named (`EINVAL: services/echo/config.json: …`). */
export const configFileOf = (serviceId: string): string => `services/${serviceId}/config.json`;

export const SERVICE_FILES: readonly ServiceFile[] = [
  { path: 'README.md', mode: 0o444, kind: 'readme', description: 'what this service does and how to use its files' },
  { path: 'SCHEMA.json', mode: 0o444, kind: 'schema', description: 'this map of the control surface, plus the service schema' },
  { path: 'TEMPLATE.json', mode: 0o444, kind: 'template', description: 'an example payload for control/invoke.json' },
  { path: 'HOST.json', mode: 0o444, kind: 'host', description: 'the driver host contract' },
  {
    path: INVOKE_FILE,
    mode: 0o644,
    kind: 'invoke',
    description: 'write one JSON object to invoke; close() returns when it has finished; on an O_RDWR descriptor, read back its own outcome',
  },
  {
    path: 'control/reset',
    mode: 0o200,
    kind: 'reset',
    description: 'any write: result.json and status.json back to idle, last_error.txt emptied, consecutive counters zeroed',
  },
  { path: 'control/enable', mode: 0o200, kind: 'enable', description: 'any write: accept invocations again' },
  { path: 'control/disable', mode: 0o200, kind: 'disable', description: 'any write: refuse invocations (EPERM) until enabled' },
  { path: 'control/restart', mode: 0o200, kind: 'restart', description: 'any write: count a restart and clear the last error' },
  { path: 'control/cancel', mode: 0o200, kind: 'cancel', description: 'any write: kill the running invocation(s)' },
  {
    path: 'config.json',
    mode: 0o644,
    kind: 'config',
    description:
      'runtime config: write a whole JSON object (supervision, timeout_ms, kill_grace_ms, max_output_bytes); overrides the manifest, survives reloads and restarts',
  },
  { path: 'result.json', mode: 0o444, kind: 'result', description: 'the last successful result' },
  { path: 'status.json', mode: 0o444, kind: 'status', description: 'state (idle, running, ok, error, timeout, cancelled, offline) and the last invocation' },
  { path: 'last_error.txt', mode: 0o444, kind: 'last_error', description: 'the last failure; empty after a success' },
  { path: 'metrics.json', mode: 0o444, kind: 'metrics', description: 'counters and latency percentiles' },
  { path: 'health.json', mode: 0o444, kind: 'health', description: 'health state, control history and the last error' },
  {
    path: 'jobs',
    mode: 0o755,
    kind: 'jobs',
    description: 'jobs/<invocation_id>/: the last runtime.jobs_keep invocations (request, result, status, stderr, cancel)',
  },
];

export type JobFileKind = 'request' | 'result' | 'status' | 'stderr' | 'cancel';

/** The files of one `jobs/<invocation_id>/` directory. */
export const JOB_FILES: ReadonlyArray<{ path: string; mode: 0o444 | 0o200; kind: JobFileKind; description: string }> = [
  { path: 'request.json', mode: 0o444, kind: 'request', description: 'the payload exactly as written' },
  { path: 'result.json', mode: 0o444, kind: 'result', description: "this invocation's result (empty unless it succeeded)" },
  { path: 'status.json', mode: 0o444, kind: 'status', description: "this invocation's state, times, exit code and error" },
  { path: 'stderr.txt', mode: 0o444, kind: 'stderr', description: 'what the driver wrote on stderr' },
  { path: 'cancel', mode: 0o200, kind: 'cancel', description: 'any write: kill this invocation' },
];

/** A manifest's help_md as the service's README.md, on the node and in WorldFS alike: a text file, ending with a newline. */
export const helpReadme = (helpMd: string): string => (helpMd.endsWith('\n') ? helpMd : `${helpMd}\n`);

/** Names a manifest may not use as service_id (they are files of the node tree root). */
export const RESERVED_SERVICE_IDS = ['services', 'fs', 'NODE.json', 'SERVICES.json', 'ERRORS.json'] as const;

/**
 * Whether a catalog descriptor names something its node can run, and so has the files above
 * (SPEC §2): a `native_proc` needs an executable path and a `wasm` service a module; without one
 * it is catalog-only, metadata and nothing to open. Built-in runtimes (`native_inproc`) run inside
 * the node.
 */
export function hasLiveFiles(descriptor: Pick<ServiceDescriptor, 'runtime'>): boolean {
  const { runtime } = descriptor;
  if (runtime.type === 'native_proc') return runtime.executable_path !== undefined;
  if (runtime.type === 'wasm') return runtime.module_path !== undefined;
  return true;
}
