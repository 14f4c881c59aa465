// A control server started again on an etcd whose history was compacted (SPEC §6: replay and
// since_seq work across restarts): it fills its replay ring from the oldest revision etcd still
// holds, so a watcher resuming on it with a since_seq learned before the restart gets every event
// since, none missing; only a since_seq older than the compaction is resync_required. It used to
// start its ring empty at the head whenever the 2048 revisions it wanted reached past the
// compaction, refusing resumes etcd could serve.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { historyOf, ResumingWatcher, SimNode } from '../helpers/catalog-sim.js';
import { session, startControl, type RunningControl } from '../helpers/control.js';
import { waitFor } from '../helpers/process.js';
import { etcdStore, openEtcd, startEtcd } from '../helpers/etcd.js';
import { checkReference, validateWatcher } from '../helpers/history-validator.js';

const cluster = await startEtcd(t);
const store = await etcdStore(cluster, '/ha2-history/');
const etcd = await openEtcd(t, cluster.endpoints);
let server = await startControl(t, { store, args: ['--server-id', 'ha2-a'] });
const b = await startControl(t, { store, args: ['--server-id', 'ha2-b'] });
// The reference sees every event on B, which runs throughout.
const reference = new ResumingWatcher('reference on B', store.adminToken, { replay_limit: 1024 });
const resuming = new ResumingWatcher('watcher on A', store.adminToken, { replay_limit: 0 });
t.teardown(() => [reference, resuming].forEach((w) => w.close()));
await reference.connect(b.url);
const node = await SimNode.provision(b.url, store.adminToken, 'ha2-n1');
let version = 0;

/** A new version of service s1 through B: one event; its seq, once the reference has it. */
async function publish(): Promise<number> {
  const wanted = String(++version);
  node.services.set('s1', wanted);
  await node.publish();
  const event = await waitFor(
    () => historyOf(reference).find((e) => e.node_id === 'ha2-n1' && (e.services as Array<{ version: string }>).some((s) => s.version === wanted)),
    { what: `the reference seeing version ${wanted}` },
  );
  return event.seq;
}

for (const [name, halt] of [
  ['kill -9', (s: RunningControl) => s.kill9()],
  ['SIGTERM', (s: RunningControl) => s.stop()],
] as const) {
  await t.test(`compacted etcd, the server restarted (${name}): a watcher resumes on it with since_seq and misses nothing`, async (tt) => {
    await resuming.connect(server.url);
    await publish();
    const compactRevision = BigInt((await etcd.client.get('/').exec()).header.revision);
    await etcd.client.kv.compact({ revision: String(compactRevision), physical: true });
    await publish();
    await resuming.reach(await publish());
    const since = resuming.position ?? 0;

    resuming.serverGone();
    await halt(server);
    // Written while the server is down: it learns them from etcd alone.
    await publish();
    const last = await publish();
    server = await server.restart();
    await resuming.connect(server.url);
    await resuming.reach(last);

    tt.same(resuming.resyncs, [], 'no resync_required');
    const all = historyOf(reference);
    tt.same(checkReference(all, { contiguous: false }), [], 'the reference stream is whole');
    tt.same(validateWatcher(resuming.sessions, all).problems, [], 'every session of the watcher is whole, each event once and in order');
    const after = all.filter((e) => e.seq > since).map((e) => e.seq);
    tt.ok(after.length >= 2, `the ${after.length} events after since_seq ${since}, written while the server was down`);
    tt.same(
      historyOf(resuming)
        .filter((e) => e.seq > since)
        .map((e) => e.seq),
      after,
      'came to the resumed watch, as the reference has them',
    );
    // Before the compaction revision's events: etcd no longer has them, so neither does the ring.
    const peer = await session(server.url, { token: store.adminToken });
    const gone = await peer.request('control.node_service_watch', { since_seq: Number(compactRevision) * 1000 - 1 });
    await peer.close();
    tt.equal(gone.error?.code, 'resync_required', `a since_seq from before the compaction is resync_required: ${gone.error?.message}`);
    const log = await readFile(server.logFile, 'utf8');
    tt.match(log, `"compact_revision":"${compactRevision}"`, `the restarted server's ring starts at the compaction, revision ${compactRevision}`);
  });
}
