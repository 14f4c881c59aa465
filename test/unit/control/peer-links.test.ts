// Relays across servers (docs/control-protocol.md): a peer link that cannot be opened answers
// EHOSTUNREACH, never retried: at once when the peer refuses the connection, and after the link's
// handshake bound (10 s) when the peer takes the TCP connection and never completes the WebSocket
// handshake (a hung server), naming that bound. A TCP listener that accepts and says nothing.
import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { pino } from 'pino';
import { PeerLinks } from '../../../src/control/peer-links.js';
import { loadSchemas } from '../../../src/protocol/schemas.js';
import type { RelayPayload } from '../../../src/protocol/types.gen.js';

const links = new PeerLinks('server.s1.secret', await loadSchemas(), pino({ level: 'silent' }));
t.teardown(() => links.close());
const relay: RelayPayload = { node_id: 'n1', request_id: 'r1', op: 'stat', path: '/fs/data', timeout_ms: 60_000 };

/** A port where a listener takes connections and never answers; and one where nobody listens. */
async function listen(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

t.test('a peer that refuses the connection: EHOSTUNREACH at once', async (t) => {
  const closed = await listen();
  await closed.close();
  const started = Date.now();
  t.match(await links.forward({ serverId: 's2', url: `ws://127.0.0.1:${closed.port}` }, relay, 'a:c1'), {
    ok: false,
    errno: 'EHOSTUNREACH',
    message: /ECONNREFUSED/,
  });
  t.ok(Date.now() - started < 2_000, `at once (${Date.now() - started} ms)`);
});

t.test('a peer that takes the connection and never completes the handshake: EHOSTUNREACH after 10 s, naming the bound', async (t) => {
  const hung = await listen();
  t.teardown(() => hung.close());
  const started = Date.now();
  const outcome = await links.forward({ serverId: 's3', url: `ws://127.0.0.1:${hung.port}` }, relay, 'a:c1');
  const waited = Date.now() - started;
  t.match(outcome, { ok: false, errno: 'EHOSTUNREACH', message: /server s3 .*out of reach: .*no answer to the connection within 10000 ms/ });
  t.ok(waited >= 9_500 && waited < 12_000, `the handshake's bound, not the relay's 60 s (${waited} ms)`);
});
