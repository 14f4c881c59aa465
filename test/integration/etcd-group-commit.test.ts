// Group commit (src/control/etcd/group-commit.ts) against real etcd: changes that queue while
// transactions are in flight go together in one transaction (one revision, each value carrying its
// place in the group); a group with one stale guard (another writer changed that key meanwhile)
// falls back to one transaction per change: the others commit, the stale one reports where its key
// changed, and nothing is written twice or lost.
import t from 'tap';
import { GroupCommit } from '../../src/control/etcd/group-commit.js';
import { storedObject, type Write } from '../../src/control/etcd/guarded-txn.js';
import { openEtcd, startEtcd } from '../helpers/etcd.js';

/** A write whose value names the change and its place in the group it went with. */
const marked = (key: string, name: string): Write => ({ key, encoded: (opId, index) => Buffer.from(JSON.stringify({ op_id: opId, name, index })) });

const cluster = await startEtcd(t);
const connection = await openEtcd(t, cluster.endpoints);
const other = await openEtcd(t, cluster.endpoints);

async function read(key: string): Promise<{ object: Record<string, unknown>; revision: bigint } | undefined> {
  const kv = (await connection.client.get(key).exec()).kvs[0];
  const object = kv && storedObject(kv.value)?.object;
  return kv && object ? { object, revision: BigInt(kv.mod_revision) } : undefined;
}

t.test('changes queued behind the ones in flight commit together, in one revision, each with its index', async (tt) => {
  const commits = new GroupCommit(connection);
  const keys = Array.from({ length: 12 }, (_, i) => `/g1/k${i}`);
  const outcomes = await Promise.all(
    keys.map((key, i) => commits.commit(`change ${i}`, [{ key, modRevision: 0n }], [marked(key, `c${i}`), { key: `${key}-lease`, value: { i } }])),
  );
  tt.ok(
    outcomes.every((o) => o.committed),
    'all 12 committed',
  );
  const revisions = [...new Set(outcomes.map((o) => o.revision))];
  // Two go at once (nothing in flight), the other ten queue behind them and go as one.
  tt.ok(revisions.length < keys.length, `12 changes in ${revisions.length} revisions`);
  const shared = outcomes.filter((o) => o.revision === outcomes.at(-1)?.revision);
  tt.ok(shared.length >= 2, `${shared.length} changes share the last revision`);
  const stored = await Promise.all(keys.map(read));
  stored.forEach((s, i) => tt.equal(s?.revision, outcomes[i]?.revision, `k${i} is at the revision its change reported`));
  const indexes = stored.filter((s) => s?.revision === outcomes.at(-1)?.revision).map((s) => s?.object.index);
  tt.same(
    indexes,
    indexes.map((_v, i) => i),
    'the values of one group carry their places 0, 1, 2, … in order',
  );
});

t.test('one stale guard in a group: each change alone; the others commit, the stale one does not, nothing is lost', async (tt) => {
  const commits = new GroupCommit(connection);
  const keys = Array.from({ length: 8 }, (_, i) => `/g2/k${i}`);
  const first = await Promise.all(keys.map((key, i) => commits.commit(`create ${i}`, [{ key, modRevision: 0n }], [marked(key, `v1-${i}`)])));
  const revisionOf = new Map(keys.map((key, i) => [key, first[i]?.revision ?? 0n]));
  // Two changes occupy both slots; the next six queue and go as one group, whose k5 guard is stale.
  const blockers = [
    commits.commit('blocker 0', [{ key: '/g2/k0', modRevision: revisionOf.get('/g2/k0') ?? 0n }], [marked('/g2/k0', 'v2-0')]),
    commits.commit('blocker 1', [{ key: '/g2/k1', modRevision: revisionOf.get('/g2/k1') ?? 0n }], [marked('/g2/k1', 'v2-1')]),
  ];
  const overwritten = await other.client
    .put('/g2/k5')
    .value(JSON.stringify({ op_id: 'other', name: 'other writer' }))
    .exec();
  const queued = keys
    .slice(2)
    .map((key, i) => commits.commit(`update ${i + 2}`, [{ key, modRevision: revisionOf.get(key) ?? 0n }], [marked(key, `v2-${i + 2}`)]));
  const outcomes = [...(await Promise.all(blockers)), ...(await Promise.all(queued))];
  outcomes.forEach((o, i) => tt.equal(o.committed, i !== 5, i === 5 ? 'k5 (stale guard) did not commit' : `k${i} committed`));
  tt.equal(outcomes[5]?.changedAt, BigInt(overwritten.header.revision), 'k5 says where its key changed');
  const stored = await Promise.all(keys.map(read));
  stored.forEach((s, i) =>
    tt.equal(s?.object.name, i === 5 ? 'other writer' : `v2-${i}`, `k${i} holds ${i === 5 ? "the other writer's value" : 'its update'}`),
  );
  const fallback = outcomes
    .slice(2)
    .filter((o) => o.committed)
    .map((o) => o.revision);
  tt.equal(new Set(fallback).size, fallback.length, 'after the failed group, each change went alone (its own revision)');
});

