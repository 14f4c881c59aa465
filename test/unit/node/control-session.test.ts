// The node's control session (src/node/control-session.ts) over real ws servers scripted as control
// servers: when a working session is lost (its server died), the log says so at warn, naming the
// server and why, and where the node tries next; before, a failover showed only the next "connected".
// A session's first lease refresh refused (the server's store down) is tried again after 2 s, as
// later ones are, and said in lastError; before, the session was dropped and started over. So is its
// first catalog upsert refused: sent again at the next catalog check, a second later.
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import t, { type Test } from 'tap';
import { NodeControlSession } from '../../../src/node/control-session.js';
import { loadSchemas } from '../../../src/protocol/schemas.js';
import { tempDir } from '../../helpers/node.js';
import { waitFor } from '../../helpers/process.js';
import { CloseWith, scriptedControl } from '../../helpers/scripted-control.js';

const NODE_ID = 'n1';
/** A scripted control server granting leases of `leaseTtlMs`; `raw` builds replies of its own (see scriptedControl). */
const server = (leaseTtlMs = 60_000, raw: Parameters<typeof scriptedControl>[1] = {}): ReturnType<typeof scriptedControl> =>
  scriptedControl(
    {
      'control.node_join': () => ({ node_id: NODE_ID, node_secret: 'secret', lease_ttl_ms: leaseTtlMs }),
      'control.node_lease_refresh': () => ({ node_id: NODE_ID, lease_expires_at_ms: Date.now() + leaseTtlMs, lease_ttl_ms: leaseTtlMs }),
      'control.node_service_upsert': () => ({
        node_id: NODE_ID,
        node_name: NODE_ID,
        platform: {},
        labels: {},
        changed_services: [],
        service_delta: { changed: false, timestamp_ms: Date.now(), added: [], updated: [], removed: [] },
      }),
    },
    raw,
  );

/** A session to `urls`, started; stopped at the end of `t`. */
async function startSession(t: Test, urls: string[], log: Logger, backoff = { backoffMs: 10, backoffMaxMs: 50 }): Promise<NodeControlSession> {
  const session = new NodeControlSession({
    urls,
    nodeId: NODE_ID,
    stateFile: join(await tempDir(t), 'state', 'node.json'),
    joinToken: async () => 'join-token',
    catalog: () => [],
    node: { node_name: NODE_ID, platform: {}, labels: {} },
    ...backoff,
    log,
    schemas: await loadSchemas(),
  });
  t.teardown(() => session.stop());
  session.start();
  return session;
}

t.test('a lost session is one warn line naming the server, the reason and the next server', async (t) => {
  const [a, b] = [await server(), await server()];
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  await startSession(t, [a.url, b.url], pino({ level: 'info' }, sink));
  const connected = (url: string): boolean => lines.some((l) => l.msg === 'control session connected' && l.url === url);
  await waitFor(() => connected(a.url) && a.requests.some((r) => r.type === 'control.node_lease_refresh'), { what: 'connected to a', timeoutMs: 5000 });
  t.notOk(
    lines.some((l) => l.level === 40),
    'no warning while it works',
  );

  await a.close();
  await waitFor(() => connected(b.url), { what: 'connected to b', timeoutMs: 5000 });
  const lost = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('control session lost'));
  t.equal(lost.length, 1, 'one line for the loss');
  t.equal(lost[0]?.level, 40, 'at warn');
  t.match(lost[0]?.msg, new RegExp(`^control session lost: ${a.url}: connection closed \\(1006\\); trying ${b.url} in \\d+ ms$`));
  t.equal(lost[0]?.url, a.url);
  t.equal(lost[0]?.next_url, b.url);
  t.ok(lines.indexOf(lost[0] ?? {}) < lines.findIndex((l) => l.msg === 'control session connected' && l.url === b.url), 'before the next connection');
  t.notOk(
    lines.some((l) => l.msg === 'control session: not connected'),
    'b answered at once: no failed attempt',
  );
});

