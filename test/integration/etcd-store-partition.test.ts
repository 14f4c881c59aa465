// A control server cut off from etcd while quorum holds (the HA tester's repro): three members;
// servers A and B have all three endpoints, server C only one, whose member is then killed (C
// partitioned from etcd). A real node given `--control-url C,A` sits on C. C's store is lost, so
// it tells its nodes (control.store_unavailable) and the node moves to A, which refreshed its lease,
// before the grace period the others start once C's registration lapses ends: no `offline` event
// on A or B, the node online, relays through A work (docs/control-protocol.md "Leases and offline").
// A WorldFS mount and an `acheron node watch` given `C,A` are told too: C's catalog stops
// changing, so they move to A, whose store answers, and a change made meanwhile reaches them.
// Then quorum is lost everywhere: the node finds no server that can refresh its lease, and keeps
// its session on A (a bounded search, not a stream of reconnects) until quorum is back; the mount
// and the watch stay too, saying so, and the mount keeps showing the catalog.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ResumingWatcher } from '../helpers/catalog-sim.js';
import { acheron, adminRequest, joinToken, QUICK_NODE_ARGS, startControl, type TestStore } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { ACHERON, manifest, readJson, startNode, tempDir } from '../helpers/node.js';
import { startWorld } from '../helpers/world.js';
import { q, sh, waitFor } from '../helpers/process.js';

const NODE_ID = 'ha1n1';
const GRACE_MS = 10_000;
const SERVER_TTL_MS = 2000;
// A lease far longer than the test: no refresh is due, so only C's notice can move the node.
const serverArgs = ['--offline-grace-ms', String(GRACE_MS), '--server-ttl-ms', String(SERVER_TTL_MS), '--lease-ttl-ms', '120000'];
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const cluster = await startEtcd(t, { members: 3 });
const store = await etcdStore(cluster);
// C's member: a follower, so that killing it is only C's partition (no election on the others).
const leader = await cluster.leader();
const cMember = cluster.members.find((m) => m !== leader) ?? leader;
const cStore: TestStore = { ...store, args: store.args.map((arg) => (arg === cluster.endpoints.join(',') ? cMember.clientUrl : arg)) };
const [a, b, c] = await Promise.all([
  startControl(t, { store, args: serverArgs }),
  startControl(t, { store, args: serverArgs }),
  startControl(t, { store: cStore, args: serverArgs }),
]);
const watchers = [
  new ResumingWatcher('watcher on A', store.adminToken, { replay_limit: 1024 }),
  new ResumingWatcher('watcher on B', store.adminToken, { replay_limit: 1024 }),
];
t.teardown(() => watchers.forEach((w) => w.close()));
await Promise.all([watchers[0]?.connect(a.url), watchers[1]?.connect(b.url)]);

const dir = await tempDir(t, 'ha1-partition-');
const tokenFile = join(dir, 'join');
await writeFile(tokenFile, `${await joinToken(store)}\n`, { mode: 0o600 });
const adminTokenFile = join(dir, 'admin');
await writeFile(adminTokenFile, `${store.adminToken}\n`, { mode: 0o600 });
const users = { permissions: { default: 'deny-by-default', allow_roles: ['admin', 'user'] } };
const node = await startNode(t, {
  nodeId: NODE_ID,
  manifests: [manifest('echo', 'echo', users)],
  args: ['--control-url', `${c.url},${a.url}`, '--join-token-file', tokenFile, ...QUICK_NODE_ARGS],
});
interface ControlDoc {
  state: string;
  connected_ms: number;
  last_error: string | null;
}
const control = async (): Promise<ControlDoc> => (await readJson<{ control: ControlDoc }>(join(node.mount, 'NODE.json'))).control;
const nodeLog = async (): Promise<string> => (await sh(`cat ${q(node.logFile)}`)).stdout;
/** The URL of the node's last `control session connected` line. */
const connectedTo = async (): Promise<string | undefined> =>
  [...(await nodeLog()).matchAll(/"url":"([^"]+)"[^\n]*"msg":"control session connected"/g)].at(-1)?.[1];
