// SPEC §6 service_delta: `hash` = "0x" + the first 8 bytes (16 hex digits) of SHA-256 over the RFC 8785
// canonical JSON of the entry, so key order and service order never matter; added / updated (with
// previous_version, previous_hash) / removed, sorted by service_id; `changed` iff any of them.
import t from 'tap';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { entriesDelta, jsonBytes, serviceDelta, serviceEntry, serviceHash, type ServiceEntry } from '../../../src/control/delta.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import type { ServiceDescriptor } from '../../../src/protocol/types.gen.js';

const HASH = /^0x[0-9a-f]{16}$/;
const NOW = 1_700_000_000_000;

function service(serviceId: string, extra: { version?: string; capabilities?: Record<string, unknown> } = {}): ServiceDescriptor {
  return applyDefaults({ service_id: serviceId, kind: 'k', ...extra }, 'n');
}

/** The same value with every object's keys in reverse order (arrays keep their order). */
function reverseKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reverseKeys) as T;
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reverseKeys(v)]),
  ) as T;
}

const ids = (entries: Array<{ service_id: string }>): string[] => entries.map((e) => e.service_id);

t.test('serviceHash: 0x + 16 hex digits of SHA-256 over the RFC 8785 canonical JSON', async (t) => {
  const descriptor: ServiceDescriptor = {
    version: '1',
    service_id: 'a',
    kind: 'k',
    state: 'online',
    endpoints: ['/nodes/n/services/a'],
    capabilities: { b: 1.5, a: { z: true, é: 'ü', n: 1e21 } },
    mounts: [{ mount_id: 'a', mount_path: '/nodes/n/services/a' }],
    ops: {},
    permissions: { default: 'deny' },
    schema: {},
    runtime: {
      type: 'native_proc',
      abi: 'namespace-driver-v1',
      timeout_ms: 1,
      kill_grace_ms: 2,
      max_output_bytes: 3,
      max_input_bytes: 4,
      max_concurrency: 5,
      max_queue: 6,
      mode: 'spawn',
      jobs_keep: 7,
    },
  };
  // Written by hand: keys sorted by UTF-16 code unit ("é" after "z"), no whitespace, ES number form.
  const canonical =
    '{"capabilities":{"a":{"n":1e+21,"z":true,"é":"ü"},"b":1.5},"endpoints":["/nodes/n/services/a"],"kind":"k",' +
    '"mounts":[{"mount_id":"a","mount_path":"/nodes/n/services/a"}],"ops":{},"permissions":{"default":"deny"},' +
    '"runtime":{"abi":"namespace-driver-v1","jobs_keep":7,"kill_grace_ms":2,"max_concurrency":5,"max_input_bytes":4,"max_output_bytes":3,"max_queue":6,"mode":"spawn","timeout_ms":1,"type":"native_proc"},' +
    '"schema":{},"service_id":"a","state":"online","version":"1"}';
  const expected = '0x' + createHash('sha256').update(canonical, 'utf8').digest('hex').slice(0, 16);
  t.equal(serviceHash(descriptor), expected);
  t.match(serviceHash(descriptor), HASH);
  t.equal(serviceHash(reverseKeys(descriptor)), expected, 'key order does not matter');
});

t.test('serviceHash: any difference, also deep or in an array order, changes the hash', async (t) => {
  const base = service('svc');
  const hashes = new Set([
    serviceHash(base),
    serviceHash(service('svc', { version: '2' })),
    serviceHash({ ...base, state: 'offline' }),
    serviceHash({ ...base, runtime: { ...base.runtime, timeout_ms: base.runtime.timeout_ms + 1 } }),
    serviceHash({ ...base, endpoints: ['/nodes/n/a', '/nodes/n/b'] }),
    serviceHash({ ...base, endpoints: ['/nodes/n/b', '/nodes/n/a'] }),
  ]);
  t.equal(hashes.size, 6, 'six different descriptors, six hashes');
  for (const hash of hashes) t.match(hash, HASH);
});