t.test('a lease refresh whose reply is held up is given up after its period and tried again: the next refresh is not delayed', async (t) => {
  let refreshes = 0;
  // A 3 s lease: refreshes every second. Every refresh after the first gets a reply no request waits for (a held-up reply).
  const held = await server(3000, {
    'control.node_lease_refresh': (id) =>
      refreshes++ === 0 ? undefined : { channel: 'control', type: 'control.node_lease_refresh', id: `not-${id}`, ok: true },
  });
  t.teardown(() => held.close());
  const session = await startSession(t, [held.url], pino({ level: 'silent' }));
  await waitFor(() => refreshes >= 1, { what: 'the first refresh', timeoutMs: 5000 });
  const started = Date.now();
  // Held for the client's default request timeout (30 s), the second refresh would have come 30 s after the first.
  await waitFor(() => refreshes >= 3, { what: 'two more refreshes', timeoutMs: 8000 });
  t.ok(Date.now() - started < 8000, `three refreshes within ${Date.now() - started} ms of the first`);
  // Unanswered, not refused: the server said nothing (T8: a silent link read as a refusal).
  t.match(session.lastError, /lease refresh unanswered: control\.node_lease_refresh: no reply within 1000 ms/, 'NODE.json says why');
});

t.test("a session's first lease refresh refused is tried again 2 s later; the session stays", async (t) => {
  let refreshes = 0;
  const unavailable = 'control store (etcd): refreshing the lease of node n1 failed: no etcd member could serve it';
  const a = await server(60_000, {
    // The first refresh of the session refused, as while etcd is down; the next ones answered.
    'control.node_lease_refresh': (id) =>
      ++refreshes === 1 ? { channel: 'control', type: 'control.error', id, ok: false, error: { code: 'unavailable', message: unavailable } } : undefined,
  });
  t.teardown(() => a.close());
  const session = await startSession(t, [a.url], pino({ level: 'silent' }));
  await waitFor(() => refreshes === 1 && session.lastError !== null, { what: 'the first refresh refused', timeoutMs: 5000 });
  t.equal(session.lastError, `lease refresh refused: ${unavailable}`, 'said in lastError (NODE.json control.last_error)');
  t.equal(session.state, 'connected', 'the session stays');
  await waitFor(() => refreshes === 2 && session.lastError === null, { what: 'the refresh tried again and accepted', timeoutMs: 5000 });
  t.same(
    a.requests.filter((r) => r.type === 'control.version' || r.type === 'control.node_join').map((r) => r.type),
    ['control.version', 'control.node_join'],
    'on the connection it joined on: never connected again',
  );
});

t.test("a session's first catalog upsert refused is tried again at the next catalog check; the session stays", async (t) => {
  let upserts = 0;
  const unavailable = 'control store (etcd): upserting the catalog of node n1 failed: no etcd member could serve it';
  const a = await server(60_000, {
    'control.node_service_upsert': (id) =>
      ++upserts <= 2 ? { channel: 'control', type: 'control.error', id, ok: false, error: { code: 'unavailable', message: unavailable } } : undefined,
  });
  t.teardown(() => a.close());
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const session = await startSession(t, [a.url], pino({ level: 'info' }, sink));
  await waitFor(() => upserts === 1 && session.lastError !== null, { what: 'the first upsert refused', timeoutMs: 5000 });
  t.equal(session.lastError, `catalog upsert failed: ${unavailable}`, 'said in lastError (NODE.json control.last_error)');
  t.equal(session.state, 'connected', 'the session stays');
  await waitFor(() => a.requests.some((r) => r.type === 'control.node_lease_refresh'), { what: 'lease refreshes go on meanwhile', timeoutMs: 5000 });
  await waitFor(() => upserts === 3 && session.lastError === null, { what: 'the upsert tried again and accepted', timeoutMs: 5000 });
  t.equal(lines.filter((l) => l.includes('catalog upsert failed; trying again every 1000 ms')).length, 1, 'the refusals logged once');
  t.equal(lines.filter((l) => l.includes('catalog upsert accepted again')).length, 1, 'and that they ended');
  t.same(
    a.requests.filter((r) => r.type === 'control.version' || r.type === 'control.node_join').map((r) => r.type),
    ['control.version', 'control.node_join'],
    'on the connection it joined on: never connected again',
  );
});

