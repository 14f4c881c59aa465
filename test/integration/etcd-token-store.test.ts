// EtcdTokenStore in process against real etcd, two stores (two servers) on one prefix: a join
// token spent by both at once is spent once, and once more after a failed join gave it back; `rotate admin` makes the first admin token, the last
// admin token cannot be revoked and a join token cannot be rotated; a token made on one store
// authenticates on the other at once and, once revoked there, at once no more; a following store is told; while
// a follower's copy lags (the member serving its watch hangs), a read keeps a new token's session;
// a join token made reaches its maker also when etcd stops answering right after it was written.
import t from 'tap';
import type { Etcd3 } from 'etcd3';
import { EtcdTokenStore } from '../../src/control/etcd/etcd-token-store.js';
import { memberGauge, openEtcd, startEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/process.js';

const cluster = await startEtcd(t);
const stores = async (prefix: string): Promise<[EtcdTokenStore, EtcdTokenStore]> => {
  const [one, two] = [
    new EtcdTokenStore(await openEtcd(t, cluster.endpoints, { prefix })),
    new EtcdTokenStore(await openEtcd(t, cluster.endpoints, { prefix })),
  ];
  t.teardown(async () => void (await Promise.all([one.close(), two.close()])));
  return [one, two];
};

t.test('a join token spent on two servers at once is spent once', async (t) => {
  const [one, two] = await stores('/join/');
  const tokens = await Promise.all(Array.from({ length: 10 }, () => one.createJoin(60_000)));
  for (const { token } of tokens) {
    const spent = await Promise.all([one.consumeJoin(token), two.consumeJoin(token), one.consumeJoin(token), two.consumeJoin(token)]);
    t.equal(spent.filter(Boolean).length, 1, 'exactly one spender');
  }
  t.equal(await two.authenticate(tokens[0]?.token ?? ''), undefined, 'a spent join token no longer authenticates');
});

t.test('a join token given back (its join failed) can be spent again, once', async (t) => {
  const [one, two] = await stores('/return/');
  const { token } = await one.createJoin(60_000);
  t.ok(await one.consumeJoin(token), 'spent');
  await two.returnJoin(token);
  t.ok(await two.authenticate(token), 'given back: it authenticates again');
  const spent = await Promise.all([one.consumeJoin(token), two.consumeJoin(token)]);
  t.equal(spent.filter(Boolean).length, 1, 'and is spent once more, by one spender');
});

t.test('a join token made is returned when the pruning of stale ones after it fails (etcd gone quiet)', async (t) => {
  const [member] = cluster.members;
  if (!member) throw new Error('no etcd member');
  const connection = await openEtcd(t, cluster.endpoints, { prefix: '/prune/', callTimeoutMs: 500 });
  const store = new EtcdTokenStore(connection);
  // The member hangs the moment the token is written: the pruning's reads that follow time out (unavailable).
  const write = connection.write.bind(connection);
  connection.write = async <T>(what: string, call: (client: Etcd3) => Promise<T>): Promise<T> => {
    const written = await write(what, call);
    member.pause();
    return written;
  };
  t.teardown(() => member.resume());
  const made = await store.createJoin(60_000);
  connection.write = write;
  member.resume();
  t.match(made, { id: /^join-/, token: /^ach_join_/ }, 'createJoin answered with the token (before: it threw unavailable, the token unseen)');
  const other = new EtcdTokenStore(await openEtcd(t, cluster.endpoints, { prefix: '/prune/' }));
  t.same(await other.authenticate(made.token), { kind: 'joiner', tokenId: made.id }, 'and the token it answered with works');
});

t.test('rotate admin makes the first admin token; the last admin token cannot be revoked', async (t) => {
  const [one, two] = await stores('/admins/');
  const first = await one.rotate('admin');
  t.equal(first.id, 'admin', 'the first admin token, id admin');
  t.same(await two.authenticate(first.token), { kind: 'admin', tokenId: 'admin' }, 'it authenticates on the other store');
  const again = await two.rotate('admin');
  t.equal(again.id, 'admin', 'rotating it again keeps the id');
  t.equal(await one.authenticate(first.token), undefined, 'the old secret is gone');
  await t.rejects(two.revoke('admin'), { message: 'refusing to revoke the last admin token (rotate it instead)' });
  await t.rejects(two.revoke('nobody'), { message: 'no token "nobody" (never made, or already revoked: see acheron token list)' });
  const join = await one.createJoin(60_000);
  await t.rejects(two.rotate(join.id), {
    name: 'TokenRefused',
    message: `token "${join.id}" is a join token: join tokens are single-use and cannot be rotated (make a new one with acheron token join)`,
  });
  const alice = await one.createUser('alice', null);
  const user = await one.rotate('user');
  await two.revoke('user');
  t.equal((await two.rotate('user')).id, 'user', 'rotate user after it was revoked: `user` made again');
  t.same(
    await one.authenticate(alice.token),
    { kind: 'user', tokenId: alice.id, userId: 'alice', agentId: null },
    "alice's token was not rotated in its place",
  );
  t.equal(await one.authenticate(user.token), undefined, 'the revoked one stays revoked');
  t.same(
    (await one.list()).filter((e) => e.role === 'admin').map((e) => [e.id, e.role]),
    [['admin', 'admin']],
    'one admin token, listed without its secret',
  );
});

t.test('a token made on one store counts on the other at once; revoked, at once no more; a follower is told', async (t) => {
  const [one, two] = await stores('/users/');
  let told = 0;
  await two.follow(() => told++);
  const made = await one.createUser('u', 'agent');
  t.same(await two.authenticate(made.token), { kind: 'user', tokenId: made.id, userId: 'u', agentId: 'agent' }, 'authenticates on the other store at once');
  t.ok(await two.isCurrent(made.id, made.token), 'its session is current there');
  t.notOk(await two.isCurrent(made.id, 'ach_user_wrong'), 'another secret is not current');
  await one.revoke(made.id);
  t.equal(await two.authenticate(made.token), undefined, 'refused on the other store at once');
  await waitFor(async () => !(await two.isCurrent(made.id, made.token)), { what: 'the follower to drop it' });
  // isCurrent may decide by a read of its own while the follower's watch lags (seen in CI: told 0 here).
  await waitFor(() => told >= 2, { what: 'the follower told of both changes', timeoutMs: 10_000 }).catch(() => undefined);
  t.ok(told >= 2, `the follower was told of both changes (${told})`);
});

t.test("while a follower's copy lags, a new token's session is not taken for revoked: a read decides", async (t) => {
  const trio = await startEtcd(t, { members: 3 });
  // The member paused below may be the leader: the election that follows took more than the
  // default 1.5 s call bound once at load 5, so these calls get longer.
  const lagOptions = { prefix: '/lag/', callTimeoutMs: 6000 };
  const [one, two] = [new EtcdTokenStore(await openEtcd(t, trio.endpoints, lagOptions)), new EtcdTokenStore(await openEtcd(t, trio.endpoints, lagOptions))];
  t.teardown(async () => void (await Promise.all([one.close(), two.close()])));
  let told = 0;
  await two.follow(() => told++);
  // Only `two` watches: the member with a watch stream serves it. Stopped, it leaves the watch silent
  // (unless the client moved the watch to another member meanwhile: then the case is tried again;
  // a clean CI run once saw three such moves in a row).
  let lagged = false;
  let serving: (typeof trio.members)[number] | undefined;
  for (let attempt = 1; attempt <= 5 && !lagged; attempt++) {
    serving?.resume();
    serving = await waitFor(
      async () => {
        const streams = await Promise.all(trio.members.map((m) => memberGauge(m, 'etcd_debugging_mvcc_watch_stream_total')));
        return trio.members.find((_m, i) => (streams[i] ?? 0) > 0);
      },
      { what: 'the member serving the watch' },
    );
    serving.pause();
    const paused = serving;
    t.teardown(() => paused.resume());
    const toldBefore = told;
    const made = await one.createUser(`w${attempt}`, null);
    t.ok(await two.isCurrent(made.id, made.token), `current, by a read on another member (attempt ${attempt})`);
    t.notOk(await two.isCurrent(made.id, 'ach_user_wrong'), 'another secret is still not current');
    lagged = told === toldBefore;
  }
  t.ok(lagged, "the follower's copy had not seen the new token (the case under test)");
  const toldWhileLagging = told;
  serving?.resume();
  await waitFor(() => told > toldWhileLagging, { what: 'the follower to catch up', timeoutMs: 30_000 });
});
