// Several control servers on one etcd (issue 11): two `acheron control --store etcd` on a 3-member
// cluster serve one catalog. Simulated nodes upsert through either server while watchers on both
// (full and delta shapes) watch, and one watcher moves between the servers resuming with since_seq:
// both servers deliver the same events with the same seqs (from etcd revisions: increasing, not
// contiguous; also when many changes go to etcd in group commits), and every watcher's view passes
// the history validator. A node credential acts only on its own node on either server; a server
// stalled past its registration brings its nodes back online once registered again; metrics name
// their server; and when a server dies (kill -9) its nodes turn offline on the survivor once its
// registration lapses and the grace period passes, also on a server started again at once under the
// dead one's id.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceDescriptor } from '../../src/protocol/types.gen.js';
import { historyOf, ResumingWatcher, service, SimNode } from '../helpers/catalog-sim.js';
import { connect, joinToken, session, startControl, type RunningControl } from '../helpers/control.js';
import { etcdStore, startEtcd } from '../helpers/etcd.js';
import { checkReference, validateWatcher, type EmittedEvent } from '../helpers/history-validator.js';
import { waitFor } from '../helpers/process.js';
import { prng, testSeed } from '../helpers/random.js';

const cluster = await startEtcd(t, { members: 3 });
const store = await etcdStore(cluster);
// A dead server is noticed after 1 s (its registration), then its nodes have a 1 s grace period.
const args = ['--offline-grace-ms', '1000', '--server-ttl-ms', '1000'];
const [a, b] = await Promise.all([startControl(t, { store, args }), startControl(t, { store, args })]);
const seed = testSeed();
t.comment(`seed ${seed} (ACHERON_TEST_SEED=${seed} repeats this run)`);
const random = prng(seed);

const refA = new ResumingWatcher('reference on A', store.adminToken, { replay_limit: 1024 });
const refB = new ResumingWatcher('reference on B', store.adminToken, { replay_limit: 1024 });
const deltaB = new ResumingWatcher('delta watcher on B', store.adminToken, { include: 'delta', replay_limit: 0 });
const roaming = new ResumingWatcher('watcher moving between A and B', store.adminToken, { replay_limit: 0 });
const filtered = new ResumingWatcher('watcher of n3 moving between B and A', store.adminToken, { node_id: 'n3', replay_limit: 0 });
t.teardown(() => [refA, refB, deltaB, roaming, filtered].forEach((w) => w.close()));
await Promise.all([refA.connect(a.url), refB.connect(b.url), deltaB.connect(b.url), roaming.connect(a.url), filtered.connect(b.url)]);

// n1, n2 have their tunnels on A; n3, n4 on B.
const nodes = await Promise.all(
  [
    ['n1', a],
    ['n2', a],
    ['n3', b],
    ['n4', b],
  ].map(([id, server]) => SimNode.provision((server as typeof a).url, store.adminToken, id as string)),
);
t.teardown(() => nodes.forEach((n) => n.peer.socket.terminate()));
const [n1, n2, n3, n4] = nodes as [SimNode, SimNode, SimNode, SimNode];

/** Waits until both references have an event of `node` whose catalog has `serviceId` at `version`. */
async function seen(node: SimNode, serviceId: string, version: string): Promise<void> {
  const has = (w: ResumingWatcher): boolean =>
    w.events.some(
      (e) =>
        e.node_id === node.nodeId &&
        (e.services as Array<{ service_id: string; version: string }>).some((s) => s.service_id === serviceId && s.version === version),
    );
  await waitFor(() => has(refA) && has(refB), { what: `both references see ${node.nodeId}/${serviceId}@${version}`, timeoutMs: 20_000 });
}

