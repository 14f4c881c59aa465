// A server id is one running server's (operator review): a start that fails on a port in use
// touches nothing in etcd (it deleted the running server's registration, and relays to that
// server's nodes failed until it restarted), a second server under a live server's id is refused
// naming the id and --server-id, and the default id tells servers on different addresses apart.
import t from 'tap';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { acheron, freePort, startControl } from '../helpers/control.js';
import { etcdStore, openEtcd, startEtcd } from '../helpers/etcd.js';
import { tempDir } from '../helpers/node.js';

const cluster = await startEtcd(t);
const prefix = '/acheron-server-id/';
const store = await etcdStore(cluster, prefix);
const etcd = await openEtcd(t, cluster.endpoints, { prefix });
const wsPort = await freePort();
// A registration lapses 1 s after its server dies: a refusal of a live server's id comes within seconds.
const a = await startControl(t, { store, ports: { ws: wsPort, http: await freePort() }, args: ['--server-ttl-ms', '1000'] });
const aId = `${hostname()}:127.0.0.1:${wsPort}`;
const registration = async (): Promise<string | null> => etcd.client.get(`${prefix}servers/${aId}`).string();
const registered = await registration();
t.ok(registered, `the default id includes the --listen host: servers/${aId}`);

const control = async (listen: string, args: string[] = []): Promise<{ code: number | null; stderr: string }> =>
  acheron([
    'control',
    '--data-dir',
    join(await tempDir(t), 'data'),
    '--listen',
    listen,
    '--http-listen',
    `127.0.0.1:${await freePort()}`,
    '--log-level',
    'silent',
    '--server-ttl-ms',
    '1000',
    ...store.args,
    ...args,
  ]);

/** `control` on ports freePort() chose: a port a test beside this one took meanwhile (EADDRINUSE) is chosen again. */
const controlOnFreePorts = async (args: string[]): Promise<{ code: number | null; stderr: string }> => {
  for (let attempt = 1; ; attempt++) {
    const r = await control(`127.0.0.1:${await freePort()}`, args);
    if (attempt === 3 || !/EADDRINUSE/.test(r.stderr)) return r;
  }
};

t.test("a start that fails on a port in use leaves the running server's registration alone", async (tt) => {
  const r = await control(`127.0.0.1:${wsPort}`);
  tt.equal(r.code, 1, 'exit 1');
  tt.match(r.stderr, /acheron: --listen 127\.0\.0\.1:\d+: address in use \(EADDRINUSE/, 'naming the option, the address and the code');
  tt.equal(await registration(), registered, 'servers/<id> of the running server is still there, unchanged');
  tt.equal((await fetch(`${a.httpUrl}/readyz`)).status, 200, 'and the running server is ready');
});

t.test("a second server under a live server's id is refused, naming the id and --server-id", async (tt) => {
  const r = await controlOnFreePorts(['--server-id', aId]);
  tt.equal(r.code, 1, 'exit 1');
  tt.match(r.stderr, `acheron: conflict: server id ${aId} is registered in etcd by another running server`);
  tt.match(r.stderr, '--server-id');
  tt.equal(await registration(), registered, 'servers/<id> of the running server is unchanged');
});

t.test('killed and started again at once on its address, a server takes its id over without waiting for the old lease', async (tt) => {
  const port = await freePort();
  // A TTL far above what the test waits: only the takeover can register the second run in time.
  const ttl = ['--server-ttl-ms', '60000'];
  const first = await startControl(tt, { store, ports: { ws: port, http: await freePort() }, args: ttl });
  const id = `${hostname()}:127.0.0.1:${port}`;
  const key = `${prefix}servers/${id}`;
  const before = await etcd.client.get(key).string();
  tt.ok(before, 'the first run registered');
  await first.kill9();
  const started = Date.now();
  const second = await startControl(tt, { store, ports: { ws: port, http: await freePort() }, args: ttl });
  tt.equal((await fetch(`${second.httpUrl}/readyz`)).status, 200, 'the second run is ready');
  const after = await etcd.client.get(key).string();
  tt.not(after, before, 'servers/<id> is the second run’s now');
  tt.ok(Date.now() - started < 30_000, `registered in ${Date.now() - started} ms, long before the old lease (60 s) lapsed`);
});

t.test("an --advertise-url naming a live server's address takes nothing over: only an address this process has bound does", async (tt) => {
  const r = await controlOnFreePorts(['--server-id', aId, '--advertise-url', `ws://127.0.0.1:${wsPort}`]);
  tt.equal(r.code, 1, 'exit 1');
  tt.match(r.stderr, `acheron: conflict: server id ${aId} is registered in etcd by another running server`);
  tt.equal(await registration(), registered, 'servers/<id> of the running server is unchanged');
});

t.test('--listen host:0: the id and the advertised address carry the port the server got', async (tt) => {
  const registrations = async (): Promise<Record<string, string>> => etcd.client.getAll().prefix(`${prefix}servers/`).strings();
  const before = await registrations();
  // Port 0 each (the helper's URLs then say 0; the test reads etcd): the two used to share one id and address.
  await Promise.all([0, 1].map(async () => startControl(tt, { store, ports: { ws: 0, http: await freePort() } })));
  const added = Object.entries(await registrations()).filter(([key]) => !(key in before));
  tt.equal(added.length, 2, `two registrations: ${added.map(([key]) => key).join(', ')}`);
  for (const [key, value] of added) {
    const port = /:(\d+)$/.exec(key)?.[1];
    tt.not(port, '0', `${key}: the port it got`);
    tt.match(JSON.parse(value), { url: `ws://127.0.0.1:${port}` }, `${key} advertises that port`);
  }
});
