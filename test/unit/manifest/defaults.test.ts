import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  applyDefaults,
  fillTemplate,
  loadServices,
  MANIFEST_DEFAULTS,
  RUNTIME_DEFAULTS,
  WASM_DEFAULTS,
  WASM_PREOPEN_DEFAULTS,
} from '../../../src/manifest/index.js';
import { loadSchemas, SCHEMA_BASE } from '../../../src/protocol/schemas.js';

const schemas = await loadSchemas();
const dir = await mkdtemp(join(tmpdir(), 'acheron-manifest-defaults-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const DESCRIPTOR_ID = `${SCHEMA_BASE}service-descriptor.schema.json`;

/** Loads one manifest that must be valid. */
async function loadOne(manifest: object, nodeId = 'node-1') {
  const file = join(dir, 'm.json');
  await writeFile(file, JSON.stringify(manifest));
  const { services, problems } = await loadServices({ manifestFiles: [file], servicesDirs: [], nodeId, reserved: [], schemas });
  const service = services[0];
  if (!service || problems.length > 0) throw new Error(`not loaded: ${problems.map((p) => p.message).join('; ')}`);
  return service;
}

t.test('a minimal manifest gets every SPEC §2 default', async (t) => {
  const { descriptor } = await loadOne({ $schema: 'x', enabled: true, service_id: 'echo', kind: 'demo' });
  t.strictSame(
    descriptor,
    {
      service_id: 'echo',
      kind: 'demo',
      version: '1',
      state: 'online',
      endpoints: ['/nodes/node-1/services/echo'],
      capabilities: {},
      mounts: [{ mount_id: 'echo', mount_path: '/nodes/node-1/services/echo', state: 'online' }],
      ops: { model: 'namespace', style: 'plan9' },
      runtime: {
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
      },
      permissions: { default: 'deny-by-default' },
      schema: { model: 'namespace-mount' },
    },
    '$schema and enabled are not published',
  );
  t.same(schemas.problems(DESCRIPTOR_ID, descriptor, 'descriptor'), [], 'the descriptor matches its schema');
});

t.test('given values win; runtime and permissions are merged over their defaults', async (t) => {
  const { descriptor } = await loadOne({
    service_id: 'echo',
    kind: 'demo',
    version: '2.1',
    state: 'beta',
    capabilities: { stream: true },
    ops: { model: 'rpc' },
    runtime: { timeout_ms: 5, mode: 'persistent', args: ['-v'], 'x-tuning': 1 },
    permissions: { allow_roles: ['user'] },
    schema: { input: { type: 'object' }, example: { msg: 'hi' } },
    help_md: '# Echo\n',
    'x-owner': 'team-a',
  });
  t.match(descriptor, {
    version: '2.1',
    state: 'beta',
    capabilities: { stream: true },
    ops: { model: 'rpc' },
    mounts: [{ mount_id: 'echo', mount_path: '/nodes/node-1/services/echo', state: 'beta' }],
    permissions: { default: 'deny-by-default', allow_roles: ['user'] },
    schema: { input: { type: 'object' }, example: { msg: 'hi' } },
    help_md: '# Echo\n',
    'x-owner': 'team-a',
  });
  t.same(descriptor.runtime, { ...RUNTIME_DEFAULTS, timeout_ms: 5, mode: 'persistent', args: ['-v'], 'x-tuning': 1 });
  t.same((await loadOne({ service_id: 'echo', kind: 'demo', permissions: { default: 'allow' } })).descriptor.permissions, { default: 'allow' });
  t.same(schemas.problems(DESCRIPTOR_ID, descriptor, 'descriptor'), []);
});

t.test('{node_id} and {service_id} are replaced in endpoints and mount paths', async (t) => {
  const { descriptor } = await loadOne(
    {
      service_id: 'svc',
      kind: 'k',
      endpoints: ['/nodes/{node_id}/custom/{service_id}', '/nodes/{node_id}/alt/{service_id}/{service_id}'],
      mounts: [
        { mount_id: 'data', mount_path: '/nodes/{node_id}/data/{service_id}' },
        { mount_id: 'raw', mount_path: '/nodes/host-7/fixed' },
      ],
    },
    'host-7',
  );
  t.same(descriptor.endpoints, ['/nodes/host-7/custom/svc', '/nodes/host-7/alt/svc/svc']);
  t.same(descriptor.mounts, [
    { mount_id: 'data', mount_path: '/nodes/host-7/data/svc' },
    { mount_id: 'raw', mount_path: '/nodes/host-7/fixed' },
  ]);
  const defaultMount = await loadOne({ service_id: 'svc', kind: 'k', endpoints: ['/nodes/{node_id}/x/{service_id}'] }, 'host-7');
  t.same(
    defaultMount.descriptor.mounts,
    [{ mount_id: 'svc', mount_path: '/nodes/host-7/x/svc', state: 'online' }],
    'the default mount uses the templated first endpoint',
  );
  const empty = await loadOne({ service_id: 'svc', kind: 'k', mounts: [] });
  t.same(empty.descriptor.mounts, [], 'an explicit empty mount list stays empty');
});

t.test('endpoints and mount paths outside /nodes/<node_id>/ are refused, naming the field', async (t) => {
  const file = join(dir, 'foreign.json');
  const load = async (manifest: object): Promise<string[]> => {
    await writeFile(file, JSON.stringify({ service_id: 'svc', kind: 'k', ...manifest }));
    const { services, problems } = await loadServices({ manifestFiles: [file], servicesDirs: [], nodeId: 'host-7', reserved: [], schemas });
    t.equal(services.length, 0, 'not loaded');
    return problems.map((p) => `${p.json_path} ${p.rule}`);
  };
  t.same(await load({ endpoints: ['/nodes/host-7/ok', '/nodes/other/x'] }), ['/endpoints/1 node_path'], "another node's path");
  t.same(await load({ mounts: [{ mount_id: 'm', mount_path: '/nodes/fixed' }] }), ['/mounts/0/mount_path node_path'], 'a path beside the node trees');
  t.same(
    await load({ endpoints: ['/nodes/host-7/../other/x'] }),
    ['/endpoints/0 node_path', '/mounts/0/mount_path node_path'],
    'a dot-dot segment leads out (and the default mount follows endpoints[0])',
  );
  t.same(await load({ endpoints: ['/nodes/host-7/'] }), ['/endpoints/0 node_path', '/mounts/0/mount_path node_path'], 'the node root itself is not under it');
});

t.test('a mount_id used twice in one manifest is refused, naming the later mount and the first', async (t) => {
  const file = join(dir, 'twice.json');
  const mounts = ['a', 'b', 'a', 'a'].map((id, i) => ({ mount_id: id, mount_path: `/nodes/host-7/m${i}` }));
  await writeFile(file, JSON.stringify({ service_id: 'svc', kind: 'k', mounts }));
  const { services, problems } = await loadServices({ manifestFiles: [file], servicesDirs: [], nodeId: 'host-7', reserved: [], schemas });
  t.equal(services.length, 0, 'not loaded');
  t.same(
    problems.map((p) => [p.json_path, p.rule, p.message]),
    [
      ['/mounts/2/mount_id', 'duplicate', `${file}: /mounts/2/mount_id: mount_id "a" is already used by /mounts/0`],
      ['/mounts/3/mount_id', 'duplicate', `${file}: /mounts/3/mount_id: mount_id "a" is already used by /mounts/0`],
    ],
  );
});

t.test('fillTemplate', async (t) => {
  const values = { node_id: 'n', service_id: 's' };
  t.equal(fillTemplate('/nodes/{node_id}/{service_id}/{node_id}', values), '/nodes/n/s/n');
  t.equal(fillTemplate('/nodes/{other}/{node_id', values), '/nodes/{other}/{node_id', 'unknown or unclosed placeholders stay');
  t.equal(fillTemplate('{node_id}', { node_id: '{service_id}', service_id: 's' }), '{service_id}', 'substituted text is not rescanned');
});

t.test('applyDefaults does not share default objects between services', async (t) => {
  const a = applyDefaults({ service_id: 'a', kind: 'k' }, 'n');
  const b = applyDefaults({ service_id: 'b', kind: 'k' }, 'n');
  a.capabilities.mutated = true;
  a.ops.mutated = true;
  a.schema.mutated = true;
  a.permissions.mutated = true;
  t.same([b.capabilities, b.ops, b.schema, b.permissions], [{}, MANIFEST_DEFAULTS.ops, MANIFEST_DEFAULTS.schema, MANIFEST_DEFAULTS.permissions]);
});

t.test('the code defaults equal the default keywords of the manifest schema', async (t) => {
  const schema = JSON.parse(await readFile(new URL('../../../docs/schemas/manifest.schema.json', import.meta.url), 'utf8'));
  const runtimeProperties: Record<string, { default?: unknown }> = schema.definitions.runtime.properties;
  const schemaRuntimeDefaults = Object.fromEntries(
    Object.entries(runtimeProperties)
      .filter(([, property]) => 'default' in property)
      .map(([key, property]) => [key, property.default]),
  );
  t.same(schemaRuntimeDefaults, RUNTIME_DEFAULTS);
  t.same(
    {
      version: schema.properties.version.default,
      state: schema.properties.state.default,
      endpoints: schema.definitions.endpoints.default,
      capabilities: schema.properties.capabilities.default,
      ops: schema.properties.ops.default,
      permissions: { default: schema.definitions.permissions.properties.default.default },
      schema: schema.definitions.schema.default,
    },
    MANIFEST_DEFAULTS,
  );
  const wasm = schema.definitions.wasm.properties;
  t.same({ max_memory_bytes: wasm.max_memory_bytes.default, preopens: wasm.preopens.default }, WASM_DEFAULTS);
  t.same({ mode: schema.definitions.wasm_preopen.properties.mode.default }, WASM_PREOPEN_DEFAULTS);
});

t.test('a wasm service carries its memory cap and preopens, defaults included', async (t) => {
  const { descriptor, modulePath } = await loadOne({
    service_id: 'w',
    kind: 'demo',
    runtime: { type: 'wasm', module_path: 'm/echo.wasm', wasm: { preopens: [{ host_path: 'data', guest_path: '/data' }] } },
  });
  t.equal(modulePath, join(dir, 'm/echo.wasm'), 'module_path is resolved like executable_path');
  t.same(descriptor.runtime.wasm, { max_memory_bytes: 67108864, preopens: [{ mode: 'ro', host_path: 'data', guest_path: '/data' }] });
  t.same(schemas.problems(DESCRIPTOR_ID, descriptor, 'descriptor'), [], 'the descriptor matches its schema');
  t.equal((await loadOne({ service_id: 'n', kind: 'demo' })).descriptor.runtime.wasm, undefined, 'native services have no wasm block');
});
