// PrefixWatch and PrefixMirror (src/control/etcd) against real etcd: a watch catching up on history
// resumes at its last delivered revision after the member serving it is killed (etcd3 alone skips
// the rest of the history); a watch from a compacted revision, or one whose resume revision was
// compacted while its connection was down, reports a typed compaction instead of going silent; a
// mirror lists again after a compaction and reports every difference as a change.
import t from 'tap';
import type { Etcd3 } from 'etcd3';
import type { EtcdConnection } from '../../src/control/etcd/connection.js';
import { PrefixMirror } from '../../src/control/etcd/prefix-mirror.js';
import { PrefixWatch, WatchCompactedError, type WatchedChange } from '../../src/control/etcd/prefix-watch.js';
import { memberGauge, openEtcd, startEtcd, type EtcdMember } from '../helpers/etcd.js';
import { startProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/process.js';

interface Recorder {
  changes: WatchedChange[];
  compacted: WatchCompactedError[];
  states: boolean[];
  onFirstBatch?: () => void;
}

function watchInto(connection: EtcdConnection, prefix: string, from: bigint, recorder: Recorder): PrefixWatch {
  return new PrefixWatch(connection, prefix, from, {
    changes: (changes) => {
      if (changes.length === 0) return;
      const first = recorder.changes.length === 0;
      recorder.changes.push(...changes);
      if (first) recorder.onFirstBatch?.();
    },
    compacted: (error) => recorder.compacted.push(error),
    state: (connected) => recorder.states.push(connected),
  });
}

/**
 * Puts `count` keys `<prefix><i>`, 16 at a time, when nothing else writes: every revision from
 * `first` to `last` is one of these puts (a put etcd3 retried after a timeout may take two).
 */
async function putMany(client: Etcd3, prefix: string, count: number, value = 'v'): Promise<{ first: bigint; last: bigint }> {
  const first = BigInt((await client.put(`${prefix}0`).value(value).exec()).header.revision);
  let next = 1;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        const i = next++;
        await client.put(`${prefix}${i}`).value(value).exec();
      }
    }),
  );
  return { first, last: BigInt((await client.get(prefix).exec()).header.revision) };
}

/** Every revision from `first` to `last`, once and in order. */
const revisions = (first: bigint, last: bigint): bigint[] => Array.from({ length: Number(last - first + 1n) }, (_v, i) => first + BigInt(i));

t.test('a watch catching up on history resumes after its member is killed, losing nothing', async (t) => {
  const cluster = await startEtcd(t, { members: 3 });
  const writer = await openEtcd(t, cluster.endpoints);
  // Over 1000 revisions: etcd sends the history in several responses of 1000 revisions each.
  const { first: from, last } = await putMany(writer.client, '/r/', 3_000);
  const count = Number(last - from + 1n);
  writer.close();

  const reader = await openEtcd(t, cluster.endpoints);
  // All watches of a client share one stream: an idle one first shows which member serves it.
  const idle = watchInto(reader, '/idle/', from, { changes: [], compacted: [], states: [] });
  t.teardown(() => idle.close());
  const serving = await waitFor(
    async () => {
      const streams = await Promise.all(cluster.members.map((m) => memberGauge(m, 'etcd_debugging_mvcc_watch_stream_total')));
      return cluster.members.find((_m, i) => (streams[i] ?? 0) > 0);
    },
    { what: 'the member serving the watch stream' },
  );
  const recorder: Recorder = { changes: [], compacted: [], states: [] };
  let killed: { member: EtcdMember; delivered: number } | undefined;
  recorder.onFirstBatch = () => {
    void serving.kill9().then(() => (killed = { member: serving, delivered: recorder.changes.length }));
  };
  const watch = watchInto(reader, '/r/', from, recorder);
  t.teardown(() => watch.close());
  await waitFor(() => recorder.changes.length >= count && killed !== undefined, { what: `all ${count} changes`, timeoutMs: 60_000 });
  t.ok(killed, 'the member serving the stream was killed');
  t.ok((killed?.delivered ?? count) < count, `killed mid catch-up: ${killed?.delivered} of ${count} changes delivered when it was gone`);
  t.ok(recorder.states.includes(false), 'the break was reported');
  t.same(
    recorder.changes.map((c) => c.modRevision),
    revisions(from, last),
    `every revision from ${from} to ${last} once, in order, none missing`,
  );
  t.equal(new Set(recorder.changes.map((c) => c.key)).size, 3_000, 'every key written');
  t.same(recorder.compacted, [], 'no compaction reported');
  await watch.close();
});