await t.test('upserts through either server reach every watcher on both, in one seq order', async (tt) => {
  let moves = 0;
  for (let step = 0; step < 60; step++) {
    const node = nodes[Math.floor(random() * nodes.length)] as SimNode;
    const id = `s${Math.floor(random() * 4)}`;
    if (node.services.has(id) && random() < 0.3) node.services.delete(id);
    else node.services.set(id, String(step));
    await node.publish();
    if (step % 12 === 11) {
      moves++;
      await roaming.connect(moves % 2 === 1 ? b.url : a.url);
      await filtered.connect(moves % 2 === 1 ? a.url : b.url);
    }
  }
  n1.services.set('last', 'done');
  await n1.publish();
  await seen(n1, 'last', 'done');

  const all = historyOf(refA);
  tt.same(checkReference(all, { contiguous: false }), [], 'the reference on A saw increasing seqs, each once');
  tt.same(historyOf(refB), all, 'the reference on B saw the same events with the same seqs');
  tt.ok(all.length >= 60, `${all.length} events (4 joins, upserts)`);
  const gaps = all.slice(1).filter((e, i) => e.seq > (all[i] as EmittedEvent).seq + 1).length;
  tt.ok(gaps > 0, `seqs come from etcd revisions: ${gaps} gaps where other keys (leases, tunnels) took revisions`);
  await Promise.all([deltaB, roaming, filtered].map((w) => w.reach(all.at(-1)?.seq ?? 0).catch(() => undefined)));
  await filtered.synced();
  for (const watcher of [refA, refB, deltaB, roaming, filtered]) {
    // The delta watcher's events have another shape; the validator compares what both shapes share.
    const reference = watcher === deltaB ? historyOf(refA).map(({ services: _s, ...rest }) => rest as EmittedEvent) : all;
    const sessions =
      watcher === deltaB
        ? watcher.sessions.map((s) => ({
            ...s,
            frames: s.frames.map((f) => (f.type === 'control.node_service_event' ? { ...f, payload: withoutChanged(f.payload) } : f)),
          }))
        : watcher.sessions;
    const report = validateWatcher(sessions, reference);
    tt.same(report.problems, [], `${watcher.name}: a valid history (${report.received.length} events over ${watcher.sessions.length} sessions)`);
  }
  tt.ok(moves >= 4, `watchers moved between the servers ${moves} times, resuming with since_seq`);
});

await t.test('a node credential acts only on its own node, on either server', async (tt) => {
  await n1.reconnect(b.url);
  const foreign = await n1.peer.request('control.node_service_upsert', { node_id: 'n2', services: [] });
  tt.equal(foreign.error?.code, 'forbidden', 'n1 on B may not upsert n2');
  n1.services.set('moved', '1');
  tt.equal(await n1.publish(), true, 'n1 upserts its own catalog through B');
  await seen(n1, 'moved', '1');
  const onA = await session(a.url, { token: store.adminToken });
  const doc = await onA.call<{ services: Array<{ service_id: string }>; state: string }>('control.node_get', { node_id: 'n1' });
  tt.ok(
    doc.services.some((s) => s.service_id === 'moved'),
    'A serves the catalog n1 wrote through B',
  );
  tt.equal(doc.state, 'online', 'n1 is online');
  await onA.close();
  // Back to A, where it upserts once as any reconnect does.
  await n1.reconnect(a.url);
  tt.equal(await n1.publish(), false, 'n1 back on A: nothing changed');
});

await t.test('two servers changing one node at once: every change applies to the one before, none is lost', async (tt) => {
  const [onA, onB] = await Promise.all([session(a.url, { token: store.adminToken }), session(b.url, { token: store.adminToken })]);
  const before = refA.events.length;
  const catalog = (i: number): ServiceDescriptor[] => [service('n2', 'shared', String(i)), service('n2', `only-${i}`, '1')];
  type Reply = { service_delta: { changed: boolean }; services: Array<{ service_id: string; version: string }> };
  // Each server's eight in one write: it starts them in one turn, so the two servers' transactions
  // overlap (sent one by one, a quick run could serialize them and never collide).
  const burst = (peer: typeof onA, parity: number): Array<Promise<Reply>> =>
    peer.inOneWrite(() =>
      Array.from({ length: 8 }, (_, k) => peer.call<Reply>('control.node_service_upsert', { node_id: 'n2', services: catalog(2 * k + parity) })),
    );
  const replies = await Promise.all([...burst(onA, 0), ...burst(onB, 1)]);
  tt.ok(
    replies.every((r) => r.service_delta.changed),
    'each of the 16 upserts changed the catalog (each replaced the one before it)',
  );
  await waitFor(() => refA.events.length >= before + 16 && refB.events.length >= refA.events.length, { what: 'the 16 events on both references' });
  const events = refA.events.slice(before).filter((e) => e.node_id === 'n2');
  tt.equal(events.length, 16, 'one event each');
  // Each event's delta goes from the catalog of the event before it: the last writer never overwrote a change it had not seen.
  events.forEach((event, index) => {
    if (index === 0) return;
    const previous = new Set((events[index - 1]?.services as Array<{ service_id: string }>).map((x) => x.service_id));
    const delta = event.service_delta as { removed: Array<{ service_id: string }>; added: Array<{ service_id: string }> };
    tt.ok(
      delta.removed.every((r) => previous.has(r.service_id)) && delta.added.every((x) => !previous.has(x.service_id)),
      `event ${index + 1} (seq ${String(event.seq)}) applies to the one before it`,
    );
  });
  const final = await onB.call<{ services: Array<{ service_id: string; version: string }> }>('control.node_get', { node_id: 'n2' });
  tt.same(final.services, events.at(-1)?.services, "the catalog is the last event's");
  const replanned = (await readFile(a.logFile, 'utf8')) + (await readFile(b.logFile, 'utf8'));
  tt.match(replanned, /upserting the catalog of node n2: the node changed meanwhile; planning again/, 'the servers did collide, and planned again');
  await Promise.all([onA.close(), onB.close()]);
  // n2 publishes its own catalog again (the simulated node's idea of it).
  await n2.publish();
});

