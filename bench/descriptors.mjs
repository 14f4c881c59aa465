// The catalog a simulated node publishes in the control-server benchmarks: 20 services built the
// way a node builds them (manifests through applyDefaults, the fs and terminal built-ins, the live
// supervision_status overlay of NodeDaemon.publishedCatalog), so sizes and shapes are realistic.
import { applyDefaults } from '../dist/manifest/defaults.js';
import { fsDescriptor, terminalDescriptor } from '../dist/node/builtin-services.js';

export const SERVICES_PER_NODE = 20;
export const SERVICE_DESCRIPTOR_SCHEMA = 'https://acheron.dev/schemas/service-descriptor.schema.json';

// 18 manifests of the kinds a node typically carries; a third have help_md, half an input schema.
const KINDS = ['echo', 'http-proxy', 'sensor', 'sqlite', 'backup', 'camera', 'gpio', 'metrics-agent', 'log-shipper'];

/** @returns {any} a manifest as a node reads one (its optional members vary by index) */
function manifestFor(index) {
  const kind = KINDS[index % KINDS.length];
  const serviceId = `${kind}-${String(index).padStart(2, '0')}`;
  const manifest = {
    service_id: serviceId,
    kind,
    version: '1',
    runtime: {
      type: 'native_proc',
      executable_path: `/opt/acheron/drivers/${kind}-driver`,
      timeout_ms: 10_000 + index * 1000,
      ...(index % 4 === 0 ? { mode: 'persistent', max_concurrency: 4 } : {}),
      ...(index % 5 === 0 ? { env: { LOG_LEVEL: 'info', REGION: 'eu-west' } } : {}),
    },
    permissions: index % 3 === 0 ? { allow_roles: ['admin'], default: 'deny-by-default' } : { allow_roles: ['admin', 'user'], default: 'deny-by-default' },
    capabilities: { streaming: index % 2 === 0, max_payload_bytes: 65536 },
  };
  if (index % 2 === 0) {
    manifest.schema = {
      input: { type: 'object', properties: { op: { type: 'string', enum: ['get', 'set', 'list'] }, key: { type: 'string' }, value: {} }, required: ['op'] },
      example: { op: 'get', key: 'status' },
    };
  }
  if (index % 3 === 1) {
    manifest.help_md = `# ${serviceId}\n\nThe ${kind} service of this node. Write a JSON request to \`control/invoke.json\`, read \`result.json\`.\n\n    echo '{"op":"get","key":"status"}' > control/invoke.json\n    cat result.json\n`;
  }
  return manifest;
}

/** The node's live overlay (SPEC §5 probes): what the daemon adds to every executable service. */
function withSupervision(descriptor, nowMs) {
  return {
    ...descriptor,
    runtime: {
      ...descriptor.runtime,
      supervision_status: {
        state: 'online',
        enabled: true,
        restarts_total: 0,
        consecutive_failures: 0,
        backoff_until_ms: null,
        last_transition_ms: nowMs,
        last_healthy_ms: nowMs,
        last_error: '',
      },
    },
  };
}

/** The 20 descriptors of one node: fs, terminal-main and 18 manifest services. */
export function nodeCatalog(nodeId, nowMs = Date.now()) {
  const services = [fsDescriptor(nodeId, ['data', 'logs']), withSupervision(terminalDescriptor(nodeId, 'main'), nowMs)];
  for (let i = 0; services.length < SERVICES_PER_NODE; i++) services.push(withSupervision(applyDefaults(manifestFor(i), nodeId), nowMs));
  return services;
}
