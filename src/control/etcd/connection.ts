import { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { describe, storeUnavailable } from './failure.js';
import { clientOptions } from './client-options.js';
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
  readonly log: Logger;

  private constructor(client: Etcd3, options: EtcdOptions, log: Logger) {
    this.client = client;
    this.prefix = options.prefix;
    this.endpoints = options.endpoints;
    this.log = log;
  }

  /**
   * Connects and checks that etcd answers a linearizable read (so it has a leader), retrying until
   * `startTimeoutMs`; then throws an error naming the endpoints. Never hangs: every attempt has a
   * deadline within the start-up bound.
   */
  static async open(options: EtcdOptions, log: Logger): Promise<EtcdConnection> {
    const client = new Etcd3(await clientOptions(options));
    const until = Date.now() + options.startTimeoutMs;
    for (;;) {
      try {
        await client
          .get(options.prefix)
          .options({ deadline: Math.min(Date.now() + options.callTimeoutMs, until) })
          .exec();
        return new EtcdConnection(client, options, log);
      } catch (error) {
        if (Date.now() + START_RETRY_MS >= until) {
          client.close();
          throw new Error(`etcd unreachable at ${options.endpoints.join(',')} (--etcd-endpoints) for ${options.startTimeoutMs} ms: ${describe(error)}`, {
            cause: error,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, START_RETRY_MS));
      }
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

  close(): void {
    this.client.close();
  }

  async #run<T>(what: string, write: boolean, call: (client: Etcd3) => Promise<T>): Promise<T> {
    try {
      return await call(this.client);
    } catch (error) {
      const refusal = storeUnavailable(error, what, write);
      if (refusal.code === 'unavailable') this.log.warn({ err: error, what }, 'etcd call failed');
      throw refusal;
    }
  }
}
