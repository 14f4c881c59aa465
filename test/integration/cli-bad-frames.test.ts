// The CLI's control clients check what the server sends (docs/schemas, ServerFrameCheck, as WorldFS
// and the node's control session do): a server whose reply is malformed gets a one-line error
// naming the field and a non-zero exit, never a stack trace or a crash deeper in. The server is a
// real ws server (test/helpers/scripted-control.ts), scripted to answer one request badly.
import t from 'tap';
import { acheron } from '../helpers/control.js';
import { scriptedControl, type Answer } from '../helpers/scripted-control.js';

/** A scripted server (test/helpers/scripted-control.ts) answering `type` with `payload`; closed at teardown. */
async function fakeServer(type: string, payload: unknown): Promise<string> {
  const server = await scriptedControl({ [type]: (() => payload) as Answer });
  t.teardown(() => server.close());
  return server.url;
}

const times = { last_seen_ms: 1, joined_at_ms: 1, updated_ms: 1 };
// A lease time that is no number: the command would turn it into an Invalid Date.
const node = { node_id: 'n1', node_name: 'n1', platform: {}, labels: {}, state: 'online', lease_expires_at_ms: 'soon', ...times, seq: 1, services: [] };

t.test('acheron node get: a malformed reply is one line naming the field, exit 1', async (t) => {
  const url = await fakeServer('control.node_get', node);
  const run = await acheron(['node', 'get', 'n1', '--control-url', url, '--token', 'x']);
  t.equal(run.code, 1, 'exit 1');
  t.match(run.stderr, /^acheron: control\.node_get reply: \/payload\/lease_expires_at_ms: /, 'the error names the reply and the field');
  t.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
  t.equal(run.stdout, '', 'nothing printed from the bad reply');
});

t.test('acheron node list: the same for a list whose entry lacks a field', async (t) => {
  const { services: _services, ...summary } = node;
  const url = await fakeServer('control.node_list', { nodes: [{ ...summary, lease_expires_at_ms: 1 }] });
  const run = await acheron(['node', 'list', '--control-url', url, '--token', 'x']);
  t.equal(run.code, 1, 'exit 1');
  t.match(run.stderr, /^acheron: control\.node_list reply: \/payload\/nodes\/0\/service_count: is required/, 'names the entry and the missing field');
  t.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
});

t.test('acheron node watch: a malformed watch ack stops the command with the field named, exit 1', async (t) => {
  const url = await fakeServer('control.node_service_watch', { watch_id: 'w1', enabled: true, replay_limit: 'all', replayed: 0, head_seq: 0 });
  const run = await acheron(['node', 'watch', '--control-url', url, '--token', 'x']);
  t.equal(run.code, 1, 'exit 1');
  t.match(run.stderr, /^acheron: control\.node_service_watch reply: \/payload\/replay_limit: /);
  t.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
});
