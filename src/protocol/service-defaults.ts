import type { ServiceDescriptorInput, ServiceRuntime } from './types.gen.js';

/**
 * The runtime fields every descriptor carries (SPEC §2, §4). They repeat the `default` keywords of
 * docs/schemas/manifest.schema.json, and a unit test keeps the two equal.
 */
export const RUNTIME_DEFAULTS: Pick<
  ServiceRuntime,
  'type' | 'abi' | 'timeout_ms' | 'kill_grace_ms' | 'max_output_bytes' | 'max_input_bytes' | 'max_concurrency' | 'max_queue' | 'mode' | 'jobs_keep'
> = {
  type: 'native_proc',
  abi: 'namespace-driver-v1',
  timeout_ms: 30000,
  kill_grace_ms: 2000,
  max_output_bytes: 1048576,
  max_input_bytes: 8388608,
  max_concurrency: 1,
  max_queue: 64,
  mode: 'spawn',
  jobs_keep: 32,
};

/** `runtime.wasm` of a `wasm` service (SPEC §4); repeats the schema's `default` keywords like RUNTIME_DEFAULTS. */
export const WASM_DEFAULTS = { max_memory_bytes: 67108864, preopens: [] } as const;
export const WASM_PREOPEN_DEFAULTS = { mode: 'ro' } as const;

/** Top-level defaults of SPEC §2 that do not depend on the service; also checked against the schema. */
export const MANIFEST_DEFAULTS = {
  version: '1',
  state: 'online',
  endpoints: ['/nodes/{node_id}/services/{service_id}'],
  capabilities: {},
  ops: { model: 'namespace', style: 'plan9' },
  permissions: { default: 'deny-by-default' },
  schema: { model: 'namespace-mount' },
} as const;

/** Values substituted for `{node_id}` and `{service_id}` in endpoint and mount paths (SPEC §2). */
export interface TemplateValues {
  node_id: string;
  service_id: string;
}

const PLACEHOLDERS = /\{(node_id|service_id)\}/g;
const PLACEHOLDER = /\{(?:node_id|service_id)\}/;

