import type { Logger } from 'pino';
import { StateJournal } from '../store/state-journal.js';
import type { NodeRecord } from './catalog-store.js';

const seenKey = (nodeId: string): string => `seen/${nodeId}`;
/** When the server was last up (not a node id: those have no `/`). */
const ALIVE_KEY = 'server/alive';
/** How often a running server records that it is up: the next run's restart grace is bounded by the time since (restart-grace.ts). */
export const SERVER_ALIVE_EVERY_MS = 5_000;

/**
 * When each node was last seen, for the file store: a lease refresh (or an upsert that changes
 * nothing else) is no event and rewrites no record, so without this a kill -9 would bring back the
 * time of the node's last event or checkpoint, minutes older than the one published. The times go
 * to a journal of their own in batch mode, one write and one sync per BATCH_SYNC_MS (a node record
 * holds its descriptors; these lines are small, and their compaction rewrites only them), and each is
 * published once durable: a published last_seen_ms never goes back, and refreshes, thousands a
 * second with many nodes, share a sync rather than wait for one each.
 */
export class SeenTimes {
  readonly #journal: StateJournal;
  readonly #log: Logger;
  readonly #aliveTimer: NodeJS.Timeout;
  #closed = false;

  private constructor(journal: StateJournal, log: Logger) {
    this.#journal = journal;
    this.#log = log;
    this.#recordAlive();
    this.#aliveTimer = setInterval(() => this.#recordAlive(), SERVER_ALIVE_EVERY_MS).unref();
  }

  /** With the next batch, stamped when it is written; a failed write is logged by the journal. */
  #recordAlive(): void {
    this.#journal.setLatest(ALIVE_KEY, () => Date.now()).catch(() => undefined);
  }

  /**
   * Opens the journal at `path`; `restore` then raises each restored node's time to the one recorded here.
   * `lastAliveMs`: when the previous run was last up (within SERVER_ALIVE_EVERY_MS), if it recorded it.
   */
  static async open(path: string, log: Logger): Promise<{ seen: SeenTimes; restore(nodes: Iterable<NodeRecord>): void; lastAliveMs: number | undefined }> {
    const { journal, restored } = await StateJournal.open(path, { sync: 'batch', log });
    const alive = Number(restored.values.get(ALIVE_KEY));
    const restore = (nodes: Iterable<NodeRecord>): void => {
      for (const node of nodes) {
        const recorded = Number(restored.values.get(seenKey(node.node_id)) ?? 0);
        // A value that is no time (a hand edit) would make every later time NaN: ignored, said.
        if (Number.isFinite(recorded)) node.last_seen_ms = Math.max(node.last_seen_ms, recorded);
        else log.warn({ node_id: node.node_id, file: path }, 'last-seen time is not a number: ignored');
      }
    };
    return { seen: new SeenTimes(journal, log), restore, lastAliveMs: Number.isFinite(alive) ? alive : undefined };
  }

  /**
   * Resolves once `ms` is durable (with the journal's next batch). A failed write is logged (by the
   * journal) and resolves too: a full disk must not take leases down; only that time could come
   * back older after a restart.
   */
  record(nodeId: string, ms: number): Promise<void> {
    // After close (a refresh that raced the stop) there is nowhere to write: the time stays in memory.
    if (this.#closed) return Promise.resolve();
    // One line per node per batch, however often it was seen since the last one.
    void this.#journal.setLatest(seenKey(nodeId), () => ms);
    return this.#journal.whenDurable().catch(() => undefined);
  }

  /** The node was deleted. */
  async forget(nodeId: string): Promise<void> {
    await this.#journal.delete(seenKey(nodeId)).catch((error: unknown) => this.#log.error({ err: error, node_id: nodeId }, 'last-seen time not deleted'));
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      clearInterval(this.#aliveTimer);
      // A clean stop: the next run knows exactly how long no server was up.
      this.#recordAlive();
    }
    this.#closed = true;
    await this.#journal.close();
  }
}
