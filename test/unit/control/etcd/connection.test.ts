// EtcdConnection.open against a port nobody listens on (no etcd needed): it gives up within the
// start-up bound, naming the endpoint and the refused connection, not the open circuit breaker.
import t from 'tap';
import { pino } from 'pino';
import { EtcdConnection } from '../../../../src/control/etcd/connection.js';
import { freePort } from '../../../helpers/control.js';

t.test('etcd unreachable at start: the last error, not "the circuit breaker is open"', async (tt) => {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const error = await EtcdConnection.open({ endpoints: [endpoint], prefix: '/x/', callTimeoutMs: 500, startTimeoutMs: 1_500 }, pino({ level: 'silent' })).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  tt.ok(error, 'refused');
  tt.equal(
    error?.message,
    `etcd unreachable at ${endpoint} (--etcd-endpoints) for 1500 ms: no etcd member could serve it (last error: connect ECONNREFUSED 127.0.0.1:${port})`,
    'naming the cause the breaker saw',
  );
  tt.notMatch(error?.message, /circuit breaker/);
  tt.ok(Date.now() - started < 10_000, `gave up in ${Date.now() - started} ms`);
});
