// One catalog event, two shapes (SPEC §6): the full shape (the upsert reply plus seq, kind, time;
// the node's whole catalog) and the delta shape (`include: "delta"`: node meta, service_delta and
// the descriptors of the added and updated services). Both are built from the catalog's own
// descriptor bytes, each once while anyone holds it.
import t from 'tap';
import { CatalogEvent, type EventNode } from '../../../src/control/catalog-event.js';
import { EventRing } from '../../../src/control/event-ring.js';
import { jsonBytes, serviceDelta } from '../../../src/control/delta.js';
import { offlineView } from '../../../src/protocol/catalog-event.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import type { CatalogEventPayload, ServiceDescriptor } from '../../../src/protocol/types.gen.js';

const service = (id: string, version = '1'): ServiceDescriptor => applyDefaults({ service_id: id, kind: 'k', version, capabilities: { note: 'é✓' } }, 'n');
const stored = (services: ServiceDescriptor[]): EventNode['services'] => {
  const bytes = jsonBytes(services.map((s) => JSON.stringify(s)));
  return services.map((s, index) => ({ service_id: s.service_id, json: bytes[index] as Buffer }));
};
const node = (services: ServiceDescriptor[], state: 'online' | 'offline' = 'online'): EventNode => ({
  node_id: 'n',
  node_name: 'N',
  platform: { os: 'linux' },
  labels: { rack: 'r1' },
  state,
  services: stored(services),
});
const payload = (event: CatalogEvent, body: Buffer): Record<string, unknown> =>
  JSON.parse(`{${event.head.toString()}${body.toString()}`) as Record<string, unknown>;

const before = [service('a'), service('b'), service('c')];
const after = [service('a', '2'), service('c'), service('d')];
const delta = serviceDelta(before, after, 7);

t.test('the full shape: the whole catalog after the event; the delta shape: what changed', async (t) => {
  const event = new CatalogEvent(12, { kind: 'upsert', timestamp_ms: 7, node: node(after), delta });
  const meta = { seq: 12, kind: 'upsert', timestamp_ms: 7, node_id: 'n', node_name: 'N', platform: { os: 'linux' }, labels: { rack: 'r1' } };
  t.strictSame(payload(event, event.body), { ...meta, services: after, service_delta: delta });
  t.strictSame(
    payload(event, event.deltaBody),
    { ...meta, changed_services: [service('d'), service('a', '2')], service_delta: delta },
    'added, then updated; removed ones only by id in service_delta',
  );
  t.equal(event.body, event.body, 'built once while held');
  t.equal(event.deltaBody, event.deltaBody);
});

t.test('an offline node: the full shape marks its services offline; the delta shape changes none', async (t) => {
  const unchanged = serviceDelta(after, after, 8);
  const event = new CatalogEvent(13, { kind: 'offline', timestamp_ms: 8, node: node(after, 'offline'), delta: unchanged });
  t.strictSame(payload(event, event.body).services, after.map(offlineView));
  t.strictSame(payload(event, event.deltaBody).changed_services, []);
});

t.test("events read back from the log share the bytes of equal descriptors, and the catalog's", async (t) => {
  const record = (seq: number, services: ServiceDescriptor[]): CatalogEventPayload => ({
    seq,
    kind: 'upsert',
    timestamp_ms: seq,
    node_id: 'n',
    node_name: 'N',
    platform: {},
    labels: {},
    services,
    service_delta: delta,
  });
  const interned = new Map<string, Buffer>();
  const first = CatalogEvent.fromRecord(record(1, before), interned);
  const second = CatalogEvent.fromRecord(record(2, after), interned);
  t.equal(second.node.services[1]?.json, first.node.services[2]?.json, 'c, unchanged between them: one buffer');
  t.strictSame(payload(second, second.body).services, after, 'the same full shape as written');
  const catalog = new Map(stored(after).map((s) => [s.service_id, s]));
  second.share(catalog);
  t.equal(second.node.services[0], catalog.get('a'), 'shared with the catalog when equal');
  t.strictSame(payload(second, second.body).services, after);
});

t.test('changedBytes: the bytes of the added and updated descriptors, which the ring counts against its byte bound', async (t) => {
  const event = new CatalogEvent(12, { kind: 'upsert', timestamp_ms: 7, node: node(after), delta });
  const changed = [service('a', '2'), service('d')].reduce((sum, s) => sum + Buffer.byteLength(JSON.stringify(s)), 0);
  t.equal(event.changedBytes, changed, 'a (updated) and d (added); c unchanged');
  const ring = new EventRing(1024, [], 0, undefined, 2 * changed);
  for (let seq = 1; seq <= 5; seq++) ring.add(new CatalogEvent(seq, { kind: 'upsert', timestamp_ms: seq, node: node(after), delta }));
  t.same(
    ring.retained().map((e) => e.seq),
    [4, 5],
    'past its byte bound the oldest events go, though the count bound is far',
  );
  t.equal(ring.retainedAfter, 3, 'a resume from before seq 4 is then resync_required');
  const one = new EventRing(1024, [], 0, undefined, 1);
  one.add(new CatalogEvent(9, { kind: 'upsert', timestamp_ms: 9, node: node(after), delta }));
  t.same(
    one.retained().map((e) => e.seq),
    [9],
    'the newest event stays even when it alone is over the bound',
  );
});