t.test("a session's first upsert refused for another reason than the store (invalid) ends the session, as before", async (t) => {
  let upserts = 0;
  const a = await server(60_000, {
    'control.node_service_upsert': (id) =>
      ++upserts === 1
        ? { channel: 'control', type: 'control.error', id, ok: false, error: { code: 'invalid_payload', message: 'services/0: too large', field: '/services' } }
        : undefined,
  });
  t.teardown(() => a.close());
  const session = await startSession(t, [a.url], pino({ level: 'silent' }));
  await waitFor(() => upserts === 2 && session.state === 'connected', { what: 'connected again and the upsert accepted', timeoutMs: 5000 });
  t.equal(a.requests.filter((r) => r.type === 'control.version').length, 2, 'a new connection (with backoff), not a retry every second on the same one');
  t.equal(session.lastError, null);
});

t.test('a refused refresh and a refused upsert at once: lastError says both; each clears on its own', async (t) => {
  let refreshes = 0;
  let upserts = 0;
  const down = (id: string, what: string): unknown => ({
    channel: 'control',
    type: 'control.error',
    id,
    ok: false,
    error: { code: 'unavailable', message: `${what}: store down` },
  });
  // The first upsert and the first two refreshes refused, as while etcd is down.
  const a = await server(60_000, {
    'control.node_service_upsert': (id) => (++upserts === 1 ? down(id, 'upsert') : undefined),
    'control.node_lease_refresh': (id) => (++refreshes <= 2 ? down(id, 'refresh') : undefined),
  });
  t.teardown(() => a.close());
  const session = await startSession(t, [a.url], pino({ level: 'silent' }));
  // Waited for on the session's side: the server counts a request before the session has its answer.
  const both = 'lease refresh refused: refresh: store down; catalog upsert failed: upsert: store down';
  await waitFor(() => refreshes >= 1 && session.lastError === both, { what: 'both refusals said', timeoutMs: 5000 }).catch(() => undefined);
  t.equal(session.lastError, both, 'both');
  await waitFor(() => upserts === 2 && session.lastError !== both, { what: 'the upsert accepted', timeoutMs: 5000 });
  t.equal(session.lastError, 'lease refresh refused: refresh: store down', 'the refresh still refused: said');
  await waitFor(() => refreshes === 3 && session.lastError === null, { what: 'the refresh accepted', timeoutMs: 8000 });
  t.pass('both cleared');
});

t.test('a server that closes the session on its first upsert (1009, too large) is retried with growing pauses', async (t) => {
  const a = await server(60_000, { 'control.node_service_upsert': () => new CloseWith(1009, 'frame too large') });
  t.teardown(() => a.close());
  const session = await startSession(t, [a.url], pino({ level: 'silent' }), { backoffMs: 50, backoffMaxMs: 5000 });
  const connections = (): number => a.requests.filter((r) => r.type === 'control.version').length;
  await waitFor(() => connections() >= 2, { what: 'a second connection', timeoutMs: 5000 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  // Pauses of 50, 100, 200, 400, 800 ms (jittered ×0.5 to ×1.5) fit at most 8 connections in this
  // time; the first pause after every connection, as before, let in about 30.
  t.ok(connections() <= 8, `${connections()} connections, with growing pauses`);
  await waitFor(() => /connection closed \(1009 frame too large\)/.test(session.lastError ?? ''), { what: 'the close said in lastError', timeoutMs: 5000 });
});
