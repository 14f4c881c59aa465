/** Names that never reach a driver unless passed through explicitly: secrets and our own settings. */
const WITHHELD = /TOKEN|SECRET|PASSWORD|^ACHERON_/;

/**
 * The environment of a service's drivers (SPEC §4): inherited minus secrets and ACHERON_* (unless
 * listed in env_passthrough), plus runtime.env, plus the node and service ids. Built once per
 * service: the per-invocation ACHERON_INVOCATION_ID is added at spawn (`DriverSpec.invocationId`),
 * so the spawner receives this object once, not with every request.
 */
export function serviceEnv(options: {
  inherited: NodeJS.ProcessEnv;
  passthrough: readonly string[];
  extra: Readonly<Record<string, string>>;
  identity: { nodeId: string; serviceId: string };
}): Record<string, string> {
  const env: Record<string, string> = {};
  const passthrough = new Set(options.passthrough);
  for (const [name, value] of Object.entries(options.inherited)) {
    if (value !== undefined && (passthrough.has(name) || !WITHHELD.test(name))) env[name] = value;
  }
  Object.assign(env, options.extra);
  env.ACHERON_NODE_ID = options.identity.nodeId;
  env.ACHERON_SERVICE_ID = options.identity.serviceId;
  return Object.freeze(env) as Record<string, string>;
}

/** Where a spawn looks for a bare program name when the child's environment has no PATH (libuv's default). */
const SPAWN_DEFAULT_PATH = '/usr/bin:/bin';

/**
 * The PATH a service's driver spawn searches for a bare `executable_path` (SPEC §2: the same
 * resolution for probes and execution): the child's environment's (runtime.env over the inherited
 * one, as serviceEnv builds it), else libuv's default; a node started by mount(8) has no PATH.
 */
export function driverSearchPath(runtimeEnv: Readonly<Record<string, string>> | undefined, inherited: NodeJS.ProcessEnv = process.env): string {
  return runtimeEnv?.PATH ?? inherited.PATH ?? SPAWN_DEFAULT_PATH;
}
