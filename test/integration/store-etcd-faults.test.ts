// `acheron control --store etcd` beyond the shared suite: etcd keeps no token secret, the start-up log
// says where things live, and etcd lost while running is explicit: writes answer `unavailable`,
// /readyz fails and new sessions get 503, never a silent acceptance; everything works again when
// etcd is back. (Unreachable at start: store-etcd-start.test.ts.)
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { acheron, connect, errorsCounted, eventually, metricValue, scrape, session, startControl, type RawPeer } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { sh, waitFor } from '../helpers/process.js';

const cluster = await startEtcd(t);
const store = await etcdStore(cluster);
const [a, b] = [await startControl(t, { store }), await startControl(t, { store })];
const token = (args: string[]): ReturnType<typeof acheron> => acheron(['token', ...args, ...store.args]);
const prefix = store.args[store.args.indexOf('--etcd-prefix') + 1] as string;

await t.test('etcd keeps no token secret; acheron token list shows ids without them', async (tt) => {
  const created = JSON.parse((await token(['create', '--user', 'carol', '--json'])).stdout) as { id: string; token: string };
  const dump = await sh(`etcdctl --endpoints=${cluster.endpoints.join(',')} get --prefix ${prefix}`);
  tt.equal(dump.code, 0, dump.stderr);
  tt.match(dump.stdout, `${prefix}token-ids/${created.id}`, 'the token is in etcd');
  for (const [what, secret] of [
    ['admin', store.adminToken],
    ['user', store.userToken],
    ['new', created.token],
  ])
    tt.notMatch(dump.stdout, secret as string, `the ${what} secret is not`);
  const listed = await token(['list', '--json']);
  tt.equal(listed.code, 0, listed.stderr);
  const doc = JSON.parse(listed.stdout) as { admin: string | null; user: string | null; tokens: Array<{ id: string; role: string; token?: string }> };
  tt.same([doc.admin, doc.user], [null, null], 'no secret to show for admin and user');
  tt.ok(
    doc.tokens.some((e) => e.id === created.id && e.role === 'user'),
    'the new token is listed',
  );
  tt.notOk(
    doc.tokens.some((e) => 'token' in e),
    'without secrets',
  );
  tt.match((await token(['list'])).stdout, /^admin\tadmin\t\(secret not kept: rotate for a new one\)$/m, 'the plain listing says so');
});

await t.test('the start-up log says where tokens, projects, catalog and events live', async (tt) => {
  const log = await readFile(a.logFile, 'utf8');
  tt.match(log, new RegExp(`control store: tokens, projects, catalog and events in etcd at ${cluster.endpoints.join(',')} under ${prefix} \\(server [^)]+\\)`));
});

// Last: it stops etcd under the servers.
await t.test('etcd lost while running: writes answer unavailable, /readyz fails, new sessions get 503; then all recovers', async (tt) => {
  const admin = await session(a.url, { token: store.adminToken });
  const [member] = cluster.members as [(typeof cluster.members)[0]];
  await member.kill9();
  const refused = await admin.request('control.project_upsert', { project_id: 'while-down' });
  tt.equal(refused.error?.code, 'unavailable', `a write is refused: ${refused.error?.message}`);
  tt.match(refused.error?.message, /^control store \(etcd\): upserting project while-down failed: \S/, 'saying what failed and why');
  // A probe with a 3 s timeout gets the answer (the check waits for etcd 1 s at most; a full call's retries took 4-6.5 s).
  const ready = await fetch(`${a.httpUrl}/readyz`, { signal: AbortSignal.timeout(3_000) });
  tt.equal(ready.status, 503, '/readyz fails');
  tt.match(await ready.text(), /^not ready\n(.*\n)*store: control store \(etcd\): \S/, 'naming the store as the check that failed');
  tt.equal(metricValue(await scrape(a), 'acheron_store_ready'), 0, 'acheron_store_ready is 0');
  const unavailable = await errorsCounted(b, 'unavailable');
  tt.equal((await connect(b.url, { token: store.adminToken })).status, 503, 'a new session cannot be checked: 503, neither 401 nor accepted');
  tt.equal(await errorsCounted(b, 'unavailable'), unavailable + 1, 'counted in acheron_errors_total{code="unavailable"}');
  const listed = await acheron(['node', 'list', '--control-url', b.url, '--token', store.adminToken]);
  tt.not(listed.code, 0, 'acheron node list fails');
  tt.match(listed.stderr, /HTTP 503: control store: the token could not be checked/, `saying the store is the problem: ${listed.stderr.trim()}`);
  const endpoint = new URL(cluster.endpoints[0] as string).host;
  tt.notOk(listed.stderr.includes(endpoint), `and not the store's endpoints (${endpoint}): the peer is not authenticated yet`);
  const cli = await token(['create', '--user', 'dave', '--etcd-start-timeout-ms', '1000']);
  tt.equal(cli.code, 1, `acheron token fails: ${cli.stderr.trim()}`);
  tt.ok(admin.isOpen, 'open sessions stay');

  member.start();
  await waitFor(async () => (await fetch(`${a.httpUrl}/readyz`)).status === 200, { what: '/readyz after etcd is back', timeoutMs: 60_000 });
  tt.equal(metricValue(await scrape(a), 'acheron_store_ready'), 1, 'acheron_store_ready is 1 again');
  const upsert = await eventually(admin, 'control.project_upsert', { project_id: 'after' }, 'a write after etcd is back');
  tt.equal(upsert.ok, true, 'writes work again');
  // B has had no traffic through the outage: its first login after it may still be refused (503) while its etcd channel reconnects.
  let onB: RawPeer | undefined;
  await waitFor(async () => (onB = await session(b.url, { token: store.adminToken }).catch(() => undefined)) !== undefined, {
    what: 'a new session on the other server after etcd is back',
    timeoutMs: 60_000,
  });
  const seen = await eventually(onB as RawPeer, 'control.project_get', { project_id: 'after' }, 'the other server to see it');
  tt.equal(seen.ok, true, "the other server's watch resumed and sees the write");
  await Promise.all([admin.close(), (onB as RawPeer).close()]);
});
