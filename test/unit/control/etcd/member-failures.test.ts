// An open circuit breaker hides why etcd is out of reach ("Execution prevented because the circuit
// breaker is open"): MemberFailures keeps what each member last failed with, and explain() names it.
import t from 'tap';
import { BrokenCircuitError } from 'cockatiel';
import { GRPCDeadlineExceededError, GRPCResourceExhastedError, GRPCUnavailableError } from 'etcd3';
import { worthRetrying } from '../../../../src/control/etcd/client-options.js';
import { describe, storeUnavailable } from '../../../../src/control/etcd/failure.js';
import { MemberFailures } from '../../../../src/control/etcd/member-failures.js';

const refused = (port: number): Error =>
  new GRPCUnavailableError(`14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:${port}. Resolution note: `);
const A = 'http://127.0.0.1:2379';
const B = 'http://127.0.0.1:2479';

t.test('describe: a refused connection is the socket error alone', async (tt) => {
  tt.equal(describe(refused(2379)), 'connect ECONNREFUSED 127.0.0.1:2379');
  tt.equal(
    describe(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded after 1.502s\nmore')),
    '4 DEADLINE_EXCEEDED: Deadline exceeded after 1.502s',
    'first line',
  );
});

t.test('one endpoint: an open breaker names the failure that opened it', async (tt) => {
  const failures = new MemberFailures([A], worthRetrying);
  tt.equal(describe(failures.explain(new BrokenCircuitError())), 'no etcd member could serve it', 'nothing seen yet');
  failures.failed(A, refused(2379));
  const explained = failures.explain(new BrokenCircuitError());
  tt.equal(describe(explained), 'no etcd member could serve it (last error: connect ECONNREFUSED 127.0.0.1:2379)');
  tt.type((explained as Error).cause, BrokenCircuitError, 'the original error is the cause');
  tt.equal(
    storeUnavailable(explained, 'readiness check', false).message,
    'control store (etcd): readiness check failed: no etcd member could serve it (last error: connect ECONNREFUSED 127.0.0.1:2379)',
    'as /readyz and the wire show it',
  );
  failures.answered(A);
  tt.equal(describe(failures.explain(new BrokenCircuitError())), 'no etcd member could serve it', 'a member that answered again is forgotten');
});

t.test('several endpoints: each failing member with its error, the answering ones left out', async (tt) => {
  const failures = new MemberFailures([A, B, 'http://127.0.0.1:2579'], worthRetrying);
  failures.failed(A, new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 1.502s'));
  failures.failed(B, refused(2479));
  tt.equal(
    describe(failures.explain(refused(2479))),
    `no etcd member could serve it (last errors: ${A}: 4 DEADLINE_EXCEEDED: Deadline exceeded after 1.502s; ${B}: connect ECONNREFUSED 127.0.0.1:2479)`,
    'a member failure from the last attempt is explained too',
  );
  tt.match(describe(failures.explain(undefined)), /^no etcd member could serve it \(last errors: /, 'no answer at all (a start-up cut short)');
});

t.test('a refusal etcd gave is reported as it is, and means the member answered', async (tt) => {
  const failures = new MemberFailures([A], worthRetrying);
  failures.failed(A, refused(2379));
  const tooLarge = new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: etcdserver: request is too large');
  tt.equal(failures.explain(tooLarge), tooLarge, 'not a member failure: unchanged');
  failures.failed(A, tooLarge);
  tt.equal(describe(failures.explain(new BrokenCircuitError())), 'no etcd member could serve it', 'the earlier failure is forgotten');
});
