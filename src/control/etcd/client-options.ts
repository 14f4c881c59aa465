import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  retry,
  timeout,
  wrap,
  type IBackoff,
  type IPolicy,
} from 'cockatiel';
import { isRecoverableError, type IOptions } from 'etcd3';
import { isRequestTooLarge } from './failure.js';
import type { MemberFailures } from './member-failures.js';
import { readEtcdFiles } from './option-files.js';
import type { EtcdOptions } from './options.js';

/**
 * How long a call goes on trying members, in call deadlines from its start: long enough to wait out
 * an election (1–2 s, meanwhile members refuse at once with `leader changed`); the attempt running
 * at the end is the last, so a refusal comes within about 3 × callTimeoutMs.
 */
const RETRY_WINDOW_CALLS = 2;
/** Pause before each further attempt, growing: quick refusals would otherwise spend every attempt within milliseconds. */
const RETRY_BACKOFF = { initialDelay: 50, maxDelay: 500 };
/** A bound on attempts besides the window, for refusals that come at once and keep coming. */
const MAX_RETRIES = 20;
/** A member is skipped for this long after 3 failures in a row (etcd3's default of 5 s delays recovery). */
const BREAKER_HALF_OPEN_MS = 1_000;
/** gRPC keepalive: a member that hangs with its socket open is noticed in about ping + timeout. */
const KEEPALIVE_MS = 5_000;
const KEEPALIVE_TIMEOUT_MS = 2_000;
/** Watch and channel reconnect backoff (etcd3's default grows to 30 s, grpc-js's to 120 s: a server would lag that long after an outage). */
const RECONNECT_BACKOFF = { initialDelay: 100, maxDelay: 1_000 };

/**
 * What is worth another attempt, and counts against a member's breaker: what etcd3 calls recoverable,
 * except a request etcd refuses for its size (RESOURCE_EXHAUSTED). That one fails the same way on
 * every member, and counted it would open the breaker, failing every other call for a while.
 */
export const worthRetrying = (error: Error): boolean => isRecoverableError(error) && !isRequestTooLarge(error);

/**
 * How one call is retried across members (etcd3's `global` policy): another attempt after a failure
 * worth retrying, or while every member's breaker is open (it half-opens within a second), until
 * RETRY_WINDOW_CALLS × `callTimeoutMs` has passed since the call began.
 */
export function callRetryPolicy(callTimeoutMs: number): IPolicy {
  return wrap(
    // Cooperative: the window stops further attempts (the retry sees its signal), it does not cut the running one short.
    timeout(RETRY_WINDOW_CALLS * callTimeoutMs, TimeoutStrategy.Cooperative),
    retry(
      handleWhen((error) => worthRetrying(error) || isBrokenCircuitError(error)),
      { maxAttempts: MAX_RETRIES, backoff: new ExponentialBackoff(RETRY_BACKOFF) },
    ),
  );
}

/**
 * The etcd3 client options: deadlines, retries, breakers, keepalive, watch backoff, TLS and auth.
 * `failures` learns what each member's breaker sees, to name the cause when a breaker is open.
 */
export async function clientOptions(options: EtcdOptions, failures?: MemberFailures): Promise<IOptions> {
  const { credentials, password } = await readEtcdFiles(options);
  // A fresh deadline per attempt: a function, called for each attempt of each call.
  const deadline = (): { deadline: number } => ({ deadline: Date.now() + options.callTimeoutMs });
  const auth = options.username && password !== undefined ? { username: options.username, password, callOptions: deadline } : undefined;
  return {
    hosts: options.endpoints,
    ...(credentials ? { credentials } : {}),
    ...(auth ? { auth } : {}),
    defaultCallOptions: (context) => (context.isStream ? {} : deadline()),
    grpcOptions: {
      'grpc.keepalive_time_ms': KEEPALIVE_MS,
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      // A member back after an outage is tried again within a second (grpc-js backs off up to 120 s,
      // and a server with no traffic meanwhile would refuse logins that long).
      'grpc.initial_reconnect_backoff_ms': RECONNECT_BACKOFF.initialDelay,
      'grpc.max_reconnect_backoff_ms': RECONNECT_BACKOFF.maxDelay,
      // A watch catching up sends up to 1000 revisions in one response, far above grpc-js's 4 MiB
      // default; refused, the stream would break and resume into the same response forever.
      'grpc.max_receive_message_length': -1,
    },
    faultHandling: {
      host: (endpoint) => {
        const breaker = circuitBreaker(handleWhen(worthRetrying), { halfOpenAfter: BREAKER_HALF_OPEN_MS, breaker: new ConsecutiveBreaker(3) });
        breaker.onSuccess(() => failures?.answered(endpoint));
        breaker.onFailure(({ reason }) => failures?.failed(endpoint, 'error' in reason ? reason.error : reason.value));
        return breaker;
      },
      global: callRetryPolicy(options.callTimeoutMs),
      // etcd3's types ask for a backoff, its code wants (and calls .next() on) a factory like this one.
      watchBackoff: new ExponentialBackoff(RECONNECT_BACKOFF) as unknown as IBackoff<unknown>,
    },
  };
}