await t.test('many changes at once through both servers: group commits, one seq order on both, every change applied', async (tt) => {
  const [onA, onB] = await Promise.all([session(a.url, { token: store.adminToken }), session(b.url, { token: store.adminToken })]);
  const before = refA.events.length;
  const rounds = 12;
  // Each round changes every node at once through one server (A, B, A, …): more changes than
  // transactions in flight, so the later ones queue and go together.
  const replies: boolean[] = [];
  for (let round = 0; round < rounds; round++) {
    const via = round % 2 === 0 ? onA : onB;
    // In one write: the server starts all four in one turn, so two wait for the transactions in flight.
    const calls = via.inOneWrite(() =>
      nodes.map((node) =>
        via.call<{ service_delta: { changed: boolean } }>('control.node_service_upsert', {
          node_id: node.nodeId,
          services: [service(node.nodeId, 'burst', String(round))],
        }),
      ),
    );
    replies.push(...(await Promise.all(calls)).map((reply) => reply.service_delta.changed));
  }
  tt.ok(replies.every(Boolean), `each of the ${nodes.length * rounds} upserts changed its node's catalog`);
  await waitFor(() => refA.events.length >= before + nodes.length * rounds && refB.events.length >= refA.events.length, {
    what: 'every burst event on both references',
  });
  const burst = historyOf(refA).slice(-nodes.length * rounds);
  tt.same(checkReference(historyOf(refA), { contiguous: false }), [], 'A: increasing seqs, each once');
  tt.same(historyOf(refB), historyOf(refA), 'B saw the same events with the same seqs');
  for (const node of nodes) {
    const versions = burst.filter((e) => e.node_id === node.nodeId).map((e) => (e.services as Array<{ version: string }>)[0]?.version);
    tt.same(
      versions,
      Array.from({ length: rounds }, (_v, i) => String(i)),
      `${node.nodeId}: its ${rounds} changes, in order, none lost`,
    );
  }
  const perRevision = new Map<number, number>();
  for (const e of burst) perRevision.set(Math.floor((e.seq as number) / 1000), (perRevision.get(Math.floor((e.seq as number) / 1000)) ?? 0) + 1);
  tt.ok(
    burst.every((e) => (e.seq as number) % 1000 < 128),
    'each seq is its revision × 1000 + its place among at most 128 changes',
  );
  tt.ok(
    [...perRevision.values()].some((n) => n > 1),
    `some changes went together: ${burst.length} events in ${perRevision.size} revisions (seq = revision × 1000 + index)`,
  );
  await Promise.all([onA.close(), onB.close()]);
  // Each node publishes its own catalog again (the simulated node's idea of it).
  await Promise.all(nodes.map((node) => node.publish()));
});

await t.test('a catalog larger than etcd takes in one request: payload_too_large, nothing changed', async (tt) => {
  const before = await session(b.url, { token: store.adminToken });
  const was = await before.call<{ services: unknown[] }>('control.node_get', { node_id: 'n4' });
  const kept = new Map(n4.services);
  // 1.6 MB gzipped: above etcd's request limit; 2.3 MB: above what its gRPC server reads at all. Random
  // filler, as the record is stored gzipped: repetitive bytes would shrink below the limit.
  for (const count of [18, 26]) {
    for (let i = 0; i < count; i++) n4.services.set(`big-${i}`, '1');
    const big = await n4.upsert({ filler: randomBytes(90_000).toString('base64') });
    tt.equal(big.error?.code, 'payload_too_large', `${count} × 120 KB refused: ${big.error?.message}`);
    tt.match(big.error?.message, /(request is too large|received message larger than max).*--max-request-bytes.*nothing was written/, "naming etcd's limit");
  }
  n4.services.clear();
  for (const [id, version] of kept) n4.services.set(id, version);
  tt.same((await before.call<{ services: unknown[] }>('control.node_get', { node_id: 'n4' })).services, was.services, 'the catalog is as it was');
  await before.close();
});

