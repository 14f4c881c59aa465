// The catalog on a 3-member etcd when etcd fails (issue 11), with two servers and simulated nodes
// upserting through both while a watcher on each watches:
// - the etcd leader killed (SIGKILL) under load: upserts pause and resume; every acknowledged one
//   is in the event history, which both watchers saw whole, in one order;
// - quorum lost (2 of 3 members killed): upserts answer `unavailable` within the call deadlines
//   (never a silent acceptance), /readyz fails, the catalog is still read from memory; with quorum
//   back everything works again and the watchers go on without a gap.
import t from 'tap';
import { historyOf, ResumingWatcher, SimNode } from '../helpers/catalog-sim.js';
import { session, startControl } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { checkReference, validateWatcher } from '../helpers/history-validator.js';
import { waitFor } from '../helpers/process.js';

const cluster = await startEtcd(t, { members: 3 });
const store = await etcdStore(cluster);
const [a, b] = await Promise.all([startControl(t, { store }), startControl(t, { store })]);
const onA = new ResumingWatcher('watcher on A', store.adminToken, { replay_limit: 1024 });
const onB = new ResumingWatcher('watcher on B', store.adminToken, { replay_limit: 1024 });
t.teardown(() => [onA, onB].forEach((w) => w.close()));
await Promise.all([onA.connect(a.url), onB.connect(b.url)]);
const nodes = await Promise.all(
  [
    ['f1', a],
    ['f2', b],
  ].map(([id, server]) => SimNode.provision((server as typeof a).url, store.adminToken, id as string)),
);
t.teardown(() => nodes.forEach((n) => n.peer.socket.terminate()));

/** Acknowledged versions of `s` per node; refused upserts are counted, not kept (their outcome is unknown). */
const acknowledged = new Map<string, string[]>(nodes.map((n) => [n.nodeId, []]));
let version = 0;
let refused = 0;
async function upsertRound(): Promise<void> {
  await Promise.all(
    nodes.map(async (node) => {
      const v = String(++version);
      node.services.set('s', v);
      const reply = await node.upsert();
      if (reply.ok === true) acknowledged.get(node.nodeId)?.push(v);
      else if (reply.error?.code === 'unavailable') refused++;
      else throw new Error(`upsert of ${node.nodeId}: ${JSON.stringify(reply.error)}`);
    }),
  );
}

const versionsIn = (watcher: ResumingWatcher, nodeId: string): Set<string> =>
  new Set(
    watcher.events
      .filter((e) => e.node_id === nodeId)
      .flatMap((e) => (e.services as Array<{ service_id: string; version: string }>).filter((s) => s.service_id === 's').map((s) => s.version)),
  );

await t.test('the etcd leader killed under load: upserts pause and resume, nothing acknowledged is lost', async (tt) => {
  for (let i = 0; i < 5; i++) await upsertRound();
  const leader = await cluster.leader();
  const load = (async () => {
    for (let i = 0; i < 20; i++) await upsertRound();
  })();
  await new Promise((resolve) => setTimeout(resolve, 200));
  tt.equal((await leader.kill9()).signal, 'SIGKILL', `the leader (${leader.name}) died of SIGKILL`);
  await load;
  tt.ok(refused <= 10, `${refused} upserts refused (unavailable) during the election; the rest acknowledged`);
  for (const node of nodes) {
    const last = acknowledged.get(node.nodeId)?.at(-1) as string;
    await waitFor(() => versionsIn(onA, node.nodeId).has(last) && versionsIn(onB, node.nodeId).has(last), {
      what: `${node.nodeId}@${last} on both watchers`,
      timeoutMs: 30_000,
    });
    const missing = (acknowledged.get(node.nodeId) ?? []).filter((v) => !versionsIn(onA, node.nodeId).has(v));
    tt.same(missing, [], `every acknowledged upsert of ${node.nodeId} is an event (${acknowledged.get(node.nodeId)?.length} of them)`);
  }
  leader.start();
  await cluster.waitHealthy();
});

await t.test('quorum lost: upserts answer unavailable, /readyz fails, reads still work; all recovers with quorum', async (tt) => {
  const killed = cluster.members.slice(0, 2);
  await Promise.all(killed.map((m) => m.kill9()));
  const started = Date.now();
  const node = nodes[0] as SimNode;
  node.services.set('s', 'during-outage');
  const reply = await node.upsert();
  tt.equal(reply.error?.code, 'unavailable', `the upsert is refused: ${reply.error?.message}`);
  tt.ok(Date.now() - started < 20_000, `within ${Date.now() - started} ms (call deadlines, not a hang)`);
  const ready = await fetch(`${a.httpUrl}/readyz`);
  tt.equal(ready.status, 503, '/readyz fails');
  const admin = await session(b.url, { token: store.adminToken }).catch(() => undefined);
  tt.notOk(admin, 'a new session cannot be checked (HTTP 503)');
  const listed = await onA.current?.call<{ nodes: Array<{ node_id: string }> }>('control.node_list');
  tt.same(
    listed?.nodes.map((n) => n.node_id),
    ['f1', 'f2'],
    'an open session still reads the catalog (from memory)',
  );

  for (const member of killed) member.start();
  await cluster.waitHealthy();
  await waitFor(async () => (await fetch(`${a.httpUrl}/readyz`)).status === 200 && (await fetch(`${b.httpUrl}/readyz`)).status === 200, {
    what: 'both servers ready again',
    timeoutMs: 60_000,
  });
  node.services.set('s', 'after-outage');
  await waitFor(async () => (await node.upsert()).ok === true, { what: 'an upsert after the outage', timeoutMs: 30_000, intervalMs: 500 });
  await waitFor(() => versionsIn(onA, 'f1').has('after-outage') && versionsIn(onB, 'f1').has('after-outage'), {
    what: 'its event on both watchers',
    timeoutMs: 30_000,
  });
  const all = historyOf(onA);
  tt.same(checkReference(all, { contiguous: false }), [], 'the history on A: increasing seqs, each once');
  tt.same(historyOf(onB), all, 'B saw the same history');
  for (const watcher of [onA, onB])
    tt.same(validateWatcher(watcher.sessions, all).problems, [], `${watcher.name}: a valid history through the leader kill and the outage`);
});
