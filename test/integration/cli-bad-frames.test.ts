// The CLI's control clients check what the server sends (docs/schemas, ServerFrameCheck, as WorldFS
// and the node's control session do): a server whose reply is malformed gets a one-line error
// naming the field and a non-zero exit, never a stack trace or a crash deeper in. The server is a
// real ws server in this test, scripted to answer `control.version` well and everything else badly.
import t from 'tap';
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { acheron } from '../helpers/control.js';

/** A ws server that answers each request with what `answer` makes of it (one frame). */
async function fakeServer(answer: (type: string) => Record<string, unknown>): Promise<string> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => {
    for (const client of server.clients) client.terminate();
    server.close();
  });
  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      const request = JSON.parse(data.toString()) as { type: string; id: string };
      const payload = request.type === 'control.version' ? { protocol: 'unified-v2', server_version: 'fake', principal: 'admin' } : answer(request.type);
      socket.send(JSON.stringify({ channel: 'control', type: request.type, id: request.id, ok: true, payload }));
    });
  });
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const node = {
  node_id: 'n1',
  node_name: 'n1',
  platform: {},
  labels: {},
  state: 'online',
  // A time that is no number: the command would turn it into an Invalid Date.
  lease_expires_at_ms: 'soon',
  last_seen_ms: 1,
  joined_at_ms: 1,
  updated_ms: 1,
  seq: 1,
  services: [],
};

t.test('acheron node get: a malformed reply is one line naming the field, exit 1', async (t) => {
  const url = await fakeServer(() => node);
  const run = await acheron(['node', 'get', 'n1', '--control-url', url, '--token', 'x']);
  t.equal(run.code, 1, 'exit 1');
  t.match(run.stderr, /^acheron: control\.node_get reply: \/payload\/lease_expires_at_ms: /, 'the error names the reply and the field');
  t.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
  t.equal(run.stdout, '', 'nothing printed from the bad reply');
});

t.test('acheron node list: the same for a list whose entry lacks a field', async (t) => {
  const { services: _services, ...summary } = node;
  const url = await fakeServer(() => ({ nodes: [{ ...summary, lease_expires_at_ms: 1 }] }));
  const run = await acheron(['node', 'list', '--control-url', url, '--token', 'x']);
  t.equal(run.code, 1, 'exit 1');
  t.match(run.stderr, /^acheron: control\.node_list reply: \/payload\/nodes\/0\/service_count: is required/, 'names the entry and the missing field');
  t.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
});

t.test('acheron node watch: a malformed watch ack stops the command with the field named, exit 1', async (t) => {
  const url = await fakeServer(() => ({ watch_id: 'w1', enabled: true, replay_limit: 'all', replayed: 0, head_seq: 0 }));
  const run = await acheron(['node', 'watch', '--control-url', url, '--token', 'x']);
  t.equal(run.code, 1, 'exit 1');
  t.match(run.stderr, /^acheron node watch: bad frame from the control server: control\.node_service_watch reply: \/payload\/replay_limit: /);
  t.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
});
