import { randomUUID } from 'node:crypto';
import type { EtcdConnection } from './connection.js';
import { ProtocolError } from '../../protocol/errors.js';
import { storeUnavailable } from './failure.js';
import { commitEncoded, encodeWrites, guardedTxn, type EncodedWrite, type Guard, type Write } from './guarded-txn.js';

/** etcd's default `--max-txn-ops`: compares and success ops of one transaction, each. */
export const MAX_TXN_OPS = 128;
/** Transactions in flight at once; changes queue behind them and go together in the next. */
const IN_FLIGHT = 2;
/** The values of one group at most (etcd's default `--max-request-bytes` is 1.5 MiB); a larger change goes alone. */
const GROUP_MAX_BYTES = 1 << 20;

/** A change's outcome: committed at `revision`, or not, its guard broken at `changedAt`. */
export interface GroupOutcome {
  committed: boolean;
  revision: bigint;
  changedAt?: bigint;
}

interface Queued {
  what: string;
  guards: readonly Guard[];
  writes: readonly Write[];
  opId: string;
  settle(outcome: Promise<GroupOutcome>): void;
}

/**
 * Group commit: guarded changes that arrive while transactions are in flight go to etcd together,
 * as one transaction (one revision, one raft round, one watch response) whose guards are all of
 * theirs. etcd's cost is mostly per transaction, so under load many changes cost about as much as
 * one; with nothing in flight a change goes at once. If any guard of a group fails, each of its
 * changes is committed alone (`commitGuarded`: the ones whose guards hold go through, the others
 * learn where their key changed, and a change whose group did commit although its answer was lost
 * finds its op id). Changes of one group never touch the same key (etcd refuses that).
 */
export class GroupCommit {
  #connection: EtcdConnection;
  #queue: Queued[] = [];
  #inFlight = 0;

  constructor(connection: EtcdConnection) {
    this.#connection = connection;
  }

  /** Commits `writes` if every guard holds, alone or with other changes; an etcd failure is `unavailable` (outcome unknown). */
  commit(what: string, guards: readonly Guard[], writes: readonly Write[]): Promise<GroupOutcome> {
    if (guards.length === 0 || guards.length > MAX_TXN_OPS || writes.length > MAX_TXN_OPS)
      throw new TypeError(
        `${what}: ${guards.length} guards and ${writes.length} writes: 1 to ${MAX_TXN_OPS} guards and at most ${MAX_TXN_OPS} writes fit one transaction`,
      );
    return new Promise((resolve) => {
      this.#queue.push({ what, guards, writes, opId: randomUUID(), settle: resolve });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < IN_FLIGHT && this.#queue.length > 0) {
      const group = this.#take();
      this.#inFlight++;
      void this.#run(group).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  /** The oldest queued changes that fit one transaction with distinct keys, their writes encoded for it; the rest wait, in order. */
  #take(): Array<{ change: Queued; writes: EncodedWrite[] }> {
    const group: Array<{ change: Queued; writes: EncodedWrite[] }> = [];
    const keys = new Set<string>();
    let guards = 0;
    let writes = 0;
    let bytes = 0;
    let taken = 0;
    for (const change of this.#queue) {
      const touched = [...change.guards.map((g) => g.key), ...change.writes.map((w) => w.key)];
      if (guards + change.guards.length > MAX_TXN_OPS || writes + change.writes.length > MAX_TXN_OPS || touched.some((key) => keys.has(key))) break;
      const encoded = encodeWrites(change.writes, change.opId, group.length);
      const size = encoded.reduce((sum, w) => sum + ('value' in w ? w.value.length : 0), 0);
      if (group.length > 0 && bytes + size > GROUP_MAX_BYTES) break;
      group.push({ change, writes: encoded });
      taken++;
      guards += change.guards.length;
      writes += change.writes.length;
      bytes += size;
      // A key guarded and written by one change counts once; two changes may not share it.
      for (const key of touched) keys.add(key);
    }
    this.#queue = this.#queue.slice(taken);
    return group;
  }

  async #run(group: Array<{ change: Queued; writes: EncodedWrite[] }>): Promise<void> {
    if (group.length > 1) {
      const what = `${group[0]?.change.what ?? ''} and ${group.length - 1} more changes`;
      try {
        const result = await this.#connection.write(what, (client) =>
          guardedTxn(
            client,
            group.flatMap((m) => m.change.guards),
            group.flatMap((m) => m.writes),
          ).commit(),
        );
        if (result.succeeded) {
          for (const { change } of group) change.settle(Promise.resolve({ committed: true, revision: BigInt(result.header.revision) }));
          return;
        }
      } catch (error) {
        // Too large together (etcd's limit set lower than the group): each alone, as below. Any other failure is each change's, in its own words.
        if (!(error instanceof ProtocolError && error.code === 'payload_too_large')) {
          const cause = error instanceof ProtocolError && error.cause !== undefined ? error.cause : error;
          for (const { change } of group) change.settle(Promise.reject(storeUnavailable(cause, change.what, true)));
          return;
        }
      }
    }
    // Alone, or a guard of the group failed: each alone, so the others are not held up by one that conflicts.
    // The writes keep the index they were encoded with: unique within the revision all the same.
    const outcomes = group.map(({ change, writes }) => commitEncoded(this.#connection, change.what, change.guards, writes, change.opId));
    group.forEach(({ change }, index) => change.settle(outcomes[index] as Promise<GroupOutcome>));
    await Promise.allSettled(outcomes);
  }
}
