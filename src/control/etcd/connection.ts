import { Etcd3, GRPCOutOfRangeError, type IOptions } from 'etcd3';
import type { Logger } from 'pino';
import { configurationProblem, describe, storeUnavailable } from './failure.js';
import { clientOptions, worthRetrying } from './client-options.js';
import { MemberFailures } from './member-failures.js';
import { MemberReadiness } from './member-readiness.js';
import type { EtcdOptions } from './options.js';

const START_RETRY_MS = 200;

/**
 * One etcd3 client with Acheron's settings and the key prefix: every etcd call of a server or CLI
 * goes through `read`/`write`, which turn an etcd failure into the wire code `unavailable`.
 */
export class EtcdConnection {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly endpoints: readonly string[];
  /** Each attempt's deadline (`--etcd-call-timeout-ms`). */
  readonly callTimeoutMs: number;
  readonly log: Logger;
  readonly #failures: MemberFailures;
  readonly #clientOptions: IOptions;
  /** Made at the first readiness check (a CLI never makes one), closed with the connection. */
  #members: MemberReadiness | undefined;
  #closed = false;
  /** The readiness check under way: probes meanwhile wait for it rather than each starting one. */
  #check: Promise<string | undefined> | undefined;

  private constructor(client: Etcd3, options: EtcdOptions, log: Logger, failures: MemberFailures, clientOptions: IOptions) {
    this.client = client;
    this.prefix = options.prefix;
    this.endpoints = options.endpoints;
    this.callTimeoutMs = options.callTimeoutMs;
    this.log = log;
    this.#failures = failures;
    this.#clientOptions = clientOptions;
  }

  /**
   * Connects and checks that etcd answers a linearizable read (so it has a leader), retrying until
   * `startTimeoutMs`; then throws an error naming the endpoints and what the members failed with.
   * A refusal no retry can change (credentials, permissions, TLS trust) throws at once, naming the flag.
   * Never hangs: an attempt still running at the bound is given up with the client.
   */
  static async open(options: EtcdOptions, log: Logger): Promise<EtcdConnection> {
    const failures = new MemberFailures(options.endpoints, worthRetrying);
    const settings = await clientOptions(options, failures);
    const client = new Etcd3(settings);
    const until = Date.now() + options.startTimeoutMs;
    let lastError: unknown;
    for (;;) {
      // Each attempt of the read has its own deadline (the client's default): one fixed deadline for
      // the call would leave etcd3's retries none ("Deadline exceeded after 0.000s"), hiding the cause.
      const outcome = await settledBefore(client.get(options.prefix).exec(), until);
      if (outcome.state === 'answered') return new EtcdConnection(client, options, log, failures, settings);
      if (outcome.state === 'failed') {
        lastError = outcome.error;
        const problem = configurationProblem(describe(failures.explain(lastError)), options);
        if (problem !== undefined) {
          client.close();
          throw new Error(problem, { cause: lastError });
        }
      }
      if (outcome.state === 'late' || Date.now() + START_RETRY_MS >= until) {
        client.close();
        throw new Error(
          `etcd unreachable at ${options.endpoints.join(',')} (--etcd-endpoints) for ${options.startTimeoutMs} ms: ${describe(failures.explain(lastError))}`,
          { cause: lastError },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, START_RETRY_MS));
    }
  }

  /** `relative` under the prefix. */
  key(relative: string): string {
    return this.prefix + relative;
  }

  /** A read; an etcd failure becomes `unavailable`. */
  read<T>(what: string, call: (client: Etcd3) => Promise<T>): Promise<T> {
    return this.#run(what, false, call);
  }

  /** A write; an etcd failure becomes `unavailable` saying the outcome is unknown. */
  write<T>(what: string, call: (client: Etcd3) => Promise<T>): Promise<T> {
    return this.#run(what, true, call);
  }

  /**
   * Why etcd cannot serve now, or undefined when it can: no member answers a linearizable read within
   * `withinMs` (a call of the shared client goes on retrying through an election, for seconds; a
   * readiness probe must not). Every member is asked at once, so one hung member is never waited on.
   */
  problem(withinMs: number): Promise<string | undefined> {
    if (this.#closed) return Promise.resolve('the etcd connection is closed');
    this.#members ??= new MemberReadiness(this.#clientOptions, this.endpoints);
    this.#check ??= this.#members.problem(this.prefix, withinMs).finally(() => (this.#check = undefined));
    return this.#check;
  }

  close(): void {
    this.#closed = true;
    this.#members?.close();
    this.client.close();
  }

  async #run<T>(what: string, write: boolean, call: (client: Etcd3) => Promise<T>): Promise<T> {
    try {
      return await call(this.client);
    } catch (error) {
      const refusal = storeUnavailable(this.#failures.explain(error), what, write);
      // A read at a compacted (or future) revision is etcd's answer, not a failure: its caller decides.
      if (refusal.code === 'unavailable' && !(error instanceof GRPCOutOfRangeError)) this.log.warn({ err: error, what }, 'etcd call failed');
      throw refusal;
    }
  }
}

/**
 * How `call` ended, or `late` when `until` came first. A late call goes on unobserved: the caller
 * (the start) closes the client, which ends it.
 */
async function settledBefore(call: Promise<unknown>, until: number): Promise<{ state: 'answered' } | { state: 'failed'; error: unknown } | { state: 'late' }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<{ state: 'late' }>((resolve) => {
    timer = setTimeout(() => resolve({ state: 'late' }), Math.max(0, until - Date.now()));
  });
  try {
    return await Promise.race([
      call.then(
        () => ({ state: 'answered' as const }),
        (error: unknown) => ({ state: 'failed' as const, error }),
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
