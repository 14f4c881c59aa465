// WorldFS's catalog mirror (src/world/catalog-mirror.ts): a node read with node_get {view:
// "stored"}, then delta events applied to it. An event the read reflects is stale; one that does
// not fit what the mirror holds (a gap) is a mismatch, so the mount reads everything again.
import t from 'tap';
import { CatalogMirror } from '../../../src/world/catalog-mirror.js';
import { serviceHash } from '../../../src/protocol/service-hash.js';
import { serviceDelta } from '../../../src/control/delta.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import type { CatalogDeltaPayload, EventKind, ServiceDescriptor, StoredNode } from '../../../src/protocol/types.gen.js';

const service = (id: string, version = '1'): ServiceDescriptor => applyDefaults({ service_id: id, kind: 'k', version }, 'n');

function read(services: ServiceDescriptor[], seq: number): StoredNode {
  return {
    node_id: 'n',
    node_name: 'n',
    platform: {},
    labels: {},
    state: 'online',
    lease_expires_at_ms: 5,
    last_seen_ms: 4,
    joined_at_ms: 3,
    updated_ms: 2,
    seq,
    services,
    service_hashes: Object.fromEntries(services.map((s) => [s.service_id, serviceHash(s)])),
  };
}

/** The delta event the server would send for `before` → `after`. */
function event(seq: number, before: ServiceDescriptor[], after: ServiceDescriptor[], kind: EventKind = 'upsert'): CatalogDeltaPayload {
  const delta = serviceDelta(before, after, 100 + seq);
  const byId = new Map(after.map((s) => [s.service_id, s]));
  return {
    seq,
    kind,
    timestamp_ms: 100 + seq,
    node_id: 'n',
    node_name: 'n',
    platform: {},
    labels: { v: String(seq) },
    service_delta: delta,
    changed_services: [...delta.added, ...delta.updated].map((e) => byId.get(e.service_id) as ServiceDescriptor),
  };
}

const ids = (mirror: CatalogMirror): Array<[string, string, string]> => (mirror.node('n')?.services ?? []).map((s) => [s.service_id, s.version, s.state]);

t.test('deltas change only what they name; stale events are skipped', async (t) => {
  const v1 = [service('a'), service('b')];
  const mirror = new CatalogMirror();
  mirror.set(read(v1, 10));
  const v2 = [service('a', '2'), service('c')];
  t.equal(mirror.apply(event(9, [], v1)), 'stale', 'an event the read reflects');
  t.equal(mirror.apply(event(11, v1, v2)), 'applied');
  t.same(ids(mirror), [
    ['a', '2', 'online'],
    ['c', '1', 'online'],
  ]);
  t.same(mirror.node('n')?.labels, { v: '11' }, 'node meta from the event');
  t.equal(mirror.node('n')?.lease_expires_at_ms, 5, 'lease times are not in events: kept');
  t.equal(mirror.apply(event(11, v1, v2)), 'stale', 'the same event twice');
  t.equal(mirror.apply(event(12, v2, v2, 'offline')), 'applied');
  t.same(
    ids(mirror),
    [
      ['a', '2', 'offline'],
      ['c', '1', 'offline'],
    ],
    "an offline node's services are shown offline",
  );
  t.equal(mirror.apply(event(13, v2, v2, 'online')), 'applied');
  t.same(
    ids(mirror),
    [
      ['a', '2', 'online'],
      ['c', '1', 'online'],
    ],
    'and online again, as stored',
  );
  t.equal(mirror.apply(event(14, v2, [], 'delete')), 'applied');
  t.equal(mirror.node('n'), undefined, 'a delete removes the node');
  t.equal(mirror.apply(event(15, [], [service('x')], 'online')), 'unknown node', 'a node it does not hold: read it');
});

t.test('an event that does not fit what the mirror holds is a mismatch, and changes nothing', async (t) => {
  const v1 = [service('a'), service('b')];
  const mirror = new CatalogMirror();
  mirror.set(read(v1, 1));
  const missed = [service('a', '2'), service('b')];
  t.equal(mirror.apply(event(3, missed, [service('a', '3'), service('b')])), 'mismatch', 'an update from a version it never had (an event missed)');
  t.equal(mirror.apply(event(3, [...v1, service('z')], v1)), 'mismatch', 'the removal of a service it does not have');
  t.equal(mirror.apply(event(3, [service('a')], [service('a'), service('b', '9')])), 'mismatch', 'the addition of a service it has');
  t.same(
    ids(mirror),
    [
      ['a', '1', 'online'],
      ['b', '1', 'online'],
    ],
    'unchanged',
  );
});

t.test(
  "a service's incarnation: kept while the node keeps its runtime, another once the node retired it (world-tree.ts: open files answer ENOENT then)",
  async (t) => {
    const runs = (id: string, version = '1', executable: string | null = '/bin/cat'): ServiceDescriptor =>
      applyDefaults({ service_id: id, kind: 'k', version, runtime: { type: 'native_proc', ...(executable ? { executable_path: executable } : {}) } }, 'n');
    const mirror = new CatalogMirror();
    mirror.set(read([runs('a'), runs('b')], 1));
    const first = mirror.incarnation('n', 'a');
    t.ok(first, 'a service in the catalog has one');
    t.equal(mirror.incarnation('n', 'x'), undefined, 'a service not there has none');
    t.equal(mirror.apply(event(2, [runs('a'), runs('b')], [runs('a', '2'), runs('b')])), 'applied');
    t.equal(mirror.incarnation('n', 'a'), first, 'an update (a reload that changed it): the same runtime');
    mirror.set(read([runs('a', '2'), runs('b')], 2));
    t.equal(mirror.incarnation('n', 'a'), first, 'the node read again: the same');
    const again = new CatalogMirror(mirror);
    again.set(read([runs('a', '2'), runs('b')], 2));
    t.equal(again.incarnation('n', 'a'), first, 'the whole catalog read again (a resync): the same');
    t.equal(again.apply(event(3, [runs('a', '2'), runs('b')], [runs('b')])), 'applied');
    t.equal(again.incarnation('n', 'a'), undefined, 'removed: none');
    t.equal(again.apply(event(4, [runs('b')], [runs('a', '2'), runs('b')])), 'applied');
    const second = again.incarnation('n', 'a');
    t.ok(second && second !== first, 'added again under the same id: another (the node starts a new runtime)');
    const bBefore = again.incarnation('n', 'b');
    t.equal(again.apply(event(5, [runs('a', '2'), runs('b')], [runs('a', '2'), runs('b', '2', null)])), 'applied');
    t.not(again.incarnation('n', 'b'), bBefore, 'made catalog-only: another (the node retires its runtime)');
    t.equal(again.apply(event(6, [runs('a', '2'), runs('b', '2', null)], [], 'delete')), 'applied');
    t.equal(again.incarnation('n', 'a'), undefined, 'the node deleted: none');
    again.set(read([runs('a', '2')], 7));
    t.not(again.incarnation('n', 'a'), second, 'the node back after its delete: another');
  },
);
