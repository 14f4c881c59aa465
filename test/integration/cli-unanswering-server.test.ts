// One-shot commands (acheron node list|get, project, invoke --node) given a server that takes the
// TCP connection and never answers it (hung, SIGSTOPped): each attempt on it waited ws's 10 s, so a
// list of that server alone failed after 32 s and `<hung>,<good>` answered after 11 s. Now such a
// server is given 2 s (QUICK_HANDSHAKE_MS) in every round but the last. And one that answers the
// upgrade with a refusal (503 during an etcd quorum loss) did answer: the command says so, and why;
// `acheron world` too, when it gives up its start after the same three rounds.
import t from 'tap';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { acheron, oneLine, startControl } from '../helpers/control.js';
import { isMounted, tempDir } from '../helpers/node.js';

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

t.test('node list: only a silent server: fails after 2 s, 2 s and a last 10 s round, saying it never answered', async (tt) => {
  const silent = await silentListener();
  const started = Date.now();
  const r = await acheron(['node', 'list', '--control-url', silent, '--token', control.adminToken]);
  const tookMs = Date.now() - started;
  tt.equal(r.code, 1, 'a failure: exit 1');
  tt.match(r.stderr, new RegExp(`no control server answered \\(3 rounds over 1 URL\\): ${silent}: no answer to the connection within 10000 ms`));
  tt.ok(tookMs < 25_000, `2 s rounds before the last, not three of 10 s (took ${tookMs} ms)`);
});

/** A real HTTP server answering every WebSocket upgrade 503 with a reason, as a server whose store lost quorum does. */
async function refusingServer(): Promise<string> {
  const server = createHttpServer();
  server.on('upgrade', (_request, socket) => {
    const body = 'control store: the token could not be checked (fc2 test)\n';
    socket.end(`HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const address = server.address();
  return `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

t.test('node list: a server that refuses the upgrade with 503: said as a refusal with its status and reason, not as no answer', async (tt) => {
  const refusing = await refusingServer();
  const alone = await acheron(['node', 'list', '--control-url', refusing, '--token', control.adminToken]);
  tt.equal(alone.code, 1, 'exit 1');
  tt.equal(
    alone.stderr,
    `acheron: unavailable: the control server refused the connection (3 rounds over 1 URL): ${refusing}: HTTP 503: control store: the token could not be checked (fc2 test)\n`,
  );
  const silent = await silentListener();
  const mixed = await acheron(['node', 'list', '--control-url', `${refusing},${silent}`, '--token', control.adminToken]);
  tt.equal(mixed.code, 1, 'exit 1');
  tt.match(
    mixed.stderr,
    /^acheron: unavailable: no control server took the connection \(3 rounds over 2 URLs\): \S+: control server refused the connection: HTTP 503: control store: the token could not be checked \(fc2 test\); \S+: no answer to the connection within 10000 ms\n$/,
  );
});

t.test('node list: a web server on that port, not a control server: one line naming what answered, not its page', async (tt) => {
  const server = createHttpServer((_request, response) => {
    const page = `<!DOCTYPE HTML>\n<html>\n<body>\n${'<li>a file name</li>\n'.repeat(200)}</body>\n</html>\n`;
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(page) }).end(page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  tt.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const address = server.address();
  const url = `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const r = await acheron(['node', 'list', '--control-url', url, '--token', control.adminToken]);
  tt.equal(r.code, 1, 'exit 1');
  tt.match(
    r.stderr,
    new RegExp(
      `^acheron: unavailable: no control server answered \\(3 rounds over 1 URL\\): ${url}: not a control server's answer: HTTP 200 with a body of \\d+ bytes \\(text/html; charset=utf-8\\)\n$`,
    ),
    'one line, no HTML',
  );
});

t.test('world --daemon: two servers that refuse the upgrade with 503: each named with its reason, in the one-shot commands words', async (tt) => {
  const dir = await tempDir(tt);
  const [a, b] = [await refusingServer(), await refusingServer()];
  const r = await acheron([
    'world',
    '--daemon',
    '--control-url',
    `${a},${b}`,
    '--token',
    control.adminToken,
    '--mount',
    join(dir, 'mnt'),
    '--log-file',
    join(dir, 'world.log'),
  ]);
  tt.equal(r.code, 1, 'exit 1');
  // It said `unavailable: no control server answered: <b>: unavailable: control server refused the connection: …`: the last URL alone.
  const why = 'HTTP 503: control store: the token could not be checked \\(fc2 test\\)';
  oneLine(
    tt,
    r.stderr,
    new RegExp(`^acheron: unavailable: every control server refused the connection \\(3 rounds over 2 URLs\\): ${a}: ${why}; ${b}: ${why}$`),
  );
  tt.notOk(await isMounted(join(dir, 'mnt')), 'nothing mounted');
});

t.test('node watch: two servers that refuse the upgrade with 503: its give-up line names each with its reason', async (tt) => {
  const [a, b] = [await refusingServer(), await refusingServer()];
  const r = await acheron(['node', 'watch', '--control-url', `${a},${b}`, '--token', control.adminToken]);
  tt.equal(r.code, 1, 'exit 1');
  // It said `unavailable: no control server answered in 5 rounds: …`, though both answered.
  const why = 'HTTP 503: control store: the token could not be checked \\(fc2 test\\)';
  tt.match(
    r.stderr,
    new RegExp(`^acheron: unavailable: every control server refused the connection \\(5 rounds over 2 URLs\\): ${a}: ${why}; ${b}: ${why}$`, 'm'),
  );
});
