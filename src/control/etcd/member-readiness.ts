import { noop } from 'cockatiel';
import { Etcd3, type IOptions } from 'etcd3';
import { describe } from './failure.js';

/**
 * The readiness check's read, on every etcd member at once, each on a client of its own that tries
 * that member alone, once. etcd can serve while any member answers a linearizable read (it has a
 * leader and a quorum). Through the shared client the check waited on whichever member its attempt
 * landed on: a hung member (SIGSTOP) fails an attempt only at the call deadline (1.5 s), past the
 * check's budget, so one hung member of three made /readyz flap while every request was served.
 */
export class MemberReadiness {
  readonly #members: ReadonlyArray<{ endpoint: string; client: Etcd3 }>;

  /** `options`: the shared client's (TLS, auth, keepalive); each member's client keeps them but retries nothing. */
  constructor(options: IOptions, endpoints: readonly string[]) {
    // Once each: a repeated endpoint would never count as failed, and the check would wait out its budget.
    this.#members = [...new Set(endpoints)].map((endpoint) => ({
      endpoint,
      client: new Etcd3({ ...options, hosts: [endpoint], faultHandling: { ...options.faultHandling, global: noop, host: () => noop } }),
    }));
  }

  /**
   * Undefined as soon as one member answers a linearizable read of `key`, else (every member failed,
   * or `withinMs` passed) what each member did: `no etcd member answered a read within <withinMs> ms
   * (<endpoint>: <error or "no answer">; …)`.
   */
  async problem(key: string, withinMs: number): Promise<string | undefined> {
    const until = Date.now() + withinMs;
    const failures = new Map<string, string>();
    let timer: NodeJS.Timeout | undefined;
    const answered = await new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), withinMs);
      for (const { endpoint, client } of this.#members) {
        client
          .get(key)
          .options({ deadline: until })
          .exec()
          .then(
            () => resolve(true),
            (error: unknown) => {
              failures.set(endpoint, describe(error));
              if (failures.size === this.#members.length) resolve(false);
            },
          );
      }
    });
    clearTimeout(timer);
    if (answered) return undefined;
    const each = this.#members.map(({ endpoint }) => `${endpoint}: ${failures.get(endpoint) ?? 'no answer'}`);
    return `control store (etcd): no etcd member answered a read within ${withinMs} ms (${each.join('; ')})`;
  }

  close(): void {
    for (const { client } of this.#members) client.close();
  }
}
