import type { Manifest, ServiceDescriptor, ServiceRuntime } from '../protocol/types.gen.js';
import { fillTemplate } from './template.js';

/**
 * The runtime fields every descriptor carries (SPEC §2, §4). They repeat the `default` keywords of
 * docs/schemas/manifest.schema.json, and a unit test keeps the two equal.
 */
export const RUNTIME_DEFAULTS: Pick<
  ServiceRuntime,
  | 'type'
  | 'abi'
  | 'timeout_ms'
  | 'kill_grace_ms'
  | 'max_output_bytes'
  | 'max_input_bytes'
  | 'max_concurrency'
  | 'max_queue'
  | 'mode'
  | 'jobs_keep'
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

/** The normalized service of a valid manifest: defaults applied, paths templated, editor-only keys dropped. */
export function applyDefaults(manifest: Manifest, nodeId: string): ServiceDescriptor {
  // `$schema` serves editors and `enabled` the loader; neither belongs in the published descriptor.
  const { $schema: _editorSchema, enabled: _enabled, ...fields } = manifest;
  const values = { node_id: nodeId, service_id: manifest.service_id };
  const [firstEndpoint, ...otherEndpoints] = manifest.endpoints ?? MANIFEST_DEFAULTS.endpoints;
  const endpoints: ServiceDescriptor['endpoints'] = [
    fillTemplate(firstEndpoint, values),
    ...otherEndpoints.map((endpoint) => fillTemplate(endpoint, values)),
  ];
  const state = manifest.state ?? MANIFEST_DEFAULTS.state;
  const mounts = manifest.mounts?.map((mount) => ({ ...mount, mount_path: fillTemplate(mount.mount_path, values) })) ??
    [{ mount_id: manifest.service_id, mount_path: endpoints[0], state }];
  return {
    ...fields,
    version: manifest.version ?? MANIFEST_DEFAULTS.version,
    state,
    endpoints,
    capabilities: manifest.capabilities ?? { ...MANIFEST_DEFAULTS.capabilities },
    mounts,
    ops: manifest.ops ?? { ...MANIFEST_DEFAULTS.ops },
    runtime: withWasmDefaults({ ...RUNTIME_DEFAULTS, ...manifest.runtime }),
    // Merged rather than replaced: a manifest naming only allow_roles must still deny everyone else.
    permissions: { ...MANIFEST_DEFAULTS.permissions, ...manifest.permissions },
    schema: manifest.schema ?? { ...MANIFEST_DEFAULTS.schema },
  };
}

/** A wasm service's descriptor says which memory cap and preopens it runs with, defaults included. */
function withWasmDefaults(runtime: ServiceRuntime): ServiceRuntime {
  if (runtime.type !== 'wasm') return runtime;
  const wasm = { ...WASM_DEFAULTS, ...runtime.wasm };
  return { ...runtime, wasm: { ...wasm, preopens: wasm.preopens.map((preopen) => ({ ...WASM_PREOPEN_DEFAULTS, ...preopen })) } };
}