await t.test('a node whose tunnel closes turns offline after the grace period, seen on the other server', async (tt) => {
  const before = refB.events.length;
  n2.peer.socket.terminate();
  await waitFor(() => refB.events.slice(before).some((e) => e.node_id === 'n2' && e.kind === 'offline'), { what: 'n2 offline on B', timeoutMs: 20_000 });
  tt.pass('offline event on B');
  await n2.reconnect(a.url);
  tt.equal(await n2.publish(), false, 'n2 back: its catalog unchanged');
  await waitFor(() => refB.events.slice(before).some((e) => e.node_id === 'n2' && e.kind === 'online'), { what: 'n2 online again on B' });
  tt.pass('online event on B');
});

await t.test('a relay through B reaches a node whose tunnel is on A: B finds A in etcd and forwards it, once', async (tt) => {
  await n1.peer.call('control.relay_ready', { node_id: 'n1' });
  const onB = await session(b.url, { token: store.adminToken });
  const asked = n1.peer.next((f) => f.type === 'control.relay_request');
  const reply = onB.request('control.relay', { node_id: 'n1', request_id: 'x-1', op: 'open', path: '/fs/data/a.txt', flags: 0 });
  const request = (await asked).payload as { relay_id: string; session: string; op: string; path: string; request_id: string };
  tt.same([request.op, request.path, request.request_id], ['open', '/fs/data/a.txt', 'x-1'], 'the node got the operation, through A');
  await n1.peer.call('control.relay_reply', { relay_id: request.relay_id, ok: true, result: { fh: 7 } });
  const outcome = await reply;
  tt.same(outcome.payload, { ok: true, result: { fh: 7 } }, "the requester on B got the node's outcome");
  tt.equal(n1.peer.frames.filter((f) => f.type === 'control.relay_request').length, 1, 'one request reached the node (at most once)');
  const released = n1.peer.next((f) => f.type === 'control.relay_session_closed');
  await onB.close();
  tt.same((await released).payload, { session: request.session }, "the requester's session ended on B: the node releases its handles");
  const nowhere = await session(b.url, { token: store.adminToken });
  const lost = await nowhere.call<{ ok: boolean; errno: string }>('control.relay', { node_id: 'nobody', request_id: 'x-2', op: 'stat', path: '/fs' });
  tt.equal(lost.errno, 'EHOSTUNREACH', 'a node with no tunnel anywhere: EHOSTUNREACH at once');
  await nowhere.close();
});

await t.test('a node joined again through A: its connections on B with the old secret close (4001), B refuses that secret', async (tt) => {
  // On B: a connection that joined with a join token (it became the node), and one made with the secret it got.
  const token = await joinToken(store);
  const joiner = await session(b.url, { token });
  const first = await joiner.call<{ node_secret: string }>('control.node_join', { join_token: token, node_id: 'n-rekeyed' });
  const byToken = await session(b.url, { token: `node.n-rekeyed.${first.node_secret}` });
  const closing = [joiner, byToken].map((peer) => new Promise<number>((resolve) => peer.socket.once('close', (code: number) => resolve(code))));
  const admin = await session(a.url, { token: store.adminToken });
  const started = Date.now();
  const second = await admin.call<{ node_secret: string }>('control.node_join', { join_token: 'admin-provisioned', node_id: 'n-rekeyed' });
  tt.not(second.node_secret, first.node_secret, 'the join through A replaced the secret');
  tt.same(await Promise.all(closing), [4001, 4001], 'B closed both (they stayed open until their next reconnect)');
  tt.ok(Date.now() - started < 10_000, `promptly (${Date.now() - started} ms)`);
  tt.equal((await connect(b.url, { token: `node.n-rekeyed.${first.node_secret}` })).status, 401, 'B refuses the old secret');
  const fresh = await session(b.url, { token: `node.n-rekeyed.${second.node_secret}` });
  tt.equal((await fresh.request('control.node_get', { node_id: 'n-rekeyed' })).ok, true, 'the new secret works on B');
  // Gone again, so the catalog is the four nodes the later tests count.
  await admin.call('control.node_delete', { node_id: 'n-rekeyed' });
  await Promise.all([fresh.close(), admin.close()]);
});

