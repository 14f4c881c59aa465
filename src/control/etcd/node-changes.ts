import type { Logger } from 'pino';
import { SerialQueue } from '../../async/serial-queue.js';
import { ProtocolError } from '../../protocol/errors.js';
import type { NodeRecord } from '../catalog-store.js';
import type { CatalogFeed } from './catalog-feed.js';
import { encodeNode, LEASES, NODES, type StoredEvent, type StoredLease } from './catalog-layout.js';
import type { CatalogMirror, Writing } from './catalog-mirror.js';
import type { EtcdConnection } from './connection.js';
import { GroupCommit } from './group-commit.js';
import type { Guard, Write } from './guarded-txn.js';

/** Conflicting writes to one node (another server's sweep, say) before a change gives up with `conflict`. */
const MAX_ATTEMPTS = 16;

/** What one attempt of a node's change writes (nothing: nothing to do) and answers. */
export interface NodeChange<R> {
  record?: { next: NodeRecord; event?: StoredEvent; deleted?: boolean };
  lease?: StoredLease | 'delete';
  /** Keys besides the node record that must be as the mirror saw them. */
  guards?: Guard[];
  result: R;
}

/** Plans a node's change from the mirror's record of it (undefined: none) at `now`. */
export type NodePlan<R> = (node: NodeRecord | undefined, now: number) => NodeChange<R>;

/**
 * The writes of node records and leases: one node's changes one at a time, each a guarded
 * transaction (several nodes' together: `GroupCommit`) planned from the mirror and planned again
 * after a conflict.
 */
export class NodeChanges {
  #connection: EtcdConnection;
  #mirror: CatalogMirror;
  #feed: CatalogFeed;
  #waitMs: number;
  #log: Logger;
  #queue = new SerialQueue<string>();
  #commits: GroupCommit;

  /** `waitMs`: how long a write waits for this server's watch to show it (it is committed either way). */
  constructor(connection: EtcdConnection, mirror: CatalogMirror, feed: CatalogFeed, waitMs: number, log: Logger) {
    this.#connection = connection;
    this.#mirror = mirror;
    this.#feed = feed;
    this.#waitMs = waitMs;
    this.#log = log;
    this.#commits = new GroupCommit(connection);
  }

  /**
   * One change of a node as one guarded transaction on its record (and lease), planned from the
   * mirror; after a conflict, planned again once the mirror has what changed. Resolves once this
   * server's watch has the write.
   */
  run<R>(nodeId: string, what: string, plan: NodePlan<R>): Promise<{ result: R; revision: bigint }> {
    return this.#queue.run(nodeId, async () => {
      const nodeKey = this.#connection.key(NODES + nodeId);
      // A node this server has not seen yet may have joined through another one a moment ago: catch up with it first.
      if (this.#mirror.revisionOf(nodeId) === undefined) {
        const kv = (await this.#connection.read(what, (client) => client.get(nodeKey).exec())).kvs[0];
        if (kv) await this.#feed.waitFor(BigInt(kv.mod_revision), this.#waitMs);
      }
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const change = plan(this.#mirror.nodes.get(nodeId), Date.now());
        const writes: Write[] = [];
        const writing: Writing | undefined = change.record && { ...change.record };
        if (writing) {
          const encode = encodeNode(writing.next, writing);
          writes.push({
            key: nodeKey,
            encoded: (opId, index) => {
              const bytes = encode(opId, index);
              writing.sent = { bytes, index };
              return bytes;
            },
          });
        }
        if (change.lease === 'delete') writes.push({ key: this.#connection.key(LEASES + nodeId), delete: true });
        else if (change.lease) writes.push({ key: this.#connection.key(LEASES + nodeId), value: { ...change.lease } });
        if (writes.length === 0) return { result: change.result, revision: 0n };
        const guards = [{ key: nodeKey, modRevision: this.#mirror.revisionOf(nodeId) ?? 0n }, ...(change.guards ?? [])];
        if (writing) this.#mirror.writing(nodeId, writing);
        try {
          const outcome = await this.#commits.commit(what, guards, writes);
          if (outcome.committed) {
            if (!(await this.#feed.waitFor(outcome.revision, this.#waitMs))) {
              this.#log.warn({ node_id: nodeId, revision: String(outcome.revision) }, "a change is committed in etcd but not yet seen by this server's watch");
            }
            return { result: change.result, revision: outcome.revision };
          }
          this.#log.debug(
            { node_id: nodeId, attempt, changed_at: String(outcome.changedAt ?? outcome.revision) },
            `${what}: the node changed meanwhile; planning again`,
          );
          await this.#feed.waitFor(outcome.changedAt ?? outcome.revision, this.#waitMs);
        } finally {
          if (writing) this.#mirror.writing(nodeId, undefined);
        }
      }
      throw new ProtocolError('conflict', `${what}: the node changed under it ${MAX_ATTEMPTS} times in a row; try again`);
    });
  }
}
