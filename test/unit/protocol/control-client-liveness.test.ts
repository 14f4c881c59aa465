// ControlClient's liveness check (a server not heard from for three ping intervals is gone): a
// server that stops answering is dropped, but a client whose own process was stopped or starved
// (SIGSTOP, a suspended VM) does not blame the server for its own pause: a check that comes long
// overdue counts the silence from then. A node daemon stopped for 10 s used to drop its healthy connection
// on resume, and an invoke that had succeeded ended EHOSTUNREACH. Real ws servers; the interval
// shortened to 100 ms, the pause a busy loop on this thread.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { WebSocketServer, type WebSocket } from 'ws';
import { ControlClient } from '../../../src/protocol/control-client.js';
import { PROTOCOL } from '../../../src/protocol/envelope.js';
import { waitFor } from '../../helpers/process.js';

const INTERVAL_MS = 100;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A control server that answers the version handshake (ws answers pings by itself); `sockets` to stop one reading. */
async function server(t: Test): Promise<{ url: string; sockets: WebSocket[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const sockets: WebSocket[] = [];
  wss.on('connection', (socket) => {
    sockets.push(socket);
    socket.on('message', (data) => {
      const { type, id } = JSON.parse(data.toString()) as { type: string; id: string };
      socket.send(JSON.stringify({ channel: 'control', type, id, ok: true, payload: { protocol: PROTOCOL, server_version: 'test', principal: 'admin' } }));
    });
  });
  t.teardown(() => {
    sockets.forEach((socket) => socket.terminate());
    return new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, sockets };
}

t.test('this process stopped longer than the bound: the server is not taken for gone, the connection stays', async (t) => {
  const { url } = await server(t);
  const client = await ControlClient.connect({ url, token: 'x', pingIntervalMs: INTERVAL_MS });
  t.teardown(() => client.terminate());
  let closed = false;
  void client.closed.then(() => (closed = true));
  await sleep(2 * INTERVAL_MS);
  // Stopped for ten intervals: no timer, no read.
  for (const until = Date.now() + 10 * INTERVAL_MS; Date.now() < until;);
  await sleep(5 * INTERVAL_MS);
  t.notOk(closed, 'still connected');
  t.ok(client.isOpen);
  t.same(await client.request('control.version', { protocol: PROTOCOL }), { protocol: PROTOCOL, server_version: 'test', principal: 'admin' }, 'and it serves');
});

t.test('a server that stops answering: dropped after three ping intervals, saying so', async (t) => {
  const { url, sockets } = await server(t);
  const client = await ControlClient.connect({ url, token: 'x', pingIntervalMs: INTERVAL_MS });
  t.teardown(() => client.terminate());
  const started = Date.now();
  // Its socket no longer read: no pong, no frame.
  (sockets[0] as unknown as { _socket: { pause(): void } })._socket.pause();
  const { reason } = await client.closed;
  const after = Date.now() - started;
  t.equal(reason, `no answer from the control server for ${3 * INTERVAL_MS} ms`);
  t.ok(after >= 3 * INTERVAL_MS && after < 20 * INTERVAL_MS, `dropped after ${after} ms`);
  await waitFor(() => !client.isOpen, { what: 'the client closed' });
});
