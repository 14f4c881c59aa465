// SPEC §7 /readyz: 200 only while the server can serve (its listener up, its store taking writes),
// else 503 naming the check that fails; /livez answers as long as the process does. A server in
// process, with a write failure injected into its event log.
import t from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import { ControlServer } from '../../../src/control/control-server.js';
import type { EventLog } from '../../../src/control/event-log.js';
import { loadSchemas } from '../../../src/protocol/schemas.js';
import { partialWrite, patchFileHandle } from '../../helpers/file-faults.js';
import { tempDir } from '../../helpers/node.js';
import { waitFor } from '../../helpers/process.js';

const dir = await tempDir(t);
const server = await ControlServer.start({
  listen: { host: '127.0.0.1', port: 0 },
  httpListen: { host: '127.0.0.1', port: 0 },
  dataDir: join(dir, 'data'),
  offlineGraceMs: 15_000,
  leaseTtlMs: 60_000,
  log: pino({ level: 'silent' }),
  schemas: await loadSchemas(),
});
let stopped = false;
t.teardown(async () => void (stopped || (await server.stop())));
const get = async (path: string): Promise<{ status: number; body: string }> => {
  const response = await fetch(`http://127.0.0.1:${server.httpAddress.port}${path}`);
  return { status: response.status, body: await response.text() };
};
// The file store's event stream is its event log.
const log = (): EventLog => server.store.events as EventLog;
const event: Parameters<EventLog['append']>[0] = {
  kind: 'upsert',
  timestamp_ms: 1,
  node: { node_id: 'n', node_name: 'n', platform: {}, labels: {}, state: 'online', services: [] },
  delta: { changed: true, timestamp_ms: 1, added: [], updated: [], removed: [] },
};

t.test('a serving server: ready, every check ok', async (t) => {
  t.same(await get('/readyz'), { status: 200, body: 'ready\nlistener: ok\nstore: ok\n' });
  t.same(await get('/livez'), { status: 200, body: 'ok\n' });
});

t.test('a store that cannot take writes: 503 naming it; ready again once it can', async (t) => {
  // An append fails and even the cut-back fails: the event log holds bytes it must not, and refuses writes.
  const restoreWrite = await patchFileHandle(t, 'writev', partialWrite(5));
  const restoreTruncate = await patchFileHandle(t, 'truncate', async () => {
    throw Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' });
  });
  await t.rejects(log().append(event), { code: 'unavailable' });
  restoreWrite();
  const notReady = await get('/readyz');
  t.equal(notReady.status, 503, '503');
  t.match(
    notReady.body,
    /^not ready\nlistener: ok\nstore: the event log \S+ could not make a change durable: a failed append could not be cut off \S+ at byte \d+: EIO/,
    'names the failing check and why',
  );
  t.equal((await get('/livez')).status, 200, '/livez stays 200: the process is alive');
  restoreTruncate();
  t.equal((await log().append(event)).seq, 1, 'the next append repairs the log');
  t.same(await get('/readyz'), { status: 200, body: 'ready\nlistener: ok\nstore: ok\n' }, 'ready again');
});

t.test('an append the disk had no room for, cut cleanly back: 503 and acheron_store_ready 0; ready again once there is room', async (t) => {
  const restoreWrite = await patchFileHandle(t, 'writev', partialWrite(5));
  await t.rejects(log().append(event), { code: 'unavailable', message: /ENOSPC/ });
  const notReady = await get('/readyz');
  t.equal(notReady.status, 503, '503: the next change would meet the same full disk');
  t.match(
    notReady.body,
    /^not ready\nlistener: ok\nstore: the event log \S+node-service-events\.ndjson could not make a change durable: ENOSPC/,
    'names the file and the errno',
  );
  t.match((await get('/metrics')).body, /^acheron_store_ready(\{[^}]*\})? 0$/m, 'the gauge says so too');
  restoreWrite();
  // Nothing is written meanwhile: a probe (at most once a second) finds the room.
  await waitFor(async () => (await get('/readyz')).status === 200, { what: 'ready again' });
  t.match((await get('/metrics')).body, /^acheron_store_ready(\{[^}]*\})? 1$/m);
});

t.test('a stopped server: not ready, listener and store both say why', async (t) => {
  await server.stop();
  stopped = true;
  t.same(await server.readiness(), { ready: false, checks: { listener: 'the WebSocket listener is not listening', store: 'the server is stopping' } });
});
