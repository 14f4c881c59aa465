// Quorum lost (2 of 3 etcd members killed) for longer than the nodes' lease: every lease refresh is
// refused meanwhile, so the leases lapse in etcd. A real node stays connected to server B the whole
// time and keeps asking: it says so (log, NODE.json control.last_error), and once quorum is back B
// refreshes its lease while A leaves it to B. No `offline` event on either server (SPEC §6: the node
// neither stopped refreshing nor lost its tunnel), and the node's error clears.
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ResumingWatcher } from '../helpers/catalog-sim.js';
import { adminRequest, joinToken, QUICK_NODE_ARGS, startControl } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { manifest, readJson, startNode, tempDir } from '../helpers/node.js';
import { q, sh, waitFor } from '../helpers/process.js';

const LEASE_TTL_MS = 3000;
const cluster = await startEtcd(t, { members: 3 });
const store = await etcdStore(cluster);
const serverArgs = ['--lease-ttl-ms', String(LEASE_TTL_MS), '--offline-grace-ms', '3000'];
const [a, b] = await Promise.all([startControl(t, { store, args: serverArgs }), startControl(t, { store, args: serverArgs })]);
const watchers = [
  new ResumingWatcher('watcher on A', store.adminToken, { replay_limit: 1024 }),
  new ResumingWatcher('watcher on B', store.adminToken, { replay_limit: 1024 }),
];
t.teardown(() => watchers.forEach((w) => w.close()));
await Promise.all([watchers[0]?.connect(a.url), watchers[1]?.connect(b.url)]);

const tokenFile = join(await tempDir(t, 'acheron-quorum-'), 'join');
await writeFile(tokenFile, `${await joinToken(store)}\n`, { mode: 0o600 });
const node = await startNode(t, {
  nodeId: 'q1',
  manifests: [manifest('echo', 'echo')],
  args: ['--control-url', b.url, '--join-token-file', tokenFile, ...QUICK_NODE_ARGS],
});
interface ControlDoc {
  state: string;
  connected_ms: number;
  last_error: string | null;
}
const control = async (): Promise<ControlDoc> => (await readJson<{ control: ControlDoc }>(join(node.mount, 'NODE.json'))).control;
await waitFor(async () => (await control()).state === 'connected' && watchers.every((w) => w.events.some((e) => e.node_id === 'q1')), {
  what: 'the node connected to B and seen on both servers',
  timeoutMs: 30_000,
});

await t.test('quorum lost past the lease: the node connected all along never turns offline', async (tt) => {
  const { connected_ms: connectedMs } = await control();
  const killed = cluster.members.slice(0, 2);
  await Promise.all(killed.map((m) => m.kill9()));
  const lostAt = Date.now();
  await waitFor(async () => /lease refresh (refused|unanswered): /.test((await control()).last_error ?? ''), {
    what: "NODE.json saying the node's lease refreshes are refused",
    timeoutMs: 30_000,
  });
  tt.pass(`NODE.json control.last_error: ${(await control()).last_error}`);
  // Well past the lease: it has lapsed in etcd by the time quorum is back.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, lostAt + 4 * LEASE_TTL_MS - Date.now())));
  for (const m of killed) m.start();
  await cluster.leader();
  const backAt = Date.now();
  await waitFor(async () => (await control()).last_error === null, { what: "the node's refusal cleared once quorum is back", timeoutMs: 30_000 });
  const got = await adminRequest<{ state: string; lease_expires_at_ms: number }>(a, 'control.node_get', { node_id: 'q1' });
  tt.equal(got.state, 'online', 'the node is online on A');
  tt.ok(got.lease_expires_at_ms > backAt, 'with a lease refreshed after quorum came back');
  // A few sweeps and refreshes later: still no offline event.
  await new Promise((resolve) => setTimeout(resolve, 2 * LEASE_TTL_MS));
  for (const w of watchers)
    tt.same(
      w.events.filter((e) => e.node_id === 'q1' && e.kind === 'offline'),
      [],
      `${w.name}: no offline event`,
    );
  tt.same([(await control()).state, (await control()).connected_ms], ['connected', connectedMs], 'the node stayed connected to B throughout');
  const log = await sh(`grep -a 'lease refresh' ${q(node.logFile)}`);
  tt.match(log.stdout, /lease refresh (refused|unanswered): /, 'the node logged the refusal');
  tt.match(log.stdout, /lease refresh accepted again after \d+ refused/, 'and that it ended');
});
