// One-shot commands (acheron node list|get, project, invoke --node) given a server that takes the
// TCP connection and never answers it (hung, SIGSTOPped): each attempt on it waited ws's 10 s, so a
// list of that server alone failed after 32 s and `<hung>,<good>` answered after 11 s. Now such a
// server is given 2 s (ONE_SHOT_HANDSHAKE_MS) before the next URL is tried.
import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { acheron, startControl } from '../helpers/control.js';

const control = await startControl(t);

/** A real listener that accepts every connection and never says a word. */
async function silentListener(): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const address = server.address();
  return `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

t.test('node list: a silent server first, a live one second: answered by the second within a few seconds', async (tt) => {
  const silent = await silentListener();
  const started = Date.now();
  const r = await acheron(['node', 'list', '--control-url', `${silent},${control.url}`, '--token', control.adminToken]);
  const tookMs = Date.now() - started;
  tt.equal(r.code, 0, `listed (${r.stderr.trim()})`);
  // 2 s for the silent one, at most 250 ms to the next, and the CLI's own start (slow on a loaded machine).
  tt.ok(tookMs < 7_000, `within 7 s, not after ws's 10 s handshake timeout (took ${tookMs} ms)`);
});

t.test('node list: only a silent server: fails after its rounds, in seconds, saying it never answered', async (tt) => {
  const silent = await silentListener();
  const started = Date.now();
  const r = await acheron(['node', 'list', '--control-url', silent, '--token', control.adminToken]);
  const tookMs = Date.now() - started;
  tt.equal(r.code, 1, 'a failure: exit 1');
  tt.match(r.stderr, new RegExp(`no control server answered \\(3 rounds over 1 URL\\): ${silent}: no answer to the connection within 2000 ms`));
  tt.ok(tookMs < 15_000, `3 rounds of 2 s and their pauses, not of 10 s (took ${tookMs} ms)`);
});
