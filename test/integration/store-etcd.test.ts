// `acheron control --store etcd`: two servers on one etcd share tokens and projects: the
// tokens-and-projects suite (store-file.test.ts runs it on the file store), done through one server
// and checked on the other. store-etcd-faults.test.ts has the rest.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { acheron, connect, startControl } from '../helpers/control.js';
import { waitFor } from '../helpers/process.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { tokenAndProjectSuite } from './suites/tokens-and-projects.js';

const cluster = await startEtcd(t);
const store = await etcdStore(cluster);
const [a, b] = [await startControl(t, { store }), await startControl(t, { store })];
await tokenAndProjectSuite(t, {
  servers: [a, b],
  adminToken: store.adminToken,
  userToken: store.userToken,
  token: (args) => acheron(['token', ...args, ...store.args]),
});

t.test('token list of a prefix that holds no token (mistyped): a warning naming it, an empty list', async (t) => {
  const typo = ['--store', 'etcd', '--etcd-endpoints', cluster.endpoints.join(','), '--etcd-prefix', '/acheorn/'];
  const r = await acheron(['token', 'list', ...typo]);
  t.equal(r.code, 0, 'exit 0: nothing failed');
  t.equal(r.stdout, '', 'no tokens listed');
  t.equal(r.stderr, 'acheron: warning: no tokens under --etcd-prefix /acheorn/ (a control server makes the first at its first start: is the prefix right?)\n');
  const right = await acheron(['token', 'list', ...store.args]);
  t.equal(right.stderr, '', 'no warning where tokens are');
});

t.test('token list --json: a live token whose secret etcd does not keep is left out of admin/user, not null (revoked)', async (t) => {
  const own = await etcdStore(cluster);
  const listed = async (): Promise<Record<string, unknown>> => {
    const r = await acheron(['token', 'list', '--json', ...own.args]);
    t.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };
  const live = await listed();
  t.same(Object.keys(live), ['tokens'], 'both live, no secret kept: neither admin nor user (it said null, as for a revoked one)');
  t.same((live.tokens as Array<{ id: string }>).map((e) => e.id).sort(), ['admin', 'user'], 'both listed');
  t.equal((await acheron(['token', 'revoke', 'user', ...own.args])).code, 0);
  const revoked = await listed();
  t.same(Object.keys(revoked), ['user', 'tokens'], 'a revoked one is null');
  t.equal(revoked.user, null);
});

t.test('a server started after etcd compacted the history: one info line, no failure logged', async (t) => {
  const endpoint = cluster.endpoints[0] as string;
  const post = async (path: string, body: object): Promise<{ header: { revision: string } }> =>
    (await (await fetch(`${endpoint}${path}`, { method: 'POST', body: JSON.stringify(body) })).json()) as { header: { revision: string } };
  const head = (await post('/v3/kv/range', { key: Buffer.from('/').toString('base64') })).header.revision;
  await post('/v3/kv/compaction', { revision: head, physical: true });
  const c = await startControl(t, { store });
  const log = await waitFor(async () => {
    const text = await readFile(c.logFile, 'utf8');
    return text.includes('control server listening') && text;
  });
  const said = log.split('\n').filter((line) => line.includes('etcd compacted the catalog history before this start'));
  t.equal(said.length, 1, 'said once');
  t.match(
    said[0],
    /"level":30,.*"compact_revision":"\d+".*the replay ring starts at the oldest revision etcd holds/,
    'at info, with the revision it starts at',
  );
  t.notMatch(log, /etcd call failed/, 'a read at a compacted revision is no failed call');
  const opened = await connect(c.url, { token: store.adminToken });
  t.equal(opened.status, 101, 'and it serves');
  await opened.peer?.close();
});