t.test('delta: add, update with previous_version/previous_hash, remove, sorted by service_id', async (t) => {
  const before = [service('b'), service('keep'), service('z-gone'), service('a-gone')];
  const after = [service('keep'), service('y-new'), service('b', { version: '2' }), service('c-new')];
  const delta = serviceDelta(before, after, NOW);
  t.equal(delta.changed, true);
  t.equal(delta.timestamp_ms, NOW);
  t.same(delta.added, [
    { service_id: 'c-new', version: '1', hash: serviceHash(service('c-new')) },
    { service_id: 'y-new', version: '1', hash: serviceHash(service('y-new')) },
  ]);
  t.same(delta.updated, [
    { service_id: 'b', version: '2', hash: serviceHash(service('b', { version: '2' })), previous_version: '1', previous_hash: serviceHash(service('b')) },
  ]);
  t.same(delta.removed, [
    { service_id: 'a-gone', version: '1', hash: serviceHash(service('a-gone')) },
    { service_id: 'z-gone', version: '1', hash: serviceHash(service('z-gone')) },
  ]);
});

t.test('delta: a change without a version bump is an update with equal versions', async (t) => {
  const delta = serviceDelta([service('s')], [service('s', { capabilities: { x: 1 } })], NOW);
  t.equal(delta.changed, true);
  t.equal(delta.updated.length, 1);
  t.equal(delta.updated[0]?.version, delta.updated[0]?.previous_version);
  t.not(delta.updated[0]?.hash, delta.updated[0]?.previous_hash);
});

t.test('delta: unchanged, reordered and key-reordered catalogs are no change', async (t) => {
  const catalog = [service('a'), service('b'), service('c')];
  const none = { changed: false, timestamp_ms: NOW, added: [], updated: [], removed: [] };
  t.same(serviceDelta(catalog, catalog, NOW), none, 'unchanged');
  t.same(serviceDelta(catalog, [...catalog].reverse(), NOW), none, 'reordered');
  t.same(serviceDelta(catalog, reverseKeys(catalog), NOW), none, 'keys reordered');
  t.same(serviceDelta([], [], NOW), none, 'empty');
});

t.test('delta: from and to an empty catalog', async (t) => {
  const catalog = [service('b'), service('a')];
  t.same(ids(serviceDelta([], catalog, NOW).added), ['a', 'b']);
  t.same(ids(serviceDelta(catalog, [], NOW).removed), ['a', 'b']);
  t.equal(serviceDelta(catalog, [], NOW).changed, true);
});

const arbitraryCatalog = fc
  .uniqueArray(
    fc.record({
      // A small id pool, so that two catalogs share ids often (updates), in byte-order-tricky spellings.
      id: fc.constantFrom('a', 'B', 'b', '_x', '-x', '.x', '10', '9', 'a.b'),
      version: fc.constantFrom('1', '2', '3'),
      capabilities: fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.integer(), fc.boolean(), fc.string({ maxLength: 4 })), { maxKeys: 3 }),
    }),
    { selector: (s) => s.id, maxLength: 8 },
  )
  .map((entries) => entries.map((e) => service(e.id, { version: e.version, capabilities: e.capabilities })));

/** A catalog in another service order and with every object's keys reversed. */
const shuffled = (catalog: ServiceDescriptor[]) => fc.shuffledSubarray(catalog, { minLength: catalog.length, maxLength: catalog.length }).map(reverseKeys);

t.test('property: delta(a, a) is unchanged, also reordered', async (t) => {
  fc.assert(
    fc.property(
      arbitraryCatalog.chain((a) => fc.tuple(fc.constant(a), shuffled(a))),
      ([a, reordered]) => {
        const same = serviceDelta(a, a, NOW);
        const moved = serviceDelta(a, reordered, NOW);
        return !same.changed && !moved.changed && [same, moved].every((d) => d.added.length + d.updated.length + d.removed.length === 0);
      },
    ),
  );
  t.pass('no counterexample');
});

