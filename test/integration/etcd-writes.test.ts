// Writes through src/control/etcd against real etcd: guarded read-modify-writes from two clients
// at once never lose an update; a guarded txn retried after its first attempt committed is known
// to have committed (its op id); with quorum lost a write is refused with `unavailable` within a
// bound, never acknowledged, and writes work again once quorum is back; etcd unreachable at start
// is an error naming the endpoints, not a hang.
import t from 'tap';
import { EtcdConnection } from '../../src/control/etcd/connection.js';
import { commitGuarded, storedObject, transact } from '../../src/control/etcd/guarded-txn.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { freePort } from '../helpers/control.js';
import { openEtcd, startEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/process.js';
import { pino } from 'pino';

/** Adds one to the counter at `key`: read, then write guarded by the read's mod_revision. */
function increment(connection: EtcdConnection, key: string): Promise<{ result: number; revision: bigint }> {
  return transact(connection, 'increment', async (read) => {
    const value = await read(key);
    const n = value ? Number(storedObject(value)?.object.n) : 0;
    return { writes: [{ key, value: { n: n + 1 } }], result: n + 1 };
  });
}

t.test('guarded writes from two clients at once never lose an update', async (t) => {
  const cluster = await startEtcd(t);
  const [a, b] = [await openEtcd(t, cluster.endpoints), await openEtcd(t, cluster.endpoints)];
  const perClient = 40;
  const run = async (connection: EtcdConnection): Promise<number[]> => {
    const seen: number[] = [];
    for (let i = 0; i < perClient; i++) seen.push((await increment(connection, '/counter')).result);
    return seen;
  };
  const [fromA, fromB] = await Promise.all([run(a), run(b)]);
  const final = storedObject((await a.client.get('/counter').exec()).kvs[0]?.value ?? Buffer.from('{}'))?.object.n;
  t.equal(final, 2 * perClient, 'every increment counted');
  t.same(
    [...fromA, ...fromB].sort((x, y) => x - y),
    Array.from({ length: 2 * perClient }, (_v, i) => i + 1),
    'each client saw its own increments, no value twice',
  );
});

t.test('a guarded txn whose guard fails because its own first attempt committed reports committed', async (t) => {
  const cluster = await startEtcd(t);
  const connection = await openEtcd(t, cluster.endpoints);
  const writes = [{ key: '/k', value: { v: 1 } }];
  const first = await commitGuarded(connection, 'first attempt', [{ key: '/k', modRevision: 0n }], writes, 'op-1');
  t.equal(first.committed, true, 'the first attempt commits');
  // What etcd3's retry of the same call looks like: same guard (now stale), same op id.
  const retried = await commitGuarded(connection, 'retried attempt', [{ key: '/k', modRevision: 0n }], writes, 'op-1');
  t.same(retried, { committed: true, revision: first.revision }, 'the retry knows its first attempt committed');
  const other = await commitGuarded(connection, 'another writer', [{ key: '/k', modRevision: 0n }], writes, 'op-2');
  t.equal(other.committed, false, 'another op with the stale guard does not');
});

t.test('quorum lost: writes are refused with unavailable within a bound; they work again once quorum is back', async (t) => {
  const cluster = await startEtcd(t, { members: 3 });
  const connection = await openEtcd(t, cluster.endpoints);
  const { revision } = await increment(connection, '/q');
  const [m1, m2] = cluster.members as [(typeof cluster.members)[0], (typeof cluster.members)[0]];
  await Promise.all([m1.kill9(), m2.kill9()]);
  for (const [what, attempt] of [
    ['a read-modify-write', () => increment(connection, '/q')],
    ['a guarded write', () => commitGuarded(connection, 'guarded write', [{ key: '/q', modRevision: revision }], [{ key: '/q', value: { n: 100 } }])],
  ] as const) {
    const started = Date.now();
    const refusal = await attempt().then(
      () => undefined,
      (error: unknown) => error,
    );
    const tookMs = Date.now() - started;
    t.type(refusal, ProtocolError, `${what}: refused, not acknowledged`);
    t.equal((refusal as ProtocolError).code, 'unavailable', `${what}: code unavailable: ${(refusal as Error).message}`);
    // (1 + 2 retries) × 1.5 s per attempt at most; generous for a loaded machine.
    t.ok(tookMs < 30_000, `${what}: within the bound (${tookMs} ms)`);
  }

  m1.start();
  const after = await waitFor(() => increment(connection, '/q').catch(() => undefined), { what: 'a write after quorum is back', timeoutMs: 60_000 });
  t.ok(after.result >= 2, `a write commits again (counter ${after.result})`);
  const value = storedObject((await connection.client.get('/q').exec()).kvs[0]?.value ?? Buffer.from('{}'))?.object.n;
  t.equal(value, after.result, 'and holds what was acknowledged');
});

t.test('etcd unreachable at start: an error naming the endpoints, within the start-up bound', async (t) => {
  const endpoints = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
  const started = Date.now();
  const error = await EtcdConnection.open({ endpoints, prefix: '/x/', callTimeoutMs: 500, startTimeoutMs: 1_000 }, pino({ level: 'silent' })).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  t.ok(error, 'refused');
  t.match(error?.message, `etcd unreachable at ${endpoints.join(',')}`, 'naming the endpoints');
  t.ok(Date.now() - started < 15_000, `gave up in ${Date.now() - started} ms`);
});
