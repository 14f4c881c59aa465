// How one etcd call is retried across members. During an election members refuse at once
// ("leader changed"): three attempts without a pause were spent within milliseconds and a write
// failed while one member of three was stopped. The policy pauses, and gives up only after its window.
import t from 'tap';
import { BrokenCircuitError } from 'cockatiel';
import { GRPCResourceExhastedError, GRPCUnavailableError } from 'etcd3';
import { callRetryPolicy } from '../../../../src/control/etcd/client-options.js';

const leaderChanged = (): Error => new GRPCUnavailableError('14 UNAVAILABLE: etcdserver: leader changed');

t.test('quick refusals for a while (an election): the call waits them out and succeeds', async (t) => {
  const policy = callRetryPolicy(500);
  const start = Date.now();
  let attempts = 0;
  const answer = await policy.execute(async () => {
    attempts++;
    if (Date.now() - start < 300) throw leaderChanged();
    return 'written';
  });
  t.equal(answer, 'written', 'answered once a leader was there');
  t.ok(attempts >= 2 && attempts <= 12, `with pauses between attempts (${attempts} attempts in ${Date.now() - start} ms)`);
});

t.test('every member refusing: the last failure, once the window (2 call deadlines) has passed', async (t) => {
  const policy = callRetryPolicy(200);
  const start = Date.now();
  let attempts = 0;
  await t.rejects(
    policy.execute(async () => {
      attempts++;
      throw new GRPCUnavailableError(`14 UNAVAILABLE: attempt ${attempts}`);
    }),
    { message: /attempt \d+$/ },
  );
  const took = Date.now() - start;
  t.ok(took >= 400, `not before the window ended (${took} ms)`);
  t.ok(took < 400 + 200 + 500 + 500, `not long after it: at most one more attempt and one pause (${took} ms)`);
  t.ok(attempts > 3, `more than the three attempts of before (${attempts})`);
});

t.test('every breaker open: tried again (a breaker half-opens within a second)', async (t) => {
  const policy = callRetryPolicy(500);
  let attempts = 0;
  const answer = await policy.execute(async () => {
    if (++attempts < 3) throw new BrokenCircuitError();
    return 'served';
  });
  t.equal(answer, 'served');
  t.equal(attempts, 3);
});

t.test('a refusal no member would answer differently is not retried', async (t) => {
  const policy = callRetryPolicy(500);
  let attempts = 0;
  await t.rejects(
    policy.execute(async () => {
      attempts++;
      throw new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: etcdserver: request is too large');
    }),
    { message: /request is too large/ },
  );
  t.equal(attempts, 1, 'one attempt');
});
