// WorldFS's catalog client over a real ws server that sends it one malformed delta event: the
// event is logged (naming the field) and dropped, its node read again, and the next valid event
// applies as usual; the connection stays up.
import { Writable } from 'node:stream';
import pino from 'pino';
import t from 'tap';
import { serviceDelta } from '../../../src/control/delta.js';
import { applyDefaults } from '../../../src/manifest/index.js';
import { loadSchemas } from '../../../src/protocol/schemas.js';
import { WorldCatalog } from '../../../src/world/world-catalog.js';
import { waitFor } from '../../helpers/process.js';
import { scriptedControl } from '../../helpers/scripted-control.js';

const meta = { node_id: 'n1', node_name: 'n1', platform: {}, labels: {} };
const times = { lease_expires_at_ms: 9e12, last_seen_ms: 1, joined_at_ms: 1, updated_ms: 1 };
const a = applyDefaults({ service_id: 'a', kind: 'k' }, 'n1');

t.test('a malformed event is logged and dropped; the next valid one applies', async (t) => {
  const server = await scriptedControl({
    'control.node_service_watch': () => ({ watch_id: 'w1', enabled: true, include: 'delta', replay_limit: 0, replayed: 0, head_seq: 0 }),
    'control.node_list': () => ({ nodes: [{ ...meta, ...times, state: 'online', seq: 0, service_count: 0 }] }),
    'control.node_get': () => ({ ...meta, ...times, state: 'online', seq: 0, services: [], service_hashes: {} }),
  });
  t.teardown(() => server.close());
  const logged: Array<{ level: number; msg: string }> = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
        done();
      },
    }),
  );
  const catalog = new WorldCatalog({ urls: [server.url], token: 'x', schemas: await loadSchemas(), log });
  t.teardown(() => catalog.stop());
  await catalog.start();
  const reads = (): number => server.requests.filter((r) => r.type === 'control.node_get').length;
  t.equal(reads(), 1);

  const event = {
    watch_id: 'w1',
    replay: false,
    seq: 1,
    kind: 'upsert',
    timestamp_ms: 5,
    ...meta,
    changed_services: [a],
    service_delta: serviceDelta([], [a], 5),
  };
  server.send({ channel: 'control', type: 'control.node_service_event', ok: true, payload: { ...event, seq: 'one' } });
  const error = await waitFor(() => logged.find((line) => line.level >= 50), { what: 'the error log line' });
  t.equal(error.msg, 'bad frame from the control server, dropped: control.node_service_event push: /payload/seq: must be integer');
  await waitFor(() => reads() === 2, { what: 'node n1 read again' });
  t.same(catalog.node('n1')?.services, [], 'nothing of the malformed event was applied');

  server.send({ channel: 'control', type: 'control.node_service_event', ok: true, payload: event });
  await waitFor(() => catalog.node('n1')?.services.length === 1, { what: 'the valid event applied' });
  t.same(catalog.node('n1')?.services, [a]);
  t.equal(catalog.node('n1')?.seq, 1);
  t.ok(catalog.connected, 'still connected');
  t.equal(server.requests.filter((r) => r.type === 'control.node_service_watch').length, 1, 'never reconnected');
});
