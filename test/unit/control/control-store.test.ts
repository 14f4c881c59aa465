// The control server's start-up when something fails part way: what was opened is let go (no
// descriptor of the data dir stays open, its listeners are closed), and the same data dir serves a
// start that works.
import t from 'tap';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { ControlServer } from '../../../src/control/control-server.js';
import { openControlStore } from '../../../src/control/control-store.js';
import { loadSchemas } from '../../../src/protocol/schemas.js';
import { tempDir } from '../../helpers/node.js';
import { openFilesUnder } from '../../helpers/open-files.js';

const log = pino({ level: 'silent' });
const schemas = await loadSchemas();
const storeOptions = (dataDir: string) => ({
  dataDir,
  serverId: 'test',
  advertiseUrl: 'ws://127.0.0.1:1',
  advertiseUrlIsBound: false,
  catalog: { leaseTtlMs: 60_000, offlineGraceMs: 15_000 },
});
const start = (dataDir: string, httpPort: number) =>
  ControlServer.start({
    listen: { host: '127.0.0.1', port: 0 },
    httpListen: { host: '127.0.0.1', port: httpPort },
    dataDir,
    offlineGraceMs: 15_000,
    leaseTtlMs: 60_000,
    log,
    schemas,
  });

t.test('a file store whose event log cannot open: the error, and the token and project files closed', async (t) => {
  const dataDir = join(await tempDir(t), 'data');
  // A directory where the event log's file goes.
  await mkdir(join(dataDir, 'node-service-events.ndjson'), { recursive: true });
  await t.rejects(openControlStore(storeOptions(dataDir), log), { code: 'EISDIR' });
  t.same(await openFilesUnder(dataDir), [], 'nothing of the data dir stays open');
});

t.test('a server whose HTTP port is taken: EADDRINUSE, its store and WebSocket listener let go; the data dir serves the next start', async (t) => {
  const dataDir = join(await tempDir(t), 'data');
  // Counted from here: files run before this one in the same process may hold listeners (test/helpers/unit-shard.ts).
  const listenersBefore = listeningServers();
  const taken: Server = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const port = (taken.address() as { port: number }).port;
  await t.rejects(start(dataDir, port), { code: 'EADDRINUSE' });
  t.same(await openFilesUnder(dataDir), [], 'nothing of the data dir stays open');
  t.equal(listeningServers(), listenersBefore + 1, 'no listener left but the one the test holds');
  const server = await start(dataDir, 0);
  t.ok(server.address.port > 0, 'a start on a free port works');
  await server.stop();
  t.same(await openFilesUnder(dataDir), [], 'and its stop lets everything go');
});

/** TCP servers listening in this process. */
function listeningServers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'TCPServerWrap').length;
}
