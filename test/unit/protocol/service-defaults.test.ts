// SPEC §2 defaults, shared by the node (manifests) and the control server (upserted descriptors,
// from any implementation): what is left out is filled in, placeholders are replaced, a complete
// descriptor is kept as it is (so its JSON stays the one sent), and a field of the wrong type is
// left for the schema to refuse. Paths must lie under the node's own /nodes/<node_id>/.
import t from 'tap';
import { foreignPaths, isUnderNode, RUNTIME_DEFAULTS, WASM_DEFAULTS, withServiceDefaults } from '../../../src/protocol/service-defaults.js';
import { loadSchemas, SCHEMA_BASE } from '../../../src/protocol/schemas.js';

const schemas = await loadSchemas();
const DESCRIPTOR = `${SCHEMA_BASE}service-descriptor.schema.json`;

t.test('a descriptor that leaves fields out gets them; the result is a valid descriptor', async (t) => {
  const partial = { service_id: 's', kind: 'k', runtime: { executable_path: '/bin/cat' }, endpoints: ['/nodes/{node_id}/x/{service_id}'] };
  const full = withServiceDefaults(partial, 'n1');
  t.same(schemas.problems(DESCRIPTOR, full, 'descriptor'), []);
  t.match(full, {
    version: '1',
    state: 'online',
    endpoints: ['/nodes/n1/x/s'],
    mounts: [{ mount_id: 's', mount_path: '/nodes/n1/x/s', state: 'online' }],
    permissions: { default: 'deny-by-default' },
  });
  t.same(full.runtime, { ...RUNTIME_DEFAULTS, executable_path: '/bin/cat' }, 'runtime merged over its defaults');
  t.same(
    partial,
    { service_id: 's', kind: 'k', runtime: { executable_path: '/bin/cat' }, endpoints: ['/nodes/{node_id}/x/{service_id}'] },
    'the input is not changed',
  );
});

t.test('a wasm service gets its memory cap and each preopen its mode, as from a manifest', async (t) => {
  const bare = withServiceDefaults({ service_id: 'w', kind: 'k', runtime: { type: 'wasm', module_path: '/opt/echo.wasm' } }, 'n1');
  t.same((bare.runtime as { wasm: unknown }).wasm, WASM_DEFAULTS, 'no wasm block: the defaults');
  const partial = withServiceDefaults(
    {
      service_id: 'w',
      kind: 'k',
      runtime: { type: 'wasm', module_path: '/opt/echo.wasm', wasm: { preopens: [{ host_path: '/srv/data', guest_path: '/data' }] } },
    },
    'n1',
  );
  t.same((partial.runtime as { wasm: unknown }).wasm, {
    max_memory_bytes: WASM_DEFAULTS.max_memory_bytes,
    preopens: [{ mode: 'ro', host_path: '/srv/data', guest_path: '/data' }],
  });
  t.same(schemas.problems(DESCRIPTOR, partial, 'descriptor'), []);
  t.equal(withServiceDefaults(partial as { service_id: string }, 'n1'), partial, 'complete once defaulted');
  t.notOk('wasm' in (withServiceDefaults({ service_id: 'n', kind: 'k' }, 'n1').runtime as object), 'a native service gets no wasm block');
});

t.test('a complete descriptor is returned as it is, key order and all', async (t) => {
  const complete = { ...withServiceDefaults({ service_id: 's', kind: 'k', permissions: { allow_roles: ['user'] } }, 'n1'), service_id: 's' };
  t.equal(withServiceDefaults(complete, 'n1'), complete);
});

t.test('fields of the wrong type stay wrong: the schema refuses them', async (t) => {
  for (const [field, value] of [
    ['runtime', 5],
    ['permissions', 'open'],
    ['endpoints', '/nodes/n1/x'],
    ['mounts', [7]],
  ] as const) {
    const result = withServiceDefaults({ service_id: 's', kind: 'k', [field]: value }, 'n1');
    t.same(result[field], value, `${field} left as given`);
    t.ok(schemas.problems(DESCRIPTOR, result, 'descriptor').length > 0, `${field}: invalid`);
  }
});

t.test('isUnderNode and foreignPaths', async (t) => {
  t.ok(isUnderNode('/nodes/n1/services/a', 'n1'));
  t.ok(isUnderNode('/nodes/n1/fs', 'n1'));
  t.notOk(isUnderNode('/nodes/n1', 'n1'), 'the node root itself');
  t.notOk(isUnderNode('/nodes/n1/', 'n1'));
  t.notOk(isUnderNode('/nodes/n10/x', 'n1'), 'a node whose id starts the same');
  t.notOk(isUnderNode('/nodes/n1/../n2/x', 'n1'), 'a dot-dot segment');
  t.notOk(isUnderNode('/nodes/n1/./x', 'n1'), 'a dot segment');
  t.same(foreignPaths({ endpoints: ['/nodes/n1/a', '/nodes/n2/a'], mounts: [{ mount_path: '/srv/a' }] }, 'n1'), [
    { pointer: '/endpoints/1', path: '/nodes/n2/a' },
    { pointer: '/mounts/0/mount_path', path: '/srv/a' },
  ]);
});
