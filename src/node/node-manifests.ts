import { loadServices, type LoadedService } from '../manifest/index.js';
import type { Problem, Schemas } from '../protocol/schemas.js';
import { checkDriverUsers, readPasswd, type UserIds } from './driver-users.js';
import { builtinIds, checkCwd, type BuildOptions } from './service-builder.js';
import type { WasmServices } from './wasm-services.js';

export interface ManifestOptions extends BuildOptions {
  serviceManifests: string[];
  servicesDirs: string[];
}

/** The manifests as this node can run them, and /etc/passwd as read with them. */
export interface NodeManifests {
  services: LoadedService[];
  problems: Problem[];
  users: Map<string, UserIds>;
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

/**
 * Loads the manifests (src/manifest) and adds what only the node can check: the driver's user
 * exists, a wasm module compiles and its preopens stay off the mount, `runtime.cwd` lies outside the
 * mount. A service that fails any of them is left out with a problem naming its file, at start-up
 * and at every reload alike.
 */
export async function loadNodeManifests(
  options: ManifestOptions,
  schemas: Schemas,
  wasm: WasmServices,
  incumbents?: ReadonlyMap<string, string>,
): Promise<NodeManifests> {
  const loaded = await loadServices({
    manifestFiles: options.serviceManifests,
    servicesDirs: options.servicesDirs,
    nodeId: options.nodeId,
    schemas,
    reserved: builtinIds(options),
    ...(incumbents ? { incumbents } : {}),
  });
  const users = await readPasswd();
  const userCheck = checkDriverUsers(loaded.services, users, options.driverUser);
  const wasmCheck = await wasm.check(userCheck.ok, options.mount);
  const cwdCheck = checkCwd(wasmCheck.ok, options.mount);
  return { services: cwdCheck.ok, problems: [...loaded.problems, ...userCheck.problems, ...wasmCheck.problems, ...cwdCheck.problems], users };
}