const readyz = async (server: { httpUrl: string }): Promise<string> => (await sh(`curl -s -o /dev/null -w '%{http_code}' ${server.httpUrl}/readyz`)).stdout;
const offlineEvents = (): string[] => watchers.flatMap((w) => w.events.filter((e) => e.node_id === NODE_ID && e.kind === 'offline').map(() => w.name));
const invokeThroughA = (): ReturnType<typeof acheron> =>
  acheron(['invoke', 'echo', '{"msg":"via A"}', '--node', NODE_ID, '--control-url', a.url, '--token-file', adminTokenFile]);

await waitFor(
  async () => (await control()).state === 'connected' && (await connectedTo()) === c.url && watchers.every((w) => w.events.some((e) => e.node_id === NODE_ID)),
  {
    what: 'the node connected to C and seen on A and B',
    timeoutMs: 30_000,
  },
);

// Both follow C's catalog first (the first of their list).
const world = await startWorld(t, { url: `${c.url},${a.url}`, token: store.adminToken });
const worldLog = (): Promise<string> => readFile(world.logFile, 'utf8');
const watch = spawn(process.execPath, [ACHERON, 'node', 'watch', NODE_ID, '--control-url', `${c.url},${a.url}`, '--token-file', adminTokenFile], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
const watched = { out: '', err: '' };
watch.stdout.on('data', (chunk: Buffer) => (watched.out += chunk.toString()));
watch.stderr.on('data', (chunk: Buffer) => (watched.err += chunk.toString()));
t.teardown(() => void watch.kill('SIGKILL'));
await waitFor(async () => (await worldLog()).includes('catalog read; following events') && watched.out.includes(NODE_ID), {
  what: `the mount and the watch following C (watch stderr: ${watched.err})`,
});

await t.test("C's only etcd member killed: the node moves to A within the grace and never shows offline", async (tt) => {
  await cMember.kill9();
  const killedAt = Date.now();
  await waitFor(async () => (await readyz(c)) === '503', {
    what: "C's /readyz 503",
    timeoutMs: 10_000,
  });
  // The others start the grace once C's registration lapses (SERVER_TTL_MS): the node must be on A before it ends.
  const moved = await waitFor(async () => (await control()).state === 'connected' && (await connectedTo()) === a.url && Date.now(), {
    what: 'the node connected to A',
    timeoutMs: SERVER_TTL_MS + GRACE_MS,
  });
  tt.pass(`the node is on A ${moved - killedAt} ms after C's member was killed`);
  tt.match(await nodeLog(), `control session moves: the control store of ${c.url} is unavailable`, 'the node said why it moved');
  // Past the moment the node would have turned offline (C's registration lapsed, then the grace).
  await sleep(Math.max(0, killedAt + SERVER_TTL_MS + GRACE_MS + 2000 - Date.now()));
  tt.same(offlineEvents(), [], 'no offline event on A or B');
  const got = await adminRequest<{ state: string }>(a, 'control.node_get', { node_id: NODE_ID });
  tt.equal(got.state, 'online', 'the node is online on A');
  const r = await invokeThroughA();
  tt.equal(r.code, 0, `a relay through A reaches the node: ${r.stderr}`);
  tt.match(r.stdout, '"via A"');
  tt.equal((await control()).last_error, null, 'NODE.json: no error');

  // The mount and the watch were told as well, and moved to A.
  const moving = `the control store of ${c.url} is unavailable`;
  await waitFor(async () => (await worldLog()).includes(`moving to ${a.url}, whose store answers`), { what: 'the mount moving to A', timeoutMs: 15_000 });
  tt.match(await worldLog(), moving, "the mount's log says why it moved");
  await waitFor(() => watched.err.includes(`watching again on ${a.url}, resumed after seq`), {
    what: `the watch resuming on A (stderr: ${watched.err})`,
    timeoutMs: 15_000,
  });
  tt.match(watched.err, new RegExp(`${moving} \\(.+\\); moving to ${a.url}, whose store answers\n`), 'the watch says why it moved');
  // A change made now reaches both (on C they would never have seen it).
  const lines = watched.out.split('\n').length;
  const service = (state: string): Promise<unknown> => sh(`echo 1 > ${q(join(node.mount, 'services', 'echo', 'control', state))}`);
  const shown = join(world.node(NODE_ID), 'services', 'echo', 'STATUS.json');
  const state = async (): Promise<string | undefined> => /"state":\s*"(\w+)"/.exec((await sh(`cat ${q(shown)}`)).stdout)?.[1];
  tt.equal(await state(), 'online', 'the mount shows echo online');
  await service('disable');
  await waitFor(async () => (await state()) !== 'online', { what: 'the mount showing echo disabled', timeoutMs: 10_000 });
  await waitFor(() => watched.out.split('\n').length > lines, { what: 'the watch printing the change', timeoutMs: 10_000 });
  tt.pass('the change made after the move reached the mount and the watch');
  await service('enable');
});

await t.test('quorum lost everywhere: the node keeps its session on A, then carries on', async (tt) => {
  const { connected_ms: connectedMs } = await control();
  const second = cluster.members.find((m) => m !== cMember && m.isRunning);
  if (!second) throw new Error('no running member left to kill');
  await second.kill9();
  // A tells the node (after a third of the grace); its search finds no server that refreshes the lease.
  await waitFor(async () => /no other server refreshed the lease: keeping this session/.test(await nodeLog()), {
    what: 'the node searching and staying',
    timeoutMs: 15_000,
  });
  await sleep(2000);
  tt.same([(await control()).state, (await control()).connected_ms], ['connected', connectedMs], 'the node stayed connected to A');
  // The mount and the watch found no other server whose store answers either: they stay, and say so.
  const staying = `the control store of ${a.url} is unavailable`;
  await waitFor(() => watched.err.includes('no event comes until it is back'), {
    what: `the watch staying (stderr: ${watched.err})`,
    timeoutMs: 15_000,
  });
  tt.match(watched.err, new RegExp(`${staying} \\(.+\\): no event comes until it is back; no other server's store answered \\(${c.url}: `));
  await waitFor(async () => (await worldLog()).includes('the catalog shown does not change until it is back'), {
    what: 'the mount staying',
    timeoutMs: 15_000,
  });
  const status = await sh(`cat ${q(join(world.node(NODE_ID), 'STATUS.json'))}`);
  tt.equal(status.code, 0, `the mount still shows the catalog: ${status.stderr}`);
  const searches = (await nodeLog()).match(/keeping this session/g)?.length ?? 0;
  tt.ok(searches <= 6, `a bounded search (${searches} while quorum was lost), not a stream of reconnects`);
  // Quorum back for A and B only (C's member stays down): the node has nowhere better to go, and stays.
  second.start();
  await cluster.leader();
  await waitFor(async () => (await readyz(a)) === '200', {
    what: "A's /readyz 200 again",
    timeoutMs: 20_000,
  });
  const r = await invokeThroughA();
  tt.equal(r.code, 0, `a relay through A reaches the node: ${r.stderr}`);
  tt.equal((await control()).connected_ms, connectedMs, 'still the same session');
  tt.same(offlineEvents(), [], 'no offline event on A or B');
  // The notices stopped with the outage: the watch and the mount say it is over (a later one is said anew).
  const over = `the control store of ${a.url} is no longer reported unavailable: it serves again`;
  await waitFor(async () => watched.err.includes(over) && (await worldLog()).includes(over), {
    what: `the end of the outage said (stderr: ${watched.err})`,
    timeoutMs: 20_000,
  });
  tt.pass('the watch and the mount said the outage is over');
});