await t.test('a server stalled past its registration: the other turns its nodes offline, and it brings back those that answer', async (tt) => {
  const before = refA.events.length;
  const seenOnA = (kind: string, nodeId: string): boolean => refA.events.slice(before).some((e) => e.node_id === nodeId && e.kind === kind);
  // Stopped until A has taken its nodes for gone (its 1 s registration lapsed, then their 1 s grace).
  process.kill(b.child.pid as number, 'SIGSTOP');
  // n4 reads nothing meanwhile, so it answers no ping: a peer gone without a FIN, as B sees it.
  n4.peer.socket.pause();
  try {
    await waitFor(() => seenOnA('offline', 'n3') && seenOnA('offline', 'n4'), { what: 'n3 and n4 offline on A while B is stopped', timeoutMs: 20_000 });
  } finally {
    process.kill(b.child.pid as number, 'SIGCONT');
  }
  tt.pass('A turned the nodes whose tunnels are on B offline');
  // The simulated nodes send nothing: no refresh of their own brings them back.
  await waitFor(() => seenOnA('online', 'n3'), { what: 'n3 online again on A', timeoutMs: 20_000 });
  tt.pass('n3 online again once B registered again: it answered a ping, and B refreshed its lease');
  tt.match(await readFile(b.logFile, 'utf8'), /etcd registration lost: registering again[^]*registered in etcd again/, "B's log says so");
  await sleep(3000); // past B's ping to n4 (2 s)
  tt.notOk(seenOnA('online', 'n4'), 'n4, which answered no ping, stays offline: an open tunnel alone is no proof');
  n4.peer.socket.resume();
  // B dropped that tunnel when the lease lapsed (it answered no ping): what a silent link delivers
  // late must not bring the node back with no tunnel. The node connects again.
  tt.match(await n4.peer.closed, { code: 1006 }, "n4's silent tunnel was dropped");
  await n4.reconnect(b.url);
  await n4.publish();
  await waitFor(() => seenOnA('online', 'n4'), { what: 'n4 online again by its own upsert' });
});

await t.test('metrics name their server', async (tt) => {
  const ids = await Promise.all(
    [a, b].map(async (server) => {
      const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
      tt.match(text, /^acheron_nodes\{state="online",server_id="[^"]+"\} 4$/m, `${server.httpUrl}: the shared catalog's 4 nodes`);
      return /^acheron_nodes\{state="online",server_id="([^"]+)"\}/m.exec(text)?.[1];
    }),
  );
  tt.equal(new Set(ids).size, 2, `two servers, two ids: ${ids.join(', ')}`);
});

// Last: it kills B.
await t.test('a server killed: its nodes turn offline on the survivor after its registration lapses and the grace passes', async (tt) => {
  const before = refA.events.length;
  // A relay through A to n4, whose tunnel is on B, still waiting for n4 when B dies.
  await n4.peer.call('control.relay_ready', { node_id: 'n4' });
  const asked = n4.peer.next((f) => f.type === 'control.relay_request');
  const onA = await session(a.url, { token: store.adminToken });
  const pending = onA.request('control.relay', {
    node_id: 'n4',
    request_id: 'k-1',
    op: 'invoke',
    path: '/services/s0/control/invoke.json',
    data: 'e30=',
    size: 2,
  });
  await asked;
  refB.serverGone();
  tt.equal((await b.kill9()).signal, 'SIGKILL', 'B died of SIGKILL');
  const killedAt = Date.now();
  tt.match((await pending).payload, { ok: false, errno: 'EHOSTUNREACH' }, 'the relay whose path died answers EHOSTUNREACH');
  tt.ok(Date.now() - killedAt < 5_000, `promptly (${Date.now() - killedAt} ms), not after its timeout`);
  await onA.close();
  const offline = (): Set<string> =>
    new Set(
      refA.events
        .slice(before)
        .filter((e) => e.kind === 'offline')
        .map((e) => e.node_id as string),
    );
  await waitFor(() => offline().has('n3') && offline().has('n4'), { what: 'offline events of n3 and n4 on A', timeoutMs: 30_000 });
  tt.same([...offline()].sort(), ['n3', 'n4'], 'the nodes whose tunnels were on B, and only they, turned offline');
  const admin = await session(a.url, { token: store.adminToken });
  const states = await Promise.all(
    ['n1', 'n2', 'n3', 'n4'].map(async (id) => (await admin.call<{ state: string }>('control.node_get', { node_id: id })).state),
  );
  tt.same(states, ['online', 'online', 'offline', 'offline'], "A's catalog agrees");
  await n3.reconnect(a.url);
  tt.equal(await n3.publish(), false, 'n3 reconnects to A: its catalog is unchanged');
  await waitFor(async () => (await admin.call<{ state: string }>('control.node_get', { node_id: 'n3' })).state === 'online', { what: 'n3 online again' });
  tt.ok(
    refA.events.slice(before).some((e) => e.node_id === 'n3' && e.kind === 'online'),
    'with an online event',
  );
  await admin.close();
});