t.test('property: delta(a, b) is the set difference, whatever the order of either side', async (t) => {
  const pair = fc.tuple(arbitraryCatalog, arbitraryCatalog).chain(([a, b]) => fc.tuple(fc.constant(a), fc.constant(b), shuffled(a), shuffled(b)));
  fc.assert(
    fc.property(pair, ([a, b, a2, b2]) => {
      const delta = serviceDelta(a, b, NOW);
      const before = new Map(a.map((s) => [s.service_id, s]));
      const after = new Map(b.map((s) => [s.service_id, s]));
      const sorted = (list: string[]): string[] => [...list].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      const expectedUpdated = b
        .filter((s) => before.has(s.service_id) && serviceHash(before.get(s.service_id) as ServiceDescriptor) !== serviceHash(s))
        .map((s) => s.service_id);
      const entriesRight = delta.updated.every((u) => {
        const old = before.get(u.service_id) as ServiceDescriptor;
        const now = after.get(u.service_id) as ServiceDescriptor;
        return u.previous_hash === serviceHash(old) && u.hash === serviceHash(now) && u.previous_version === old.version && u.version === now.version;
      });
      return (
        isDeepStrictEqual(serviceDelta(a2, b2, NOW), delta) &&
        isDeepStrictEqual(ids(delta.added), sorted(b.filter((s) => !before.has(s.service_id)).map((s) => s.service_id))) &&
        isDeepStrictEqual(ids(delta.removed), sorted(a.filter((s) => !after.has(s.service_id)).map((s) => s.service_id))) &&
        isDeepStrictEqual(ids(delta.updated), sorted(expectedUpdated)) &&
        entriesRight &&
        delta.changed === delta.added.length + delta.updated.length + delta.removed.length > 0
      );
    }),
    { numRuns: 200 },
  );
  t.pass('no counterexample');
});

t.test('serviceEntry: an equal JSON reuses the stored entry (no second hash); a new one is hashed', async (t) => {
  const s = service('s', { version: '1' });
  const stored = serviceEntry(s, Buffer.from(JSON.stringify(s)), true);
  t.equal(stored.hash, serviceHash(s), 'hash of the descriptor');
  t.equal(serviceEntry(s, Buffer.from(JSON.stringify(s)), true, stored), stored, 'same JSON: the same entry');
  const unvalidated = serviceEntry(s, Buffer.from(JSON.stringify(s)), false);
  const revalidated = serviceEntry(s, Buffer.from(JSON.stringify(s)), true, unvalidated);
  t.not(revalidated, unvalidated, 'validated now: a new entry');
  t.same({ ...revalidated, validated: false }, unvalidated, 'with the same hash and JSON');
  const reordered = reverseKeys(s);
  const entry = serviceEntry(reordered, Buffer.from(JSON.stringify(reordered)), true, stored);
  t.not(entry, stored, 'other JSON: a new entry');
  t.equal(entry.hash, stored.hash, 'key order does not change the hash');
  t.same(entriesDelta([stored], [entry], NOW).changed, false, 'so the delta sees no change');
});

t.test('property: entriesDelta over entries is serviceDelta over descriptors', async (t) => {
  fc.assert(
    fc.property(arbitraryCatalog, arbitraryCatalog, (a, b) => {
      const entries = (services: ServiceDescriptor[]): ServiceEntry[] => services.map((s) => serviceEntry(s, Buffer.from(JSON.stringify(s)), true));
      return isDeepStrictEqual(entriesDelta(entries(a), entries(b), NOW), serviceDelta(a, b, NOW));
    }),
  );
  t.pass('same delta');
});

t.test('jsonBytes: each text as UTF-8 in a memory block of its own (a stored descriptor keeps no other alive)', async (t) => {
  const texts = ['{"a":1}', '{"é":"ü"}', '', 'x'.repeat(5000)];
  const bytes = jsonBytes(texts);
  t.same(
    bytes.map((b) => b.toString()),
    texts,
  );
  for (const [index, b] of bytes.entries()) {
    t.equal(b.byteOffset, 0, `text ${index} starts its block`);
    t.equal(b.buffer.byteLength, b.length, `text ${index}'s block holds only it (not a slice of a shared block or of the 8 KiB pool)`);
  }
  t.equal(new Set(bytes.map((b) => b.buffer)).size, texts.length, 'no two share a block');
});
