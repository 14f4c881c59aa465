import { RUNTIME_DEFAULTS } from '../manifest/index.js';
import type { ServiceDescriptor } from '../protocol/types.gen.js';

/** The catalog entry of the built-in fs provider (SPEC §4). */
export function fsDescriptor(nodeId: string, exportNames: string[]): ServiceDescriptor {
  const path = `/nodes/${nodeId}/fs`;
  return {
    service_id: 'fs',
    kind: 'fs',
    version: '1',
    state: 'online',
    endpoints: [path],
    capabilities: { exports: exportNames },
    mounts: [{ mount_id: 'fs', mount_path: path, state: 'online' }],
    ops: { model: 'namespace', style: 'plan9' },
    runtime: { ...RUNTIME_DEFAULTS, type: 'native_inproc' },
    permissions: { default: 'deny-by-default', allow_roles: ['admin', 'user'] },
    schema: { model: 'namespace-mount' },
  };
}

/** `terminal-<id>`: remote command execution, so only admins by default (SPEC §4). */
export function terminalDescriptor(nodeId: string, terminalId: string): ServiceDescriptor {
  const serviceId = `terminal-${terminalId}`;
  const path = `/nodes/${nodeId}/services/${serviceId}`;
  return {
    service_id: serviceId,
    kind: 'terminal',
    version: '1',
    state: 'online',
    endpoints: [path],
    capabilities: { exec: true },
    mounts: [{ mount_id: serviceId, mount_path: path, state: 'online' }],
    ops: { model: 'namespace', style: 'plan9' },
    runtime: { ...RUNTIME_DEFAULTS, type: 'native_inproc' },
    permissions: { default: 'deny-by-default', allow_roles: ['admin'] },
    schema: {
      model: 'namespace-mount',
      input: {
        type: 'object',
        properties: {
          argv: { type: 'array', items: { type: 'string' }, minItems: 1 },
          command: { type: 'string', minLength: 1 },
          cwd: { type: 'string' },
          max_output_bytes: { type: 'integer', minimum: 1 },
        },
      },
      example: { command: 'uname -a' },
    },
    help_md: `# ${serviceId}\n\nRuns a command on node ${nodeId}: write \`{"argv":["ls","-l"]}\` or \`{"command":"uname -a"}\` (run by /bin/sh -c), optional \`cwd\` and \`max_output_bytes\` (default 131072), to \`control/invoke.json\`.\n\n\`result.json\` then holds \`{service, terminal_id, operation:"exec", ok, state, exit_code, stdout, stderr}\`. A command that ran is a successful invocation whatever its exit code; a spawn failure or a timeout is an error.\n`,
  };
}