// After B's death: A is killed and started again at once under the same id (its host and port).
let aAgain: RunningControl | undefined;
await t.test(
  'a server killed and started again under its own id: the nodes that do not come back turn offline after the restart grace, not the lease',
  async (tt) => {
    // Seen just before the kill: their restart grace (the grace plus the time since then) is about the grace.
    await Promise.all([n1, n2, n3].map((n) => n.publish()));
    refA.serverGone();
    tt.equal((await a.kill9()).signal, 'SIGKILL', 'A died of SIGKILL with the tunnels of n1, n2, n3');
    const killedAt = Date.now();
    const again = (aAgain = await a.restart());
    const admin = await session(again.url, { token: store.adminToken });
    t.teardown(() => admin.close());
    const states = async (): Promise<string[]> =>
      Promise.all(['n1', 'n2', 'n3'].map(async (id) => (await admin.call<{ state: string }>('control.node_get', { node_id: id })).state));
    await waitFor(async () => (await states()).every((state) => state === 'offline'), { what: 'n1, n2, n3 offline on the restarted A', timeoutMs: 30_000 });
    // Their leases run 60 s (the default); the registration (1 s) and the restart's grace period (1 s
    // plus the time since they were last seen) decide.
    tt.ok(Date.now() - killedAt < 30_000, `offline ${Date.now() - killedAt} ms after the kill, well before the 60 s leases end`);
  },
);

// A alone, stopped for longer than the grace: a node's backoff may be past the grace by then (SPEC §6).
await t.test('a server down longer than the grace: at its start, a node gets the grace plus the time since it was last seen', async (tt) => {
  if (!aAgain) return tt.fail('the server started again by the previous test');
  await n1.reconnect(aAgain.url);
  await n1.publish();
  const get = async (url: string): Promise<{ state: string; last_seen_ms: number; lease_expires_at_ms: number }> => {
    const admin = await session(url, { token: store.adminToken });
    return admin.call<{ state: string; last_seen_ms: number; lease_expires_at_ms: number }>('control.node_get', { node_id: 'n1' }).finally(() => admin.close());
  };
  const before = await get(aAgain.url);
  tt.equal(before.state, 'online');
  await aAgain.stop();
  // Long enough that the restart's grace (1 s plus this) leaves time to read it on a loaded machine (review).
  await sleep(6_000);
  const startingMs = Date.now();
  const third = await aAgain.restart();
  const after = await waitFor(
    async () => {
      const doc = await get(third.url);
      // Not the lease n1 refreshed before the stop, nor a grace the stopping server may have started.
      return doc.lease_expires_at_ms < before.lease_expires_at_ms && doc.lease_expires_at_ms >= startingMs + 1_000 ? doc : undefined;
    },
    { what: "n1's restart grace written" },
  );
  tt.equal(after.state, 'online');
  tt.ok(
    after.lease_expires_at_ms >= startingMs + 1_000 + (startingMs - after.last_seen_ms),
    `its lease ends the 1 s grace plus the ${startingMs - after.last_seen_ms} ms since it was last seen after the start (${after.lease_expires_at_ms - startingMs} ms)`,
  );
});

/** A delta event as the validator compares it: without the changed descriptors (the full shape has the whole catalog instead). */
function withoutChanged(payload: unknown): unknown {
  const { changed_services: _c, ...rest } = payload as Record<string, unknown>;
  return rest;
}
