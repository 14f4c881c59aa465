// ControlClient.retire (a client moving to another server): `closed` resolves at once and no push
// or new request goes through, but a request in flight still gets its reply (a relayed invoke sent
// before a move ends there, not in ENOTCONN); then the socket closes. A real ws server that answers
// `slow` requests 200 ms late.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { WebSocketServer } from 'ws';
import { ControlClient } from '../../../src/protocol/control-client.js';
import { PROTOCOL } from '../../../src/protocol/envelope.js';
import { waitFor } from '../../helpers/process.js';

t.test('retired: the request in flight is answered, pushes and new requests are not, then the socket closes', async (t) => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  let socketClosed = false;
  server.on('connection', (socket) => {
    socket.on('close', () => (socketClosed = true));
    socket.on('message', (data) => {
      const { type, id } = JSON.parse(data.toString()) as { type: string; id: string };
      const reply = (payload: object): void => socket.send(JSON.stringify({ channel: 'control', type, id, ok: true, payload }));
      if (type === 'control.version') return reply({ protocol: PROTOCOL, server_version: 'test', principal: 'admin' });
      // A push first, then the late reply: the push must not reach a retired client.
      setTimeout(() => {
        socket.send(JSON.stringify({ channel: 'control', type: 'control.node_service_watch_progress', ok: true, payload: { head_seq: 1 } }));
        reply({ answered: true });
      }, 200);
    });
  });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const pushes: unknown[] = [];
  const client = await ControlClient.connect({
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    token: 'x',
    onPush: (frame) => pushes.push(frame),
  });
  const inFlight = client.request<{ answered: boolean }>('slow');
  client.retire('moved to ws://elsewhere');
  t.same(await client.closed, { code: 1000, reason: 'moved to ws://elsewhere' }, '`closed` resolves at once, saying why');
  t.notOk(client.isOpen, 'not open for its user');
  await t.rejects(client.request('slow'), { code: 'unavailable', message: /moved to ws:\/\/elsewhere/ }, 'a new request is refused');
  t.same(await inFlight, { answered: true }, 'the request in flight got its reply');
  t.same(pushes, [], 'no push delivered after the retire');
  await waitFor(() => socketClosed, { what: 'the socket closed once nothing was in flight', timeoutMs: 5000 });
  t.pass('the socket closed');
});
