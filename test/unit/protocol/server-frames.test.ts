// A client with a ServerFrameCheck (WorldFS, the node's control session) checks every frame the
// server sends before anything reads it: a malformed reply rejects its request, a malformed push
// goes to onInvalidPush, each with an error naming the field; valid frames pass unchanged.
import t from 'tap';
import { ControlClient } from '../../../src/protocol/control-client.js';
import { loadSchemas, SchemaError } from '../../../src/protocol/schemas.js';
import { ServerFrameCheck } from '../../../src/protocol/server-frames.js';
import { waitFor } from '../../helpers/process.js';
import { scriptedControl } from '../../helpers/scripted-control.js';

const schemas = await loadSchemas();
const node = {
  node_id: 'n1',
  node_name: 'n1',
  platform: {},
  labels: {},
  state: 'online',
  lease_expires_at_ms: 2,
  last_seen_ms: 1,
  joined_at_ms: 1,
  updated_ms: 1,
  seq: 3,
  services: [],
};
const marker = (watchId: unknown, headSeq: unknown, extra = {}) => ({
  channel: 'control',
  type: 'control.node_service_watch_synced',
  ok: true,
  payload: { watch_id: watchId, head_seq: headSeq, ...extra },
});

t.test('replies: a wrong type, a missing member, an extra one each reject the request naming the field', async (t) => {
  let reply: Record<string, unknown> = node;
  const server = await scriptedControl({ 'control.node_get': () => reply, 'control.node_list': () => ({ nodes: 'none' }) });
  t.teardown(() => server.close());
  const client = await ControlClient.connect({ url: server.url, token: 'x', check: new ServerFrameCheck(schemas, { events: 'delta' }) });
  t.teardown(() => client.terminate());

  t.same(await client.request('control.node_get', { node_id: 'n1' }), node, 'a valid reply resolves unchanged');
  const rejection = async (): Promise<string> =>
    client.request('control.node_get', { node_id: 'n1' }).then(
      () => 'resolved',
      (error: Error) => `${error.name}: ${error.message}`,
    );
  reply = { ...node, seq: 'three' };
  t.equal(await rejection(), 'SchemaError: control.node_get reply: /payload/seq: must be integer');
  const { state: _state, ...missing } = node;
  reply = missing;
  t.equal(await rejection(), 'SchemaError: control.node_get reply: /payload/state: is required');
  reply = { ...node, secret_sha256: 'leak' };
  t.equal(await rejection(), 'SchemaError: control.node_get reply: /payload/secret_sha256: unknown key');
  reply = node;
  t.match(
    await client.request('control.node_get', { node_id: 'n1', view: 'stored' }).catch((error: Error) => error.message),
    'control.node_get reply: /payload/service_hashes: is required',
    'the stored view is held to its own schema',
  );
  t.equal(await client.request('control.node_list').catch((error: Error) => error.message), 'control.node_list reply: /payload/nodes: must be array');
  t.ok(client.isOpen, 'the connection stays up: the caller decides');
});

t.test('an envelope that is not the protocol is named too, and an error frame still rejects as before', async (t) => {
  const server = await scriptedControl(
    {},
    {
      'control.node_get': (id) => ({ channel: 'control', type: 'control.node_get', id, ok: 'yes', payload: node }),
      'control.node_delete': (id) => ({ channel: 'control', type: 'control.error', id, ok: false, error: { code: 'not_found', message: 'no node n2' } }),
    },
  );
  t.teardown(() => server.close());
  const client = await ControlClient.connect({ url: server.url, token: 'x', check: new ServerFrameCheck(schemas, { events: 'delta' }) });
  t.teardown(() => client.terminate());
  t.equal(await client.request('control.node_get', { node_id: 'n1' }).catch((error: Error) => error.message), 'control.node_get reply: /ok: must be true');
  const refused = await client.request('control.node_delete', { node_id: 'n2' }).catch((error: Error) => error);
  t.match(refused, { name: 'ProtocolError', code: 'not_found', message: 'no node n2' });
});

t.test('pushes: a malformed one goes to onInvalidPush naming the field, the next valid one to onPush', async (t) => {
  const server = await scriptedControl({});
  t.teardown(() => server.close());
  const pushed: unknown[] = [];
  const invalid: string[] = [];
  const client = await ControlClient.connect({
    url: server.url,
    token: 'x',
    check: new ServerFrameCheck(schemas, { events: 'delta' }),
    onPush: (frame) => pushed.push(frame.ok ? frame.payload : frame.error),
    onInvalidPush: (error) => invalid.push(error instanceof SchemaError ? error.message : 'not a SchemaError'),
  });
  t.teardown(() => client.terminate());
  server.send(marker('w1', '7'));
  server.send(marker('w1', 7, { extra: 1 }));
  server.send({ channel: 'control', type: 'control.node_service_watch_synced', ok: true, payload: { watch_id: 'w1' } });
  server.send({ channel: 'control', type: 'control.node_service_event', ok: true, payload: { ...node, watch_id: 'w1', replay: false } });
  server.send('{not json');
  server.send({ channel: 'control', type: 'control.error', id: null, ok: false, error: { code: 'resync_required' } });
  server.send(marker('w1', 7));
  await waitFor(() => pushed.length > 0, { what: 'the valid push' });
  t.same(invalid, [
    'control.node_service_watch_synced push: /payload/head_seq: must be integer',
    'control.node_service_watch_synced push: /payload/extra: unknown key',
    'control.node_service_watch_synced push: /payload/head_seq: is required',
    'control.node_service_event push: /payload/kind: is required (and 9 more)',
    'server frame: /: not JSON',
    'control.error push: /error/message: is required',
  ]);
  t.same(pushed, [{ watch_id: 'w1', head_seq: 7 }], 'only the valid frame reached onPush');
});