t.test('changes of one key never share a group; a change too large for the group goes alone', async (tt) => {
  const commits = new GroupCommit(connection);
  const busy = [
    commits.commit('a', [{ key: '/g3/x', modRevision: 0n }], [marked('/g3/x', 'a')]),
    commits.commit('b', [{ key: '/g3/y', modRevision: 0n }], [marked('/g3/y', 'b')]),
  ];
  // Both queued, both planned from /g3/z absent: never in one group (etcd refuses a key twice in one
  // transaction); two groups may be in flight at once, so either may win, and exactly one does.
  const sameKey = [
    commits.commit('c', [{ key: '/g3/z', modRevision: 0n }], [marked('/g3/z', 'c')]),
    commits.commit('d', [{ key: '/g3/z', modRevision: 0n }], [marked('/g3/z', 'd')]),
  ];
  const big: Write = {
    key: '/g3/big',
    encoded: (opId) => Buffer.concat([Buffer.from(`{"op_id":"${opId}","pad":"`), Buffer.alloc(1_100_000, 'a'), Buffer.from('"}')]),
  };
  const large = commits.commit('large', [{ key: '/g3/big', modRevision: 0n }], [big]);
  const small = commits.commit('small', [{ key: '/g3/w', modRevision: 0n }], [marked('/g3/w', 'w')]);
  const [c, d] = await Promise.all(sameKey);
  await Promise.all(busy);
  tt.equal([c, d].filter((o) => o?.committed).length, 1, 'exactly one of the two changes of /g3/z commits: no lost update');
  tt.equal((await read('/g3/z'))?.object.name, c?.committed ? 'c' : 'd', "/g3/z holds the winner's value");
  const [l, s] = await Promise.all([large, small]);
  tt.ok(l?.committed && s?.committed, 'the 1.1 MB change and the small one both commit');
  tt.not(l?.revision, s?.revision, 'in separate transactions (the group is bounded by bytes)');
});

// Last: it stops etcd.
t.test('etcd gone under a group: each change is refused with unavailable, in its own words', async (tt) => {
  const commits = new GroupCommit(connection);
  await (cluster.members[0] as { kill9(): Promise<unknown> }).kill9();
  const outcomes = await Promise.allSettled(
    Array.from({ length: 5 }, (_, i) => commits.commit(`change ${i} of node n${i}`, [{ key: `/g4/k${i}`, modRevision: 0n }], [marked(`/g4/k${i}`, `c${i}`)])),
  );
  outcomes.forEach((outcome, i) => {
    const error = outcome.status === 'rejected' ? (outcome.reason as { code?: string; message?: string }) : undefined;
    tt.equal(error?.code, 'unavailable', `change ${i}: unavailable`);
    tt.match(
      error?.message,
      new RegExp(`^control store \\(etcd\\): change ${i} of node n${i} failed: .*may or may not have been applied`),
      `change ${i}: its own words`,
    );
  });
});