t.test('compaction: a watch from a compacted revision, or one whose resume revision was compacted meanwhile, says so', async (t) => {
  const cluster = await startEtcd(t);
  const admin = await openEtcd(t, cluster.endpoints);
  const { first: early } = await putMany(admin.client, '/c/', 5);
  const head = BigInt((await admin.client.put('/c/last').value('v').exec()).header.revision);
  await admin.client.kv.compact({ revision: String(head), physical: true });

  const fromCompacted: Recorder = { changes: [], compacted: [], states: [] };
  const dead = watchInto(admin, '/c/', early, fromCompacted);
  t.teardown(() => dead.close());
  await waitFor(() => fromCompacted.compacted.length > 0, { what: 'the compaction report' });
  t.type(fromCompacted.compacted[0], WatchCompactedError, 'a typed WatchCompactedError');
  t.equal(fromCompacted.compacted[0]?.fromRevision, early, 'naming the revision it wanted');
  t.same(fromCompacted.changes, [], 'and no changes');

  // A watch through a relay that is cut: the history it has not seen is compacted meanwhile.
  const proxy = await startProxy(t, cluster.endpoints[0] as string);
  const viaProxy = await openEtcd(t, [proxy.url]);
  const cut: Recorder = { changes: [], compacted: [], states: [] };
  const watch = watchInto(viaProxy, '/d/', head + 1n, cut);
  t.teardown(() => watch.close());
  await admin.client.put('/d/seen').value('1').exec();
  await waitFor(() => cut.changes.length === 1, { what: 'the first change' });
  proxy.cut();
  await waitFor(() => cut.states.includes(false), { what: 'the watch noticing the cut' });
  await admin.client.put('/d/missed').value('1').exec();
  const later = BigInt((await admin.client.put('/other').value('1').exec()).header.revision);
  await admin.client.kv.compact({ revision: String(later), physical: true });
  proxy.restore();
  await waitFor(() => cut.compacted.length > 0, { what: 'the compaction report after the cut', timeoutMs: 30_000 });
  t.same(
    cut.changes.map((c) => c.key),
    ['/d/seen'],
    'the missed change was not invented',
  );
  t.ok((cut.compacted[0]?.fromRevision ?? 0n) > head, 'naming the resume revision');
});

t.test('a mirror lists again after a compaction and reports each difference', async (t) => {
  const cluster = await startEtcd(t);
  const admin = await openEtcd(t, cluster.endpoints);
  const proxy = await startProxy(t, cluster.endpoints[0] as string);
  const viaProxy = await openEtcd(t, [proxy.url], { prefix: '/m/' });
  await admin.client.put('/m/keep').value('{"v":1}').exec();
  await admin.client.put('/m/change').value('{"v":1}').exec();
  await admin.client.put('/m/drop').value('{"v":1}').exec();
  const decode = (value: Buffer): { v: number } | undefined => JSON.parse(value.toString()) as { v: number };
  const mirror = await PrefixMirror.open(viaProxy, '', decode);
  t.teardown(() => mirror.close());
  const seen: Array<[string, number | undefined]> = [];
  mirror.onChange((changes) => seen.push(...changes.map((c): [string, number | undefined] => [c.key, c.after?.v])));
  t.same(
    [...mirror.values()].map((v) => v.v),
    [1, 1, 1],
    'listed',
  );

  await admin.client.put('/m/live').value('{"v":2}').exec();
  await waitFor(() => mirror.get('live')?.v === 2, { what: 'a live change' });
  proxy.cut();
  await admin.client.put('/m/change').value('{"v":3}').exec();
  await admin.client.delete().key('/m/drop').exec();
  await admin.client.put('/m/new').value('{"v":4}').exec();
  const head = BigInt((await admin.client.put('/elsewhere').value('x').exec()).header.revision);
  await admin.client.kv.compact({ revision: String(head), physical: true });
  proxy.restore();
  await waitFor(() => mirror.get('new')?.v === 4 && mirror.revision >= head, { what: 'the mirror after the compaction', timeoutMs: 30_000 });
  t.same(
    Object.fromEntries(['keep', 'change', 'drop', 'live', 'new'].map((k) => [k, mirror.get(k)?.v])),
    { keep: 1, change: 3, drop: undefined, live: 2, new: 4 },
    'the mirror matches etcd',
  );
  t.same(
    seen.slice(1).sort(),
    [
      ['change', 3],
      ['drop', undefined],
      ['new', 4],
    ],
    'every difference reported once',
  );
  t.same(seen[0], ['live', 2], 'after the live change');
});

t.test("a catch-up response above grpc-js's 4 MiB default is received", async (t) => {
  const cluster = await startEtcd(t);
  const connection = await openEtcd(t, cluster.endpoints);
  // 1200 revisions of 6 KiB: the first response (1000 revisions) holds about 6 MiB.
  const { first, last } = await putMany(connection.client, '/big/', 1_200, 'x'.repeat(6_144));
  const recorder: Recorder = { changes: [], compacted: [], states: [] };
  const watch = watchInto(connection, '/big/', first, recorder);
  t.teardown(() => watch.close());
  await waitFor(() => recorder.changes.length >= Number(last - first + 1n), { what: 'every change', timeoutMs: 30_000 });
  t.same(
    recorder.changes.map((c) => c.modRevision),
    revisions(first, last),
    'all delivered, once, in order',
  );
});