/** Replaces every `{node_id}` and `{service_id}`; other braces are left alone. */
export function fillTemplate(text: string, values: TemplateValues): string {
  // One pass, so a substituted value is never itself rescanned for placeholders.
  return text.replace(PLACEHOLDERS, (_placeholder, name: keyof TemplateValues) => values[name]);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const hasPlaceholder = (value: unknown): boolean => typeof value === 'string' && PLACEHOLDER.test(value);

/** Whether `fields` already has every default and no placeholder: then it is kept as it is (its JSON too). */
function isComplete(fields: ServiceDescriptorInput): boolean {
  const { runtime, permissions, endpoints, mounts } = fields;
  return (
    (['version', 'state', 'endpoints', 'capabilities', 'mounts', 'ops', 'runtime', 'permissions', 'schema'] as const).every(
      (key) => fields[key] !== undefined,
    ) &&
    (!isObject(runtime) || (Object.keys(RUNTIME_DEFAULTS).every((key) => runtime[key] !== undefined) && isWasmComplete(runtime))) &&
    (!isObject(permissions) || permissions.default !== undefined) &&
    !(Array.isArray(endpoints) && endpoints.some(hasPlaceholder)) &&
    !(Array.isArray(mounts) && mounts.some((m) => isObject(m) && hasPlaceholder(m.mount_path)))
  );
}

/** A wasm runtime names its memory cap and each preopen's mode; any other runtime has nothing to add. */
function isWasmComplete(runtime: Record<string, unknown>): boolean {
  if (runtime.type !== 'wasm') return true;
  const { wasm } = runtime;
  return (
    isObject(wasm) && wasm.max_memory_bytes !== undefined && Array.isArray(wasm.preopens) && wasm.preopens.every((p) => !isObject(p) || p.mode !== undefined)
  );
}

/** A wasm service's runtime says which memory cap and preopens it runs with, defaults included. */
function withWasmDefaults(runtime: unknown): unknown {
  if (!isObject(runtime) || runtime.type !== 'wasm' || (runtime.wasm !== undefined && !isObject(runtime.wasm))) return runtime;
  const wasm: Record<string, unknown> = { ...WASM_DEFAULTS, ...runtime.wasm };
  const preopens = Array.isArray(wasm.preopens) ? wasm.preopens.map((p: unknown) => (isObject(p) ? { ...WASM_PREOPEN_DEFAULTS, ...p } : p)) : wasm.preopens;
  return { ...runtime, wasm: { ...wasm, preopens } };
}

/**
 * SPEC §2's defaults for every field left out, `{node_id}` and `{service_id}` replaced in endpoints
 * and mount paths: the node applies this to its manifests (their fields without `$schema` and
 * `enabled`), the control server to every descriptor a node upserts. `fields` itself when nothing
 * is missing. A field of the wrong type is left as it is, for the schema to refuse (the server
 * validates the result, the node validated its manifest).
 */
export function withServiceDefaults(fields: ServiceDescriptorInput, nodeId: string): Record<string, unknown> {
  if (isComplete(fields)) return fields;
  const values = { node_id: nodeId, service_id: fields.service_id };
  const fill = (path: unknown): unknown => (typeof path === 'string' ? fillTemplate(path, values) : path);
  const endpoints = Array.isArray(fields.endpoints) ? fields.endpoints.map(fill) : (fields.endpoints ?? MANIFEST_DEFAULTS.endpoints.map(fill));
  const state = fields.state ?? MANIFEST_DEFAULTS.state;
  const mounts =
    fields.mounts === undefined
      ? [{ mount_id: fields.service_id, mount_path: Array.isArray(endpoints) ? endpoints[0] : undefined, state }]
      : Array.isArray(fields.mounts)
        ? fields.mounts.map((mount) => (isObject(mount) ? { ...mount, mount_path: fill(mount.mount_path) } : mount))
        : fields.mounts;
  // Merged rather than replaced: a service naming only allow_roles must still deny everyone else.
  const merged = (value: unknown, defaults: object): unknown => (isObject(value) ? { ...defaults, ...value } : (value ?? { ...defaults }));
  return {
    ...fields,
    version: fields.version ?? MANIFEST_DEFAULTS.version,
    state,
    endpoints,
    capabilities: fields.capabilities ?? { ...MANIFEST_DEFAULTS.capabilities },
    mounts,
    ops: fields.ops ?? { ...MANIFEST_DEFAULTS.ops },
    runtime: withWasmDefaults(merged(fields.runtime, RUNTIME_DEFAULTS)),
    permissions: merged(fields.permissions, MANIFEST_DEFAULTS.permissions),
    schema: fields.schema ?? { ...MANIFEST_DEFAULTS.schema },
  };
}

/**
 * Whether `path` lies under `/nodes/<nodeId>/` (SPEC §2): below that prefix, with no `.` or `..`
 * segment that could lead out of it. A node publishes only paths of its own tree.
 */
export function isUnderNode(path: string, nodeId: string): boolean {
  const prefix = `/nodes/${nodeId}/`;
  return (
    path.startsWith(prefix) &&
    path.length > prefix.length &&
    path
      .slice(prefix.length)
      .split('/')
      .every((segment) => segment !== '.' && segment !== '..')
  );
}

/** The endpoints and mount paths of a descriptor that are not under its node's tree, as JSON pointers and paths. */
export function foreignPaths(
  service: { endpoints: readonly string[]; mounts: ReadonlyArray<{ mount_path: string }> },
  nodeId: string,
): Array<{ pointer: string; path: string }> {
  return [
    ...service.endpoints.map((path, index) => ({ pointer: `/endpoints/${index}`, path })),
    ...service.mounts.map((mount, index) => ({ pointer: `/mounts/${index}/mount_path`, path: mount.mount_path })),
  ].filter(({ path }) => !isUnderNode(path, nodeId));
}

/**
 * The mounts of a descriptor whose `mount_id` an earlier mount of it already has, as JSON pointers:
 * an id names one mount of its service (SPEC §2).
 */
export function repeatedMountIds(service: { mounts: ReadonlyArray<{ mount_id: string }> }): Array<{ pointer: string; mountId: string; first: number }> {
  const firstAt = new Map<string, number>();
  return service.mounts.flatMap(({ mount_id: mountId }, index) => {
    const first = firstAt.get(mountId);
    if (first === undefined) {
      firstAt.set(mountId, index);
      return [];
    }
    return [{ pointer: `/mounts/${index}/mount_id`, mountId, first }];
  });
}
