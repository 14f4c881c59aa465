import { isBrokenCircuitError } from 'cockatiel';
import { describe } from './failure.js';

/**
 * What each etcd member last failed with, as its circuit breaker counted it. An open breaker fails
 * a call without trying the member ("Execution prevented because the circuit breaker is open"), and
 * etcd3 then throws that instead of the failure that opened it; this keeps the failure to name.
 * A member that answers again (a success, or a refusal its breaker does not count) is forgotten.
 */
export class MemberFailures {
  readonly #endpoints: readonly string[];
  readonly #counts: (error: Error) => boolean;
  readonly #last = new Map<string, unknown>();

  /** `counts`: what a member's breaker counts against it (client-options.ts `worthRetrying`). */
  constructor(endpoints: readonly string[], counts: (error: Error) => boolean) {
    this.#endpoints = endpoints;
    this.#counts = counts;
  }

  /** A call to `endpoint` failed with `error`; an error its breaker does not count means the member answered. */
  failed(endpoint: string, error: unknown): void {
    if (error instanceof Error && this.#counts(error)) this.#last.set(endpoint, error);
    else this.#last.delete(endpoint);
  }

  /** A call to `endpoint` succeeded. */
  answered(endpoint: string): void {
    this.#last.delete(endpoint);
  }

  /**
   * A failure to report: a member failure, an open breaker or no answer yet (`undefined`) becomes
   * `no etcd member could serve it (last error: <what the one member failed with>)`, or `(last errors:
   * <endpoint>: <error>; …)` with several endpoints, failing ones only. A refusal etcd gave (a request
   * too large, bad credentials) is returned as it is.
   */
  explain(error: unknown): unknown {
    const isOpen = error === undefined || isBrokenCircuitError(error);
    if (!isOpen && !(error instanceof Error && this.#counts(error))) return error;
    const failing = this.#endpoints.filter((e) => this.#last.has(e));
    if (failing.length === 0 && !isOpen) return error;
    const errors = this.#endpoints.length === 1 ? failing.map((e) => describe(this.#last.get(e))) : failing.map((e) => `${e}: ${describe(this.#last.get(e))}`);
    const detail = errors.length === 0 ? '' : ` (last ${errors.length > 1 ? 'errors' : 'error'}: ${errors.join('; ')})`;
    return new Error(`no etcd member could serve it${detail}`, { cause: error });
  }
}
