import { foreignPaths, repeatedMountIds } from '../protocol/service-defaults.js';
import { problemAt, SCHEMA_BASE, SchemaError, type Problem, type Schemas } from '../protocol/schemas.js';
import type { Manifest, ServiceDescriptor } from '../protocol/types.gen.js';
import { applyDefaults } from './defaults.js';
import { messageOf } from './message-of.js';
import { listManifestFiles } from './order.js';
import { readManifest } from './read-manifest.js';
import { manifestExecutablePath } from './resolve-executable.js';
import { checkWasmRuntime } from './wasm-rules.js';

export const MANIFEST_SCHEMA_ID = `${SCHEMA_BASE}manifest.schema.json`;

/** One service as loaded from its manifest. */
export interface LoadedService {
  descriptor: ServiceDescriptor;
  /** The manifest file it came from, as listed (flag value or services dir + name). */
  source: string;
  /** `runtime.executable_path` resolved against the manifest's directory; a bare name stays bare. */
  executablePath?: string;
  /** `runtime.module_path` (type "wasm"), resolved like executablePath. */
  modulePath?: string;
  /** The SHA-256 of the module the node compiled (set by the node): a changed module is a changed service. */
  moduleHash?: string;
}

export interface LoadServicesOptions {
  manifestFiles: string[];
  servicesDirs: string[];
  nodeId: string;
  /** Service ids already taken, e.g. `{ service_id: 'fs', source: 'built-in fs provider' }`. */
  reserved: Array<{ service_id: string; source: string }>;
  /** At a reload: each running service's manifest file (see loadServices). */
  incumbents?: ReadonlyMap<string, string>;
  schemas: Schemas;
}

// SPEC §4: "native_inproc" stays a clear load-time error.
const UNSUPPORTED_RUNTIME_TYPES = new Set(['native_inproc']);

/**
 * Loads every manifest in load order. A file with a problem is left out and the rest still load: the
 * caller decides what problems mean (fatal at start-up; keep the previous version at reload).
 */
export async function loadServices(options: LoadServicesOptions): Promise<{ services: LoadedService[]; problems: Problem[] }> {
  const { files, problems } = await listManifestFiles(options.manifestFiles, options.servicesDirs);
  const owners = new Map(options.reserved.map((entry) => [entry.service_id, entry.source]));
  // One file at a time: a directory of many manifests must not take as many descriptors at once.
  const read: Array<{ file: string; loaded: Awaited<ReturnType<typeof loadManifestFile>> }> = [];
  for (const file of files) read.push({ file, loaded: await loadManifestFile(file, options) });
  // A running service stays its file's while that file is there and does not name another id (a
  // broken edit keeps it too): a new file that sorts before it is the duplicate, not the running one.
  for (const [serviceId, source] of options.incumbents ?? []) {
    const claim = read.find((entry) => entry.file === source)?.loaded;
    if (claim && !owners.has(serviceId) && ('problems' in claim || claim.service?.descriptor.service_id === serviceId)) owners.set(serviceId, source);
  }
  const services: LoadedService[] = [];
  for (const { file, loaded } of read) {
    if ('problems' in loaded) {
      problems.push(...loaded.problems);
      continue;
    }
    if (loaded.service === undefined) continue;
    const serviceId = loaded.service.descriptor.service_id;
    const owner = owners.get(serviceId);
    if (owner !== undefined && owner !== file) {
      const description = `service_id "${serviceId}" is already defined by ${owner}`;
      problems.push(problemAt(file, '/service_id', 'duplicate', description));
      continue;
    }
    owners.set(serviceId, file);
    services.push(loaded.service);
  }
  return { services, problems };
}

/** One file: its service, nothing (disabled), or why it cannot load. */
async function loadManifestFile(file: string, options: LoadServicesOptions): Promise<{ service: LoadedService | undefined } | { problems: Problem[] }> {
  const read = await readManifest(file);
  if ('problem' in read) return { problems: [read.problem] };
  const { value } = read;
  // Disabling comes before every other check, so a half-edited manifest can be parked with one key.
  if (isDisabled(value)) return { service: undefined };
  let manifest: Manifest;
  try {
    manifest = options.schemas.validate<Manifest>(MANIFEST_SCHEMA_ID, value, file);
  } catch (error) {
    if (error instanceof SchemaError) return { problems: error.problems };
    throw error;
  }
  const problems = checkSupported(manifest, file, options.schemas);
  if (problems.length > 0) return { problems };
  const descriptor = applyDefaults(manifest, options.nodeId);
  const placed = [
    ...foreignPaths(descriptor, options.nodeId).map(({ pointer, path }) =>
      problemAt(file, pointer, 'node_path', `${path} is not under /nodes/${options.nodeId}/ (a node publishes only paths of its own tree)`),
    ),
    ...repeatedMountIds(descriptor).map(({ pointer, mountId, first }) =>
      problemAt(file, pointer, 'duplicate', `mount_id "${mountId}" is already used by /mounts/${first}`),
    ),
  ];
  if (placed.length > 0) return { problems: placed };
  const executable = manifest.runtime?.executable_path;
  const module = manifest.runtime?.module_path;
  return {
    service: {
      descriptor,
      source: file,
      ...(executable === undefined ? {} : { executablePath: manifestExecutablePath(file, executable) }),
      ...(module === undefined ? {} : { modulePath: manifestExecutablePath(file, module) }),
    },
  };
}

/** Rules beyond the schema: what this version can run, and an input schema that compiles. */
function checkSupported(manifest: Manifest, file: string, schemas: Schemas): Problem[] {
  const problems: Problem[] = [];
  const type = manifest.runtime?.type;
  if (type !== undefined && UNSUPPORTED_RUNTIME_TYPES.has(type)) {
    const description = `runtime type "${type}" is not supported; use "native_proc" or "wasm"`;
    problems.push(problemAt(file, '/runtime/type', 'unsupported', description));
  }
  problems.push(...checkWasmRuntime(manifest, file));
  // Compiled now so that a broken input schema fails the load instead of every invocation.
  const input = manifest.schema?.input;
  if (input !== undefined) {
    try {
      schemas.compile(input);
    } catch (error) {
      problems.push(problemAt(file, '/schema/input', 'schema', messageOf(error)));
    }
  }
  return problems;
}

function isDisabled(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'enabled' in value && value.enabled === false;
}
